#!/usr/bin/env python
"""TNAS on NB201 tasks unlike CIFAR: held-out digits tasks of the live-built collection.

The shipped ``digits_live`` collection (``meta_datasets/digits_live``: 5-way digits
class-subset tasks x the same probe set of NB201 cells, trained for real) has tasks whose
architecture ranking differs from CIFAR's (Spearman ~0.4 with NB201 CIFAR-10) and that carry
real image samples for the dataset encoder. The first ``--held-out`` tasks of the collection
(in build order; the same five 5-way subsets BASE holds out, ``metanas.base.meta.draw_tasks``)
are never meta-trained on. For each of them the harness runs, over
``--seeds`` seeds and ``--budget`` evaluations on the task's table (the candidates are the
task's measured cells):

* ``tnas``: the shipped ``pretrained/tnas-nb201`` (``--ckpt``), meta-trained on NB201's three
  datasets + MetaD2A's tasks and on no digits task: the meta-learned prior is from unlike
  tasks, adaptation must recover;
* ``tnas[noadapt]``: the same without test-time adaptation (the GP is only conditioned on the
  observations): what adaptation buys;
* ``tnas[adapt-head]``: test-time adaptation of the MLP head too (``trainable="head"``, the
  previous default; the default adapts the GP's hyper-parameters only);
* ``tnas[logei]``: log-EI instead of the default UCB;
* ``tnas[tables]`` (not in the default ``--variants``): the initial design from the
  meta-training tasks' own tables (``prior="tables"``) instead of the meta-trained surrogate;
* ``tnas[adapt-auto]``: adaptation from 3 observations (leave-one-out guard below 8; the
  default is the held-out guard, adaptation from 8 observations);
* ``tnas[scratch]``: same model, no meta-training (its head adapted at test time:
  ``trainable="head"``);
* ``tnas[digits-prior]``: the opt-in recipe that also meta-trains on the collection's other
  15 digits tasks (``--digits-ckpt``; meta-trained into that folder on first use, ~3 min; the
  shipped recipe before it left the collection out): transfer from similar tasks, and the only
  checkpoint whose dataset encoder has seen image samples;
* ``tnas[digits-prior-nodata]``: that checkpoint with the dataset encoder off (learned no-data
  embedding): the dataset-encoder ablation;
* ``tnas[digits-prior-noadapt]``: that checkpoint without test-time adaptation;
* ``tnas[ensemble]`` (not in the default ``--variants``): the ensemble of ``--ckpt`` and its
  recipe re-trained with the meta-training seeds ``--ensemble-seeds`` (``pretrained=[...]``,
  the members' mixture posterior);
* ``rs``, ``rea``, ``gp-bo``.

Writes ``tnas_digits_<task>.json`` + ``.png`` per task and ``tnas_digits_summary.json``
(top fraction and best@k per method, means over tasks). A run keeps the summary's other tasks
when they were made with the same settings (seeds, budget, methods, variants, checkpoint
weights; recorded per task); the means are over the tasks present
(``mean_over_tasks_covers``). Resumable (harness checkpoints; the
harness names runs by the checkpoint's weights, so runs of re-trained weights are never
reused).

    python benchmarks/tnas_digits.py --seeds 10 --budget 50
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tnas_common import check_names, kept_tasks, mean_over_tasks, run_groups  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results"
COLLECTION = "digits_live"


def held_out_tasks(n: int) -> list[str]:
    """The first ``n`` tasks the builder drew for the collection (``draw_class_subsets`` of
    the 10 digit classes, 5-way, task seed 0: its plan order), as collection task ids."""
    from metanas.meta_dataset import MetaDataset
    from metanas.train.build import draw_class_subsets

    subsets = draw_class_subsets([str(i) for i in range(10)], n, 5, seed=0)
    ids = [f"{COLLECTION}/digits-" + "-".join(s) for s in subsets]
    have = set(MetaDataset.load(COLLECTION).task_ids())
    missing = [t for t in ids if t not in have]
    if missing:
        raise SystemExit(f"error: {missing[0]} is not in meta_datasets/{COLLECTION}")
    return ids


def nb201_checkpoint(path: str | Path, exclude: list[str], what: str) -> Path:
    """The shipped NB201 recipe meta-trained without the tasks ``exclude``, in ``path``:
    meta-trained there on first use (resumable), reused once its training is done with these
    very settings (``tnas_loto.trained_checkpoint``: a folder meta-trained with other settings,
    e.g. other held-out tasks, is re-trained, never reused)."""
    from tnas_loto import trained_checkpoint

    from metanas.meta.tnas_train import TrainConfig

    path = Path(path)
    cfg = TrainConfig(space="nb201", exclude=list(exclude))
    return trained_checkpoint(
        path, cfg, lambda msg: print(msg, flush=True), what,
        "python train_meta.py --space nb201 " + " ".join(f"--exclude-task {t}" for t in exclude)
        + f" --out {path}")[0]


def digits_prior_checkpoint(path: str | Path, held_out: list[str]) -> Path:
    """The opt-in digits-inclusive recipe (NB201 + MetaD2A + the collection's tasks except
    ``held_out``) in ``path``, meta-trained there on first use (~3-5 min; resumable)."""
    return nb201_checkpoint(path, held_out, f"nb201 + digits without {len(held_out)} tasks")


def table_noise(task: str, top: int = 50) -> dict:
    """How much the searched (validation) accuracy of ``task`` says about held-out (test)
    accuracy near the top: cells tied at the best validation value, the test accuracies of
    those cells against the best test accuracy, and the Spearman correlation of validation
    and test over the ``top`` cells by validation accuracy."""
    from scipy.stats import spearmanr

    from metanas.benchmarks import TabularBenchmark

    b = TabularBenchmark.from_task(task)
    valid = b.values()
    test = np.array([b.lookup(a).report["test"] for a in b.candidates()])
    at_max = valid >= valid.max()
    best = np.argsort(-valid, kind="stable")[:top]
    return {"n_cells": int(valid.size), "valid_step": float(np.min(np.diff(np.unique(valid)))),
            "cells_at_best_valid": int(at_max.sum()),
            "test_of_cells_at_best_valid": test[at_max].tolist(),
            "best_test": float(test.max()),
            f"spearman_valid_test_top{top}": float(spearmanr(valid[best], test[best])[0])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--held-out", type=int, default=5)
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--methods", default="tnas,rs,rea,gp-bo")
    p.add_argument("--variants",
                   default="noresidual,noadapt,logei,adapt-auto,scratch,digits-prior,"
                           "digits-prior-nodata,digits-prior-noadapt")
    p.add_argument("--ckpt", default=str(ROOT / "pretrained" / "tnas-nb201"))
    p.add_argument("--digits-ckpt", default=str(DEFAULT_OUT / "tnas_digits_ckpt" / "with_digits"))
    p.add_argument("--ensemble-seeds", default="1,2",
                   help="variant 'ensemble': --ckpt plus its recipe re-trained with these "
                        "meta-training seeds (tnas_select.seed_checkpoint, trained on first use)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--name", default="tnas_digits",
                   help="result stem: <out>/<name>_<task>.json and <name>_summary.json")
    a = p.parse_args(argv)
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(p, a, argv)


def _main(p: argparse.ArgumentParser, a, argv) -> int:
    from metanas import strategies

    for opt, v in (("--seeds", a.seeds), ("--budget", a.budget), ("--held-out", a.held_out)):
        if v < 1:
            p.error(f"{opt} must be >= 1, got {v}")
    methods = [m for m in a.methods.split(",") if m]
    check_names(p, "--methods", methods, strategies.available())
    import torch

    torch.set_num_threads(1)
    from metanas.benchmarks import TabularBenchmark
    from metanas.harness import plot_results
    from metanas.io import atomic_write_json, weights_fingerprint

    out = Path(a.out)
    tasks = held_out_tasks(a.held_out)

    def check_leak(ckpt: str) -> None:
        card = json.loads((Path(ckpt) / "training_state.json").read_text())
        leaked = sorted(set(tasks) & set(card.get("training_tasks", [])))
        if leaked:
            raise SystemExit(f"error: {ckpt} was meta-trained on held-out task(s) {leaked}")

    check_leak(a.ckpt)
    variants = {"noresidual": {"pretrained": a.ckpt, "residual": False},
                "copula": {"pretrained": a.ckpt, "warp": "copula"},
                "tables": {"pretrained": a.ckpt, "prior": "tables"},
                "noadapt": {"pretrained": a.ckpt, "adapt": False},
                "adapt-head": {"pretrained": a.ckpt, "trainable": "head"},
                "logei": {"pretrained": a.ckpt, "acquisition": "logei"},
                "adapt-auto": {"pretrained": a.ckpt, "adapt_guard": "auto"},
                "scratch": {"pretrained": None, "trainable": "head"},
                "digits-prior": {"pretrained": a.digits_ckpt},
                "digits-prior-nodata": {"pretrained": a.digits_ckpt, "use_dataset": False},
                "digits-prior-noadapt": {"pretrained": a.digits_ckpt, "adapt": False}}
    chosen = [v for v in a.variants.split(",") if v]
    unknown = [v for v in chosen if v not in [*variants, "ensemble"]]
    if unknown:
        raise SystemExit(f"error: unknown variant {unknown[0]!r}; choose from "
                         f"{', '.join([*variants, 'ensemble'])}")
    if "ensemble" in chosen:  # the shipped recipe meta-trained with several seeds
        from tnas_select import seed_checkpoint

        try:
            seeds = sorted({int(k) for k in a.ensemble_seeds.split(",") if k.strip()} - {0})
        except ValueError:
            raise SystemExit(f"error: --ensemble-seeds needs comma-separated integers, got "
                             f"{a.ensemble_seeds!r}") from None
        if not seeds:
            raise SystemExit("error: --ensemble-seeds needs at least one seed other than 0 "
                             "(seed 0 is --ckpt, always a member)")
        members = [str(seed_checkpoint("digits-val", "nb201", "", Path(a.ckpt), k, out, 0,
                                       print)) for k in seeds]
        for m in members:
            check_leak(m)
        variants["ensemble"] = {"pretrained": [a.ckpt, *members]}
    if any(variants[v].get("pretrained") == a.digits_ckpt for v in chosen):
        digits_prior_checkpoint(a.digits_ckpt, tasks)
        check_leak(a.digits_ckpt)
    # what a task's results depend on: tasks made with other settings are not merged
    folders = sorted({str(x) for v in chosen for x in np.atleast_1d(
        variants[v].get("pretrained") or []).tolist()} | {a.ckpt})
    settings = {"seeds": a.seeds, "budget": a.budget, "methods": methods,
                "variants": {v: variants[v] for v in chosen},
                "checkpoint_sha1": {f: weights_fingerprint(f) for f in folders}}
    summary_path = out / f"{a.name}_summary.json"
    summary: dict = {"tasks": kept_tasks(summary_path, settings, tasks,
                                         lambda msg: print(msg, flush=True)),
                     "held_out": tasks, "seeds": a.seeds, "budget": a.budget,
                     "ckpt": a.ckpt, "digits_ckpt": a.digits_ckpt,
                     "command": "python benchmarks/tnas_digits.py " + " ".join(
                         argv if argv is not None else sys.argv[1:])}
    for task in tasks:
        base = out / f"{a.name}_{task.replace('/', '_')}"
        groups = [("main", methods, {"tnas": {"pretrained": a.ckpt}})]
        groups += [(v, ["tnas"], {"tnas": variants[v]}) for v in chosen]
        merged = run_groups(groups, base, lambda msg: print(msg, flush=True), task,
                            space="nb201", task=task, seeds=list(range(a.seeds)),
                            budget=a.budget)
        atomic_write_json(base.with_suffix(".json"), merged)
        plot_results(merged, base.with_suffix(".png"),
                     title=f"{task} (held out): best-so-far, {a.seeds} seeds")
        rows = {}
        for m, r in merged["results"].items():
            s = r["summary"]
            rows[m] = {k: s[k]["mean"] for k in s if "@" in k and isinstance(s[k], dict)}
            rows[m].update({k + "_se": s[k]["se"] for k in s if "@" in k
                            and isinstance(s[k], dict)})
            rows[m]["final_test"] = s.get("final_report_test", {}).get("mean")
        summary["tasks"][task] = {"n_candidates": len(TabularBenchmark.from_task(task)
                                                      .candidates()),
                                  "optimum": merged.get("optimum"),
                                  "table": table_noise(task), "methods": rows,
                                  "settings": settings}
        atomic_write_json(summary_path, summary, indent=1)
    # over every task in the summary (this run's and those kept from the file), per method
    # over the tasks that have it (``mean_over_tasks_covers``)
    mean, covers = mean_over_tasks(summary["tasks"])
    methods = sorted(mean)
    summary["mean_over_tasks"] = {m: mean[m] for m in methods}
    summary["mean_over_tasks_covers"] = {m: covers[m] for m in methods}
    atomic_write_json(summary_path, summary, indent=1)
    for m in methods:
        r = mean[m]
        print(f"{m:22s} tf@10 {100 * r.get('top_fraction@10', float('nan')):6.2f}%  "
              f"tf@20 {100 * r.get('top_fraction@20', float('nan')):6.2f}%  "
              f"best@20 {r.get('best@20', float('nan')):.2f}  best@50 "
              f"{r.get('best@50', float('nan')):.2f}  test of the pick @10/20/50 "
              + " ".join(f"{r.get(f'report_test@{k}', float('nan')):.2f}"
                         f" ({100 * r.get(f'report_top_fraction_test@{k}', float('nan')):.1f}%)"
                         for k in (10, 20, 50)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
