#!/usr/bin/env python
"""Live-training throughput (serial vs Dask) and how the digits recipe ranks NB201 cells.

Runs ``python -m metanas.train.calibrate`` (the default ``TrainConfig``: C=8, N=1, 12 epochs)
on a 5-way digits task with ``--n-archs`` probe architectures (one per isomorphism class),
once serially in this process (one thread) and once on a local Dask cluster of ``--workers``
single-thread workers, then plots architectures per minute and the live valid accuracy
against NAS-Bench-201's CIFAR-10 / CIFAR-100 test accuracy of the same cells (Spearman's rho).
Use it on otherwise idle cores: the numbers are wall-clock. Writes ``live_throughput.json`` +
``.png``.

    python benchmarks/live_throughput.py --n-archs 40 --workers 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task", default="digits:classes=0,3,5,7,9")
    p.add_argument("--n-archs", type=int, default=40)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "live_throughput.json"))
    a = p.parse_args(argv)
    from metanas.errors import UserInputError

    for name, v, lo in (("--n-archs", a.n_archs, 3), ("--workers", a.workers, 1)):
        if v < lo:
            raise UserInputError(f"{name} must be >= {lo}, got {v}")
    import torch

    torch.set_num_threads(1)
    from scipy.stats import spearmanr

    from metanas.train import build_task

    build_task(a.task)  # an unknown task fails here, with a one-line error

    from metanas.meta_dataset import MetaDataset
    from metanas.train import calibrate

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    calibrate.main(["--task", a.task, "--n-archs", str(a.n_archs), "--workers", str(a.workers),
                    "--out", str(out)])
    res = json.loads(out.read_text())
    rec = res["tasks"][0]
    c100 = MetaDataset.load("nb201").table("nb201/cifar100", split="test")
    ref100 = np.array([c100[s] for s in rec["archs"]])
    rec["nb201_cifar100_test"] = ref100.tolist()
    rec["spearman_valid_vs_nb201_c100"] = float(spearmanr(rec["valid_acc"], ref100).statistic)
    rec["spearman_test_vs_nb201_c100"] = float(spearmanr(rec["test_acc"], ref100).statistic)
    res["cpu_count"] = os.cpu_count()
    res["command"] = "python benchmarks/live_throughput.py " + " ".join(argv or sys.argv[1:])
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, out)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    bars = {"serial (1 core)": rec["archs_per_min_serial"],
            f"Dask ({a.workers} workers)": rec.get("archs_per_min_dask", float("nan"))}
    ax[0].bar(list(bars), list(bars.values()), color=["tab:gray", "tab:blue"])
    ax[0].set_ylabel("architectures trained per minute")
    ax[0].set_title(f"{rec['task']}, {res['n_archs']} archs, {res['config']['epochs']} epochs")
    ax[1].scatter(rec["nb201_cifar10_test"], rec["valid_acc"], s=14)
    ax[1].set_xlabel("NB201 CIFAR-10 test acc (200 epochs)")
    ax[1].set_ylabel("live digits valid acc")
    ax[1].set_title(f"Spearman {rec['spearman_valid_vs_nb201_c10']:.2f} (C-10), "
                    f"{rec['spearman_valid_vs_nb201_c100']:.2f} (C-100)")
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    print(json.dumps({k: v for k, v in rec.items() if not isinstance(v, list)}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
