"""Median time of one GP-BO step (fit + score every unseen NB201 cell) at n observations.

    python benchmarks/gpbo_step.py --obs 50 --repeats 15 --threads 1,2
Writes benchmarks/results/gpbo_step.json and .png. Observations are real: n random archs of
NB201 CIFAR-100 with their validation accuracy; each repeat uses a different random set and
the strategy's own first (cold) fit plus warm-started refits, as in a run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from metanas import strategies  # noqa: E402
from metanas.benchmarks import get_benchmark  # noqa: E402


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


def parse_threads(text: str) -> list[int]:
    from metanas.errors import UserInputError

    try:
        threads = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        threads = []
    if not threads or min(threads) < 1:
        raise UserInputError(f"--threads {text!r}: give comma-separated positive integers, "
                             f"e.g. 1,2")
    return threads


def main(argv=None):
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None):
    from metanas.errors import UserInputError
    from metanas.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--obs", type=int, default=50)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--threads", default="1,2")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpbo_step"))
    a = p.parse_args(argv)
    for name, v in (("--obs", a.obs), ("--repeats", a.repeats)):
        if v < 1:
            raise UserInputError(f"{name} must be >= 1, got {v}")
    threads = parse_threads(a.threads)
    bench = get_benchmark("nb201/cifar100")
    if a.obs + 1 > bench.space.size:
        raise UserInputError(f"--obs must be < {bench.space.size} (the NB201 cells), got {a.obs}")
    res = {"space": "nb201", "n_candidates": bench.space.size, "n_obs": a.obs, "threads": {}}
    for t in threads:
        torch.set_num_threads(t)
        res["threads"][t] = step_times(bench, a.obs, a.repeats)
        print(t, "thread(s): cold median", round(res["threads"][t]["cold_median_s"], 3),
              "s, warm median", round(res["threads"][t]["warm_median_s"], 3), "s", flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out.with_suffix(".json"), res, indent=1)
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
