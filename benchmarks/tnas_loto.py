#!/usr/bin/env python
r"""TNAS transfer benchmark: leave-one-task-out (TransNAS micro, 7 tasks) and leave-one-dataset-out
(NB201: cifar10, cifar100, imagenet16-120).

For every target task:

1. meta-train the TNAS deep-kernel GP on the space's other tasks (``metanas.meta.tnas_train``,
   the target excluded; NB201: the two other datasets + MetaD2A's tasks), cached under
   ``<out>/tnas_loto_ckpt/<space>/<task>/`` (resumable, never in ``pretrained/``);
2. run ``metanas.harness`` (budget, seeds) for ``tnas`` (with that checkpoint) and the
   baselines (``rs``, ``rea``, ``gp-bo``), plus the ablations (separate harness outputs, merged
   as ``tnas[<variant>]``): ``scratch`` (same model, no meta-training), ``noadapt`` (no
   test-time adaptation), ``noresidual`` (no residual kernel: the default before it),
   ``copula`` (copula output warping of the observations, ``warp="copula"``),
   ``nodata`` (no dataset encoder), ``logei`` (log-EI instead of the
   default UCB), ``transfer-mean`` (the meta-trained prediction as the GP's prior mean),
   ``adapt-holdout`` (test-time adaptation only under the held-out guard, from 8 observations:
   now the strategy's default), ``adapt-auto`` (adaptation from 3 observations with the
   leave-one-out guard below 8, the earlier default),
   ``every1`` (re-adapt at every step, the strategy default, when ``--tnas-kw`` sets
   ``adapt_every``), ``adapt-head`` (the MLP head adapted too, the previous default; the
   default adapts only the GP's hyper-parameters, ``trainable="gp"``);
3. write ``<out>/tnas_loto_<task>.json`` (harness results, all methods) + ``.png`` and the
   summary ``<out>/tnas_loto_summary.json``: per task and method the mean top fraction (share
   of the space strictly better than the best find) at 20 and 100 evaluations, best@20/50/100,
   the regret in units of the table's standard deviation at 20 and 100 (``regret_sd@k``), the
   pick's test accuracy where the table has one (NB201, ``report_test@k``), per task the
   table's ``table_sd`` and ``value_at_top_0.5%``, and the checks
   ``tnas top_fraction@20 <= 0.5%`` and ``tnas best@100 >= rea best@100``.

``--batch-size Q`` proposes ``Q`` archs per round (pending ones: the Kriging believer for
``tnas`` and ``gp-bo``, the strategy's own rule for the others), same budget in evaluations;
results ``tnas_loto<suffix>-q<Q>_*``: what parallel evaluation costs in evaluations.

Each LOTO checkpoint follows the shipped checkpoint's recipe minus the target: the collections
left out of ``pretrained/tnas-<space>`` (``exclude_sources`` in its ``training_state.json``;
NB201: ``digits_live``) are left out here too. ``--exclude-source`` overrides this for every
space (``none``: keep every collection, results ``tnas_loto-all-sources_*``; ``a,b``: leave
those out, results ``tnas_loto-no-a-no-b_*``; checkpoints under ``tnas_loto_ckpt<suffix>/``).

Everything is resumable (harness run checkpoints under ``<out>/tnas_loto_<task>*.runs/``);
runs and results made with other weights (a re-trained checkpoint) are never reused or merged:
the harness names runs by the checkpoint's weights (``metanas.io.weights_fingerprint``), and
the JSON records them (``tnas_checkpoint_sha1``). A rerun merges an earlier result of a method
it does not run itself only when that result was made with the rerun's budget, settings
(``--tnas-kw``) and, for the main methods, ``--seeds``; otherwise it is dropped, with one log
line (``kept_results``). ``nodata``
equals ``tnas`` by construction on tasks without image samples (every TransNAS / NB201 task).
Example (what produced the shipped results; see the summary's ``commands``)::

    python benchmarks/tnas_loto.py --space transnas_micro,nb201 --seeds 10 --iters 200 \
        --ablation-tasks all --ablations noadapt,adapt-head --ablation-seeds 10
    python benchmarks/tnas_loto.py --space transnas_micro,nb201 --methods tnas --seeds 10 \
        --iters 200 --ablation-tasks all --ablations scratch --ablation-seeds 5
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tnas_common import check_names, parse_tnas_kw, plain, read_json_or_none  # noqa: E402

DEFAULT_OUT = ROOT / "benchmarks" / "results"
ABLATIONS = {
    # no meta-training: the head is adapted at test time (with random features frozen,
    # trainable="gp" would only fit a GP on a random projection: a strawman)
    "scratch": {"pretrained": None, "trainable": "head"},
    "noadapt": {"adapt": False},
    "noresidual": {"residual": False},  # the default before the residual kernel
    "copula": {"warp": "copula"},  # copula output warping of the observations (an option)
    "nodata": {"use_dataset": False},
    "every1": {"adapt_every": 1},  # the strategy's default: re-adapt at every step
    "logei": {"acquisition": "logei"},  # the acquisition before UCB became the default
    "transfer-mean": {"transfer_mean": True},
    # adapt only once a held-out check exists (8 observations), not from 3 with the LOO guard
    "adapt-holdout": {"adapt_guard": "holdout"},
    # the reverse (the default before "holdout"): adapt from 3 observations, LOO guard below 8
    "adapt-auto": {"adapt_guard": "auto"},
    # test-time adaptation of the MLP head too, re-fitted at every step (the previous
    # default; the default adapts the GP's hyper-parameters only)
    "adapt-head": {"trainable": "head"},
}
#: issue #3's target: mean top fraction after 20 evaluations at most this
TARGET_TOP_FRACTION = 0.005
TARGETS = {
    "transnas_micro": ["transnas_micro/class_object", "transnas_micro/class_scene",
                       "transnas_micro/jigsaw", "transnas_micro/segmentsemantic",
                       "transnas_micro/autoencoder", "transnas_micro/normal",
                       "transnas_micro/room_layout"],
    "nb201": ["nb201/cifar10", "nb201/cifar100", "nb201/imagenet16-120"],
}


def safe(task: str) -> str:
    return task.replace("/", "_")


def shipped_exclude_sources(space: str) -> list[str]:
    """The collections the shipped ``pretrained/tnas-<space>`` checkpoint was meta-trained
    without (its recorded ``exclude_sources``; none when it records none)."""
    from metanas.meta.tnas_train import STATE_NAME

    st = ROOT / "pretrained" / f"tnas-{space}" / STATE_NAME
    cfg = json.loads(st.read_text()).get("config", {}) if st.is_file() else {}
    return sorted(cfg.get("exclude_sources") or [])


def trained_checkpoint(d: Path, cfg, log, what: str, command: str) -> tuple[Path, float]:
    """Meta-train ``cfg`` (a ``TrainConfig``) into the folder ``d``, unless ``d`` holds a
    finished run of these very settings; returns ``d`` and the meta-training wall time (s).
    An unfinished run of the same settings resumes; a run made with other settings is started
    afresh, never resumed into and relabelled as this recipe."""
    from dataclasses import asdict

    from metanas.meta.tnas_train import STATE_NAME, TrainConfig, train

    st_path = d / STATE_NAME
    if st_path.is_file():
        old = json.loads(st_path.read_text())
        # settings added since an old run was made count at their defaults
        if {**asdict(TrainConfig()), **old.get("config", {})} != asdict(cfg):
            log(f"{d} was meta-trained with other settings: re-training it")
            st_path.unlink()
        elif old.get("done"):
            return d, float(old.get("wall_s", 0.0))
    log(f"meta-training {what} -> {d}")
    st = train(cfg, d, resume=st_path.is_file(), progress=False, command=command)
    return d, float(st["wall_s"])


def loto_checkpoint(space: str, task: str, out: Path, iters: int, log,
                    exclude_sources: Sequence[str] = (), suffix: str = "",
                    meta_seed: int = 0, train_kw: dict | None = None) -> tuple[Path, float]:
    """Meta-train (or reuse / resume, ``trained_checkpoint``) the checkpoint without ``task``
    and without every task of the collections ``exclude_sources``, under
    ``<out>/tnas_loto_ckpt<suffix>/``; returns its folder and meta-training wall time (s).
    ``meta_seed`` is the meta-training seed (other than 0: folder
    ``tnas_loto_ckpt<suffix>-mseed<k>``); ``train_kw`` other ``TrainConfig`` settings (e.g.
    ``{"top_share": 0.5}``: folder ``tnas_loto_ckpt<suffix>-<key><value>...``)."""
    from metanas.meta.tnas_train import TrainConfig

    train_kw = check_train_kw(train_kw)
    d = out / f"tnas_loto_ckpt{suffix}{train_kw_suffix(train_kw)}{seed_suffix(meta_seed)}" \
        / space / safe(task)
    cfg = TrainConfig(space=space, exclude=[task], exclude_sources=sorted(exclude_sources),
                      iters=iters, seed=meta_seed, **train_kw)
    what = (f"{space} without {task}"
            + (f" and {', '.join(cfg.exclude_sources)}" if cfg.exclude_sources else "")
            + f" ({iters} iters{''.join(f', {k}={v}' for k, v in train_kw.items())})")
    cmd = (f"python train_meta.py --space {space} --exclude-task {task} "
           + "".join(f"--exclude-source {x} " for x in cfg.exclude_sources)
           + f"--iters {iters}" + (f" --seed {meta_seed}" if meta_seed else "")
           + train_flags(train_kw) + f" --out {d}")
    return trained_checkpoint(d, cfg, log, what, cmd)


def check_train_kw(train_kw: dict | None) -> dict:
    """``train_kw`` (other ``TrainConfig`` settings of a benchmark's checkpoints) checked:
    known settings other than those the benchmark sets itself, with scalar values; a
    ``SystemExit`` with a one-line message otherwise."""
    from dataclasses import fields

    from metanas.meta.tnas_train import TrainConfig

    kw = dict(train_kw or {})
    own = {"space", "tasks", "exclude", "exclude_sources", "iters", "seed", "method",
           "meta_dataset", "val_tasks", "model"}  # set by the benchmark, or not scalars
    known = {f.name for f in fields(TrainConfig)} - own
    for k, v in kw.items():
        if k not in known:
            raise SystemExit(f"error: {k!r} is no meta-training setting a variant can change; "
                             f"choose from {', '.join(sorted(known))}")
        if not isinstance(v, (bool, int, float, str)):
            raise SystemExit(f"error: the meta-training setting {k!r} needs a number, string "
                             f"or boolean, got {v!r}")
    return kw


def train_flags(train_kw: dict) -> str:
    """``train_meta.py`` flags of ``train_kw`` (``" --top-share 0.5"``; a boolean is a bare
    flag when true, omitted when false)."""
    return "".join(f" --{k.replace('_', '-')}" + ("" if isinstance(v, bool) else f" {v}")
                   for k, v in sorted(train_kw.items()) if v is not False)


def train_kw_suffix(train_kw: dict) -> str:
    """``""`` for the default meta-training settings, else ``"-<key><value>"`` per setting
    (sorted by key), e.g. ``{"top_share": 0.5}`` -> ``"-top_share0.5"``."""
    return "".join(f"-{k}{v}" for k, v in sorted(train_kw.items()))


def seed_suffix(meta_seed: int) -> str:
    """``""`` for meta-training seed 0, else ``"-mseed<k>"``."""
    return f"-mseed{meta_seed}" if meta_seed else ""


def batch_suffix(q: int) -> str:
    """``""`` for sequential search (``q == 1``), else ``"-q<q>"``."""
    return f"-q{q}" if q > 1 else ""


def variant_suffix(exclude_sources: Sequence[str] | None) -> str:
    """``""`` for the shipped recipe (``None``), ``"-all-sources"`` for no collection left out,
    else ``"-no-<src>[-no-<src>...]"``."""
    if exclude_sources is None:
        return ""
    return "".join(f"-no-{x}" for x in sorted(exclude_sources)) or "-all-sources"


def entry_budget_seeds(entry: dict) -> tuple[int | None, list[int]]:
    """The budget (evaluations per run; ``None`` when the runs differ or there are none) and
    the seeds of a method's entry of a harness result, read from its runs."""
    runs = entry.get("runs") or []
    lengths = {len(r.get("history") or []) for r in runs}
    return (lengths.pop() if len(lengths) == 1 else None), sorted(r.get("seed") for r in runs)


def kept_results(previous: dict, space: str, args, tnas_kw: dict, task: str, log) -> dict:
    """The entries of an earlier per-task result ``previous`` (same weights) this command may
    merge: made with its budget and the settings it would run them with (``tnas_kw`` for
    ``tnas``, plus the ablation's for ``tnas[<ablation>]``; compared as the harness names runs,
    a checkpoint folder by its weights) and, for the main methods, its seeds (an ablation keeps
    its own seed count: ``--ablation-seeds`` applies to the ablations a command runs). An
    ablation this script no longer defines is kept when its budget and the ``--tnas-kw``
    settings match. Every other entry is dropped, with one log line."""
    from metanas.harness import _kwargs_tag, _run_settings

    keep, dropped = {}, []
    for key, entry in previous.items():
        method, _, ab = key.partition("[")
        ab = ab.rstrip("]")
        budget, seeds = entry_budget_seeds(entry)
        old = entry.get("settings") or {}
        why = None
        if budget != args.budget:
            why = f"budget {budget}"
        elif not ab and seeds != list(range(args.seeds)):
            why = f"{len(seeds)} seeds"
        elif not ab or ab in ABLATIONS:
            kw = {**tnas_kw, **ABLATIONS.get(ab, {})} if method == "tnas" else {}
            if _kwargs_tag(old) != _kwargs_tag(_run_settings(method, space, kw)):
                why = "other settings"
        elif any(plain(old.get(k)) != plain(v) for k, v in args.tnas_kw.items()):
            why = "other --tnas-kw"
        if why is None:
            keep[key] = entry
        else:
            dropped.append(f"{key} ({why})")
    if dropped:
        log(f"{task}: earlier results not merged, made with other settings than this command's "
            f"(budget {args.budget}, {args.seeds} seeds): {', '.join(dropped)}")
    return keep


def run_task(space: str, task: str, args, out: Path, log) -> dict:
    from metanas.harness import HarnessConfig, plot_results, run_harness
    from metanas.io import atomic_write_json, weights_fingerprint

    suffix = variant_suffix(args.exclude_source)
    sources = shipped_exclude_sources(space) if args.exclude_source is None \
        else args.exclude_source
    ckpt, wall = loto_checkpoint(space, task, out, args.iters, log, sources, suffix,
                                 args.meta_seed)
    fp = weights_fingerprint(ckpt)  # results of other weights are never merged
    seeds = list(range(args.seeds))
    base = out / f"tnas_loto{suffix}{seed_suffix(args.meta_seed)}{batch_suffix(args.batch_size)}" \
        f"_{safe(task)}"
    tnas_kw = {"pretrained": str(ckpt), **args.tnas_kw}
    merged = None
    previous = {}
    groups = [("main", [m for m in args.methods], seeds)]
    if task in args.ablation_tasks or "all" in args.ablation_tasks:
        for ab in args.ablations:
            groups.append((ab, ["tnas"], list(range(args.ablation_seeds))))
    rerun = {m if name == "main" else f"{m}[{name}]" for name, ms, _ in groups for m in ms}
    old = read_json_or_none(base.with_suffix(".json"), log)
    if old is not None:  # keep results of earlier invocations (resumable) ...
        if old.get("tnas_checkpoint_sha1") == fp:  # ... made with these very weights ...
            previous = kept_results({k: v for k, v in old.get("results", {}).items()
                                     if k not in rerun}, space, args, tnas_kw, task,
                                    log)  # ... and the settings this command would use
        else:
            log(f"{task}: {base.with_suffix('.json').name} was made with other weights; "
                "its results are not merged")
    for name, methods, sds in groups:
        kw = {"tnas": {**tnas_kw, **ABLATIONS.get(name, {})}}
        # the harness names runs by settings and checkpoint weights: other weights, other runs
        output = base.with_name(base.name + ("" if name == "main" else f".{name}")
                                + ".part.json")
        t0 = time.perf_counter()
        cfg = HarnessConfig(space=space, task=task, methods=methods, seeds=sds,
                            budget=args.budget, method_kwargs=kw, batch_size=args.batch_size)
        res = run_harness(cfg, output)
        log(f"{task} [{name}] {methods} x {len(sds)} seeds: {time.perf_counter() - t0:.0f} s")
        if merged is None:
            merged = res
            for k, v in previous.items():
                merged["results"].setdefault(k, v)
        for m, r in res["results"].items():
            key = m if name == "main" else f"{m}[{name}]"
            merged["results"][key] = r
        merged["tnas_checkpoint"] = str(ckpt.relative_to(ROOT) if ckpt.is_relative_to(ROOT)
                                        else ckpt)
        merged["tnas_checkpoint_sha1"] = fp
        merged["meta_train_wall_s"] = wall
        atomic_write_json(base.with_suffix(".json"), merged)
        plot_results(merged, base.with_suffix(".png"),
                     title=f"{task}: TNAS leave-one-task-out (budget {args.budget})")
    return merged


def task_summary(res: dict, values: np.ndarray | None = None) -> dict:
    """Per method: top fraction, best, and (with the task's table ``values``) the regret in
    units of the table's standard deviation at 20 and 100 evaluations; the pick's test
    accuracy where the table has one (NB201). Plus the targets' checks."""
    rows = {}
    sd = float(np.std(values)) if values is not None else None
    for m, r in res["results"].items():
        s = r.get("summary", {})
        row = {"n_runs": s.get("n_runs")}
        for k in ("top_fraction@20", "top_fraction@100", "best@20", "best@50", "best@100",
                  "report_test@20", "report_test@100"):
            if k in s:
                row[k] = s[k]["mean"]
                row[k + "_se"] = s[k]["se"]
        for k in (20, 100):
            if sd and f"best@{k}" in row:
                row[f"regret_sd@{k}"] = (float(np.max(values)) - row[f"best@{k}"]) / sd
        if "wall_s" in s:
            row["wall_s_per_run"] = s["wall_s"]["mean"]
        rows[m] = row
    t, rea = rows.get("tnas", {}), rows.get("rea", {})
    checks = {}
    if "top_fraction@20" in t:
        checks["tnas_top_fraction@20<=0.5%"] = bool(t["top_fraction@20"] <= TARGET_TOP_FRACTION)
    if "best@100" in t and "best@100" in rea:
        checks["tnas_best@100>=rea_best@100"] = bool(t["best@100"] >= rea["best@100"])
    return {"methods": rows, "checks": checks, "meta_train_wall_s": res.get("meta_train_wall_s"),
            "tnas_checkpoint": res.get("tnas_checkpoint"),
            "tnas_checkpoint_sha1": res.get("tnas_checkpoint_sha1")}


def aggregate_meta_seeds(out: Path, suffix: str, meta_seeds: list[int]) -> dict:
    """Per task: tnas's tf@20 / tf@100 / best@100 for every meta-training seed (from
    ``tnas_loto<suffix>[-mseed<k>]_summary.json``), their mean, and the checks on that mean (REA
    and the other baselines do not depend on the meta-training seed: from seed 0's summary).
    Writes ``tnas_loto<suffix>_meta_seeds.json`` and ``.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metanas.io import atomic_write_json

    sums = {}
    for k in meta_seeds:
        path = out / f"tnas_loto{suffix}{seed_suffix(k)}_summary.json"
        if not path.is_file():
            raise SystemExit(f"error: {path.name} is missing; run tnas_loto.py --meta-seed {k} "
                             "first")
        sums[k] = json.loads(path.read_text())["tasks"]
    base = sums[meta_seeds[0]] if meta_seeds[0] == 0 else \
        json.loads((out / f"tnas_loto{suffix}_summary.json").read_text())["tasks"]
    rows = {}
    for space, tasks in TARGETS.items():
        for task in tasks:
            if not all(task in s and "tnas" in s[task]["methods"] for s in sums.values()):
                continue
            per = {k: {m: sums[k][task]["methods"]["tnas"].get(m)
                       for m in ("top_fraction@20", "top_fraction@100", "best@100", "n_runs")}
                   for k in meta_seeds}
            mean = {m: float(np.mean([per[k][m] for k in meta_seeds]))
                    for m in ("top_fraction@20", "top_fraction@100", "best@100")}
            rea = base.get(task, {}).get("methods", {}).get("rea", {})
            rows[task] = {"per_meta_seed": per, "mean": mean,
                          "rea_best@100": rea.get("best@100"),
                          "checks": {"mean_top_fraction@20<=0.5%":
                                     bool(mean["top_fraction@20"] <= TARGET_TOP_FRACTION),
                                     "mean_best@100>=rea": bool(rea.get("best@100") is not None
                                                                and mean["best@100"]
                                                                >= rea["best@100"])}}
    res = {"meta_seeds": meta_seeds, "tasks": rows,
           "mean_over_tasks": {m: float(np.mean([r["mean"][m] for r in rows.values()]))
                               for m in ("top_fraction@20", "top_fraction@100")} if rows else {},
           "command": f"python benchmarks/tnas_loto.py --aggregate-meta-seeds "
                      f"{','.join(map(str, meta_seeds))}"}
    atomic_write_json(out / f"tnas_loto{suffix}_meta_seeds.json", res, indent=1)
    if rows:
        fig, ax = plt.subplots(figsize=(10, 4))
        w = 0.8 / len(meta_seeds)
        for i, k in enumerate(meta_seeds):
            ax.bar(np.arange(len(rows)) + i * w,
                   [100 * r["per_meta_seed"][k]["top_fraction@20"] for r in rows.values()],
                   w, label=f"meta-training seed {k}")
        ax.axhline(0.5, color="k", ls="--", lw=1, label="target 0.5%")
        ax.set_xticks(np.arange(len(rows)) + 0.4 - w / 2)
        ax.set_xticklabels([t.split("/")[1] for t in rows], rotation=30, ha="right")
        ax.set_ylabel("tnas top fraction @20 (%)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / f"tnas_loto{suffix}_meta_seeds.png", dpi=120)
        plt.close(fig)
    for t, r in rows.items():
        print(f"{t:34s} tf@20 " + " ".join(f"{100 * r['per_meta_seed'][k]['top_fraction@20']:.2f}%"
                                         for k in meta_seeds)
              + f"  mean {100 * r['mean']['top_fraction@20']:.2f}%  best@100 mean "
              f"{r['mean']['best@100']:.4f} (rea {r['rea_best@100']})")
    return res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="transnas_micro,nb201",
                   help="comma-separated: transnas_micro (LOTO), nb201 (LODO)")
    p.add_argument("--tasks", default="", help="comma-separated subset of target tasks")
    p.add_argument("--methods", default="tnas,rs,rea,gp-bo")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=100)
    p.add_argument("--iters", type=int, default=150, help="meta-training iterations per "
                   "LOTO checkpoint")
    p.add_argument("--ablations", default="scratch,noadapt,nodata,every1")
    p.add_argument("--ablation-tasks", default="", help="tasks to ablate on ('all' or ids)")
    p.add_argument("--ablation-seeds", type=int, default=10)
    p.add_argument("--tnas-kw", default="{}", help="JSON of extra tnas constructor kwargs "
                   "(e.g. '{\"adapt_every\": 5}')")
    p.add_argument("--exclude-source", default="shipped",
                   help="collections (task id prefixes, e.g. digits_live) left out of every "
                        "meta-training: 'shipped' (default: as the shipped checkpoint of the "
                        "space), 'none', or a comma-separated list; results of a non-default "
                        "recipe go to tnas_loto-all-sources_* / tnas_loto-no-<src>_*")
    p.add_argument("--meta-seed", type=int, default=0,
                   help="meta-training seed of the LOTO checkpoints (other than 0: results in "
                        "tnas_loto<suffix>-mseed<k>_*)")
    p.add_argument("--aggregate-meta-seeds", default="", metavar="K,K,...",
                   help="run nothing; write tnas_loto<suffix>_meta_seeds.json/.png: tnas per "
                        "task and meta-training seed, from the summaries of those seeds")
    p.add_argument("--batch-size", type=int, default=1, metavar="Q",
                   help="evaluations proposed per round (pending ones handled by each "
                        "strategy's batch rule; results in tnas_loto<suffix>-q<Q>_*)")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    a = p.parse_args(argv)
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(p, a, argv)


def check_args(p: argparse.ArgumentParser, a) -> None:
    """Every option checked (and parsed in place) before any meta-training: a one-line usage
    error naming the problem otherwise."""
    from metanas import strategies

    if a.batch_size < 1:
        p.error(f"--batch-size must be >= 1, got {a.batch_size}")
    for opt, v in (("--seeds", a.seeds), ("--budget", a.budget), ("--iters", a.iters),
                   ("--ablation-seeds", a.ablation_seeds)):
        if v < 1:
            p.error(f"{opt} must be >= 1, got {v}")
    if a.meta_seed < 0:
        p.error(f"--meta-seed must be >= 0, got {a.meta_seed}")
    a.exclude_source = None if a.exclude_source == "shipped" else \
        [] if a.exclude_source == "none" else sorted(x for x in a.exclude_source.split(",") if x)
    a.tnas_kw = parse_tnas_kw(p, a.tnas_kw)
    a.methods = [m for m in a.methods.split(",") if m]
    check_names(p, "--methods", a.methods, strategies.available())
    a.ablations = [x for x in a.ablations.split(",") if x]
    # an unknown name would run the default under that name
    check_names(p, "--ablations", a.ablations, ABLATIONS)
    a.spaces = [s for s in a.space.split(",") if s]
    check_names(p, "--space", a.spaces, TARGETS)
    if not a.spaces and not a.aggregate_meta_seeds:
        p.error("--space is empty; choose from " + ", ".join(TARGETS))
    targets = [t for s in a.spaces for t in TARGETS[s]]
    a.only = {x for x in a.tasks.split(",") if x}
    check_names(p, "--tasks", sorted(a.only), targets)
    a.ablation_tasks = [x for x in a.ablation_tasks.split(",") if x]
    check_names(p, "--ablation-tasks", a.ablation_tasks, ["all", *targets])
    if a.aggregate_meta_seeds:
        try:
            a.aggregate_meta_seeds = [int(x) for x in a.aggregate_meta_seeds.split(",") if x]
        except ValueError:
            p.error(f"--aggregate-meta-seeds needs comma-separated integers, got "
                    f"{a.aggregate_meta_seeds!r}")


def _main(p: argparse.ArgumentParser, a, argv) -> int:
    check_args(p, a)
    import torch

    from metanas.benchmarks import TabularBenchmark
    from metanas.io import atomic_write_json

    torch.set_num_threads(1)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    only = a.only

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    if a.aggregate_meta_seeds:
        aggregate_meta_seeds(out, variant_suffix(a.exclude_source), a.aggregate_meta_seeds)
        return 0
    summary_path = out / (f"tnas_loto{variant_suffix(a.exclude_source)}"
                          f"{seed_suffix(a.meta_seed)}{batch_suffix(a.batch_size)}_summary.json")
    summary = read_json_or_none(summary_path, log) or {}
    summary.setdefault("tasks", {})
    cmd = "python benchmarks/tnas_loto.py " + " ".join(
        shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv))
    summary.setdefault("commands", [])
    if cmd not in summary["commands"]:
        summary["commands"].append(cmd)
    summary.pop("command", None)
    summary.setdefault("settings", {})[cmd] = {
        "seeds": a.seeds, "budget": a.budget, "meta_train_iters": a.iters, "methods": a.methods,
        "tnas_kwargs": a.tnas_kw, "ablations": a.ablations, "ablation_tasks": a.ablation_tasks,
        "ablation_seeds": a.ablation_seeds, "batch_size": a.batch_size}
    for space in a.spaces:
        for task in TARGETS[space]:
            if only and task not in only:
                continue
            res = run_task(space, task, a, out, log)
            on_disk = read_json_or_none(summary_path, log)
            if on_disk is not None:  # another invocation may have updated tasks meanwhile:
                # the file is the newest
                summary["tasks"].update(on_disk.get("tasks", {}))
                for c in on_disk.get("commands", []):
                    if c not in summary["commands"]:
                        summary["commands"].append(c)
                for c, v in on_disk.get("settings", {}).items():
                    summary["settings"].setdefault(c, v)
            values = TabularBenchmark.from_task(task).values()
            summary["tasks"][task] = {"space": space, **task_summary(res, values),
                                      "table_sd": float(np.std(values)),
                                      "value_at_top_0.5%": float(np.quantile(values, 0.995))}
            ch = [v for t in summary["tasks"].values() for v in t["checks"].values()]
            summary["all_checks_pass"] = bool(ch) and all(ch)
            atomic_write_json(summary_path, summary, indent=1)
            log(f"{task}: " + json.dumps({m: {k: round(v, 4) for k, v in r.items()
                                               if k in ("top_fraction@20", "top_fraction@100",
                                                        "best@100")}
                                           for m, r in summary["tasks"][task]["methods"].items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
