"""Proxy-aware and transfer baselines vs RS / REA on NB201 and TransNAS micro.

Methods (defaults): ``proxybo`` (the task's shipped proxy table, see
``metanas.strategies.proxybo``: on NB201 the full-space ``digits_*`` table of all 15625 cells,
``meta_datasets/nb201/proxies_digits.parquet``; on TransNAS micro the published tables plus
``zen``, restricted to the archs they score), ``anasod-bo``, ``anasod-biased-rs``, ``bananas``,
``metad2a`` (leave-one-task-out meta-trained predictor), ``rs``, ``rea``. ``proxybo`` and
``metad2a`` get the target task id (``task=``) through ``method_kwargs``.

For each task: the harness (``metanas.harness``) with every method x seed up to the budget,
writing ``<out>/proxy_methods_<task>.json`` and ``.png`` (checkpoints under
``<out>/proxy_methods_<task>.runs/``, so an interrupted run resumes); then
``<out>/proxy_methods_summary.json`` with, per task and method, best@20/50/100 (mean, s.e.
over seeds) and the number of evaluations the method needs to match REA's mean best at the
budget (the first ``n`` where its mean best-so-far curve reaches REA's mean at the budget, or
``"not within <budget>"``). The summary is merged with the one on disk: another task's entry is
kept when it was made with the same seeds, budget and method settings (otherwise it is dropped,
with a note). ``--out`` defaults to ``benchmarks/results`` of the repository, wherever the script is
run from.

    python benchmarks/proxy_methods.py --workers 1            # 10 seeds, budget 100, 5 tasks
    python benchmarks/proxy_methods.py --seeds 2 --tasks nb201/cifar10 --methods proxybo,rea
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from metanas.benchmarks import get_benchmark  # noqa: E402
from metanas.harness import HarnessConfig, plot_results, run_harness  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (harness_settings, merge_summary,  # noqa: E402
                    settings_per_task, task_id_and_space)

DEFAULT_TASKS = ("nb201/cifar10", "nb201/cifar100", "nb201/imagenet16-120",
                 "transnas_micro/class_object", "transnas_micro/jigsaw")
DEFAULT_METHODS = ("rs", "rea", "proxybo", "anasod-bo", "anasod-biased-rs", "bananas", "metad2a")
#: methods that take the target task id
TASK_AWARE = ("proxybo", "metad2a")


def mean_curve(runs: list[dict]) -> np.ndarray:
    curves = [np.array([h["best_so_far"] for h in r["history"]]) for r in runs]
    n = min(len(c) for c in curves)
    return np.stack([c[:n] for c in curves]).mean(0)


def evals_to_match(curve: np.ndarray, target: float, budget: int) -> int | str:
    hit = np.nonzero(curve >= target - 1e-12)[0]
    return int(hit[0]) + 1 if hit.size else f"not within {budget}"


def method_kwargs(method: str, task: str) -> dict | None:
    """The harness keyword arguments of ``method`` on the task ``task`` (a benchmark's task
    id; the task id for the task-aware ones)."""
    return {"task": task} if method in TASK_AWARE else None


def main(argv=None) -> dict:
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> dict:
    from metanas import strategies
    from metanas.errors import UserInputError
    from metanas.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (workers=1)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results"))
    args = p.parse_args(argv)
    for name, v in (("--seeds", args.seeds), ("--budget", args.budget),
                    ("--workers", args.workers), ("--threads", args.threads)):
        if v < 1:
            raise UserInputError(f"{name} must be >= 1, got {v}")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in strategies.available()]
    if bad or not methods:
        raise UserInputError(f"unknown method(s) {', '.join(bad) or '(none given)'} in --methods; "
                             f"choose from {', '.join(strategies.available())}")
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise UserInputError("--tasks is empty; give task ids, e.g. nb201/cifar10")
    for t in tasks:
        get_benchmark(t)  # an unknown task fails here, before any run
    # one name per task (a short name and its id share one summary entry and one file)
    tasks = list(dict.fromkeys(task_id_and_space(t)[0] for t in tasks))
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"seeds": args.seeds, "budget": args.budget, "methods": methods,
                     "tasks": {}}
    merged = summary
    # the settings each task on disk would record now (computed once, not at every merge)
    expected = settings_per_task(methods, args.seeds, args.budget, method_kwargs)
    for task in tasks:
        t0 = time.perf_counter()
        bench = get_benchmark(task)
        kwargs = {m: kw for m in methods if (kw := method_kwargs(m, bench.task))}
        cfg = HarnessConfig(space=bench.space.name, task=task, methods=methods,
                            seeds=list(range(args.seeds)), budget=args.budget,
                            workers=args.workers, method_kwargs=kwargs)
        stem = "proxy_methods_" + task.replace("/", "_")
        res = run_harness(cfg, out / f"{stem}.json")
        plot_results(res, out / f"{stem}.png")
        row: dict = {"optimum": res["optimum"]["value"] if res.get("optimum") else None,
                     "methods": {}, "harness_wall_s": time.perf_counter() - t0,
                     "settings": harness_settings(args.seeds, args.budget, {
                         m: r["settings"] for m, r in res["results"].items()})}
        ref = None
        if "rea" in res["results"] and res["results"]["rea"]["runs"]:
            ref = float(mean_curve(res["results"]["rea"]["runs"])[-1])
            row["rea_mean_best_at_budget"] = ref
        for m, r in res["results"].items():
            s = r["summary"]
            d = {k: s[k] for k in s if k in ("best@20", "best@50", "best@100", "wall_s")
                 or k.startswith("final_report")}
            d["n_runs"] = len(r["runs"])
            if ref is not None and r["runs"]:
                d["evals_to_match_rea"] = evals_to_match(mean_curve(r["runs"]), ref, args.budget)
            row["methods"][m] = d
        summary["tasks"][task] = row
        print(json.dumps({task: {m: {k: (round(v["mean"], 3) if isinstance(v, dict) else v)
                                     for k, v in d.items() if k.startswith(("best@", "evals"))}
                                 for m, d in row["methods"].items()}}, indent=1), flush=True)
        summary_path = out / "proxy_methods_summary.json"
        merged = merge_summary(summary_path, summary, methods, method_kwargs,
                               expected=expected)
        atomic_write_json(summary_path, merged, indent=1)
    return merged


if __name__ == "__main__":
    main()
