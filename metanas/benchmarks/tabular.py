"""Tabular benchmarks: evaluate an architecture by looking it up in a measured table.

``TabularBenchmark`` implements the ``Evaluator`` protocol over one task of a
:class:`~metanas.meta_dataset.MetaDataset` (a shipped benchmark such as ``nb201/cifar100``, a
MetaD2A task, a TransNAS-Bench-101 task) or a user CSV. It counts evaluations, reports the
task's report metric (``{"test": ...}``) and knows the table's optimum, so regret and
"top fraction" of a search result are exact. ``get_benchmark`` resolves a task id or a CSV
path to an evaluator.
"""

from __future__ import annotations

import logging
import math
import os
from functools import lru_cache
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ArchNotInTable, UserInputError
from ..meta_dataset import (COST_METRIC, MetaDataset, list_collections, load_user_table,
                            shipped_root)
from ..spaces import Arch, CellSpace
from ..spaces import get as get_space
from .base import Evaluation

ReportSpec = str | Sequence[str] | Mapping[str, str] | None

logger = logging.getLogger(__name__)
#: (task, searched table, reports) already warned about as searching the test split
_TEST_SEARCH_WARNED: set[tuple] = set()


def _warn_test_search(tid: str, values: pd.Series, reports: Mapping[str, pd.Series],
                      md: MetaDataset) -> None:
    """Warn (once per process and setting) when the search reads the test split or a table
    the run also reports: the reported figures are then no unbiased estimate."""
    m, sp = values.attrs["metric"], values.attrs["split"]
    same = sorted(k for k, r in reports.items()
                  if (r.attrs.get("metric"), r.attrs.get("split")) == (m, sp))
    if sp != "test" and not same:
        return
    key = (tid, m, sp, tuple(same))
    if key in _TEST_SEARCH_WARNED:
        return
    _TEST_SEARCH_WARNED.add(key)
    if sp != "test":  # a report read from the searched (valid) table
        logger.warning("task %s: the searched table %s_%s is also reported (as %s): the "
                       "reported figures are not an unbiased estimate; report a test-split "
                       "metric", tid, sp, m, ", ".join(map(repr, same)))
        return
    valid = {mm for mm, ss, _ in md._groups(tid) if ss == "valid"}
    fix = (f"search valid_{m}" if m in valid else
           f"search a valid-split metric ({', '.join(sorted('valid_' + v for v in valid))})"
           if valid else "search a valid-split metric")
    logger.warning("task %s: searching the test split (test_%s): the reported test figures "
                   "are not an unbiased estimate; %s", tid, m, fix)


@lru_cache(maxsize=8)
def _str_to_arch(space_name: str) -> dict[str, Arch]:
    space = get_space(space_name)
    return {space.to_str(a): a for a in space.enumerate()}


@lru_cache(maxsize=16)
def _cached_meta_dataset(root: str, collection: str | None) -> MetaDataset:
    return MetaDataset.load(collection if collection is not None else None)


def _shipped_for(task: str) -> MetaDataset:
    """The shipped collection holding ``task`` (all collections if the prefix is not one)."""
    root = shipped_root()
    prefix = str(task).split("/", 1)[0] if "/" in str(task) else None
    collection = prefix if prefix in list_collections(root) else None
    return _cached_meta_dataset(str(root), collection)


def _split_fidelity(spec: str) -> tuple[str, int | None]:
    """``"test_acc@12"`` -> ``("test_acc", 12)``."""
    name, sep, fid = str(spec).partition("@")
    if not sep:
        return name, None
    try:
        return name, int(fid)
    except ValueError:
        raise UserInputError(f"metric {spec!r}: the part after '@' must be a fidelity in epochs, "
                             f"e.g. 'test_acc@200'") from None


class TabularBenchmark:
    """Evaluator backed by a table ``arch -> value`` (higher is better).

    Attributes:
        space, task, metric: as the ``Evaluator`` protocol; ``metric`` is the searched metric's
            name (``"valid_acc"`` by default).
        n_evaluations: architectures evaluated so far (every call counts every arch).
        fidelity: epochs of the searched table.
        report_keys: keys of ``Evaluation.report`` (``["test"]`` for NAS-Bench-201).
    """

    def __init__(self, space: CellSpace | str, task: str, values: pd.Series, *, metric: str,
                 reports: Mapping[str, pd.Series] | None = None, costs: pd.Series | None = None,
                 fidelity: int | None = None) -> None:
        self.space = get_space(space) if isinstance(space, str) else space
        self.task = task
        self.metric = metric
        self.fidelity = fidelity
        self.n_evaluations = 0
        if not len(values):
            raise UserInputError(f"task {task!r} has an empty {metric} table")
        strings = [str(s) for s in values.index]
        lookup = _str_to_arch(self.space.name) if len(strings) > 512 else {}
        archs = [lookup.get(s) or self.space.from_str(s) for s in strings]
        self._archs: list[Arch] = archs
        self._pos: dict[Arch, int] = {a: i for i, a in enumerate(archs)}
        if len(self._pos) != len(archs):
            raise UserInputError(f"task {task!r}: the {metric} table lists an architecture twice")
        self._values = values.to_numpy(dtype=np.float64, copy=True)
        if not np.isfinite(self._values).all():
            raise UserInputError(f"task {task!r}: the {metric} table has non-finite values")
        idx = pd.Index(strings)

        def align(s: pd.Series) -> np.ndarray:
            s = s[~s.index.duplicated()]
            return s.reindex(idx).to_numpy(dtype=np.float64)

        self._reports = {k: align(s) for k, s in (reports or {}).items()}
        self._costs = align(costs) if costs is not None else None
        self._best = int(np.argmax(self._values))

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_task(cls, task: str, metric: str | None = None, report_metrics: ReportSpec = None,
                  fidelity: int | None = None, *,
                  meta_dataset: MetaDataset | None = None) -> "TabularBenchmark":
        """Benchmark of one meta-dataset task.

        Args:
            task: task id (``"nb201/cifar100"``, ``"transnas_micro/class_scene"``,
                ``"metad2a/3890"``, or a unique short form such as ``"cifar100"``).
            metric: searched metric, ``None`` = the task's ``default_metric`` at split
                ``valid`` (``"valid_acc"`` for NAS-Bench-201); ``"test_acc"``-style names
                carry their split.
            report_metrics: ``None`` = the task's ``report_metric`` at split ``test`` under the
                key ``"test"`` (nothing if the task has none); a name or list of names (the
                names become the keys, a bare name means split ``test``); or a dict
                ``{key: name}``. ``name@epochs`` picks a fidelity; otherwise reports come from
                the highest fidelity (the final result, even when searching a low-fidelity
                table).
            fidelity: epochs of the searched table, ``None`` = the highest.
            meta_dataset: where the task lives (default: the shipped collections).
        """
        md = meta_dataset if meta_dataset is not None else _shipped_for(task)
        tid = md.resolve_task(task)
        row = md.task(tid)
        space = get_space(row["space"])
        name, at = (_split_fidelity(metric) if metric is not None else (None, None))
        if at is not None and fidelity is not None and at != fidelity:
            raise UserInputError(f"metric {metric!r} and fidelity {fidelity} disagree; give one")
        values = md.table(tid, name, "valid", at if at is not None else fidelity)
        fid = int(values.attrs["fidelity"])

        if report_metrics is None:
            rep = row["report_metric"]
            specs = {"test": rep} if isinstance(rep, str) and rep else {}
        elif isinstance(report_metrics, str):
            specs = {report_metrics: report_metrics}
        elif isinstance(report_metrics, Mapping):
            specs = dict(report_metrics)
        else:
            specs = {str(s): str(s) for s in report_metrics}
        reports = {}
        for key, spec in specs.items():
            rname, rfid = _split_fidelity(spec)
            reports[key] = md.table(tid, rname, "test", rfid)

        costs = None
        t = md.triples_of(tid)
        c = t[(t["metric"] == COST_METRIC) & (t["split"] == "valid")]
        if len(c):
            cfids = sorted(int(f) for f in c["fidelity"].unique())
            costs = md.table(tid, COST_METRIC, "valid", fid if fid in cfids else cfids[-1])
        _warn_test_search(tid, values, reports, md)
        return cls(space, tid, values, metric=metric if metric is not None else values.name,
                   reports=reports, costs=costs, fidelity=fid)

    @classmethod
    def from_user_table(cls, path: str | os.PathLike, space: str, metric: str,
                        report_metric: str | None = None, arch_column: str = "arch", *,
                        cost_column: str | None = None) -> "TabularBenchmark":
        """Benchmark of a user CSV (see :func:`metanas.meta_dataset.load_user_table`); the
        report (if any) is under the key ``"test"``, the cost column (seconds) is charged."""
        md = load_user_table(path, space, metric, report_metric, arch_column,
                             cost_column=cost_column)
        return cls.from_task(md.task_ids()[0], metric=metric, meta_dataset=md)

    # ------------------------------------------------------------------ Evaluator
    def _position(self, arch) -> int:
        a = self.space.from_str(arch) if isinstance(arch, str) else self.space.validate(arch)
        i = self._pos.get(a)
        if i is None:
            raise ArchNotInTable(
                f"architecture {self.space.to_str(a)!r} is not in the table of task {self.task!r} "
                f"({len(self._archs)} of {self.space.size} architectures); restrict the search "
                f"to benchmark.candidates()")
        return i

    def _evaluation(self, i: int) -> Evaluation:
        report = {k: float(r[i]) for k, r in self._reports.items() if math.isfinite(r[i])}
        cost = None
        if self._costs is not None and math.isfinite(self._costs[i]):
            cost = float(self._costs[i])
        return Evaluation(value=float(self._values[i]), report=report, cost_s=cost,
                          info={"fidelity": self.fidelity})

    def evaluate(self, archs: Sequence[Arch]) -> list[Evaluation]:
        """Look up ``archs`` (tuples or strings); counts each in ``n_evaluations``. Raises
        ``ArchNotInTable`` (before counting anything) if one is missing from a partial table."""
        idx = [self._position(a) for a in archs]
        self.n_evaluations += len(idx)
        return [self._evaluation(i) for i in idx]

    def lookup(self, arch) -> Evaluation:
        """The evaluation of ``arch`` without counting it (for analysis and tests)."""
        return self._evaluation(self._position(arch))

    def reset(self) -> None:
        """Zero ``n_evaluations``."""
        self.n_evaluations = 0

    # ------------------------------------------------------------------ table facts
    def __len__(self) -> int:
        return len(self._archs)

    def __contains__(self, arch) -> bool:
        try:
            self._position(arch)
        except (ArchNotInTable, ValueError):
            return False
        return True

    def __repr__(self) -> str:
        return (f"TabularBenchmark({self.task!r}, metric={self.metric!r}, fidelity={self.fidelity}, "
                f"{len(self)} archs, reports={self.report_keys})")

    @property
    def is_full(self) -> bool:
        """Whether the table covers the whole space."""
        return len(self._archs) == self.space.size

    @property
    def report_keys(self) -> list[str]:
        return list(self._reports)

    def candidates(self) -> list[Arch]:
        """Every architecture the table covers (the whole space for full tables), in table
        order; strategies restrict their proposals to these on partial tables."""
        return list(self._archs)

    def values(self) -> np.ndarray:
        """Searched metric of ``candidates()``, aligned (a copy)."""
        return self._values.copy()

    @property
    def optimum(self) -> float:
        """Best searched-metric value in the table."""
        return float(self._values[self._best])

    @property
    def optimum_arch(self) -> Arch:
        return self._archs[self._best]

    def _key(self, key: str | None) -> str:
        if not self._reports:
            raise UserInputError(f"task {self.task!r} has no report metric; give report_metrics")
        if key is None:
            return "test" if "test" in self._reports else next(iter(self._reports))
        if key not in self._reports:
            raise UserInputError(f"no report {key!r}; reports: {', '.join(self._reports)}")
        return key

    def report_optimum(self, key: str | None = None) -> float:
        """Best value of a report metric over the table (``key`` default ``"test"``)."""
        return float(np.nanmax(self._reports[self._key(key)]))

    def report_top_fraction(self, value: float, key: str | None = None) -> float:
        """Share of the table's architectures whose report metric ``key`` (default ``"test"``)
        is strictly better than ``value``: the top fraction of a pick on held-out data."""
        r = self._reports[self._key(key)]
        return float(np.count_nonzero(r[np.isfinite(r)] > value)) / int(np.isfinite(r).sum())

    def top_fraction(self, value: float) -> float:
        """Share of the table's architectures strictly better than ``value`` (0 = optimal)."""
        return float(np.count_nonzero(self._values > value)) / len(self._values)

    def regret(self, value: float) -> float:
        """``optimum - value`` (>= 0 for a value from this table)."""
        return self.optimum - float(value)

    def report_regret(self, value: float | Mapping[str, float], key: str | None = None) -> float:
        """Regret on a report metric: its optimum minus ``value`` (a number or a report dict)."""
        k = self._key(key)
        v = value[k] if isinstance(value, Mapping) else value
        return self.report_optimum(k) - float(v)


# ---------------------------------------------------------------------------- resolver
_RESOLVERS: dict[str, Callable[..., object]] = {}


def register_resolver(prefix: str, factory: Callable[..., object]) -> None:
    """Make ``get_benchmark("<prefix>...")`` call ``factory(task_id, space=..., metric=...,
    report_metric=..., fidelity=...)`` (e.g. live-training evaluators)."""
    _RESOLVERS[prefix] = factory


def get_benchmark(task_id_or_csv: str | os.PathLike, space: str | None = None,
                  metric: str | None = None, report_metric: ReportSpec = None,
                  fidelity: int | None = None, *, arch_column: str = "arch",
                  cost_column: str | None = None):
    """The evaluator for a task id or a user CSV.

    * a prefix registered with :func:`register_resolver` -> that factory;
    * a path to a ``.csv`` (or any existing file) -> :meth:`TabularBenchmark.from_user_table`
      (needs ``space`` and ``metric``; ``report_metric`` names the report column);
    * otherwise a meta-dataset task id -> :meth:`TabularBenchmark.from_task`.
    """
    key = os.fspath(task_id_or_csv)
    for prefix, factory in _RESOLVERS.items():
        if key.startswith(prefix):
            return factory(key, space=space, metric=metric, report_metric=report_metric,
                           fidelity=fidelity)
    if key.lower().endswith(".csv") or Path(key).is_file():
        if space is None or metric is None:
            raise UserInputError(f"{key}: a CSV needs its search space (nb201 or transnas_micro) "
                                 f"and the name of its metric column; pass space= and metric=")
        if report_metric is not None and not isinstance(report_metric, str):
            raise UserInputError(f"{key}: report_metric must be one column name")
        return TabularBenchmark.from_user_table(key, space, metric, report_metric, arch_column,
                                                cost_column=cost_column)
    bench = TabularBenchmark.from_task(key, metric, report_metric, fidelity)
    if space is not None and get_space(space).name != bench.space.name:
        raise UserInputError(f"task {bench.task!r} is in space {bench.space.name!r}, not {space!r}")
    return bench


__all__ = ["TabularBenchmark", "get_benchmark", "register_resolver"]
