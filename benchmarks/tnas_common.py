"""Helpers shared by the TNAS-vs-baselines benchmarks (``tnas_unlike.py``,
``tnas_wrong_prior.py``, ``tnas_digits.py``): their common options, and running groups of
methods / TNAS variants through ``metanas.harness`` into one merged result."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_harness_args(p: argparse.ArgumentParser, variants: dict, out: Path) -> None:
    """The options every TNAS-vs-baselines benchmark takes: seeds, budget, harness processes,
    TNAS variants (JSON, default ``variants``) and the output folder (default ``out``)."""
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--workers", type=int, default=2, help="harness processes")
    p.add_argument("--variants", default=json.dumps(variants),
                   help="JSON {name: tnas kwargs}: TNAS variants, reported as tnas[name]")
    p.add_argument("--out", default=str(out))


def parse_variants(p: argparse.ArgumentParser, text: str) -> dict:
    """``--variants`` as a dict, or a one-line usage error."""
    try:
        variants = json.loads(text)
    except json.JSONDecodeError as exc:
        p.error(f"--variants is not JSON ({exc.msg} at character {exc.pos})")
    if not isinstance(variants, dict) or not all(isinstance(v, dict) for v in
                                                  variants.values()):
        p.error("--variants must be a JSON object {name: {tnas setting: value}}")
    return variants


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
