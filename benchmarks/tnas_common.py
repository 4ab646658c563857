"""Helpers shared by the TNAS-vs-baselines benchmarks (``tnas_unlike.py``,
``tnas_wrong_prior.py``, ``tnas_digits.py``, ``tnas_select.py``, ``tnas_loto.py``): their common
options and their checks, running groups of methods / TNAS variants through
``metanas.harness`` into one merged result, and merging a summary with the one on disk."""

from __future__ import annotations

import argparse
import difflib
import json
import math
import time
from pathlib import Path
from typing import Iterable

import common

#: shared with the other benchmark scripts (``common.py``)
kept_tasks, plain, read_json_or_none = common.kept_tasks, common.plain, common.read_json_or_none


def add_harness_args(p: argparse.ArgumentParser, variants: dict, out: Path) -> None:
    """The options every TNAS-vs-baselines benchmark takes: seeds, budget, harness processes,
    TNAS variants (JSON, default ``variants``) and the output folder (default ``out``)."""
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="harness processes")
    p.add_argument("--variants", default=json.dumps(variants),
                   help="JSON {name: tnas kwargs}: TNAS variants, reported as tnas[name]")
    p.add_argument("--out", default=str(out))


def tnas_settings() -> list[str]:
    """The keyword arguments of ``metanas.strategies.tnas.TNAS`` a variant can set (its
    constructor's parameters but ``space`` and ``seed``)."""
    import inspect

    from metanas.strategies.tnas import TNAS

    return [k for k in inspect.signature(TNAS.__init__).parameters
            if k not in ("self", "space", "seed")]


def unknown_setting(kw: dict, extra: Iterable[str] = ()) -> str | None:
    """``None`` when every key of ``kw`` is a TNAS setting (``tnas_settings``) or one of the
    script's own keys ``extra``; else what is wrong, naming the closest valid key."""
    valid = [*tnas_settings(), *extra]
    for k in kw:
        if k not in valid:
            close = difflib.get_close_matches(str(k), valid, n=1)
            return (f"{k!r} is no tnas setting" + (f"; did you mean {close[0]!r}?" if close
                                                   else f"; choose from {', '.join(valid)}"))
    return None


def parse_json_object(p: argparse.ArgumentParser, option: str, text: str, example: str):
    """``text`` (the value of ``option``) parsed as JSON, or a one-line usage error showing
    ``example``."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        p.error(f"{option} is not JSON ({exc.msg} at character {exc.pos}); e.g. "
                f"{option} '{example}'")


def parse_variants(p: argparse.ArgumentParser, text: str, extra: Iterable[str] = (),
                   option: str = "--variants") -> dict:
    """``--variants`` as a dict ``{name: {tnas setting: value}}``, or a one-line usage error
    (not JSON, not an object of objects, or a key that is neither a TNAS setting nor one of
    the script's own keys ``extra``, e.g. ``"meta_seeds"``)."""
    variants = parse_json_object(p, option, text, '{"ucb": {"acquisition": "ucb"}}')
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in
                                                  variants.values()):
        p.error(f"{option} must be a JSON object {{name: {{tnas setting: value}}}}")
    for name, kw in variants.items():
        bad = unknown_setting(kw, extra)
        if bad:
            p.error(f"{option}: variant {name!r}: {bad}")
    return variants


def parse_tnas_kw(p: argparse.ArgumentParser, text: str, option: str = "--tnas-kw") -> dict:
    """A JSON object of TNAS settings (``--tnas-kw``), or a one-line usage error."""
    kw = parse_json_object(p, option, text, '{"adapt_every": 5}')
    if not isinstance(kw, dict):
        p.error(f"{option} must be a JSON object {{tnas setting: value}}")
    bad = unknown_setting(kw)
    if bad:
        p.error(f"{option}: {bad}")
    return kw


def check_names(p: argparse.ArgumentParser, option: str, given: Iterable[str],
                valid: Iterable[str]) -> None:
    """A one-line usage error when a name of ``given`` (the items of ``option``) is not among
    ``valid``, naming the closest valid one."""
    valid = list(valid)
    for x in given:
        if x not in valid:
            close = difflib.get_close_matches(x, valid, n=1)
            p.error(f"{option}: unknown {x!r}; " + (f"did you mean {close[0]!r}? " if close
                                                     else "") + f"choose from {', '.join(valid)}")


def mean_over_tasks(tasks: dict, keys: Iterable[str] | None = None) -> tuple[dict, dict]:
    """Per method, the mean over the tasks of ``tasks`` (``{task: {"methods": {method: row}}}``)
    that have it of each of ``keys`` (default: the row's keys but ``*_se``) that every such
    task has (and not None); and per method the tasks that mean covers."""
    import numpy as np

    methods = list(dict.fromkeys(m for t in tasks.values() for m in t["methods"]))
    mean, covers = {}, {}
    for m in methods:
        have = {t: v["methods"][m] for t, v in tasks.items() if m in v["methods"]}
        rows = list(have.values())
        ks = list(keys) if keys is not None else [k for k in rows[0] if not k.endswith("_se")]
        mean[m] = {}
        for k in ks:
            vals = [r.get(k) for r in rows]
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                   for v in vals):
                mean[m][k] = float(np.mean(vals))
        covers[m] = list(have)
    return mean, covers


def run_groups(groups, base: Path, log, label: str, **harness) -> dict:
    """Run each ``(name, methods, method_kwargs)`` of ``groups`` through ``metanas.harness``
    (``HarnessConfig(**harness)``; results ``<base>.part.json`` for the group ``"main"``,
    ``<base>.<name>.part.json`` for the others; resumable) and merge them: the first group's
    methods under their own names, the others' as ``<method>[<name>]``."""
    from metanas.harness import HarnessConfig, run_harness

    merged = None
    for name, methods, kw in groups:
        t0 = time.perf_counter()
        cfg = HarnessConfig(methods=methods, method_kwargs=kw, **harness)
        res = run_harness(cfg, base.with_name(base.name + ("" if name == "main" else f".{name}")
                                              + ".part.json"))
        log(f"{label} [{name}]: {time.perf_counter() - t0:.0f} s")
        if merged is None:
            merged = res
        else:
            for m, r in res["results"].items():
                merged["results"][f"{m}[{name}]"] = r
    return merged
