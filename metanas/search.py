"""The one search loop. Every method, every evaluator, every benchmark goes through it."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .benchmarks.base import Evaluator
from .io import atomic_write_json, read_json
from .strategies.base import Strategy

#: version 1 throughout: ``batches`` was added later as an optional key (a checkpoint without it
#: reads as before, its batch boundaries unknown)
CHECKPOINT_VERSION = 1

logger = logging.getLogger(__name__)


def _finite_or_minus_inf(v: float | None) -> float:
    return v if v is not None and math.isfinite(v) else -math.inf


@dataclass
class SearchRun:
    """History of one search: one entry per evaluation, in order.

    ``history[i]``: ``{"arch": str, "value": float, "best_so_far": float, "report": dict,
    "time_s": float (cumulative wall time of the search), "cost_s": float | None}``.

    ``batches``: the size of each batch asked, in order (they sum to ``len(history)``);
    ``None`` when unknown (resumed from a checkpoint written before they were recorded).
    """

    method: str
    seed: int
    task: str
    history: list[dict] = field(default_factory=list)
    batches: list[int] | None = None

    @property
    def best(self) -> dict | None:
        """The entry of the best finite value (the first of equal ones, as ``best_so_far``);
        the first entry when no value is finite, ``None`` when the history is empty."""
        if not self.history:
            return None
        return max(self.history, key=lambda h: _finite_or_minus_inf(h["value"]))

    def to_json(self) -> dict:
        b = self.best
        return {
            "seed": self.seed,
            "history": self.history,
            "best_arch": b["arch"] if b else None,
            "best_value": b["value"] if b else None,
            "best_report": b["report"] if b else None,
        }


class CheckpointMismatch(ValueError):
    """A checkpoint exists for another method/seed/task."""


def run_search(
    strategy: Strategy,
    evaluator: Evaluator,
    budget: int,
    *,
    seed: int = 0,
    batch_size: int = 1,
    checkpoint: str | Path | None = None,
    resume: bool = True,
    callback: Callable[[dict], None] | None = None,
) -> SearchRun:
    """Run ``strategy`` against ``evaluator`` for ``budget`` evaluations.

    Args:
        batch_size: archs asked per round (evaluated together, e.g. in parallel).
        checkpoint: JSON file holding the history and the strategy's state; written
            atomically after every evaluated batch. With ``resume`` an existing checkpoint is
            continued (no evaluation is redone or lost).
        callback: called with each new history entry (progress bars, logging).

    Evaluations are never redone, so a resumed run whose saved batches are not whole batches
    of ``batch_size`` (e.g. budget 10 in batches of 4: 4, 4, 2, then extended to budget 12)
    goes on from its shortened final batch (4, 4, 2, 2) and differs from a fresh run with the
    new budget (4, 4, 4); a warning says so. The batch sizes are kept in the checkpoint and in
    ``SearchRun.batches``.
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    space = evaluator.space
    run = SearchRun(method=strategy.name, seed=seed, task=evaluator.task, batches=[])
    elapsed0 = 0.0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and resume and ckpt.exists():
        state = read_json(ckpt)
        key = (state.get("method"), state.get("seed"), state.get("task"))
        if key != (run.method, seed, run.task):
            raise CheckpointMismatch(
                f"checkpoint {ckpt} is for method/seed/task {key}, not "
                f"{(run.method, seed, run.task)}; use another --output folder or delete it")
        run.history = state["history"]
        saved = state.get("batches")  # absent in checkpoints written before it was recorded
        run.batches = ([int(b) for b in saved] if saved is not None and sum(saved) ==
                       len(run.history) else None)
        strategy.load_state_dict(state["strategy"])
        _warn_uneven_resume(run, budget, batch_size, ckpt)
        elapsed0 = run.history[-1]["time_s"] if run.history else 0.0
    best = max((h["value"] for h in run.history), default=-math.inf)
    t0 = time.perf_counter() - elapsed0
    while len(run.history) < budget:
        q = min(batch_size, budget - len(run.history))
        archs = strategy.ask(q)
        if run.batches is not None:
            run.batches.append(len(archs))
        evals = evaluator.evaluate(archs)
        strategy.tell(archs, [e.value for e in evals])
        for a, e in zip(archs, evals):
            best = max(best, e.value)
            entry = {"arch": space.to_str(a), "value": e.value, "best_so_far": best,
                     "report": dict(e.report), "time_s": time.perf_counter() - t0,
                     "cost_s": e.cost_s}
            run.history.append(entry)
            if callback is not None:
                callback(entry)
        if ckpt is not None:
            atomic_write_json(ckpt, {"version": CHECKPOINT_VERSION, "method": run.method,
                                     "seed": seed, "task": run.task, "history": run.history,
                                     "batches": run.batches,
                                     "strategy": strategy.state_dict()})
    return run


def _warn_uneven_resume(run: SearchRun, budget: int, batch_size: int, ckpt: Path) -> None:
    """Warn when a resumed run goes on from batches a fresh run with ``budget`` would not have
    asked (a shortened final batch, or another batch size): its trajectory will differ."""
    n = len(run.history)
    if n >= budget:
        return
    if run.batches is not None:
        uneven = any(b != batch_size for b in run.batches)
    else:  # boundaries unknown: a length that is no multiple of the batch size
        uneven = n % batch_size != 0
    if not uneven:
        return
    sizes = ", ".join(map(str, run.batches)) if run.batches is not None else "unknown"
    short = run.batches[-1] < batch_size if run.batches else n % batch_size != 0
    how = "from a shortened final batch" if short else "from batches of another size"
    logger.warning(
        "%s seed %d (%s): resuming after %d evaluations (batches: %s), not whole batches of "
        "%d: the run continues %s, so it will differ from a fresh run with budget %d; start "
        "over (adapt.py --fresh, or delete %s) for the identical run",
        run.method, run.seed, run.task, n, sizes, batch_size, how, budget, ckpt)
