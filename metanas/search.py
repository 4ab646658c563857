"""The one search loop. Every method, every evaluator, every benchmark goes through it."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .benchmarks.base import Evaluator
from .io import atomic_write_json, read_json
from .strategies.base import Strategy

CHECKPOINT_VERSION = 1


def _finite_or_minus_inf(v: float | None) -> float:
    return v if v is not None and math.isfinite(v) else -math.inf


@dataclass
class SearchRun:
    """History of one search: one entry per evaluation, in order.

    ``history[i]``: ``{"arch": str, "value": float, "best_so_far": float, "report": dict,
    "time_s": float (cumulative wall time of the search), "cost_s": float | None}``.
    """

    method: str
    seed: int
    task: str
    history: list[dict] = field(default_factory=list)

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
    """
    if budget < 1:
        raise ValueError(f"budget must be >= 1, got {budget}")
    if batch_size < 1:
        raise ValueError(f"batch size must be >= 1, got {batch_size}")
    space = evaluator.space
    run = SearchRun(method=strategy.name, seed=seed, task=evaluator.task)
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
        strategy.load_state_dict(state["strategy"])
        elapsed0 = run.history[-1]["time_s"] if run.history else 0.0
    best = max((h["value"] for h in run.history), default=-math.inf)
    t0 = time.perf_counter() - elapsed0
    while len(run.history) < budget:
        q = min(batch_size, budget - len(run.history))
        archs = strategy.ask(q)
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
                                     "strategy": strategy.state_dict()})
    return run
