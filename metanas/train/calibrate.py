"""Calibrate the live-training recipe: throughput and agreement with NAS-Bench-201.

``python -m metanas.train.calibrate --task digits:classes=0,3,5,7,9 --n-archs 40 --epochs 12``
trains a probe set of ``--n-archs`` NB201 architectures (one per isomorphism class, drawn
with ``--arch-seed``) on each task, serially in this process (1 thread), optionally again on a
local Dask cluster (``--workers 2``), and reports:

* seconds per architecture and architectures per minute (serial wall time; Dask wall time
  of the whole batch, cluster start excluded);
* Spearman's rho between the live valid / test accuracy and NAS-Bench-201's CIFAR-10 test
  accuracy at 200 epochs (``MetaDataset.load("nb201").table("nb201/cifar10", split="test")``),
  a sanity check that the recipe ranks architectures sensibly;
* whether the Dask results equal the serial ones.

Writes a JSON summary with ``--out``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import fields

import numpy as np


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def main(argv=None) -> int:
    from ..benchmarks.live import DaskEvaluator, LiveBenchmark, local_client
    from ..meta_dataset import MetaDataset
    from ..spaces import get as get_space
    from .build import probe_archs
    from .data import TaskSpec
    from .trainer import TrainConfig

    ap = argparse.ArgumentParser(prog="python -m metanas.train.calibrate", description=__doc__)
    ap.add_argument("--task", action="append", default=[])
    ap.add_argument("--n-archs", type=int, default=40)
    ap.add_argument("--arch-seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=0, help="also time a Dask run (0 = skip)")
    ap.add_argument("--out")
    for f in fields(TrainConfig):
        ap.add_argument(f"--{f.name}", dest=f"cfg_{f.name}")
    args = ap.parse_args(argv)
    cfg = TrainConfig.from_strings({f.name: getattr(args, f"cfg_{f.name}") for f in fields(TrainConfig)
                                    if getattr(args, f"cfg_{f.name}") is not None})
    tasks = [TaskSpec.parse(t) for t in (args.task or ["digits:classes=0,3,5,7,9"])]
    sp = get_space("nb201")
    archs = probe_archs(sp, args.n_archs, args.arch_seed)
    ref = MetaDataset.load("nb201").table("nb201/cifar10", split="test")
    ref_vals = np.array([ref[sp.to_str(a)] for a in archs])
    summary = {"config": cfg.to_dict(), "n_archs": len(archs), "arch_seed": args.arch_seed,
               "tasks": []}
    for spec in tasks:
        bench = LiveBenchmark(sp, spec, cfg)
        d = bench.data
        bench.evaluate(archs[:1])  # warm-up (first-call overheads), not timed
        t0 = time.perf_counter()
        evs = bench.evaluate(archs)
        serial_s = time.perf_counter() - t0
        va = np.array([e.value for e in evs])
        te = np.array([e.report["test"] for e in evs])
        rec = {"task": spec.id, "sizes": d.sizes(), "image_size": d.image_size,
               "serial_wall_s": serial_s, "s_per_arch": serial_s / len(archs),
               "archs_per_min_serial": 60 * len(archs) / serial_s,
               "valid_acc_mean": float(va.mean()), "valid_acc_min": float(va.min()),
               "valid_acc_max": float(va.max()),
               "spearman_valid_vs_nb201_c10": spearman(va, ref_vals),
               "spearman_test_vs_nb201_c10": spearman(te, ref_vals),
               "spearman_valid_vs_test": spearman(va, te),
               "archs": [sp.to_str(a) for a in archs], "valid_acc": va.tolist(),
               "test_acc": te.tolist(), "nb201_cifar10_test": ref_vals.tolist(),
               "wall_s": [e.cost_s for e in evs]}
        if args.workers:
            client = local_client(args.workers)
            try:
                with DaskEvaluator(bench.factory(), client=client) as de:
                    de.evaluate(archs[:args.workers])  # warm-up: worker imports + data
                    t0 = time.perf_counter()
                    devs = de.evaluate(archs)
                    dask_s = time.perf_counter() - t0
            finally:
                cluster = client.cluster
                client.close()
                cluster.close()
            rec.update(dask_workers=args.workers, dask_wall_s=dask_s,
                       archs_per_min_dask=60 * len(archs) / dask_s,
                       dask_equals_serial=[(e.value, e.report) for e in devs]
                       == [(e.value, e.report) for e in evs])
        summary["tasks"].append(rec)
        print(json.dumps({k: v for k, v in rec.items() if not isinstance(v, list)}, indent=1),
              flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(summary, fh, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
