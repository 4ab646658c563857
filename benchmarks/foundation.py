"""Foundation must-shows: RS / REA / LS / GP-BO on NB201 CIFAR-100 and TransNAS class_scene.

For each task: the harness (``metanas.harness``) with every method x seeds up to the budget,
writing ``<out>/foundation_<task>.json`` and ``.png``; then a summary
``<out>/foundation_summary.json`` with, per task, the mean (s.e.) best-so-far at 20 / 50 / 100
evaluations, the exact expectation of random search (sampling without replacement, computed
from the full table) and the checks of the foundation issue. The summary is merged with the one
on disk: another task's entry is kept when it was made with the same seeds, budget and method settings
(otherwise it is dropped, with a note). ``--out`` defaults to ``benchmarks/results`` of the
repository, wherever the script is run from.

    python benchmarks/foundation.py                 # 10 seeds, budget 100, 2 workers
    python benchmarks/foundation.py --seeds 3 --budget 50 --tasks nb201/cifar100
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import gammaln

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from metanas.benchmarks import get_benchmark  # noqa: E402
from metanas.harness import HarnessConfig, plot_results, run_harness  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (harness_settings, merge_summary,  # noqa: E402
                    settings_per_task, task_id_and_space)

DEFAULT_TASKS = ("nb201/cifar100", "transnas_micro/class_scene")


def expected_max_without_replacement(values: np.ndarray, k: int) -> float:
    """E[max of k distinct uniform draws] = sum_i v_(i) C(i-1, k-1) / C(N, k), v ascending."""
    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    i = np.arange(1, n + 1)
    logp = np.full(n, -np.inf)
    ok = i >= k
    logp[ok] = (gammaln(i[ok]) - gammaln(k) - gammaln(i[ok] - k + 1)
                - (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)))
    return float(np.sum(v * np.exp(logp)))


def parse_args(argv=None) -> argparse.Namespace:
    from metanas import strategies
    from metanas.errors import UserInputError

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    p.add_argument("--methods", default="rs,rea,ls,gp-bo")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    for name, v in (("--seeds", args.seeds), ("--budget", args.budget),
                    ("--workers", args.workers)):
        if v < 1:
            raise UserInputError(f"{name} must be >= 1, got {v}")
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in args.methods if m not in strategies.available()]
    if bad or not args.methods:
        raise UserInputError(f"unknown method(s) {', '.join(bad) or '(none given)'} in --methods; "
                             f"choose from {', '.join(strategies.available())}")
    args.tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not args.tasks:
        raise UserInputError("--tasks is empty; give task ids, e.g. nb201/cifar100")
    for t in args.tasks:
        get_benchmark(t)  # an unknown task fails here, before any run
    # one name per task (a short name and its id share one summary entry and one file)
    args.tasks = list(dict.fromkeys(task_id_and_space(t)[0] for t in args.tasks))
    return args


def main(argv=None) -> dict:
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> dict:
    from metanas.io import atomic_write_json

    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"seeds": args.seeds, "budget": args.budget, "tasks": {}}
    # the settings each task on disk would record now (computed once, not at every merge)
    expected = settings_per_task(args.methods, args.seeds, args.budget)
    for task in args.tasks:
        bench = get_benchmark(task)
        cfg = HarnessConfig(space=bench.space.name, task=task, methods=args.methods,
                            seeds=list(range(args.seeds)), budget=args.budget,
                            workers=args.workers)
        stem = "foundation_" + task.replace("/", "_")
        res = run_harness(cfg, out / f"{stem}.json")
        plot_results(res, out / f"{stem}.png")
        vals = bench.values()
        row = {"optimum": res["optimum"],
               "rs_exact": {k: expected_max_without_replacement(vals, k)
                            for k in (20, 50, 100) if k <= args.budget},
               "methods": {},
               "settings": harness_settings(args.seeds, args.budget, {
                   m: r["settings"] for m, r in res["results"].items()})}
        for m, r in res["results"].items():
            s = r["summary"]
            row["methods"][m] = {k: s[k] for k in s if k.startswith(("best@", "top_fraction@",
                                                                      "final_report", "wall_s"))}
        mean = {m: {k: v["mean"] for k, v in d.items() if isinstance(v, dict)}
                for m, d in row["methods"].items()}
        checks = {}
        if "rs" in mean:
            for k, e in row["rs_exact"].items():
                if f"best@{k}" in mean["rs"]:
                    checks[f"rs_within_0.3_of_exact@{k}"] = abs(mean["rs"][f"best@{k}"] - e) <= 0.3
        if {"rea", "rs"} <= mean.keys() and args.budget >= 100:
            checks["rea_beats_rs@100"] = mean["rea"]["best@100"] > mean["rs"]["best@100"]
        if {"gp-bo", "rea"} <= mean.keys() and args.budget >= 50:
            checks["gpbo_beats_rea@50"] = mean["gp-bo"]["best@50"] > mean["rea"]["best@50"]
        row["checks"] = checks
        summary["tasks"][task] = row
        print(json.dumps({task: {"rs_exact": row["rs_exact"], "checks": checks,
                                 "best": {m: {k: round(v, 3) for k, v in d.items()
                                              if k.startswith("best@")}
                                          for m, d in mean.items()}}}, indent=1))
        summary_path = out / "foundation_summary.json"
        merged = merge_summary(summary_path, summary, args.methods, expected=expected)
        atomic_write_json(summary_path, merged, indent=1)
    return merged


if __name__ == "__main__":
    main()
