#!/usr/bin/env python
"""TNAS when the meta-learned prior comes from unlike tasks, on a full space.

``tnas_loto.py`` meta-trains on every *other* task of the space, some of which resemble the
target. Here the surrogate is meta-trained on TransNAS micro's two classification tasks only
(``--sources``, default ``class_object,class_scene``) and searches each of the five other tasks
(``--targets``: jigsaw, segmentsemantic, autoencoder, normal, room_layout; all 4096 cells),
whose rankings differ from classification's. It is the full-space counterpart of
``tnas_digits.py`` (150-cell tables): does test-time BO recover when the prior is wrong?

For each target: the prior's Spearman correlation with the target over the 4096 cells and
the ranks of its top-5 (TNAS's initial design), then ``metanas.harness`` runs of ``tnas``
(that checkpoint), its variants (``--variants``, JSON ``{name: tnas kwargs}``, reported as
``tnas[name]``; default ``noadapt``: no test-time adaptation, and ``adapt-head``: the MLP
head adapted too, the previous default; the extra key ``"meta_seeds": [0, 1, 2]`` searches
with the ensemble of checkpoints meta-trained with those seeds) and the baselines ``rs``,
``rea``, ``gp-bo`` (``--seeds`` x ``--budget``). Writes ``<out>/tnas_unlike_<task>.json`` /
``.png`` and ``<out>/tnas_unlike_summary.json`` (per target and method: top fraction at 20
and 100, best at 100, regret in units of the table's standard deviation at 20 and 100; the checks
``tnas tf@20 <= 0.5%`` and ``tnas best@100 >= rea``), plus ``tnas_unlike.png`` (tf@20 per
target and method). Resumable (the checkpoint and every run). A run on some ``--targets`` keeps
the summary's other targets when they were made with the same settings (sources, seeds,
budget, iters, variants, checkpoint weights; recorded per target); the means are over the
targets present (``mean_over_tasks_covers``).

    python benchmarks/tnas_unlike.py --seeds 10 --budget 100
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
from tnas_common import (add_harness_args, check_names, kept_tasks,  # noqa: E402
                         mean_over_tasks, parse_variants, run_groups)
DEFAULT_OUT = ROOT / "benchmarks" / "results"
SPACE = "transnas_micro"
SOURCES = ("class_object", "class_scene")
TARGETS = ("jigsaw", "segmentsemantic", "autoencoder", "normal", "room_layout")
VARIANTS = {"noadapt": {"adapt": False}, "adapt-head": {"trainable": "head"}}


def checkpoint(out: Path, sources: list[str], iters: int, log, meta_seed: int = 0) -> Path:
    """The surrogate meta-trained on ``sources`` only, in ``<out>/tnas_unlike_ckpt/<tag>``
    (``<tag>-mseed<k>`` for meta-training seed ``k > 0``; trained on first use, resumable;
    reused once done with these settings: ``tnas_loto.trained_checkpoint``)."""
    from tnas_loto import trained_checkpoint

    from metanas.meta.tnas_train import TrainConfig

    tasks = [f"{SPACE}/{t}" for t in sources]
    d = out / "tnas_unlike_ckpt" / ("-".join(sources) + (f"-mseed{meta_seed}" if meta_seed
                                                         else ""))
    cfg = TrainConfig(space=SPACE, tasks=tasks, iters=iters, seed=meta_seed)
    return trained_checkpoint(
        d, cfg, log, f"{SPACE} on {', '.join(tasks)} ({iters} iters, seed {meta_seed})",
        f"python train_meta.py --space {SPACE} --tasks {','.join(tasks)} --iters {iters}"
        + (f" --seed {meta_seed}" if meta_seed else "") + f" --out {d}")[0]


def prior_agreement(ckpt: Path, bench) -> dict:
    """Spearman of the checkpoint's prior ranking (TNAS's top-k design) with the table, and
    the table ranks (1 = best) of its top 5."""
    from scipy.stats import spearmanr

    from metanas import strategies

    st = strategies.make("tnas", bench.space, seed=0, candidates=bench.candidates(),
                         task=bench.task, pretrained=str(ckpt))
    order = st.prior_ranking()
    score = np.empty(len(order))
    score[order] = np.arange(len(order))[::-1]
    vals = bench.values()
    rank = (-vals).argsort(kind="stable").argsort() + 1
    return {"spearman": float(spearmanr(score, vals)[0]),
            "top5_ranks": sorted(int(rank[i]) for i in order[:5])}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sources", default=",".join(SOURCES))
    p.add_argument("--targets", default=",".join(TARGETS))
    p.add_argument("--iters", type=int, default=200, help="meta-training iterations")
    add_harness_args(p, VARIANTS, DEFAULT_OUT)
    a = p.parse_args(argv)
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(p, a, argv)


def _main(p: argparse.ArgumentParser, a, argv) -> int:
    if a.budget < 100:
        p.error("--budget must be at least 100 (the summary reports 20 and 100 evaluations)")
    if a.seeds < 1 or a.iters < 1:
        p.error(f"--seeds and --iters must be >= 1, got {a.seeds} and {a.iters}")
    variants = parse_variants(p, a.variants, extra=("meta_seeds",))
    sources = [s for s in a.sources.split(",") if s]
    targets = [t for t in a.targets.split(",") if t]
    check_names(p, "--sources", sources, [*SOURCES, *TARGETS])
    check_names(p, "--targets", targets, [*SOURCES, *TARGETS])
    if not sources or not targets:
        p.error("--sources and --targets need at least one task each")
    both = sorted(set(sources) & set(targets))
    if both:
        p.error(f"{both[0]} is both a source and a target")
    import torch

    from metanas.benchmarks import TabularBenchmark
    from metanas.harness import plot_results
    from metanas.io import atomic_write_json, weights_fingerprint
    from tnas_loto import task_summary

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    ckpt = checkpoint(out, sources, a.iters, log)
    # what a target's results depend on: targets made with other settings are not merged
    settings = {"sources": sources, "seeds": a.seeds, "budget": a.budget, "iters": a.iters,
                "variants": variants, "checkpoint_sha1": weights_fingerprint(ckpt)}
    summary_path = out / "tnas_unlike_summary.json"
    summary = {"command": "python benchmarks/tnas_unlike.py " + shlex.join(
        sys.argv[1:] if argv is None else argv), "sources": sources, "seeds": a.seeds,
        "budget": a.budget, "checkpoint": str(ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT)
                                              else ckpt),
        "tasks": kept_tasks(summary_path, settings, [f"{SPACE}/{t}" for t in targets], log)}
    for t in targets:
        task = f"{SPACE}/{t}"
        bench = TabularBenchmark.from_task(task)
        base = out / f"tnas_unlike_{SPACE}_{t}"
        groups = [("main", ["tnas", "rs", "rea", "gp-bo"], {"tnas": {"pretrained": str(ckpt)}})]
        for v, kw in variants.items():
            kw = dict(kw)
            seeds_ = kw.pop("meta_seeds", None)  # an ensemble of meta-training seeds
            pre = str(ckpt) if seeds_ is None else [
                str(checkpoint(out, sources, a.iters, log, int(k))) for k in seeds_]
            groups.append((v, ["tnas"], {"tnas": {"pretrained": pre, **kw}}))
        merged = run_groups(groups, base, log, task, space=SPACE, task=task,
                            seeds=list(range(a.seeds)), budget=a.budget, workers=a.workers)
        atomic_write_json(base.with_suffix(".json"), merged)
        plot_results(merged, base.with_suffix(".png"),
                     title=f"{task}: TNAS meta-trained on {', '.join(sources)} only")
        ts = task_summary(merged, bench.values())  # the same rows and checks as tnas_loto
        summary["tasks"][task] = {"prior": prior_agreement(ckpt, bench),
                                  "methods": ts["methods"], "checks": ts["checks"],
                                  "settings": settings}
        rows = ts["methods"]
        atomic_write_json(summary_path, summary, indent=1)
        log(f"{task}: prior {summary['tasks'][task]['prior']}; " + "  ".join(
            f"{m} {100 * r['top_fraction@20']:.2f}%/{100 * r['top_fraction@100']:.3f}%"
            for m, r in rows.items()))
    # over every target in the summary (this run's and those kept from the file), per method
    # over the targets that have it (``mean_over_tasks_covers``)
    summary["mean_over_tasks"], summary["mean_over_tasks_covers"] = mean_over_tasks(
        summary["tasks"], ("top_fraction@20", "top_fraction@100", "regret_sd@20",
                           "regret_sd@100"))
    atomic_write_json(summary_path, summary, indent=1)
    plot(summary, out / "tnas_unlike.png")
    for m, r in summary["mean_over_tasks"].items():
        nan = float("nan")
        print(f"{m:16s} tf@20 {100 * r.get('top_fraction@20', nan):5.2f}%  tf@100 "
              f"{100 * r.get('top_fraction@100', nan):6.3f}%  regret/sd @20 "
              f"{r.get('regret_sd@20', nan):.3f} @100 {r.get('regret_sd@100', nan):.4f}")
    return 0


def plot(summary: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(summary["tasks"])
    methods = list(summary["mean_over_tasks"])
    x = np.arange(len(tasks))
    w = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(9, 4))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * w,
               [100 * summary["tasks"][t]["methods"][m]["top_fraction@20"] for t in tasks], w,
               label=m)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(x, [t.split("/")[-1] for t in tasks])
    ax.set_ylabel("mean top fraction after 20 evaluations (%)")
    ax.set_title(f"prior meta-trained on {', '.join(summary['sources'])} only "
                 f"({summary['seeds']} seeds)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
