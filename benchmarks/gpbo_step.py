"""Median time of one GP-BO step (fit + score every unseen NB201 cell) at n observations.

    python benchmarks/gpbo_step.py --obs 50 --repeats 15 --threads 1,2
Writes benchmarks/results/gpbo_step.json and .png. Observations are real: n random archs of
NB201 CIFAR-100 with their validation accuracy; each repeat uses a different random set and
the strategy's own first (cold) fit plus warm-started refits, as in a run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from metanas import strategies
from metanas.benchmarks import get_benchmark


def step_times(bench, n_obs: int, repeats: int, seed: int = 0) -> dict:
    cold, warm = [], []
    for r in range(repeats):
        rng = np.random.default_rng(seed + r)
        st = strategies.make("gp-bo", bench.space, seed=seed + r)
        archs = bench.space.sample(rng, n_obs + 1)
        vals = [e.value for e in bench.evaluate(archs)]
        st.tell(archs[:n_obs], vals[:n_obs])
        t0 = time.perf_counter(); st.ask(1); cold.append(time.perf_counter() - t0)
        st.tell(st.pending[:1], vals[n_obs:])
        t0 = time.perf_counter(); st.ask(1); warm.append(time.perf_counter() - t0)
    return {"cold_s": cold, "warm_s": warm, "cold_median_s": float(np.median(cold)),
            "warm_median_s": float(np.median(warm))}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--obs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--out", default="benchmarks/results/gpbo_step")
    a = p.parse_args(argv)
    bench = get_benchmark("nb201/cifar100")
    res = {"space": "nb201", "n_candidates": bench.space.size, "n_obs": a.obs, "threads": {}}
    for t in [int(x) for x in a.threads.split(",")]:
        torch.set_num_threads(t)
        res["threads"][t] = step_times(bench, a.obs, a.repeats)
        print(t, "thread(s): cold median", round(res["threads"][t]["cold_median_s"], 3),
              "s, warm median", round(res["threads"][t]["warm_median_s"], 3), "s", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(res, indent=1))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.5), dpi=120)
    labels, data = [], []
    for t, d in res["threads"].items():
        for k in ("cold", "warm"):
            labels.append(f"{k}\n{t} thr"); data.append(d[f"{k}_s"])
    ax.boxplot(data, tick_labels=labels)
    ax.set_ylabel("seconds per GP-BO step")
    ax.set_title(f"GP-BO step, {a.obs} obs, all {bench.space.size} NB201 cells")
    fig.tight_layout(); fig.savefig(out.with_suffix(".png"))


if __name__ == "__main__":
    main()
