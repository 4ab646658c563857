#!/usr/bin/env python
"""Speed of one BO step of ``tnas`` vs ``gp-bo`` on NAS-Bench-201 (all 15625 cells).

A *step* is one ``ask(1)`` after ``n`` observations: for ``tnas`` the test-time adaptation
(reset to the meta weights, guarded fitting of the GP's hyper-parameters, the residual kernel
from 20 observations: the strategy's defaults) + scoring every candidate; for
``gp-bo`` the GP fit (L-BFGS on the marginal likelihood) + scoring every candidate. The
observations are ``n`` uniformly drawn cells with their ``nb201/cifar100`` validation
accuracy. Median (and quartiles) over ``--reps`` repetitions (a different draw each), one
torch thread. The one-off ``tnas`` setup per process (loading the checkpoint, encoding all
cells once) is reported separately. Writes ``tnas_speed.json`` + ``.png``.

    python benchmarks/tnas_speed.py --reps 7
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="nb201/cifar100")
    p.add_argument("--n", default="20,100")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--methods", default="tnas,gp-bo")
    p.add_argument("--pretrained", default="auto", help="tnas checkpoint (default shipped)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tnas_speed.json"))
    a = p.parse_args(argv)
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(p, a)


def _main(p: argparse.ArgumentParser, a) -> int:
    if a.reps < 1:
        p.error(f"--reps must be >= 1, got {a.reps}")
    try:
        ns = [int(x) for x in a.n.split(",") if x]
    except ValueError:
        p.error(f"--n needs comma-separated integers, got {a.n!r}")
    if not ns or min(ns) < 1:
        p.error(f"--n needs observation counts >= 1, got {a.n!r}")
    methods = [m for m in a.methods.split(",") if m]
    if not methods:
        p.error("--methods is empty")
    import torch

    torch.set_num_threads(1)
    from metanas import spaces, strategies
    from metanas.meta_dataset import MetaDataset

    space = spaces.get("nb201")
    table = MetaDataset.load("nb201").table(a.task)
    archs = [space.from_str(s) for s in table.index]
    vals = table.to_numpy()
    unknown = [m for m in methods if m not in strategies.available()]
    if unknown:
        p.error(f"--methods: unknown {unknown[0]!r}; choose from "
                f"{', '.join(strategies.available())}")
    no_init = [m for m in methods if "n_init" not in strategies.constructor_params(m)]
    if no_init:  # a step here is a model-based one after n observations
        p.error(f"--methods: {no_init[0]} has no model-based step (no n_init); choose "
                "model-based methods, e.g. tnas,gp-bo")
    res: dict = {"task": a.task, "space": "nb201", "n_candidates": space.size,
                 "reps": a.reps, "torch_threads": 1, "results": {}}
    t0 = time.perf_counter()
    st = strategies.make("tnas", space, seed=0, pretrained=a.pretrained)
    _ = st.model
    res["tnas_setup_s"] = time.perf_counter() - t0
    for m in methods:
        res["results"][m] = {}
        for n in ns:
            times, parts = [], []
            for r in range(a.reps):
                rng = np.random.default_rng(1000 * n + r)
                idx = rng.choice(len(archs), size=n, replace=False)
                kw = {"pretrained": a.pretrained} if m == "tnas" else {}
                s = strategies.make(m, space, seed=r, n_init=2, **kw)
                s.tell([archs[i] for i in idx], [float(vals[i]) for i in idx])
                if m == "tnas":
                    _ = s.model  # cached per process: excluded from the step
                t = time.perf_counter()
                s.ask(1)
                times.append(time.perf_counter() - t)
                parts.append(dict(s.last_step))
            q = np.percentile(times, [25, 50, 75])
            res["results"][m][str(n)] = {"median_s": float(q[1]), "q25_s": float(q[0]),
                                         "q75_s": float(q[2]), "times_s": times,
                                         "last_step": parts[-1]}
            print(f"{m:6s} n={n:4d}: median step {q[1]:.3f} s (IQR {q[0]:.3f}-{q[2]:.3f})",
                  flush=True)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from metanas.io import atomic_write_json

    atomic_write_json(out, res, indent=1)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.6, 3.6), dpi=120)
    w = 0.8 / len(methods)
    for i, m in enumerate(methods):
        med = [res["results"][m][str(n)]["median_s"] for n in ns]
        lo = [med[j] - res["results"][m][str(n)]["q25_s"] for j, n in enumerate(ns)]
        hi = [res["results"][m][str(n)]["q75_s"] - med[j] for j, n in enumerate(ns)]
        ax.bar(np.arange(len(ns)) + i * w, med, w, yerr=[lo, hi], label=m, capsize=3)
    ax.set_xticks(np.arange(len(ns)) + w * (len(methods) - 1) / 2)
    ax.set_xticklabels([f"{n} obs" for n in ns])
    ax.set_ylabel("median BO step (s)")
    ax.set_title("NB201, 15625 candidates, 1 thread")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
