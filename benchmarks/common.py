"""Helpers shared by the benchmark scripts: reading a summary on disk and keeping only the
task entries of it made with the settings of this run (``kept_tasks``), the settings of
a harness run recorded per task (``harness_settings``) and the merge of a harness-based
summary with the one on disk (``merge_summary``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable, Iterable


def read_json_or_none(path: Path, log: Callable[[str], None]):
    """The JSON in ``path``; ``None`` when there is none, or (with a one-line warning) when it
    cannot be read (e.g. truncated by an interrupted write of an older version)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        log(f"warning: {path} cannot be read ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); treating it as absent")
        return None


def plain(obj):
    """``obj`` as it reads back from JSON (tuples as lists, ...): what settings compare as."""
    return json.loads(json.dumps(obj, default=str))


def kept_tasks(path: Path, settings, skip: Iterable[str], log) -> dict:
    """The task entries of the summary ``path`` on disk (other than ``skip``: those this run
    writes) whose recorded ``"settings"`` equal ``settings``; every other entry is dropped
    with one log line (an entry of an older summary that records no settings counts as
    made with other settings). ``settings`` is one dict for every task, or a callable
    ``task -> dict`` (the settings this run would record for that task; an entry for which
    it raises is dropped too)."""
    disk = read_json_or_none(path, log) or {}
    skip = set(skip)
    same = None if callable(settings) else plain(settings)
    keep, dropped = {}, []
    tasks = disk.get("tasks") if isinstance(disk, dict) else None
    for t, entry in (tasks if isinstance(tasks, dict) else {}).items():
        if t in skip:
            continue
        want = same
        if want is None:
            try:
                want = plain(settings(t))
            except Exception:  # e.g. a task this code no longer knows
                want = None
        if want is not None and isinstance(entry, dict) and entry.get("settings") == want:
            keep[t] = entry
        else:
            dropped.append(t)
    if dropped:
        log(f"{Path(path).name}: dropped {', '.join(dropped)} (made with other settings, "
            "or settings not recorded); rerun with those targets to include them")
    return keep


def harness_settings(seeds, budget: int, methods: dict) -> dict:
    """The settings a task entry of a harness-based summary records: the seeds, the budget
    and per method its run settings (``results[method]["settings"]`` of the harness's
    results, or ``expected_method_settings`` for a task not run now)."""
    return plain({"seeds": seeds, "budget": budget, "methods": methods})


def task_id_and_space(task: str) -> tuple[str, str]:
    """The task id ``get_benchmark(task)`` gives and its search space, from the tasks table
    of the shipped meta-dataset holding ``task`` (no value table is built); a task outside
    it (a registered resolver's prefix, a file) through ``get_benchmark``."""
    from metanas.benchmarks import get_benchmark
    from metanas.benchmarks.tabular import _RESOLVERS, _shipped_for

    key = str(task)
    if not (any(key.startswith(p) for p in _RESOLVERS) or key.lower().endswith(".csv")
            or Path(key).is_file()):
        try:
            md = _shipped_for(key)
            tid = md.resolve_task(key)
            return tid, str(md.task(tid)["space"])
        except Exception:  # not a shipped task: get_benchmark says what it is (or raises)
            pass
    bench = get_benchmark(key)
    return bench.task, bench.space.name


def expected_method_settings(methods: Iterable[str], task: str,
                             method_kwargs: Callable[[str, str], dict | None] | None = None
                             ) -> dict:
    """Per method the run settings the harness would record for ``task`` (its space's
    defaults overridden by ``method_kwargs(method, task id)``; default: none), without
    running anything."""
    from metanas.harness import _run_settings

    tid, space = task_id_and_space(task)
    return {m: _run_settings(m, space, method_kwargs(m, tid) if method_kwargs else None)
            for m in methods}


def expected_settings(task: str, methods, seeds: int, budget: int,
                      method_kwargs: Callable[[str, str], dict | None] | None = None) -> dict:
    """The settings a task entry of a harness-based summary made now with ``methods``,
    ``seeds``, ``budget`` and ``method_kwargs`` (as ``expected_method_settings``) records."""
    return harness_settings(seeds, budget,
                            expected_method_settings(methods, task, method_kwargs))


def settings_per_task(methods, seeds: int, budget: int,
                      method_kwargs: Callable[[str, str], dict | None] | None = None
                      ) -> Callable[[str], dict]:
    """``task -> expected_settings(task, ...)``, each task's computed once (a run merges its
    summary after every task: the entries on disk are not looked up again each time)."""
    memo: dict[str, dict] = {}

    def expected(task: str) -> dict:
        if task not in memo:
            memo[task] = expected_settings(task, methods, seeds, budget, method_kwargs)
        return memo[task]

    return expected


def merge_summary(path: Path, summary: dict, methods,
                  method_kwargs: Callable[[str, str], dict | None] | None = None, *,
                  expected: Callable[[str], dict] | None = None) -> dict:
    """``summary`` (``"seeds"``, ``"budget"``, ``"tasks"``) plus the other tasks of the
    summary at ``path`` whose recorded settings (seeds, budget and every method's run
    settings: ``harness_settings``) equal those this run records for that task
    (``expected(task)``; default: what ``summary``'s seeds and budget, ``methods`` and
    ``method_kwargs`` give through the harness, ``expected_settings``; pass one
    ``settings_per_task`` for every merge of a run to compute each task's once)."""
    if expected is None:
        expected = settings_per_task(methods, summary["seeds"], summary["budget"],
                                     method_kwargs)
    kept = kept_tasks(path, expected, summary["tasks"],
                      lambda msg: print(f"note: {msg}", file=sys.stderr))
    return {**summary, "tasks": {**kept, **summary["tasks"]}}
