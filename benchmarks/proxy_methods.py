"""Proxy-aware and transfer baselines vs RS / REA on NB201 and TransNAS micro.

Methods (defaults): ``proxybo`` (published zero-cost tables; restricted to the archs they
score, see ``metanas.strategies.proxybo``), ``anasod-bo``, ``anasod-biased-rs``, ``bananas``,
``metad2a`` (leave-one-task-out meta-trained predictor), ``rs``, ``rea``. ``proxybo`` and
``metad2a`` get the target task id (``task=``) through ``method_kwargs``.

For each task: the harness (``metanas.harness``) with every method x seed up to the budget,
writing ``<out>/proxy_methods_<task>.json`` and ``.png`` (checkpoints under
``<out>/proxy_methods_<task>.runs/``, so an interrupted run resumes); then
``<out>/proxy_methods_summary.json`` with, per task and method, best@20/50/100 (mean, s.e.
over seeds) and the number of evaluations the method needs to match REA's mean best at the
budget (the first ``n`` where its mean best-so-far curve reaches REA's mean at the budget, or
``"not within <budget>"``).

    python benchmarks/proxy_methods.py --workers 1            # 10 seeds, budget 100, 5 tasks
    python benchmarks/proxy_methods.py --seeds 2 --tasks nb201/cifar10 --methods proxybo,rea
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from metanas.benchmarks import get_benchmark
from metanas.harness import HarnessConfig, plot_results, run_harness

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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", default=",".join(DEFAULT_TASKS))
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--threads", type=int, default=1, help="torch threads (workers=1)")
    p.add_argument("--out", default="benchmarks/results")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    methods = args.methods.split(",")
    summary: dict = {"seeds": args.seeds, "budget": args.budget, "methods": methods,
                     "tasks": {}}
    for task in args.tasks.split(","):
        t0 = time.perf_counter()
        bench = get_benchmark(task)
        kwargs = {m: {"task": bench.task} for m in methods if m in TASK_AWARE}
        cfg = HarnessConfig(space=bench.space.name, task=task, methods=methods,
                            seeds=list(range(args.seeds)), budget=args.budget,
                            workers=args.workers, method_kwargs=kwargs)
        stem = "proxy_methods_" + task.replace("/", "_")
        res = run_harness(cfg, out / f"{stem}.json")
        plot_results(res, out / f"{stem}.png")
        row: dict = {"optimum": res["optimum"]["value"] if res.get("optimum") else None,
                     "methods": {}, "harness_wall_s": time.perf_counter() - t0}
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
        (out / "proxy_methods_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
