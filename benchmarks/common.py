"""Helpers shared by the benchmark scripts: reading a summary on disk and keeping only the
task entries of it made with the settings of this run (``kept_tasks``), and the settings of
a harness run recorded per task (``harness_settings``)."""

from __future__ import annotations

import json
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


def expected_method_settings(methods: Iterable[str], task: str,
                             method_kwargs: Callable[[str, object], dict | None]) -> dict:
    """Per method the run settings the harness would record for ``task`` (its space's
    defaults overridden by ``method_kwargs(method, bench)``), without running anything."""
    from metanas.benchmarks import get_benchmark
    from metanas.harness import _run_settings

    bench = get_benchmark(task)
    return {m: _run_settings(m, bench.space.name, method_kwargs(m, bench)) for m in methods}
