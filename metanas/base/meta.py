"""BASE meta-training (Bayesian meta-Architecture SEarch, Shaw et al., NeurIPS 2019) with Reptile.

    for e = 1..E:
        sample C tasks D_c
        for each D_c: (phi_c^0, psi_c^0) = W; T steps of the negative ELBO (elbo_loss) on
                      mini-batches of D_c's train split (the prior of the KL terms is W)
        W <- W + lambda * mean_c (phi_c^T, psi_c^T) - W)

``W = (alpha, mu, log sigma)`` are the parameters of a ``BayesSuperNet``; the inner loop and
the outer move are exactly ``metanas.meta.reptile.reptile_step`` (``inner_steps = T``,
``outer_lr = lambda``, linearly decayed from ``outer_lr`` to ``outer_lr_final``); the prior
buffers are re-synced to ``W`` before every outer step.

Tasks (``BaseMetaConfig``): by default ``ways``-class subsets of ``source`` (scikit-learn's
digits) drawn with ``draw_class_subsets(..., seed=task_seed)``: the first ``n_heldout`` are
the **held-out evaluation tasks** (never meta-trained on or validated with; the benchmark
uses them), the next ``n_val`` the validation tasks, the next ``n_tasks`` the meta-training
tasks. ``tasks=[...]`` (any ``TaskSpec`` ids: folders, ``.npz``...) replaces the drawn
training tasks. Only the *train* split of a training task is used, so no test image of any
task is ever seen (a digit class's images are split the same way in every task).

Validation (lower is better): for each validation task, adapt a copy of ``W`` for
``val_steps`` steps (``adapt``) and measure the cross-entropy of the validation split at the
posterior-mean weights and ``softmax(phi)`` architecture weights. Early stopping after
``patience`` validations without improvement; the best validated ``W`` is the checkpoint.

Resumable like ``metanas.meta.tnas_train``: every ``save_every`` iterations ``last.safetensors``
+ ``best.safetensors`` + ``training_state.json`` (the sampler's generator state, history);
``resume="auto"`` (default) continues a run saved with the same settings (only ``iters`` may
grow) and refuses one with other settings, ``True`` insists on a saved run, ``False`` starts
over.

Outputs in ``out``: ``model.safetensors`` + ``config.json`` (``save_base``: the ``BaseCheckpoint``
config, nested ``BayesConfig`` / ``ELBOConfig``, the task lists), ``README.md`` (model card
with the command), ``training_state.json``, ``last.safetensors``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from math import comb
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from .. import __version__
from ..errors import UserInputError
from ..io import atomic_write_bytes, atomic_write_json, read_json
from ..meta.checkpoint import (BEST_WEIGHTS, check_ranges, command_line, finished_run, generator_state,
                               load_weights, open_training_run, platform_info,
                               restore_best_weights, resume_training_state, resumed_outcome,
                               save_training_state, save_weights)
from .adapt import AdaptConfig, adapt
from .bayes import BayesConfig, BayesSuperNet
from .elbo import ELBOConfig, TaskBatches, elbo_loss, sample_batch

__all__ = ["KIND", "BaseCheckpoint", "BaseMetaConfig", "command_line", "draw_tasks", "save_base",
           "load_base", "meta_train_base", "STATE_NAME"]

KIND = "BaseSuperNet"
STATE_NAME = "training_state.json"


@dataclass
class BaseCheckpoint:
    """``config.json`` of a BASE prior: the model (``net``: ``BayesConfig``; the top-level
    ``model`` key of ``config.json`` is the checkpoint kind), the objective and inner loop it
    was meta-trained with (quick adaptation reuses them), and the task lists."""

    space: str = "nb201"
    net: BayesConfig = field(default_factory=BayesConfig)
    elbo: ELBOConfig = field(default_factory=ELBOConfig)
    inner_steps: int = 20
    inner_lr: float = 1e-3
    training_tasks: list[str] = field(default_factory=list)
    val_tasks: list[str] = field(default_factory=list)
    heldout_tasks: list[str] = field(default_factory=list)
    metanas_version: str = __version__

    def adapt_config(self, steps: int = 100, derive_samples: int = 0) -> AdaptConfig:
        """Quick adaptation with meta-training's inner optimiser, rate and objective."""
        return AdaptConfig(steps=steps, lr=self.inner_lr, optimizer="adam", elbo=self.elbo,
                           derive_samples=derive_samples)


@dataclass
class BaseMetaConfig:
    """Meta-training settings (recorded in ``training_state.json`` and the card).

    Attributes:
        space: cell space (``nb201``; any space whose ops the supernet implements).
        source, ways, task_seed: tasks are ``ways``-class subsets of ``source``.
        n_heldout, n_val, n_tasks: held-out evaluation / validation / training task counts.
        tasks: explicit training task ids (replaces the drawn ones), or ``None``.
        iters: outer iterations ``E`` (max). tasks_per_iter: ``C``.
        inner_steps: ``T``. inner_lr: Adam rate of the inner loop.
        outer_lr, outer_lr_final: ``lambda``, decayed linearly.
        val_every, patience, val_steps: validation (see module doc).
        save_every: iterations between resumable snapshots.
        seed: task sampling, mini-batches and noise (one ``torch.Generator``).
        model: ``BayesConfig`` fields (``in_channels`` / ``num_classes`` are set from the
            tasks). elbo: ``ELBOConfig`` fields.
    """

    space: str = "nb201"
    source: str = "digits"
    ways: int = 5
    task_seed: int = 0
    n_heldout: int = 5
    n_val: int = 3
    n_tasks: int = 40
    tasks: list[str] | None = None
    iters: int = 200
    tasks_per_iter: int = 2
    inner_steps: int = 20
    inner_lr: float = 1e-3
    outer_lr: float = 0.5
    outer_lr_final: float = 0.1
    val_every: int = 25
    patience: int = 4
    val_steps: int = 20
    save_every: int = 10
    seed: int = 0
    model: dict = field(default_factory=dict)
    elbo: dict = field(default_factory=dict)

    def check(self) -> None:
        """A one-line ``UserInputError`` for a setting out of range."""
        check_ranges(self, at_least_1=("ways", "n_tasks", "iters", "tasks_per_iter",
                                       "inner_steps", "val_every", "save_every"),
                     at_least_0=("n_heldout", "n_val", "patience", "val_steps"),
                     positive=("inner_lr", "outer_lr", "outer_lr_final"))


def draw_tasks(cfg: BaseMetaConfig) -> tuple[list[str], list[str], list[str]]:
    """``(heldout, val, train)`` task ids (module doc)."""
    from ..train import TaskSpec
    from ..train.build import draw_class_subsets
    from ..train.data import load_source

    src = load_source(cfg.source) if cfg.source != "digits" else None
    classes = tuple(str(i) for i in range(10)) if src is None else src.classes
    n = cfg.n_heldout + cfg.n_val + (0 if cfg.tasks else cfg.n_tasks)
    if 2 <= cfg.ways <= len(classes) and n > comb(len(classes), cfg.ways):
        parts = ([] if cfg.tasks else [f"--n-tasks {cfg.n_tasks}"]) + \
            [f"--n-heldout {cfg.n_heldout}", f"--n-val {cfg.n_val}"]
        raise UserInputError(f"{' + '.join(parts)} = {n} > {comb(len(classes), cfg.ways)} "
                             f"distinct {cfg.ways}-class subsets of {len(classes)} classes; "
                             "lower one of them")
    subsets = draw_class_subsets(classes, n, cfg.ways, seed=cfg.task_seed)
    ids = [TaskSpec(source=cfg.source, classes=tuple(s)).id for s in subsets]
    held, val = ids[:cfg.n_heldout], ids[cfg.n_heldout:cfg.n_heldout + cfg.n_val]
    train = list(cfg.tasks) if cfg.tasks else ids[cfg.n_heldout + cfg.n_val:]
    clash = sorted(set(train) & (set(held) | set(val)))
    if clash:
        raise UserInputError(f"training task {clash[0]} is a held-out / validation task; "
                             "choose other --tasks or another task seed")
    return held, val, train


# ---------------------------------------------------------------------- checkpoint
def save_base(model: BayesSuperNet, ckpt: BaseCheckpoint, directory: str | Path) -> Path:
    """``model.safetensors`` + ``config.json`` of a prior (``metanas.meta.checkpoint``)."""
    from ..meta.checkpoint import save_checkpoint

    return save_checkpoint(model, ckpt, directory, kind=KIND)


def load_base(directory: str | Path, space: str | None = None
              ) -> tuple[BayesSuperNet, BaseCheckpoint]:
    """Validate and load a prior (no unpickling; strict shapes); the prior buffers are
    synced to the loaded ``W``."""
    from ..meta.checkpoint import load_checkpoint

    model, ckpt = load_checkpoint(directory, BaseCheckpoint, lambda c: BayesSuperNet(c.net),
                                  kind=KIND, expect=None if space is None else {"space": space})
    model.sync_prior()
    model.eval()
    return model, ckpt



# ---------------------------------------------------------------------- training
def _loss_fn(elbo: ELBOConfig):
    def loss(model: BayesSuperNet, task: TaskBatches, gen: torch.Generator | None):
        xb, yb = sample_batch(task.x, task.y, elbo.batch_size, gen)
        return elbo_loss(model, xb, yb, task.n, elbo, gen).loss
    return loss


def validate(model: BayesSuperNet, val_data: list, ckpt: BaseCheckpoint, steps: int,
             seed: int) -> float:
    """Mean validation-split cross-entropy after ``steps`` adaptation steps (module doc)."""
    vals = []
    for i, d in enumerate(val_data):
        res = adapt(model, d, ckpt.adapt_config(steps=steps),
                    torch.Generator().manual_seed(seed + i))
        m = res.model
        with torch.no_grad():
            logits = m(d.x_valid, F.softmax(m.logits, dim=-1))
            vals.append(float(F.cross_entropy(logits, d.y_valid)))
    return sum(vals) / len(vals)


def meta_train_base(cfg: BaseMetaConfig, out: str | Path, *, resume: bool | str = "auto",
                    progress: bool = True, command: str | None = None) -> dict:
    """Meta-train (or resume) a BASE prior into ``out``; returns the training state plus
    ``outcome`` (not saved; as ``metanas.meta.tnas_train.train``)."""
    from .. import spaces
    from ..meta.reptile import new_loop_state, reptile_step, run_meta_loop
    from ..train import build_task
    from .supernet import supported_space

    cfg.check()
    try:
        space = supported_space(spaces.get(cfg.space))
    except ValueError as exc:
        raise UserInputError(str(exc)) from None
    cfg.space = space.name
    held, val, train_ids = draw_tasks(cfg)
    if cfg.tasks_per_iter > len(train_ids):
        n = len(train_ids)
        raise UserInputError(f"--tasks-per-iter {cfg.tasks_per_iter} exceeds the {n} training "
                             f"task{'s' if n != 1 else ''}; lower it or add tasks")
    train_data = [build_task(t) for t in train_ids]
    val_data = [build_task(t) for t in val]
    shapes = {(d.in_channels, d.n_classes) for d in train_data + val_data}
    if len(shapes) != 1:
        raise UserInputError(f"meta-training tasks differ in channels / classes {sorted(shapes)}; "
                             "use tasks with one image format and class count")
    in_ch, n_cls = shapes.pop()
    model_cfg = BayesConfig(**{**cfg.model, "space": space.name, "in_channels": in_ch,
                               "num_classes": n_cls})
    elbo = ELBOConfig(**cfg.elbo)
    ckpt = BaseCheckpoint(space=space.name, net=model_cfg, elbo=elbo,
                          inner_steps=cfg.inner_steps, inner_lr=cfg.inner_lr,
                          training_tasks=train_ids, val_tasks=val, heldout_tasks=held)
    model = BayesSuperNet(model_cfg)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    batches = [TaskBatches(d.x_train, d.y_train, t) for d, t in zip(train_data, train_ids)]
    state: dict[str, Any] = {**new_loop_state(), "done": False}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_NAME
    outcome: dict = {"outcome": "trained"}  # returned, never saved
    if open_training_run(out, STATE_NAME, resume=resume, config=asdict(cfg),
                         defaults=asdict(BaseMetaConfig()), training_tasks=train_ids):
        resume_training_state(out, STATE_NAME, state, model, gen, iters=cfg.iters)
        if finished_run(out, STATE_NAME, state, cfg.iters):  # nothing to add: leave it as it is
            return {**read_json(state_path), "outcome": "complete"}
        outcome = resumed_outcome(out, state, cfg.iters)

    def save_state(done: bool = False) -> None:
        state.update(generator=generator_state(gen), config=asdict(cfg), training_tasks=train_ids,
                     val_tasks=val, heldout_tasks=held, done=done)
        save_training_state(out, STATE_NAME, model, state)

    loss_fn = _loss_fn(elbo)
    best_path = out / BEST_WEIGHTS
    restore_best_weights(out, state, lambda: BayesSuperNet(model_cfg))  # an extended run

    def step(it: int, lam: float):
        idx = torch.randperm(len(batches), generator=gen)[:cfg.tasks_per_iter].tolist()
        model.sync_prior()  # the KL's prior is W during every inner loop
        st = reptile_step(model, loss_fn, [batches[i] for i in idx],
                          inner_steps=cfg.inner_steps, inner_lr=cfg.inner_lr, outer_lr=lam,
                          inner_optimizer="adam", generator=gen, buffers="keep")
        model.sync_prior()
        return st

    def postfix(st, state: dict) -> dict:
        post = {"loss": f"{st.loss_last:.3f}"}
        if state["best_val"] is not None:
            post["best_val_ce"] = f"{state['best_val']:.3f}"
        return post

    run_meta_loop(state, step, iters=cfg.iters, outer_lr=cfg.outer_lr,
                  outer_lr_final=cfg.outer_lr_final,
                  validate=(lambda: validate(model, val_data, ckpt, cfg.val_steps,
                                             cfg.seed + 10_000)) if val_data else None,
                  val_every=cfg.val_every, patience=cfg.patience or None,
                  on_best=lambda it, v: save_weights(model, best_path, it),
                  save_every=cfg.save_every, save_state=save_state,
                  progress_desc=f"meta-train base/{space.name}" if progress else None,
                  postfix=postfix)
    save_state()  # the resume point of the finished loop (weights and state together)
    if best_path.exists():
        load_weights(model, best_path)
    elif state["best_iter"] is None:
        state["best_iter"] = state["iter"]
    save_base(model, ckpt, out)
    best_path.unlink(missing_ok=True)
    state.update(generator=generator_state(gen), config=asdict(cfg), training_tasks=train_ids,
                 val_tasks=val, heldout_tasks=held, done=True, platform=platform_info())
    atomic_write_json(state_path, state, indent=1)
    write_card(out, state, ckpt, command)
    return {**state, **outcome}


def _machine(plat: dict) -> str:
    """``"on <cpu> (<isa>), <n> torch thread(s)"`` from ``platform_info()`` (``""`` without)."""
    if not plat:
        return ""
    return (f"on {plat.get('cpu', 'n/a')} ({plat.get('isa', 'n/a')}), "
            f"{plat.get('threads', 'n/a')} torch thread(s)")


def write_card(out: Path, state: dict, ckpt: BaseCheckpoint, command: str | None) -> None:
    """``README.md`` (Hub metadata via ``metanas.hub.model_card``)."""
    from ..hub import model_card

    model = BayesSuperNet(ckpt.net)
    probs = model_probs = None
    try:
        m, _ = load_base(out)
        probs = m.arch_probs()
        model_probs = m
    except Exception:  # card generation never fails the training
        pass
    lines = ["BASE prior (Bayesian meta-Architecture SEarch, Shaw et al. 2019): a supernet over "
             f"the `{ckpt.space}` cell with a categorical architecture distribution per edge "
             "(Gumbel-softmax relaxation) and mean-field Gaussian weights, meta-trained with "
             "Reptile on the ELBO.", "",
             f"- supernet: C={ckpt.net.C}, N={ckpt.net.N}, {ckpt.net.in_channels} input "
             f"channel(s), {ckpt.net.num_classes} classes, {model.n_weights()} weights "
             f"(mean + log-sigma each)",
             f"- objective: tau={ckpt.elbo.tau}, beta_weights={ckpt.elbo.beta_weights}, "
             f"beta_arch={ckpt.elbo.beta_arch}; inner loop T={ckpt.inner_steps} Adam steps at "
             f"{ckpt.inner_lr}",
             f"- {state['iter']} outer iterations, best validation iteration {state['best_iter']} "
             f"(validation CE after adaptation {state['best_val']}), wall {state['wall_s']:.0f} s "
             + _machine(state.get("platform") or {}),
             "- held-out evaluation tasks (never meta-trained on): "
             + ", ".join(f"`{t}`" for t in ckpt.heldout_tasks),
             "- validation tasks: " + ", ".join(f"`{t}`" for t in ckpt.val_tasks)]
    if probs is not None and model_probs is not None:
        sp = model_probs.space
        lines += ["", "Prior most probable cell: `" + sp.to_str(
            tuple(int(i) for i in probs.argmax(1))) + "`"]
    lines += ["", "Adapt to a new task: `python adapt.py --method base,base-prior,darts,snas,rs "
              "--dataset \"digits:classes=0,1,2,3,4\" --budget 1`"]
    text = model_card(kind="base", space=ckpt.space, training_tasks=ckpt.training_tasks,
                      validation={"best_iter": state["best_iter"],
                                  "val_ce": state["best_val"]},
                      command=command, description="\n".join(lines),
                      title=f"BASE prior for `{ckpt.space}` (metanas)")
    atomic_write_bytes(out / "README.md", text.encode())
