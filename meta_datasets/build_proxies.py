"""Full-space zero-cost proxy table for NAS-Bench-201, computed with ``metanas.proxies``.

The published NB201 proxy tables (NAS-Bench-Suite-Zero) score only ~725 of the 15625 cells;
this script scores every cell with cheap proxies on a small network and the offline digits
batch, so that proxy-aware strategies (``proxybo``) can search the whole space.

Setting (fixed, reproducible): ``synflow_log``, ``nwot``, ``jacob_cov`` of ``CellNetwork(arch,
nb201, NetworkConfig(C=8, N=1, in_channels=3, num_classes=10), seed=0)`` on
``digits_batch(n=32, size=16, seed=0)``, one torch thread. Output:
``meta_datasets/nb201/proxies_digits.parquet`` in the proxies schema
(``metanas.meta_dataset.PROXIES_SCHEMA``), source ``"metanas-digits"``, proxy names prefixed
``digits_`` (so they never clash with the published ``nwot`` etc.), the same scores repeated
for each NB201 task (the batch does not depend on the task). Prints the Spearman rho of each
proxy against each task's valid accuracy.

Cost: about 0.1-0.27 s per cell on one shared core (measured on 30 cells: synflow_log 0.08 s,
nwot 0.05 s, jacob_cov 0.11 s, network build 0.02 s under load), i.e. 30-70 min for the
space. Progress is checkpointed every ``--chunk`` cells in ``<output>.partial.npz``, so an
interrupted build resumes.

    python meta_datasets/build_proxies.py                    # the whole space
    python meta_datasets/build_proxies.py --limit 50 --output /tmp/p.parquet   # a quick check
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PROXIES = ("synflow_log", "nwot", "jacob_cov")
SOURCE = "metanas-digits"


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    p.add_argument("--output", default=str(here / "nb201" / "proxies_digits.parquet"))
    p.add_argument("--limit", type=int, default=None, help="score only the first N cells")
    p.add_argument("--chunk", type=int, default=250)
    args = p.parse_args(argv)

    import pandas as pd
    import torch

    torch.set_num_threads(1)
    from metanas.meta_dataset import MetaDataset, PROXIES_SCHEMA, table_to_parquet_bytes
    from metanas.nn.cell_network import NetworkConfig
    from metanas.proxies import compute_many, digits_batch
    from metanas.spaces import get

    sp = get("nb201")
    archs = sp.enumerate()[: args.limit] if args.limit else sp.enumerate()
    n = len(archs)
    batch = digits_batch(n=32, size=16, seed=0)
    cfg = NetworkConfig(C=8, N=1, in_channels=3, num_classes=10)
    out = Path(args.output)
    partial = out.with_suffix(".partial.npz")
    scores = np.full((n, len(PROXIES)), np.nan)
    times = np.full((n, len(PROXIES)), np.nan)
    done = 0
    if partial.exists():
        z = np.load(partial)
        if z["scores"].shape == scores.shape:
            scores, times, done = z["scores"], z["times"], int(z["done"])
    t0 = time.perf_counter()
    while done < n:
        hi = min(n, done + args.chunk)
        s, tm = compute_many(PROXIES, archs[done:hi], sp, batch=batch, config=cfg, seed=0,
                             return_times=True)
        for k, name in enumerate(PROXIES):
            scores[done:hi, k] = s[name]
            times[done:hi, k] = tm[name] + tm["build"]
        done = hi
        out.parent.mkdir(parents=True, exist_ok=True)
        np.savez(partial, scores=scores, times=times, done=done)
        rate = (time.perf_counter() - t0) / max(1, done)
        print(f"{done}/{n} cells, {rate:.3f} s/cell", flush=True)

    md = MetaDataset.load("nb201")
    tasks = md.task_ids("nb201")
    strs = [sp.to_str(a) for a in archs]
    frames = []
    scores[~np.isfinite(scores)] = np.nan
    for t in tasks:
        for k, name in enumerate(PROXIES):
            frames.append(pd.DataFrame({"task": t, "space": "nb201", "arch": strs,
                                        "proxy": f"digits_{name}", "score": scores[:, k],
                                        "time_s": times[:, k], "source": SOURCE}))
    df = pd.concat(frames, ignore_index=True)
    out.write_bytes(table_to_parquet_bytes(df, PROXIES_SCHEMA))
    if partial.exists():
        partial.unlink()
    from scipy.stats import spearmanr

    for t in tasks:
        acc = md.table(t).reindex(strs).to_numpy()
        rhos = {name: round(float(spearmanr(np.nan_to_num(scores[:, k], nan=-np.inf), acc)
                                  .correlation), 3) for k, name in enumerate(PROXIES)}
        print(t, "Spearman vs valid acc:", rhos)
    print(f"wrote {out} ({len(df)} rows)")


if __name__ == "__main__":
    main()
