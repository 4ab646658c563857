"""Evaluators: what turns an architecture into a measured value.

Every evaluator (table lookup, live training, a Dask pool of either) answers the same call,
``evaluate(archs) -> list[Evaluation]``, so strategies and the search loop never know which.
Values are "higher is better".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence, runtime_checkable

from ..spaces import Arch, CellSpace


@dataclass(frozen=True)
class Evaluation:
    """Result of evaluating one architecture.

    Attributes:
        value: the metric searched on (e.g. validation accuracy), higher is better.
        report: metrics reported but not searched on (e.g. ``{"test": 91.5}``).
        cost_s: what the evaluation costs in the benchmark's own currency (training seconds)
            when known, else ``None``.
        info: anything else (parameter count, FLOPs, wall time of a real training run...).
    """

    value: float
    report: dict[str, float] = field(default_factory=dict)
    cost_s: float | None = None
    info: dict = field(default_factory=dict)


@runtime_checkable
class Evaluator(Protocol):
    """``space``, ``task`` (id string), ``metric`` (name of ``value``), ``n_evaluations``."""

    space: CellSpace
    task: str
    metric: str
    n_evaluations: int

    def evaluate(self, archs: Sequence[Arch]) -> list[Evaluation]:
        ...
