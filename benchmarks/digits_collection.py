#!/usr/bin/env python
"""Facts about a live-built collection (default: the shipped ``meta_datasets/digits_live``).

Reports the number of tasks and architectures, the total CPU time of the evaluations (sum of
the measured ``cost_s``), the accuracy spread, how correlated the tasks are with each other
(Spearman's rho of the valid accuracies over the shared probe architectures, every task
pair), valid-vs-test agreement within a task, and each task's rank correlation with the
NAS-Bench-201 tables (test accuracy at 200 epochs) on the same cells. Writes
``digits_collection.json`` + ``.png`` (task x task correlation heat map).

    python benchmarks/digits_collection.py
    python benchmarks/digits_collection.py --collection DIR --partial-work-dir WORK  # unfinished
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _stats(v) -> dict:
    v = np.asarray(v, dtype=float)
    return {"mean": float(v.mean()), "median": float(np.median(v)), "min": float(v.min()),
            "max": float(v.max())}


def main(argv=None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from metanas.cli import _one_line_errors

    with _one_line_errors():  # MetaDatasetNotFound is a FileNotFoundError
        return _main(argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collection", default=str(ROOT / "meta_datasets" / "digits_live"))
    p.add_argument("--partial-work-dir", default=None,
                   help="read the unfinished build's shards from this work dir instead")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "digits_collection.json"))
    a = p.parse_args(argv)
    from scipy.stats import spearmanr

    from metanas.meta_dataset import MetaDataset

    if a.partial_work_dir:
        from metanas.train.build import collect

        md = collect(a.collection, partial=True, work_dir=a.partial_work_dir)
    else:
        md = MetaDataset.load(a.collection)
    tasks = md.task_ids()
    tr = md.triples
    if len(tasks) < 2 or not (tr["metric"] == "cost_s").any():
        from metanas.errors import UserInputError

        raise UserInputError(f"--collection {a.collection}: needs a live-built collection with "
                             f"at least 2 tasks and measured cost_s (has {len(tasks)} tasks); "
                             f"give a folder built by metanas' live builder, e.g. "
                             f"meta_datasets/digits_live")
    valid = {t: md.table(t, "acc", split="valid") for t in tasks}
    test = {t: md.table(t, "acc", split="test") for t in tasks}
    common = sorted(set.intersection(*(set(v.index) for v in valid.values())))
    n = len(tasks)
    mat = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            r = spearmanr(valid[tasks[i]][common], valid[tasks[j]][common]).statistic
            mat[i, j] = mat[j, i] = r
    off = mat[np.triu_indices(n, 1)]
    nb = MetaDataset.load("nb201")
    ref = {d: nb.table(f"nb201/{d}", split="test") for d in ("cifar10", "cifar100",
                                                             "imagenet16-120")}
    per_task = []
    for t in tasks:
        v = valid[t]
        row = {"task": t, "n_archs": len(v), "valid_acc": _stats(v.values),
               "spearman_valid_test": float(spearmanr(v, test[t][v.index]).statistic)}
        for d, tab in ref.items():
            row[f"spearman_valid_vs_nb201_{d}"] = float(spearmanr(v, tab[v.index]).statistic)
        per_task.append(row)
    cost = tr[tr["metric"] == "cost_s"]["value"]
    mean_valid = np.mean([valid[t][common].to_numpy() for t in tasks], axis=0)
    res = {
        "collection": str(a.collection), "partial": bool(a.partial_work_dir),
        "n_tasks": n, "n_archs_per_task": _stats([len(valid[t]) for t in tasks]),
        "n_distinct_archs": int(tr["arch"].nunique()), "n_shared_archs": len(common),
        "n_evaluations": int(len(cost)), "cpu_time_s_total": float(cost.sum()),
        "cpu_time_s_per_eval": _stats(cost.values),
        "fidelity_epochs": sorted(int(f) for f in tr["fidelity"].unique()),
        "task_task_spearman": {**_stats(off), "q25": float(np.quantile(off, 0.25)),
                               "q75": float(np.quantile(off, 0.75))},
        "mean_task_vs_nb201": {d: float(spearmanr(mean_valid, tab[common]).statistic)
                               for d, tab in ref.items()},
        "per_task": per_task, "tasks": tasks, "spearman_matrix": mat.tolist(),
        "command": "python benchmarks/digits_collection.py " + " ".join(
            argv if argv is not None else sys.argv[1:]),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, out)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [1.2, 1]})
    im = ax[0].imshow(mat, vmin=0, vmax=1, cmap="viridis")
    short = [t.split("/")[-1].replace("digits-", "") for t in tasks]
    ax[0].set_xticks(range(n), short, rotation=90, fontsize=6)
    ax[0].set_yticks(range(n), short, fontsize=6)
    ax[0].set_title(f"task x task Spearman ({len(common)} shared archs)")
    fig.colorbar(im, ax=ax[0], fraction=0.046)
    for d in ref:
        ax[1].hist([r[f"spearman_valid_vs_nb201_{d}"] for r in per_task], bins=10, alpha=0.5,
                   label=f"vs NB201 {d}")
    ax[1].hist(off, bins=20, alpha=0.5, label="task vs task")
    ax[1].set_xlabel("Spearman's rho")
    ax[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out.with_suffix(".png"), dpi=110)
    print(json.dumps({k: v for k, v in res.items()
                      if k not in ("per_task", "tasks", "spearman_matrix")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
