"""GP-BO output warping ("none" vs "copula") chosen on tasks *other* than the foundation
must-show tasks (NB201 CIFAR-100, TransNAS class_scene), so the default is not tuned to them.

    python benchmarks/gpbo_warp_study.py --seeds 10 --budget 50
Writes benchmarks/results/gpbo_warp_study.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from metanas import strategies
from metanas.benchmarks import get_benchmark
from metanas.search import run_search

TASKS = ("nb201/cifar10", "nb201/imagenet16-120", "transnas_micro/class_object",
         "transnas_micro/jigsaw", "transnas_micro/room_layout")


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--out", default="benchmarks/results/gpbo_warp_study.json")
    a = p.parse_args(argv)
    torch.set_num_threads(1)
    res = {}
    for task in a.tasks.split(","):
        bench = get_benchmark(task)
        res[task] = {}
        for warp in ("none", "copula"):
            best, topf = [], []
            for s in range(a.seeds):
                bench.reset()
                st = strategies.make("gp-bo", bench.space, seed=s, warp=warp)
                run = run_search(st, bench, a.budget, seed=s)
                b = run.history[-1]["best_so_far"]
                best.append(b)
                topf.append(bench.top_fraction(b))
            res[task][warp] = {"best_mean": float(np.mean(best)),
                               "best_se": float(np.std(best, ddof=1) / np.sqrt(len(best))),
                               "top_fraction_mean": float(np.mean(topf))}
            print(task, warp, res[task][warp], flush=True)
    Path(a.out).write_text(json.dumps({"budget": a.budget, "seeds": a.seeds, "results": res},
                                      indent=1))


if __name__ == "__main__":
    main()
