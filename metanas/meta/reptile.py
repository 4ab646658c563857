"""Reptile (Nichol, Achiam & Schulman, 2018), loss-agnostic, as in TNAS Algorithm 1.

    w' <- w;  repeat v times: w' <- w' - eta_inner * grad L_task(w')   (SGD or Adam)
    w  <- w + eps * (w' - w)

With a batch of ``k`` tasks (batched Reptile), each task adapts from the same ``w`` and the
outer step uses the mean of the ``k`` differences. The model is adapted in place and reset
from plain tensor copies of its parameters (no ``deepcopy`` of the module, nothing
model-specific), so the same code meta-trains TNAS (GP negative marginal log-likelihood) and
BASE (an ELBO): the loss is a callable ``loss_fn(model, task, generator) -> scalar Tensor``.

Buffers (e.g. BatchNorm statistics): floating-point buffers are interpolated like parameters
(``buffers="interpolate"``), or set to the tasks' mean adapted values (``"adapted"``), or
restored (``"keep"``); integer buffers (counters) take the last adapted value except with
``"keep"``. Non-persistent buffers are task state and are always left as the last task's
inner loop set them.

Randomness only through the ``torch.Generator`` passed in (handed to ``loss_fn``, used by
``meta_train`` to sample tasks).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = ["LossFn", "ReptileStats", "reptile_step", "MetaTrainResult", "meta_train",
           "new_loop_state", "run_meta_loop"]

LossFn = Callable[[nn.Module, Any, "torch.Generator | None"], Tensor]


@dataclass
class ReptileStats:
    """Mean inner loss of the tasks at the first and the last inner step, and the norm of the
    outer update."""

    loss_first: float
    loss_last: float
    update_norm: float


def _persistent_buffers(model: nn.Module) -> list[tuple[str, Tensor]]:
    out = []
    for mod_name, mod in model.named_modules():
        non_persistent = getattr(mod, "_non_persistent_buffers_set", set())
        for b_name, buf in mod.named_buffers(recurse=False):
            if buf is not None and b_name not in non_persistent:
                out.append((f"{mod_name}.{b_name}" if mod_name else b_name, buf))
    return out


def _make_optimizer(name: str, params: list[nn.Parameter], lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"inner_optimizer must be 'adam' or 'sgd', got {name!r}")


def reptile_step(model: nn.Module, loss_fn: LossFn, task_batch: Any | Sequence[Any], *,
                 inner_steps: int = 5, inner_lr: float = 1e-3, outer_lr: float = 0.1,
                 inner_optimizer: str = "adam", generator: torch.Generator | None = None,
                 buffers: str = "interpolate", grad_clip: float | None = None) -> ReptileStats:
    """One Reptile outer step on ``model`` (in place).

    Args:
        loss_fn: ``loss_fn(model, task, generator) -> scalar`` to *minimise* on one task.
        task_batch: a ``list`` of tasks (batched Reptile) or one task (anything else, e.g. a
            ``NamedTuple``; whatever ``loss_fn`` understands).
        inner_steps: ``v`` optimiser steps per task, from the current weights, with a fresh
            optimiser (``"adam"`` or ``"sgd"``, learning rate ``inner_lr``).
        outer_lr: ``eps`` in ``w <- w + eps * (mean_k w'_k - w)``.
        generator: passed to ``loss_fn`` (mini-batches, reparameterisation noise).
        buffers: ``"interpolate"`` | ``"adapted"`` | ``"keep"`` (see module docstring).
        grad_clip: optional max gradient norm in the inner loop.
    """
    if buffers not in ("interpolate", "adapted", "keep"):
        raise ValueError(f"buffers must be 'interpolate', 'adapted' or 'keep', got {buffers!r}")
    if inner_steps < 1:
        raise ValueError(f"inner_steps must be >= 1, got {inner_steps}")
    tasks = list(task_batch) if isinstance(task_batch, list) else [task_batch]
    if not tasks:
        raise ValueError("reptile_step needs at least one task")
    params = [p for p in model.parameters() if p.requires_grad]
    bufs = _persistent_buffers(model)
    w0 = [p.detach().clone() for p in params]
    b0 = [b.detach().clone() for _, b in bufs]
    delta = [torch.zeros_like(p) for p in params]
    b_sum = [torch.zeros_like(b) if b.is_floating_point() else None for _, b in bufs]
    first, last = [], []
    was_training = model.training
    for task in tasks:
        with torch.no_grad():
            for p, w in zip(params, w0):
                p.copy_(w)
            for (_, b), v in zip(bufs, b0):
                b.copy_(v)
        opt = _make_optimizer(inner_optimizer, params, inner_lr)
        for j in range(inner_steps):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model, task, generator)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"non-finite inner loss {float(loss)} at inner step {j}")
            loss.backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(params, grad_clip)
            opt.step()
            if j == 0:
                first.append(float(loss.detach()))
            if j == inner_steps - 1:
                last.append(float(loss.detach()))
        with torch.no_grad():
            for d, p, w in zip(delta, params, w0):
                d.add_(p - w, alpha=1.0 / len(tasks))
            for s, (_, b) in zip(b_sum, bufs):
                if s is not None:
                    s.add_(b, alpha=1.0 / len(tasks))
    with torch.no_grad():
        for p, w, d in zip(params, w0, delta):
            p.copy_(w + outer_lr * d)
        for (_, b), v, s in zip(bufs, b0, b_sum):
            if buffers == "keep":
                b.copy_(v)
            elif s is None:
                pass  # integer buffer: keep the last adapted value
            elif buffers == "adapted":
                b.copy_(s)
            else:
                b.copy_(v + outer_lr * (s - v))
        norm = math.sqrt(sum(float(d.pow(2).sum()) for d in delta)) * outer_lr
    model.train(was_training)
    return ReptileStats(sum(first) / len(first), sum(last) / len(last), norm)


# ---------------------------------------------------------------------- meta-training loop
@dataclass
class MetaTrainResult:
    """``history``: one dict per iteration (``iter``, ``loss_first``, ``loss_last``,
    ``update_norm``, ``outer_lr`` and, on validation iterations, ``val``); ``best_iter`` /
    ``best_val`` of the kept weights (``None`` without validation); ``stopped_early``."""

    history: list[dict] = field(default_factory=list)
    best_iter: int | None = None
    best_val: float | None = None
    stopped_early: bool = False


def meta_train(model: nn.Module, loss_fn: LossFn,
               task_sampler: Callable[[torch.Generator], Any], n_iters: int, *,
               val_tasks: Sequence[Any] | None = None,
               val_fn: Callable[[nn.Module, Any], float] | None = None,
               val_every: int = 50, patience: int | None = 10,
               inner_steps: int = 5, inner_lr: float = 1e-3, outer_lr: float = 0.1,
               outer_lr_final: float | None = None, inner_optimizer: str = "adam",
               buffers: str = "interpolate", grad_clip: float | None = None,
               generator: torch.Generator | None = None,
               checkpoint: Callable[[nn.Module, int, float], None] | None = None,
               callback: Callable[[dict], None] | None = None,
               restore_best: bool = True) -> MetaTrainResult:
    """Reptile meta-training with validation on held-out tasks, early stopping and a
    checkpoint callback.

    Args:
        task_sampler: ``generator -> task or list of tasks`` (one meta-batch per iteration).
        val_tasks / val_fn: every ``val_every`` iterations (and at the end) the mean of
            ``val_fn(model, task)`` over ``val_tasks`` (lower is better; default: ``loss_fn``
            at the meta-weights, no adaptation, no gradient) decides the best weights.
        patience: stop after this many validations without improvement (``None``: never).
        outer_lr_final: if given, ``eps`` decays linearly from ``outer_lr`` to it (Nichol et
            al.'s schedule).
        checkpoint: ``checkpoint(model, iter, val)`` called on every new best validation.
        callback: called with each history entry.
        restore_best: load the best validated weights back at the end.
    """
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    best_state: dict[str, Tensor] | None = None
    state = new_loop_state()

    def validate() -> float:
        if val_fn is not None:
            vals = [float(val_fn(model, t)) for t in val_tasks]
        else:
            with torch.no_grad():
                vals = [float(loss_fn(model, t, None)) for t in val_tasks]
        return sum(vals) / len(vals)

    def step(it: int, eps: float) -> ReptileStats:
        return reptile_step(model, loss_fn, task_sampler(gen), inner_steps=inner_steps,
                            inner_lr=inner_lr, outer_lr=eps, inner_optimizer=inner_optimizer,
                            generator=gen, buffers=buffers, grad_clip=grad_clip)

    def on_best(it: int, v: float) -> None:
        nonlocal best_state
        best_state = {k: t.detach().clone() for k, t in model.state_dict().items()}
        if checkpoint is not None:
            checkpoint(model, it, v)

    run_meta_loop(state, step, iters=n_iters, outer_lr=outer_lr, outer_lr_final=outer_lr_final,
                  validate=validate if val_tasks else None, val_every=val_every,
                  patience=patience, on_best=on_best, callback=callback)
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    return MetaTrainResult(state["history"], state["best_iter"], state["best_val"],
                           state["stopped_early"])


def new_loop_state() -> dict[str, Any]:
    """The JSON-ready state ``run_meta_loop`` advances (save it to resume)."""
    return {"iter": 0, "history": [], "best_iter": None, "best_val": None, "bad": 0,
            "wall_s": 0.0, "stopped_early": False}


def run_meta_loop(state: dict[str, Any], step: Callable[[int, float], ReptileStats], *,
                  iters: int, outer_lr: float, outer_lr_final: float | None = None,
                  validate: Callable[[], "float | dict"] | None = None, val_every: int = 50,
                  patience: int | None = None,
                  on_best: Callable[[int, float], None] | None = None,
                  save_every: int = 0, save_state: Callable[[], None] | None = None,
                  progress_desc: str | None = None,
                  postfix: Callable[[ReptileStats, dict], dict] | None = None,
                  callback: Callable[[dict], None] | None = None) -> None:
    """The resumable Reptile outer loop shared by every meta-trainer (in place on ``state``,
    ``new_loop_state()`` or a saved one): from ``state["iter"] + 1`` to ``iters``,

    * ``step(it, eps)`` does one outer step (``reptile_step``) at the outer rate ``eps``
      (constant ``outer_lr``, or linear from ``outer_lr`` to ``outer_lr_final``);
    * every ``val_every`` iterations and at ``iters``, ``validate()`` (lower is better; a float
      or a dict with ``"val"``, merged into the history entry and kept as
      ``state["best_metrics"]`` when that key exists) decides the best iteration:
      ``on_best(it, val)`` on improvement, else after ``patience`` bad validations
      (``None``: never) the loop stops early;
    * one history entry per iteration, ``state["wall_s"]`` accumulates across resumes,
      ``save_state()`` every ``save_every`` iterations, a tqdm bar when ``progress_desc``
      (``postfix(stats, state)`` its postfix), ``callback(entry)`` after each iteration.
    """
    bar = None
    if progress_desc is not None:
        from tqdm import tqdm

        bar = tqdm(total=iters, initial=min(state["iter"], iters), desc=progress_desc,
                   file=sys.stderr, dynamic_ncols=True)
    t_start = time.perf_counter() - float(state["wall_s"])
    while state["iter"] < iters and not state["stopped_early"]:
        it = state["iter"] + 1
        eps = outer_lr if outer_lr_final is None else \
            outer_lr + (outer_lr_final - outer_lr) * (it - 1) / max(1, iters - 1)
        stats = step(it, eps)
        entry = {"iter": it, "loss_first": stats.loss_first, "loss_last": stats.loss_last,
                 "update_norm": stats.update_norm, "outer_lr": eps}
        state["iter"] = it
        if validate is not None and (it % val_every == 0 or it == iters):
            out = validate()
            v = float(out["val"]) if isinstance(out, dict) else float(out)
            entry.update(out if isinstance(out, dict) else {"val": v})
            if state["best_val"] is None or v < state["best_val"]:
                state.update(best_val=v, best_iter=it, bad=0)
                if "best_metrics" in state:
                    state["best_metrics"] = out
                if on_best is not None:
                    on_best(it, v)
            else:
                state["bad"] += 1
                if patience is not None and state["bad"] >= patience:
                    state["stopped_early"] = True
        state["history"].append(entry)
        state["wall_s"] = time.perf_counter() - t_start
        if bar is not None:
            bar.update(1)
            if postfix is not None:
                bar.set_postfix(postfix(stats, state))
        if callback is not None:
            callback(entry)
        if save_every and save_state is not None and it % save_every == 0:
            save_state()
    if bar is not None:
        bar.close()
    state["wall_s"] = time.perf_counter() - t_start
