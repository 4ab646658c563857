#!/usr/bin/env python
"""TNAS when the meta-learned prior points the wrong way: searching NB201 for the fastest cell.

The shipped NB201 surrogate (``pretrained/tnas-nb201``) is meta-trained on accuracy (the three
NB201 datasets and MetaD2A's tasks). Here it searches objectives whose ranking runs against
accuracy's: minus the measured latency of the NB201 network on a device (HELP's table, shipped
as ``meta_datasets/hardware/nb201_latency.parquet``). TNAS's top-5 initial design is then among the
slowest cells, and everything after it must come from test-time BO on the observations.

The 341 cells whose output is identically zero (no path of non-``none`` ops from the input,
``CellSpace.computes_zero``) are left out: their prediction ignores the input, so nobody would
deploy one. On the Pixel 3 and the Raspberry Pi 4, 283 and 289 of them are measured faster
than every cell that computes something (down to 0.003 and 0.011 ms, against 1.05 and 2.53
ms), which would make the task "find a degenerate cell"; on the other 25 devices none is. The
search space is the other 15,284 cells.

For each device (``--devices``, default four with near-unique values: a Raspberry Pi 4, a
Pixel 3 phone, a Titan RTX GPU at batch 1 and a Xeon Gold 6226 CPU): the device's table is
written as a user CSV (``arch``, ``neg_latency_ms``) under ``<out>/tnas_wrong_prior_tables/``,
then ``metanas.harness`` runs ``tnas`` (the shipped checkpoint, default settings), its
variants (``--variants``, JSON ``{name: tnas kwargs}``, reported as ``tnas[name]``; default
``noadapt``: no test-time adaptation) and ``rs``, ``rea``, ``gp-bo`` (``--seeds`` x
``--budget``), exactly as ``adapt.py --task-table`` would. Writes
``<out>/tnas_wrong_prior_<device>.json`` / ``.png`` (best-so-far curves) and
``<out>/tnas_wrong_prior_summary.json``: per device the prior's Spearman correlation with the
objective and the table ranks of its top 5, and per method the top fraction at 10, 20, 50 and
100 evaluations, the best at 20 and 100, the regret in units of the table's standard
deviation; the checks ``tnas tf@20 <= every baseline's`` and ``tnas best@100 >= rea``; plus
``tnas_wrong_prior.png`` (top fraction vs evaluations per device). Resumable (every run).

    python benchmarks/tnas_wrong_prior.py --seeds 10 --budget 100
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tnas_common import add_harness_args, parse_variants, run_groups  # noqa: E402

SPACE = "nb201"
CHECKPOINT = ROOT / "pretrained" / "tnas-nb201"
DEVICES = ("raspi4", "pixel3", "titan_rtx_1", "gold_6226")
METRIC = "neg_latency_ms"
BASELINES = ("rs", "rea", "gp-bo")
VARIANTS = {"noadapt": {"adapt": False}}
AT = (10, 20, 50, 100)
#: where the plot draws a mean top fraction of 0 (log axis): below one cell in 15284 of one
#: seed in 10
FLOOR = 1e-6


def write_table(lat, folder: Path) -> Path:
    """A device's latencies ``lat`` (a column of ``nb201_latency()`` restricted to the cells
    searched) as a user CSV (``arch``, ``neg_latency_ms``: higher is better)."""
    from metanas.io import atomic_write_bytes

    body = "arch," + METRIC + "\n" + "".join(f"{a},{-v!r}\n" for a, v in lat.items())
    path = folder / f"nb201_latency_{lat.name}.csv"
    if not path.is_file() or path.read_text() != body:
        atomic_write_bytes(path, body.encode())
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--devices", default=",".join(DEVICES),
                   help="comma-separated columns of the latency table (default: %(default)s)")
    add_harness_args(p, VARIANTS, ROOT / "benchmarks" / "results")
    a = p.parse_args(argv)
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(p, a, argv)


def _main(p: argparse.ArgumentParser, a, argv) -> int:
    if a.seeds < 1:
        p.error(f"--seeds must be >= 1, got {a.seeds}")
    if a.budget < 20:
        p.error("--budget must be at least 20 (the summary compares the methods at 20)")
    variants = parse_variants(p, a.variants)
    at = [k for k in AT if k <= a.budget]
    import torch

    from metanas.benchmarks import get_benchmark
    from metanas.harness import plot_results
    from metanas.io import atomic_write_json, weights_fingerprint
    from tnas_loto import task_summary
    from tnas_unlike import prior_agreement

    torch.set_num_threads(1)
    out = Path(a.out)
    tables = out / "tnas_wrong_prior_tables"
    tables.mkdir(parents=True, exist_ok=True)
    devices = [d for d in a.devices.split(",") if d]
    from metanas import spaces
    from metanas.errors import UserInputError
    from metanas.meta_dataset import nb201_latency

    try:
        lat = nb201_latency(devices)
    except UserInputError as exc:
        p.error(f"--devices: {exc}")
    space = spaces.get(SPACE)  # the cells that compute something (the others: see above)
    lat = lat[[not space.computes_zero(space.from_str(x)) for x in lat.index]]

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    summary = {"command": "python benchmarks/tnas_wrong_prior.py " + shlex.join(
        sys.argv[1:] if argv is None else argv), "seeds": a.seeds, "budget": a.budget,
        "checkpoint": str(CHECKPOINT.relative_to(ROOT)),
        "checkpoint_sha1": weights_fingerprint(CHECKPOINT), "metric": METRIC, "tasks": {}}
    for dev in devices:
        csv = write_table(lat[dev], tables)
        label = f"nb201_latency/{dev}"
        bench = get_benchmark(str(csv), space=SPACE, metric=METRIC)
        base = out / f"tnas_wrong_prior_{dev}"
        groups = [("main", ["tnas", *BASELINES], {})]
        groups += [(v, ["tnas"], {"tnas": dict(kw)}) for v, kw in variants.items()]
        merged = run_groups(groups, base, log, label, space=SPACE, task=label,
                            task_table=str(csv), metric=METRIC, seeds=list(range(a.seeds)),
                            budget=a.budget, workers=a.workers)
        atomic_write_json(base.with_suffix(".json"), merged)
        plot_results(merged, base.with_suffix(".png"),
                     title=f"NB201, minus the latency on {dev}: TNAS with the accuracy prior")
        ts = task_summary(merged, bench.values())
        for m, r in merged["results"].items():  # top fraction at every reported budget
            s = r["summary"]
            for k in at:
                if f"top_fraction@{k}" in s:
                    ts["methods"][m][f"top_fraction@{k}"] = s[f"top_fraction@{k}"]["mean"]
                    ts["methods"][m][f"top_fraction@{k}_se"] = s[f"top_fraction@{k}"]["se"]
        rows = ts["methods"]
        ts["checks"]["tnas_top_fraction@20<=every_baseline"] = bool(all(
            rows["tnas"]["top_fraction@20"] <= rows[b]["top_fraction@20"] for b in BASELINES))
        summary["tasks"][label] = {"prior": prior_agreement(CHECKPOINT, bench),
                                   "methods": rows, "checks": ts["checks"],
                                   "curves": {m: [float(np.mean([bench.top_fraction(
                                       h["best_so_far"]) for h in (run["history"][i]
                                                                   for run in r["runs"])]))
                                       for i in range(a.budget)]
                                       for m, r in merged["results"].items()}}
        atomic_write_json(out / "tnas_wrong_prior_summary.json", summary, indent=1)
        log(f"{label}: prior {summary['tasks'][label]['prior']}; " + "  ".join(
            f"{m} " + "/".join(f"{100 * r[f'top_fraction@{k}']:.2f}%" for k in at)
            for m, r in rows.items()))
    methods = list(next(iter(summary["tasks"].values()))["methods"])
    summary["mean_over_tasks"] = {
        m: {f"top_fraction@{k}": float(np.mean([t["methods"][m][f"top_fraction@{k}"]
                                                for t in summary["tasks"].values()]))
            for k in at} for m in methods}
    atomic_write_json(out / "tnas_wrong_prior_summary.json", summary, indent=1)
    plot(summary, out / "tnas_wrong_prior.png")
    for m, r in summary["mean_over_tasks"].items():
        print(f"{m:16s} " + "  ".join(f"tf@{k} {100 * r[f'top_fraction@{k}']:6.3f}%" for k in at))
    return 0


def plot(summary: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary["tasks"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 3.4), squeeze=False)
    for ax, t in zip(axes[0], tasks):
        d = summary["tasks"][t]
        for m, c in d["curves"].items():
            ax.plot(np.arange(1, len(c) + 1), 100 * np.maximum(c, FLOOR), label=m)
        ax.axhline(0.5, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel("evaluations")
        ax.set_title(f"{t.split('/')[-1]} (prior Spearman {d['prior']['spearman']:.2f})",
                     fontsize=9)
    axes[0][0].set_ylabel(f"mean top fraction (%; 0 at {100 * FLOOR:g}%)")
    axes[0][-1].legend(fontsize=7)
    fig.suptitle("NB201, fastest cell on a device: the shipped accuracy prior is wrong "
                 f"({summary['seeds']} seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
