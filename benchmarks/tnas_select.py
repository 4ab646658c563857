#!/usr/bin/env python
"""How TNAS's test-time defaults are chosen: variants compared on *validation* tasks only.

Two validation groups, neither of which is a reported test task of ``tnas_digits.py``:

* ``loto``: the 10 leave-one-task-out targets of ``tnas_loto.py`` (TransNAS micro's 7 tasks,
  NB201's 3 datasets), each with the checkpoint meta-trained without it
  (``<out>/tnas_loto_ckpt``: the shipped recipe minus the task, trained on first use by
  ``tnas_loto.loto_checkpoint``). The
  meta-learned prior is mostly right here (rank correlation 0.4-0.9 with the target);
* ``digits-val``: the 15 digits tasks of ``meta_datasets/digits_live`` that are *not* held
  out (the 5 held-out ones stay the test of ``tnas_digits.py``), searched with the shipped
  ``pretrained/tnas-nb201`` (NB201 + MetaD2A, never meta-trained on a digits task): tasks
  unlike the meta-training tasks, where the prior is often wrong and test-time adaptation
  must recover. The candidates are each task's 150 measured cells.
* ``digits-nested`` (not in the default ``--groups``): 5 of those 15 digits tasks, searched
  with the opt-in digits recipe meta-trained on NB201 + MetaD2A + the *other* 10 digits tasks
  (``<out>/tnas_digits_ckpt/no_digits_val``): validates what needs digits tasks in
  meta-training, such as the dataset encoder, without touching the 5 test tasks.

For every task and variant (``--variants``: JSON ``{name: tnas kwargs}``; the extra key
``"meta_seeds": [0, 1, 2]`` searches with the ensemble of the group's checkpoints meta-trained
with those seeds, see ``seed_checkpoint``; ``"meta": {TrainConfig settings}`` with the group's
recipe meta-trained with those settings, e.g. ``{"top_share": 0.5}``), ``--seeds`` runs of
``--budget`` evaluations through ``metanas.harness`` (resumable under
``<out>/tnas_select/``), plus random search (and ``--references``, e.g. ``rs,rea``) as the
reference. ``--tasks`` keeps only some tasks of the groups (ids or their last part). Writes
``<out>/tnas_select.json`` (per task and variant: top fraction at 10, 20 and ``--budget``
evaluations, the best at ``--budget`` and, where the table has a test split, the test
accuracy of the pick at ``--budget`` and its top fraction among the test values; per group
and variant: the means, the number of tasks at <= 0.5% and the number no worse than random
search after 20) and
``tnas_select.png`` (``--name`` changes the stem). Every number comes from the harness
summary (``metanas.harness.summarise``: at its ``SUMMARY_AT`` counts and at the budget; those
at 10 and 20 only within ``--budget``; below 20 the per-group counts compare at
``--budget``; ``null`` / ``n/a`` where a run was shorter). A variant cannot take a
reference's name.

    python benchmarks/tnas_select.py --seeds 3 --budget 20
"""

from __future__ import annotations

import argparse
import difflib
import json
import shlex
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(Path(__file__).resolve().parent))
from tnas_common import check_names, parse_variants  # noqa: E402

#: the validation groups (see the module's docstring)
GROUPS = ("loto", "digits-val", "digits-nested")
#: the keys of a variant besides TNAS settings (see the module's docstring)
VARIANT_KEYS = ("meta_seeds", "meta")

DEFAULT_VARIANTS = {
    "ucb": {"acquisition": "ucb"},
    "logei": {"acquisition": "logei"},
    "transfer-mean+ucb": {"acquisition": "ucb", "transfer_mean": True},
    "transfer-mean+logei": {"acquisition": "logei", "transfer_mean": True},
}


def validation_tasks(groups: list[str], out: Path, iters: int, log,
                     only: set[str] | None = None) -> list[tuple]:
    """``[(group, space, task, checkpoint)]``; with ``only`` (task ids or their last part)
    just those tasks, and only their checkpoints are trained."""

    def wanted(task: str) -> bool:
        return not only or task in only or task.rsplit("/", 1)[-1] in only

    rows = []
    if "loto" in groups:
        from tnas_loto import TARGETS, loto_checkpoint, shipped_exclude_sources

        for space, tasks in TARGETS.items():
            for task in filter(wanted, tasks):  # the shipped recipe without the task
                rows.append(("loto", space, task, loto_checkpoint(
                    space, task, out, iters, log, shipped_exclude_sources(space))[0]))
    if "digits-val" in groups:
        from tnas_digits import COLLECTION, held_out_tasks

        from metanas.meta_dataset import MetaDataset

        ckpt = ROOT / "pretrained" / "tnas-nb201"
        test = set(held_out_tasks(5))
        val = [t for t in MetaDataset.load(COLLECTION).task_ids() if t not in test]
        val = list(filter(wanted, val))
        trained = json.loads((ckpt / "training_state.json").read_text())["training_tasks"]
        if set(val) & set(trained):
            raise SystemExit(f"error: {ckpt} was meta-trained on digits tasks; digits-val needs "
                             "the shipped NB201 + MetaD2A recipe (--exclude-source digits_live)")
        rows += [("digits-val", "nb201", task, ckpt) for task in val]
    if "digits-nested" in groups:
        from tnas_digits import held_out_tasks, nb201_checkpoint

        # the digits recipe, meta-trained without the 5 test tasks *and* 5 validation tasks
        # (the next 5 the collection's builder drew): its dataset encoder has seen 10 digits
        # tasks and never the 5 it is validated on
        both = held_out_tasks(10)
        nested = list(filter(wanted, both[5:]))
        if nested:
            ckpt = nb201_checkpoint(out / "tnas_digits_ckpt" / "no_digits_val", both,
                                    f"nb201 without {len(both)} digits tasks")
            rows += [("digits-nested", "nb201", task, ckpt) for task in nested]
    return rows


def seed_checkpoint(group: str, space: str, task: str, ckpt: Path, meta_seed: int, out: Path,
                    iters: int, log, train_kw: dict | None = None) -> Path:
    """The checkpoint of ``(group, task)``'s recipe (``ckpt``: meta-training seed 0) with
    meta-training seed ``meta_seed`` (an ensemble variant's members, ``"meta_seeds"``):
    ``loto``: ``tnas_loto.loto_checkpoint``; ``digits-val``: the shipped recipe of
    ``pretrained/tnas-<space>`` re-trained with that seed under
    ``<out>/tnas_shipped_ckpt<kw>-mseed<k>/<space>`` (trained on first use; a folder made
    with other settings is re-trained). ``train_kw``: other ``TrainConfig`` settings (a
    variant's ``"meta"``; ``<kw>`` = ``tnas_loto.train_kw_suffix``)."""
    if meta_seed == 0 and not train_kw:
        return ckpt
    if group == "loto":
        from tnas_loto import loto_checkpoint, shipped_exclude_sources

        return loto_checkpoint(space, task, out, iters, log, shipped_exclude_sources(space),
                               meta_seed=meta_seed, train_kw=train_kw)[0]
    if group != "digits-val":
        raise SystemExit(f"error: the group {group} has no checkpoints for other "
                         "meta-training seeds or settings (\"meta_seeds\", \"meta\")")
    from tnas_loto import check_train_kw, train_flags, train_kw_suffix, trained_checkpoint

    from metanas.meta.tnas_train import STATE_NAME, TrainConfig

    kw = check_train_kw(train_kw)
    d = out / f"tnas_shipped_ckpt{train_kw_suffix(kw)}-mseed{meta_seed}" / space
    st = json.loads((ckpt / STATE_NAME).read_text())
    cfg = TrainConfig(**{**st["config"], "seed": meta_seed, **kw})
    what = f"{ckpt.name}'s recipe with seed {meta_seed}" + "".join(
        f", {k}={v}" for k, v in kw.items())
    return trained_checkpoint(d, cfg, log, what,
                              f"{ckpt.name}'s recipe (its training_state.json) with "
                              f"train_meta.py --seed {meta_seed}{train_flags(kw)}")[0]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", default=json.dumps(DEFAULT_VARIANTS),
                   help="JSON {name: tnas constructor kwargs}")
    p.add_argument("--groups", default="loto,digits-val")
    p.add_argument("--tasks", default="",
                   help="comma-separated task ids: only these tasks of the groups")
    p.add_argument("--references", default="rs",
                   help="comma-separated baseline methods run alongside (rs is always run)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget", type=int, default=20)
    p.add_argument("--iters", type=int, default=200, help="LOTO meta-training iterations")
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--name", default="tnas_select",
                   help="result file stem: <out>/<name>.json and .png")
    a = p.parse_args(argv)
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(p, a, argv)


def group_task_ids(groups: list[str]) -> list[str]:
    """The task ids the validation ``groups`` hold (what ``--tasks`` can name), without
    training any checkpoint."""
    ids: list[str] = []
    if "loto" in groups:
        from tnas_loto import TARGETS

        ids += [t for ts in TARGETS.values() for t in ts]
    if "digits-val" in groups or "digits-nested" in groups:
        from tnas_digits import COLLECTION, held_out_tasks

        from metanas.meta_dataset import MetaDataset

        test = set(held_out_tasks(5))
        if "digits-val" in groups:
            ids += [t for t in MetaDataset.load(COLLECTION).task_ids() if t not in test]
        if "digits-nested" in groups:
            ids += held_out_tasks(10)[5:]
    return list(dict.fromkeys(ids))


def check_args(p: argparse.ArgumentParser, a) -> tuple[dict, list[str], list[str], set[str]]:
    """Every option checked before any run or meta-training (a one-line usage error naming
    the problem otherwise); returns the variants, the references (``rs`` first), the groups
    and the ``--tasks`` filter."""
    from metanas import strategies

    for opt, v in (("--seeds", a.seeds), ("--budget", a.budget), ("--iters", a.iters)):
        if v < 1:
            p.error(f"{opt} must be >= 1, got {v}")
    variants = parse_variants(p, a.variants, extra=VARIANT_KEYS)
    refs = ["rs"] + [m for m in a.references.split(",") if m and m != "rs"]
    check_names(p, "--references", refs, strategies.available())
    clash = [v for v in variants if v in refs]
    if clash:  # would replace the reference's results (same name, same file)
        p.error(f"--variants: the variant name {clash[0]!r} is a reference method's "
                f"(--references {','.join(refs)}); rename the variant")
    groups = [g for g in a.groups.split(",") if g]
    if not groups:
        p.error(f"--groups is empty; choose from {', '.join(GROUPS)}")
    check_names(p, "--groups", groups, GROUPS)
    only = {t for t in a.tasks.split(",") if t}
    if only:
        ids = group_task_ids(groups)
        names = ids + [t.rsplit("/", 1)[-1] for t in ids]
        for t in sorted(only):
            if t not in names:
                close = difflib.get_close_matches(t, names, n=1)
                p.error(f"--tasks: {t!r} is no task of the groups {','.join(groups)}; "
                        + (f"did you mean {close[0]!r}? " if close else "")
                        + f"give task ids or their last part, e.g. {ids[0].rsplit('/', 1)[-1]}")
    return variants, refs, groups, only


def _main(p: argparse.ArgumentParser, a, argv) -> int:
    variants, refs, group_names, only = check_args(p, a)
    import torch

    torch.set_num_threads(1)
    from metanas.harness import HarnessConfig, run_harness
    from metanas.io import atomic_write_json

    out = Path(a.out)

    def log(msg):
        print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)

    rows = validation_tasks(group_names, out, a.iters, log, only)
    if only and not rows:
        raise SystemExit(f"error: no validation task among --tasks {a.tasks}")
    # the evaluation counts reported (10, 20 and the budget, those within the budget) and the
    # one the per-group counts compare at (20, or the budget below 20)
    at = [k for k in dict.fromkeys((10, a.budget, 20)) if k <= a.budget]
    cmp_at = min(20, a.budget)
    per_task: dict = {}
    seeds = list(range(a.seeds))
    for group, space, task, ckpt in rows:
        base = out / "tnas_select" / task.replace("/", "_")
        base.parent.mkdir(parents=True, exist_ok=True)
        res = {}
        jobs = [(m, m, {}) for m in refs]
        for name, kw in variants.items():
            kw = dict(kw)
            seeds_ = kw.pop("meta_seeds", None)  # an ensemble of meta-training seeds
            train_kw = kw.pop("meta", None)  # other meta-training settings
            if seeds_ is None and train_kw:
                seeds_ = [0]
            pre = str(ckpt) if seeds_ is None else [
                str(seed_checkpoint(group, space, task, Path(ckpt), int(k), out, a.iters, log,
                                    train_kw)) for k in seeds_]
            jobs.append((name, "tnas", {**kw, "pretrained": pre}))
        for name, method, kw in jobs:
            cfg = HarnessConfig(space=space, task=task, methods=[method], seeds=seeds,
                                budget=a.budget, method_kwargs={method: kw} if kw else {})
            # the harness names runs by the checkpoint's weights: never reused across weights
            r = run_harness(cfg, base.with_name(f"{base.name}.{name}.json"))
            res[name] = variant_row(r["results"][method]["summary"], at, a.budget)
            fp = r["results"][method].get("checkpoint_sha1", {}).get("pretrained")
            if fp is not None:  # the weights searched with (see metanas.harness)
                res[name]["checkpoint_sha1"] = fp
        # keyed by group too: a task can validate in two groups (with two checkpoints)
        per_task[f"{group}:{task}"] = {"group": group, "task": task, "checkpoint": str(ckpt),
                                       "variants": res}
        log(f"{task}: " + task_line(res, at))
    groups: dict = {}
    for g in sorted({t["group"] for t in per_task.values()}):
        tasks = {k: v for k, v in per_task.items() if v["group"] == g}
        groups[g] = {}
        for name in [*refs, *variants]:
            def tf(k, name=name):  # nan where a run was shorter than k
                return np.array([np.nan if (v := t["variants"][name][f"top_fraction@{k}"])
                                 is None else v for t in tasks.values()], dtype=float)

            tfc, rsc = tf(cmp_at), tf(cmp_at, "rs")
            test = [t["variants"][name].get(f"report_test@{a.budget}") for t in tasks.values()]
            ttf = [t["variants"][name].get(f"report_top_fraction_test@{a.budget}")
                   for t in tasks.values()]
            groups[g][name] = {"n_tasks": len(tasks),
                               **{f"mean_top_fraction@{k}": _finite_or_none(tf(k).mean())
                                  for k in at},
                               f"tasks_top_fraction@{cmp_at}<=0.5%": int((tfc <= 0.005).sum()),
                               f"tasks_no_worse_than_rs@{cmp_at}":
                                   int((tfc <= rsc + 1e-12).sum())}
            if None not in test:  # the pick's held-out (test) accuracy, where tables have one
                groups[g][name][f"mean_report_test@{a.budget}"] = float(np.mean(test))
                groups[g][name][f"mean_report_top_fraction_test@{a.budget}"] = float(
                    np.mean(ttf))
    result = {"command": "python benchmarks/tnas_select.py " + shlex.join(
        argv if argv is not None else sys.argv[1:]), "seeds": a.seeds, "budget": a.budget,
        "variants": variants, "groups": groups, "tasks": per_task}
    atomic_write_json(out / f"{a.name}.json", result, indent=1)
    for g, v in groups.items():
        for name, r in v.items():
            print(f"{g:11s} {name:22s} " + "  ".join(
                f"tf@{k} {_pct(r[f'mean_top_fraction@{k}'], 5)}" for k in sorted(at))
                + f"  <=0.5%@{cmp_at}: {r[f'tasks_top_fraction@{cmp_at}<=0.5%']}/{r['n_tasks']}"
                f"  <=rs@{cmp_at}: {r[f'tasks_no_worse_than_rs@{cmp_at}']}/{r['n_tasks']}"
                + (f"  test@{a.budget} {r[f'mean_report_test@{a.budget}']:.2f} (top "
                   f"{100 * r[f'mean_report_top_fraction_test@{a.budget}']:.1f}%)"
                   if f"mean_report_test@{a.budget}" in r else ""))
    plot(result, out / f"{a.name}.png")
    return 0


def variant_row(s: dict, at, budget: int) -> dict:
    """A variant's entry from its harness summary ``s`` (``metanas.harness.summarise``, which
    reports at ``SUMMARY_AT`` and at the budget): the mean top fraction at each of ``at``, the
    mean best at ``budget`` (``None`` where a run was shorter) and the pick's test report at
    ``budget`` where the summary has it."""
    def mean(key):
        return s[key]["mean"] if key in s else None

    row = {f"top_fraction@{k}": mean(f"top_fraction@{k}") for k in at}
    row[f"best@{budget}"] = mean(f"best@{budget}")
    row.update({k: s[k]["mean"] for k in (
        f"report_test@{budget}", f"report_top_fraction_test@{budget}") if k in s})
    return row


def _finite_or_none(x) -> float | None:
    return float(x) if x is not None and np.isfinite(x) else None


def _pct(v, width: int = 0, digits: int = 2) -> str:
    """``v`` (a fraction) in per cent, or ``n/a`` for ``None``."""
    return f"{'n/a':>{width}s}" if v is None else f"{100 * v:{width}.{digits}f}%"


def task_line(res: dict, at) -> str:
    """The log line of a task's variants: their top fractions at ``at`` (``n/a``: a run was
    shorter)."""
    return "  ".join(f"{n} " + "/".join(_pct(v[f"top_fraction@{k}"]) for k in sorted(at))
                     for n, v in res.items())


def plot(result: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = result["groups"]
    # the counts drawn: 10 and 20 (those within the budget), else the budget
    ks = [k for k in (10, 20) if k <= result["budget"]] or [result["budget"]]
    w = 0.8 / len(ks)
    fig, axes = plt.subplots(1, len(groups), figsize=(5.5 * len(groups), 4), squeeze=False)
    for ax, (g, v) in zip(axes[0], groups.items()):
        names = list(v)
        x = np.arange(len(names))
        for i, k in enumerate(ks):
            ax.bar(x + (i - (len(ks) - 1) / 2) * w,
                   [np.nan if v[n][f"mean_top_fraction@{k}"] is None
                    else 100 * v[n][f"mean_top_fraction@{k}"] for n in names], w, label=f"@{k}")
        ax.set_xticks(x, names, rotation=30, ha="right")
        ax.set_ylabel("mean top fraction (%)")
        ax.set_title(f"{g} ({next(iter(v.values()))['n_tasks']} tasks, "
                     f"{result['seeds']} seeds)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
