"""Meta-training of the TNAS deep-kernel GP (Shala et al., ICLR 2023, Algorithm 1) with Reptile.

    while not converged:
        sample a task and a mini-batch (x, y, D) of its (arch, value) pairs
        w' <- w;  v times: w' <- w' - eta_SGD grad L(w'),  L = GP negative log marginal likelihood
        w  <- w - eta_REP (w - w')

The inner loop here is **Adam by default** (``inner_optimizer="adam"``: ``v`` Adam steps at
``inner_lr`` with a fresh optimiser state per task, as in Nichol et al.'s Reptile experiments,
which used Adam in the inner loop), whereas Algorithm 1 writes plain SGD:
``inner_optimizer="sgd"`` is that. The shipped checkpoints were meta-trained with Adam; a run
or checkpoint saved before the setting existed counts as ``"adam"``.

Training tasks: every meta-dataset task of the space (``--tasks`` restricts, ``--exclude-task``
removes tasks, ``--exclude-source`` whole collections: the shipped NB201 checkpoint is
meta-trained with ``exclude_sources=["digits_live"]``, see below). Values: the task's search
metric (``default_metric``, split ``valid``, highest fidelity), **standardised per task**.

*Large* tasks (>= ``min_large`` archs: NB201's three datasets, TransNAS micro's seven tasks,
the 150-cell tasks of a built collection such as ``digits_live``) give one mini-batch of
``batch_size`` archs per iteration, drawn uniformly. With ``balance_sources`` (off by
default) the task is drawn by source first (``source_of``: the id's collection prefix), then
uniformly within it, and the prior context averages per source. Why it exists: NB201's
meta-training draws 20 noisy digits tasks for every 2 NB201 tables, and its prediction of a
held-out NB201 dataset (CIFAR-10) has Spearman 0.37-0.52 with the truth, 0.96 without the digits
tasks. Balancing raised it to 0.73 but the predicted top cells got no better (top-5 in the
top 4-27%), so it is not the default; with one source it changes nothing, bit for bit.
The shipped NB201 recipe leaves the collection out instead (``exclude_sources``: NB201 +
MetaD2A only); a prior for digits-like tasks is opt-in (keep the collection).

Two opt-in changes to what a large task's loss sees (both off by default):
``target_transform="copula"`` replaces its values by their normal scores before standardising
(rank-based: a long tail of poor archs no longer dominates the variance), and ``top_share``
draws that share of each mini-batch from the task's top ``top_quantile`` of training archs
(the rest uniformly from the others), so the kernel is fitted more on the region BO searches.

*Small* tasks (MetaD2A's NB201 tasks: 1-6 archs each) are grouped: with probability
``small_prob`` an iteration draws ``small_group`` of them (each with >= 2 archs) and the loss
is the exact marginal likelihood of independent GPs, one per task (a block-diagonal
covariance, each block with its own task's dataset embedding); tasks with one arch carry no
within-task information and are dropped.
Small tasks are centred per task and scaled by the median standard deviation of the small
tasks with >= 3 archs (a per-task standard deviation from 2-5 points is mostly noise).

Validation (lower is better: ``val = -Spearman``): the model conditioned (no adaptation) on
``val_k`` archs of a validation task predicts ``val_m`` other archs; the Spearman rank
correlation of the posterior mean with the truth, averaged over ``val_draws`` fixed draws and
over the validation tasks. Validation tasks are ``val_tasks`` (whole tasks never trained on)
when given (any task of the space, also one outside ``tasks``; not an excluded one); otherwise
a held-out ``val_frac`` of the archs of every large training task (never in a training
mini-batch) - with 2-7 large tasks per space, holding a whole one out costs too much training
signal. A task holds out at least ``val_k + VAL_MIN_TARGETS`` archs, and one with fewer than
twice that many archs none (it is too small to validate on). The held-out mean log predictive
density is recorded too. Without any validation set the run trains all ``iters`` iterations
and keeps the last weights (a warning says so).

Early stopping after ``patience`` validations without improvement; the best validated weights
are written as the checkpoint. Resumable: every ``save_every`` iterations (and at the end) the
last weights, the best weights, the sampler's ``torch.Generator`` state and the history are
written atomically (``last.safetensors`` carries the state it belongs to, ``best.safetensors``,
``training_state.json``). ``resume="auto"`` (default) continues the run saved in ``out`` when
its settings are the same (only ``iters`` may grow) and refuses one with other settings in one
line; ``True`` insists on a saved run, ``False`` starts over. A resumed run continues
bit-identically (same thread count).

Outputs in ``out``: ``model.safetensors`` + ``config.json`` (``DeepKernelGP.save_pretrained``,
best weights), ``prior_context.safetensors`` (a small set of archs with their mean
standardised value over the training tasks: the strategy conditions the meta-trained GP on it
to rank architectures before any target observation, the "top-k" initial design),
``README.md`` (model card), ``training_state.json``.
"""

from __future__ import annotations

import logging
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ..io import atomic_write_bytes, atomic_write_json, read_json
from .checkpoint import command_line as _command_line
from .checkpoint import (BEST_WEIGHTS, check_ranges, finished_run, generator_state, load_weights,
                         open_training_run, platform_info, restore_best_weights,
                         resume_training_state, resumed_outcome, save_training_state,
                         save_weights)

__all__ = ["TrainConfig", "TaskData", "load_tasks", "train", "batch_nll", "MethodNotAvailable",
           "PRIOR_CONTEXT", "STATE_NAME"]

logger = logging.getLogger(__name__)

STATE_NAME = "training_state.json"
#: a validation draw predicts at least this many held-out archs (besides its ``val_k`` context)
VAL_MIN_TARGETS = 10
PRIOR_CONTEXT = "prior_context.safetensors"
METHODS = ("tnas", "base")


class MethodNotAvailable(RuntimeError):
    """A ``--method`` that is not implemented yet."""


#: Reptile inner-loop optimisers (``TrainConfig.inner_optimizer``; ``reptile_step``)
INNER_OPTIMIZERS = ("adam", "sgd")
#: how the model card names each inner loop
_INNER_TEXT = {
    "adam": "Adam in the inner loop (a fresh optimiser state per task, as in Nichol et al.'s "
            "Reptile experiments) where Algorithm 1 writes SGD (`inner_optimizer=\"sgd\"`)",
    "sgd": "plain SGD in the inner loop, as Algorithm 1 writes (`inner_optimizer=\"sgd\"`; "
           "the default is Adam)",
}


@dataclass
class TrainConfig:
    """Meta-training settings (all recorded in ``training_state.json`` and the model card)."""

    space: str = "nb201"
    tasks: list[str] | None = None
    exclude: list[str] = field(default_factory=list)
    exclude_sources: list[str] = field(default_factory=list)
    val_tasks: list[str] = field(default_factory=list)
    method: str = "tnas"
    iters: int = 600
    inner_steps: int = 5
    inner_lr: float = 1e-2
    inner_optimizer: str = "adam"  # "sgd": Algorithm 1's plain SGD steps (module docstring)
    outer_lr: float = 0.5
    outer_lr_final: float = 0.1
    batch_size: int = 100
    min_large: int = 50
    small_group: int = 16
    small_prob: float = 0.25
    val_every: int = 50
    patience: int = 5
    val_frac: float = 0.1
    val_max: int = 1000
    val_k: int = 20
    val_m: int = 200
    val_draws: int = 3
    save_every: int = 25
    seed: int = 0
    context_top: int = 32
    context_random: int = 200
    balance_sources: bool = False
    target_transform: str = "standardise"
    top_share: float = 0.0
    top_quantile: float = 0.05
    meta_dataset: str | None = None
    model: dict = field(default_factory=dict)

    def check(self) -> None:
        """A one-line ``UserInputError`` for a setting out of range."""
        from ..errors import UserInputError

        check_ranges(self, at_least_1=("iters", "inner_steps", "batch_size", "val_every",
                                       "val_k", "val_m", "val_draws", "save_every", "min_large",
                                       "small_group"),
                     at_least_0=("patience",),  # 0: no early stopping
                     positive=("inner_lr", "outer_lr", "outer_lr_final"))
        if not 0.0 <= self.small_prob <= 1.0 or not 0.0 < self.val_frac < 1.0:
            raise UserInputError(f"small_prob must be in [0, 1] and val_frac in (0, 1), got "
                                 f"{self.small_prob} and {self.val_frac}")
        if not 0.0 <= self.top_share <= 1.0 or not 0.0 < self.top_quantile <= 1.0:
            raise UserInputError(f"top_share must be in [0, 1] and top_quantile in (0, 1], got "
                                 f"{self.top_share} and {self.top_quantile}")
        if self.inner_optimizer not in INNER_OPTIMIZERS:
            raise UserInputError(f"inner_optimizer must be one of "
                                 f"{', '.join(INNER_OPTIMIZERS)}, got {self.inner_optimizer!r}")
        if self.target_transform not in TARGET_TRANSFORMS:
            raise UserInputError(f"target_transform must be one of "
                                 f"{', '.join(TARGET_TRANSFORMS)}, got {self.target_transform!r}")


@dataclass
class TaskData:
    """One task: ``X [n, n_edges]`` int archs, ``y [n]`` standardised values, dataset
    ``samples [C, S, F]`` or ``None``; ``val`` the held-out rows (indices into X) or None."""

    name: str
    X: np.ndarray
    y: np.ndarray
    samples: Tensor | None = None
    train_rows: np.ndarray | None = None
    val_rows: np.ndarray | None = None


# ---------------------------------------------------------------------- data
def _samples_tensor(sf) -> Tensor | None:
    if sf is None or (isinstance(sf, float) and math.isnan(sf)):
        return None
    try:
        arr = np.stack([np.stack([np.asarray(s, dtype=np.float32) for s in c]) for c in sf])
    except (ValueError, TypeError):
        return None
    if arr.ndim != 3 or arr.size == 0:
        return None
    return torch.as_tensor(arr)


def load_tasks(md, space, tasks: Sequence[str] | None = None,
               exclude: Sequence[str] = (), exclude_sources: Sequence[str] = ()
               ) -> list[TaskData]:
    """Every task of ``space`` in ``md`` (restricted to ``tasks``, minus ``exclude`` and minus
    every task of the collections ``exclude_sources``) with its search metric per arch (valid
    split, highest fidelity); values raw (not standardised)."""
    import pandas as pd

    t = md.tasks[md.tasks["space"] == space.name]
    if exclude_sources:
        t = t[~t["task"].map(source_of).isin(set(exclude_sources))]
    if tasks is not None:
        keep = {md.resolve_task(x) for x in tasks}
        t = t[t["task"].isin(keep)]
    if exclude:
        drop = {md.resolve_task(x) for x in exclude}
        t = t[~t["task"].isin(drop)]
    metric = dict(zip(t["task"], t["default_metric"]))
    tr = md.triples
    tr = tr[(tr["space"] == space.name) & (tr["split"] == "valid") & tr["task"].isin(metric.keys())]
    tr = tr[tr["metric"].to_numpy() == tr["task"].map(metric).to_numpy()]
    if len(tr):
        tr = tr[tr["fidelity"] == tr.groupby("task")["fidelity"].transform("max")]
    tr = tr[np.isfinite(tr["value"].to_numpy(dtype=np.float64))]
    uniq = pd.unique(tr["arch"])
    parsed = {a: space.from_str(a) for a in uniq}
    feats = dict(zip(t["task"], t["sample_features"]))
    out = []
    for tid, g in tr.groupby("task", sort=False):
        X = np.asarray([parsed[a] for a in g["arch"]], dtype=np.int64).reshape(-1, space.n_edges)
        out.append(TaskData(str(tid), X, g["value"].to_numpy(dtype=np.float64),
                            _samples_tensor(feats.get(tid))))
    order = {tid: i for i, tid in enumerate(t["task"])}
    out.sort(key=lambda d: order.get(d.name, 0))
    empty = sorted(set(t["task"]) - {d.name for d in out})
    if empty:
        from ..errors import UserInputError

        raise UserInputError(
            f"task {empty[0]!r} has no finite value of its default metric "
            f"{metric[empty[0]]!r} (split 'valid'); fix the meta-dataset or leave the task out "
            f"with --exclude-task")
    return out


def resolve_in_space(md, space, tasks: Sequence[str], option: str) -> list[str]:
    """``tasks`` as task ids of ``md`` (``MetaDataset.resolve_task``), each checked to be a task
    of ``space``: a one-line ``UserInputError`` naming ``option`` otherwise."""
    from ..errors import UserInputError

    out = []
    for name in tasks:
        tid = md.resolve_task(name)
        where = str(md.task(tid)["space"])
        if where != space.name:
            raise UserInputError(f"{option} {name!r} is a task of space {where}, not "
                                 f"{space.name}; drop it or use --space {where}")
        out.append(tid)
    return out


TARGET_TRANSFORMS = ("standardise", "copula")


def _normal_scores(y: np.ndarray) -> np.ndarray:
    """``y [n]`` -> its normal scores ``Phi^-1((rank - 1/2) / n)`` (ties: average rank)."""
    from scipy.stats import norm, rankdata

    return norm.ppf((rankdata(y) - 0.5) / len(y))


def _standardise(tasks: list[TaskData], min_large: int, transform: str = "standardise") -> None:
    """Per-task targets in place: large tasks standardised (``"copula"``: replaced by their
    normal scores first), small ones centred and scaled by the median small-task sd."""
    if transform not in TARGET_TRANSFORMS:
        raise ValueError(f"target_transform must be one of {', '.join(TARGET_TRANSFORMS)}, "
                         f"got {transform!r}")
    if transform == "copula":
        for d in tasks:
            if len(d.y) >= min_large:
                d.y = _normal_scores(d.y)
    small_std = [float(np.std(d.y, ddof=1)) for d in tasks if 3 <= len(d.y) < min_large]
    s_small = float(np.median(small_std)) if small_std else 1.0
    if not np.isfinite(s_small) or s_small <= 1e-12:
        s_small = 1.0
    for d in tasks:
        m = float(d.y.mean())
        s = float(d.y.std(ddof=1)) if len(d.y) >= min_large else s_small
        d.y = (d.y - m) / (s if s > 1e-12 else 1.0)


# ---------------------------------------------------------------------- loss
@dataclass
class Batch:
    """A meta-training mini-batch: groups of (X [n, E] float64, y [n], samples)."""

    groups: list[tuple[Tensor, Tensor, Tensor | None]]


def batch_nll(model, batch: Batch, generator: torch.Generator | None = None) -> Tensor:
    """Negative exact log marginal likelihood per point of a block-diagonal GP (one block per
    group, each with its own dataset embedding), hyper-parameter log priors included (as
    GPyTorch's ``ExactMarginalLogLikelihood``)."""
    from gpytorch.distributions import MultivariateNormal

    model.train()
    zs, ys, gid = [], [], []
    for i, (X, y, samples) in enumerate(batch.groups):
        model.set_dataset(samples)
        zs.append(model.features(X))
        ys.append(y)
        gid.append(torch.full((X.size(0),), i, dtype=torch.long, device=X.device))
    z = torch.cat(zs)
    y = torch.cat(ys).to(z.dtype)
    g = torch.cat(gid)
    n = z.size(0)
    K = model.covar_module(z).to_dense()
    if len(batch.groups) > 1:
        K = K * (g[:, None] == g[None, :]).to(K.dtype)
    K = K + model.likelihood.noise.reshape(-1)[0] * torch.eye(n, dtype=K.dtype,
                                                              device=K.device)
    lp = MultivariateNormal(model.mean_module(z), K).log_prob(y)
    for _, module, prior, closure, _ in model.named_priors():
        lp = lp + prior.log_prob(closure(module)).sum()
    return -lp / n


# ---------------------------------------------------------------------- validation
def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


@torch.no_grad()
def validate(model, val_sets: list[tuple[TaskData, np.ndarray]], cfg: TrainConfig) -> dict:
    """``{"val": -mean Spearman, "spearman", "lpd"}`` (see module docstring)."""
    rhos, lpds = [], []
    for d, rows in val_sets:
        gen = np.random.default_rng(cfg.seed + 7919)
        for _ in range(cfg.val_draws):
            if len(rows) < cfg.val_k + 5:
                continue
            perm = gen.permutation(rows)
            ctx, tgt = perm[:cfg.val_k], perm[cfg.val_k:cfg.val_k + cfg.val_m]
            X = torch.as_tensor(d.X, dtype=torch.float64)
            y = torch.as_tensor(d.y, dtype=torch.float64)
            model.set_task(X[ctx], y[ctx], d.samples)
            model.eval()
            mean, var = model._marginals(X[tgt])
            zt = (y[tgt] - model.y_mean) / model.y_std
            v = var + model.likelihood.noise.reshape(-1)[0]
            lpds.append(float((-0.5 * torch.log(2 * math.pi * v)
                               - 0.5 * (zt - mean).pow(2) / v).mean()))
            rhos.append(_spearman(mean.numpy(), zt.numpy()))
    model.train()
    rho = float(np.mean(rhos)) if rhos else 0.0
    return {"val": -rho, "spearman": rho, "lpd": float(np.mean(lpds)) if lpds else float("nan")}


# ---------------------------------------------------------------------- training
def _build_model(cfg: TrainConfig, feat_dim: int | None):
    from ..encoders import DatasetEncoderConfig
    from ..surrogates.deep_kernel import DeepKernelConfig, DeepKernelGP

    kw = dict(cfg.model)
    if feat_dim is not None:
        de = dict(kw.pop("dataset_encoder", {}) or {})
        de["feat_dim"] = int(feat_dim)
        kw["dataset_encoder"] = DatasetEncoderConfig(**de)
    elif "dataset_encoder" in kw and isinstance(kw["dataset_encoder"], dict):
        kw["dataset_encoder"] = DatasetEncoderConfig(**kw["dataset_encoder"])
    return DeepKernelGP(DeepKernelConfig.for_space(cfg.space, **kw))


def source_of(task: str) -> str:
    """A task's source collection: its id's first path component (``nb201/cifar10`` ->
    ``nb201``, ``digits_live/digits-0-1-2-3-4`` -> ``digits_live``)."""
    return task.split("/", 1)[0]


def _group_by_source(tasks: list[TaskData]) -> list[list[TaskData]]:
    """``tasks`` grouped by ``source_of`` (in first-seen order)."""
    groups: dict[str, list[TaskData]] = {}
    for d in tasks:
        groups.setdefault(source_of(d.name), []).append(d)
    return list(groups.values())


def _top_weighted_rows(d: TaskData, cfg: TrainConfig, g: torch.Generator) -> np.ndarray:
    """A large task's mini-batch rows (``top_share > 0``): ``round(top_share * batch_size)``
    drawn from the task's top ``top_quantile`` of training rows (by standardised value), the
    rest uniformly from all its other training rows."""
    rows = d.train_rows
    n = min(cfg.batch_size, len(rows))
    order = rows[np.argsort(-d.y[rows], kind="stable")]
    n_top_pool = max(1, int(math.ceil(cfg.top_quantile * len(rows))))
    top, rest = order[:n_top_pool], order[n_top_pool:]
    k = min(len(top), int(round(cfg.top_share * n)))
    a = top[torch.randperm(len(top), generator=g)[:k].numpy()]
    b = rest[torch.randperm(len(rest), generator=g)[:n - k].numpy()]
    return np.concatenate([a, b])


def _prior_context(tasks: list[TaskData], cfg: TrainConfig, space, rng: np.random.Generator
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Archs (top ``context_top`` of every large training task + ``context_random`` uniform
    ones) with their mean standardised value over the training tasks that measured them
    (``balance_sources``: the mean over sources of the per-source means, so that a collection
    of many similar tasks does not outvote one of few)."""
    large = [d for d in tasks if len(d.y) >= cfg.min_large]
    if not large:
        return np.zeros((0, space.n_edges), np.int64), np.zeros(0)
    radix = space.n_ops ** np.arange(space.n_edges - 1, -1, -1)
    pick: set[int] = set()
    for d in large:
        rows = d.train_rows if d.train_rows is not None else np.arange(len(d.y))
        top = rows[np.argsort(-d.y[rows])[:cfg.context_top]]
        pick.update(int(k) for k in d.X[top] @ radix)
        r = rng.choice(rows, size=min(len(rows), cfg.context_random // len(large)), replace=False)
        pick.update(int(k) for k in d.X[r] @ radix)
    keys = np.array(sorted(pick), dtype=np.int64)
    pos = {int(k): i for i, k in enumerate(keys)}
    groups = _group_by_source(large) if cfg.balance_sources else [large]
    means, present = np.zeros((len(groups), len(keys))), np.zeros((len(groups), len(keys)))
    for j, group in enumerate(groups):
        sums, cnt = np.zeros(len(keys)), np.zeros(len(keys))
        for d in group:
            rows = d.train_rows if d.train_rows is not None else np.arange(len(d.y))
            for k, v in zip(d.X[rows] @ radix, d.y[rows]):
                i = pos.get(int(k))
                if i is not None:
                    sums[i] += v
                    cnt[i] += 1
        means[j] = np.where(cnt > 0, sums / np.maximum(cnt, 1), 0.0)
        present[j] = cnt > 0
    n_src = present.sum(0)
    ok = n_src > 0
    keys, vals = keys[ok], means.sum(0)[ok] / n_src[ok]
    X = (keys[:, None] // radix) % space.n_ops
    return X.astype(np.int64), vals


def train(cfg: TrainConfig, out: str | Path, *, resume: bool | str = "auto",
          progress: bool = True,
          command: str | None = None, md=None) -> dict:
    """Meta-train (or resume) and write the checkpoint folder ``out``; returns the final
    training state (``best_iter``, ``best_val``, history, wall time...) plus what happened
    (not saved): ``outcome`` ``"trained"`` (a new run), ``"continued"`` (a saved run, from
    iteration ``resumed_from``) or ``"complete"`` (a finished run, left as it was)."""
    from .. import spaces
    from ..meta.reptile import new_loop_state, reptile_step, run_meta_loop
    from ..meta_dataset import MetaDataset

    if cfg.method not in METHODS:
        raise ValueError(f"unknown method {cfg.method!r}; choose one of {', '.join(METHODS)}")
    if cfg.method == "base":
        raise MethodNotAvailable("method 'base' is meta-trained by "
                                 "metanas.base.meta.meta_train_base "
                                 "(train_meta.py --method base), not by tnas_train")
    from ..errors import UserInputError

    out = Path(out)
    cfg.check()
    space = spaces.get(cfg.space)
    cfg.space = space.name
    if md is None:
        if cfg.meta_dataset:  # a collection name, a folder or a Hub dataset id org/name
            from ..hub import load_meta_dataset

            md = load_meta_dataset(cfg.meta_dataset)
        else:
            md = MetaDataset.load()
    if cfg.tasks is not None:
        cfg.tasks = resolve_in_space(md, space, cfg.tasks, "--tasks")
    cfg.exclude = resolve_in_space(md, space, cfg.exclude, "--exclude-task")
    cfg.val_tasks = resolve_in_space(md, space, cfg.val_tasks, "--val-tasks")
    collections = {source_of(t) for t in md.task_ids()}
    unknown = sorted(set(cfg.exclude_sources) - collections)
    if unknown:
        raise ValueError(f"--exclude-source {unknown[0]!r} is no collection of the meta-dataset; "
                         f"choose from {', '.join(sorted(collections))}")
    both = [t for t in cfg.val_tasks if t in cfg.exclude or source_of(t) in cfg.exclude_sources]
    if both:
        raise UserInputError(f"{both[0]!r} is both a validation task (--val-tasks) and left out "
                             f"(--exclude-task / --exclude-source); choose one")
    all_tasks = load_tasks(md, space, cfg.tasks, list(cfg.exclude), list(cfg.exclude_sources))
    train_tasks = [d for d in all_tasks if d.name not in set(cfg.val_tasks)]
    val_only = [d for d in all_tasks if d.name in set(cfg.val_tasks)]
    # validation tasks outside --tasks are loaded (and standardised) on their own
    outside = [t for t in cfg.val_tasks if t not in {d.name for d in val_only}]
    extra = load_tasks(md, space, outside) if outside else []
    if not train_tasks:
        raise UserInputError(f"no meta-training task left in space {space.name!r} (every "
                             f"selected task is a validation task or left out); select more "
                             f"with --tasks or fewer with --val-tasks / --exclude-task")
    _standardise(all_tasks, cfg.min_large, cfg.target_transform)
    _standardise(extra, cfg.min_large, cfg.target_transform)
    val_only += extra
    n_min = cfg.val_k + VAL_MIN_TARGETS
    small_val = [d.name for d in val_only if len(d.y) < n_min]
    if small_val:
        raise UserInputError(f"validation task {small_val[0]!r} has fewer than {n_min} archs "
                             f"(val_k {cfg.val_k} + {VAL_MIN_TARGETS}); choose a larger one")
    rng = np.random.default_rng(cfg.seed)
    large = [d for d in train_tasks if len(d.y) >= cfg.min_large]
    small = [d for d in train_tasks if 2 <= len(d.y) < cfg.min_large]
    if not large and not small:
        raise UserInputError("no training task has >= 2 archs; add archs or tasks")
    val_sets: list[tuple[TaskData, np.ndarray]] = []
    for d in large:
        perm = rng.permutation(len(d.y))
        n_val = 0
        if not cfg.val_tasks and len(d.y) >= 2 * n_min:
            n_val = min(cfg.val_max, max(n_min, int(round(cfg.val_frac * len(d.y)))))
        d.val_rows, d.train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        if n_val:
            val_sets.append((d, d.val_rows))
    for d in val_only:
        val_sets.append((d, np.arange(len(d.y))))
    if not val_sets:
        logger.warning("no validation: no training task has %d archs to hold %d out (and no "
                       "--val-tasks); training all %d iterations, keeping the last weights",
                       2 * n_min, n_min, cfg.iters)
    feat_dims = {int(d.samples.shape[-1]) for d in all_tasks + val_only if d.samples is not None}
    if len(feat_dims) > 1:
        raise ValueError(f"tasks have sample features of different sizes {sorted(feat_dims)}")
    feat_dim = feat_dims.pop() if feat_dims else None

    torch.manual_seed(cfg.seed)
    model = _build_model(cfg, feat_dim)
    gen = torch.Generator().manual_seed(cfg.seed)
    state: dict[str, Any] = {**new_loop_state(), "best_metrics": None, "done": False}
    out.mkdir(parents=True, exist_ok=True)
    state_path = out / STATE_NAME
    outcome: dict = {"outcome": "trained"}  # returned, never saved
    if open_training_run(out, STATE_NAME, resume=resume, config=asdict(cfg),
                         defaults=asdict(TrainConfig()),
                         training_tasks=[d.name for d in train_tasks]):
        resume_training_state(out, STATE_NAME, state, model, gen, iters=cfg.iters)
        if finished_run(out, STATE_NAME, state, cfg.iters):  # nothing to add: leave it as it is
            return {**read_json(state_path), "outcome": "complete"}
        outcome = resumed_outcome(out, state, cfg.iters)
    state["validation"] = (("held-out tasks: " + ", ".join(cfg.val_tasks)) if cfg.val_tasks
                           else f"held-out archs ({cfg.val_frac:.0%}, >= {n_min}, <= "
                                f"{cfg.val_max}) of each large training task"
                           if val_sets else "none (no task large enough)")
    n_small_w = cfg.small_prob if small and large else (1.0 if small else 0.0)
    by_source = _group_by_source(large) if cfg.balance_sources else [large]

    def sample(g: torch.Generator) -> Batch:
        u = float(torch.rand((), generator=g))
        if small and u < n_small_w:
            idx = torch.randperm(len(small), generator=g)[:cfg.small_group].tolist()
            return Batch([(torch.as_tensor(small[i].X, dtype=torch.float64),
                           torch.as_tensor(small[i].y), small[i].samples) for i in idx])
        group = by_source[0] if len(by_source) == 1 else \
            by_source[int(torch.randint(len(by_source), (), generator=g))]
        d = group[int(torch.randint(len(group), (), generator=g))]
        rows = d.train_rows
        if cfg.top_share > 0:
            sel = _top_weighted_rows(d, cfg, g)
        else:
            sel = rows[torch.randperm(len(rows), generator=g)[:cfg.batch_size].numpy()]
        return Batch([(torch.as_tensor(d.X[sel], dtype=torch.float64),
                       torch.as_tensor(d.y[sel]), d.samples)])

    def save_state(done: bool = False) -> None:
        state.update(generator=generator_state(gen), config=asdict(cfg),
                     training_tasks=[d.name for d in train_tasks],
                     val_tasks=list(cfg.val_tasks), done=done)
        save_training_state(out, STATE_NAME, model, state)

    best_path = out / BEST_WEIGHTS
    restore_best_weights(out, state, lambda: _build_model(cfg, feat_dim))  # an extended run

    def step(it: int, eps: float):
        return reptile_step(model, batch_nll, sample(gen), inner_steps=cfg.inner_steps,
                            inner_lr=cfg.inner_lr, inner_optimizer=cfg.inner_optimizer,
                            outer_lr=eps, generator=gen,
                            buffers="keep")  # the only buffers: constant constraint bounds

    def postfix(st, state: dict) -> dict:
        post = {"nll": f"{st.loss_last:.3f}"}
        if state["best_metrics"]:
            post["best_rho"] = f"{state['best_metrics']['spearman']:.3f}"
        return post

    run_meta_loop(state, step, iters=cfg.iters, outer_lr=cfg.outer_lr,
                  outer_lr_final=cfg.outer_lr_final,
                  validate=(lambda: validate(model, val_sets, cfg)) if val_sets else None,
                  val_every=cfg.val_every, patience=cfg.patience or None,
                  on_best=lambda it, v: save_weights(model, best_path, it),
                  save_every=cfg.save_every, save_state=save_state,
                  progress_desc=f"meta-train tnas/{space.name}" if progress else None,
                  postfix=postfix)
    save_state()  # the resume point of the finished loop (weights and state together)
    # final: best validated weights (or the last ones without validation)
    if best_path.exists():
        load_weights(model, best_path)
    else:
        state["best_iter"] = state["iter"]
    model.eval()
    model.save_pretrained(out)
    best_path.unlink(missing_ok=True)  # model.safetensors holds the best weights
    Xc, yc = _prior_context(train_tasks, cfg, space, np.random.default_rng(cfg.seed + 1))
    from safetensors.torch import save

    atomic_write_bytes(out / PRIOR_CONTEXT, save(
        {"X": torch.as_tensor(Xc, dtype=torch.int64).contiguous(),
         "y": torch.as_tensor(yc, dtype=torch.float64).contiguous()}))
    from ..io import weights_fingerprint

    state.update(generator=generator_state(gen), config=asdict(cfg),
                 training_tasks=[d.name for d in train_tasks],
                 val_tasks=list(cfg.val_tasks), done=True,
                 platform=platform_info(), weights_sha1=weights_fingerprint(out))
    atomic_write_json(state_path, state, indent=1)
    write_model_card(out, state, cfg, train_tasks, command=command)
    from ..hub import card_from_folder  # Hub front matter (tags, licence, datasets)

    atomic_write_bytes(out / "README.md", card_from_folder(out).encode())
    return {**state, **outcome}


def _fmt(v: Any, nd: int = 3) -> str:
    return "n/a" if v is None else (f"{v:.{nd}f}" if isinstance(v, float) else str(v))


def write_model_card(out: Path, state: dict, cfg: TrainConfig, train_tasks: list[TaskData],
                     command: str | None = None) -> None:
    names = [d.name for d in train_tasks]
    large = [d.name for d in train_tasks if len(d.y) >= cfg.min_large]
    small = [d for d in train_tasks if 2 <= len(d.y) < cfg.min_large]
    n_small = len(small)
    n_single = len(names) - len(large) - n_small
    sizes = sorted({len(d.y) for d in small}) or [0]
    small_sources = ", ".join(sorted({source_of(d.name) for d in small}))
    bm = state.get("best_metrics") or {}
    plat = state.get("platform") or {}
    cmd = command or "python train_meta.py --space {} --out {}".format(cfg.space, out)
    lines = [
        f"# TNAS deep-kernel GP, meta-trained on `{cfg.space}`",
        "",
        "Deep-kernel GP of TNAS (Shala et al., ICLR 2023) - DAG-GNN architecture encoder, "
        "Set-Transformer dataset encoder, MLP, Matern-5/2 GP - meta-trained with Reptile "
        "(Algorithm 1) on the GP negative log marginal likelihood "
        f"(`metanas.meta.tnas_train`), with {_INNER_TEXT[cfg.inner_optimizer]}. Load with "
        "`DeepKernelGP.from_pretrained(<this folder>)`; used by the `tnas` strategy.",
        "",
        "| | |", "|---|---|",
        f"| space | `{cfg.space}` |",
        f"| method | `{cfg.method}` |",
        f"| training tasks | {len(large) + n_small}: {', '.join(f'`{t}`' for t in large)}"
        + (f" + {n_small} small tasks with {sizes[0]}-{sizes[-1]} archs ({small_sources}; "
           f"{cfg.small_group} per batch, p={cfg.small_prob})" if n_small else "")
        + (f"; {n_single} one-arch tasks unused" if n_single else "") + " |",
        f"| excluded collections | "
        f"{', '.join(f'`{t}`' for t in cfg.exclude_sources) or 'none'} |",
        f"| excluded tasks | {', '.join(f'`{t}`' for t in cfg.exclude) or 'none'} |",
        f"| validation | {state.get('validation', '')} |",
        f"| best validation Spearman (k={cfg.val_k} context archs, no adaptation) | "
        f"{_fmt(bm.get('spearman'))} |",
        f"| best validation log predictive density (per arch, standardised) | "
        f"{_fmt(bm.get('lpd'))} |",
        f"| best iteration / iterations run / max | {state.get('best_iter')} / "
        f"{state.get('iter')} / {cfg.iters}"
        f"{' (early stop)' if state.get('stopped_early') else ''} |",
        f"| inner optimiser, steps v, inner lr, outer lr | {cfg.inner_optimizer}, "
        f"{cfg.inner_steps}, {cfg.inner_lr}, {cfg.outer_lr} -> {cfg.outer_lr_final} |",
        f"| batch size | {cfg.batch_size} |",
        f"| meta-training wall time | {state.get('wall_s', 0.0):.0f} s |",
        f"| machine | {plat.get('cpu', 'n/a')} ({plat.get('machine', '')}, "
        f"{plat.get('isa', 'n/a')}), "
        f"{plat.get('threads', 'n/a')} torch thread(s), torch {plat.get('torch', 'n/a')} |",
        f"| seed | {cfg.seed} |",
        f"| weights SHA-1 (`metanas.io.weights_fingerprint`) | "
        f"`{state.get('weights_sha1', 'n/a')}` |",
        "",
        "Rebuild (exact command):",
        "",
        "```",
        cmd,
        "```",
        "",
        "Files: `model.safetensors` + `config.json` (best validated weights), "
        "`prior_context.safetensors` (archs + mean standardised value over the training "
        "tasks, for the top-k initial design), `training_state.json` (history, resume state), "
        "`last.safetensors` (last weights, for `--resume`).",
        "",
        "The rebuild repeats these weights bit for bit on the same machine; on another CPU "
        "floating-point differences give other weights (another SHA-1), as another seed "
        "would.",
        "",
    ]
    atomic_write_bytes(out / "README.md", "\n".join(lines).encode())


def command_line(argv: Sequence[str] | None = None) -> str:
    return _command_line(list(sys.argv if argv is None else argv))
