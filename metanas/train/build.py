"""Build a meta-dataset by training architectures on real tasks (live evaluation).

``python -m metanas.train.build`` (same code as ``python meta_datasets/build.py``)::

    python -m metanas.train.build --out meta_datasets/digits_live \\
        --dataset digits --n-tasks 30 --ways 5 --archs-per-task 50 --epochs 12 --workers 2

1. **Tasks**: ``--task SPEC`` (repeatable, ``metanas.train.TaskSpec`` ids such as
   ``digits:classes=0,3,5``) and/or ``--dataset SPEC`` (repeatable): with ``--ways K`` each
   dataset gives ``--n-tasks`` distinct class subsets of ``K`` classes drawn with
   ``--task-seed`` (sorted class lists, drawn in order, duplicates redrawn); without
   ``--ways`` the whole dataset is one task. ``--max-per-class``, ``--split``,
   ``--split-seed`` apply to every task.
2. **Architectures**: ``--arch-mode probe`` (default) evaluates the same probe set of
   ``--archs-per-task`` architectures on every task (drawn uniformly with ``--arch-seed``,
   one per isomorphism class), so tasks are directly comparable (rank correlations across
   tasks, a dense task x arch matrix for meta-learning); ``--arch-mode sample`` draws a
   separate set per task (``default_rng([arch_seed, task position])``), covering more of the
   space.
3. **Recipe**: ``TrainConfig`` (``--epochs`` is the fidelity, ``--C``, ``--N``,
   ``--resolution``...), the same for every evaluation.

Output (``--out DIR``, collection name ``--collection``, default the folder name)::

    DIR/.build/plan.json                 the full plan; a rerun must match it (--work-dir
                                         moves the .build folder elsewhere)
    DIR/.build/tasks/<task>.json         one task row (with sample_features)
    DIR/.build/evals/<task>/<index>.json one finished evaluation (index = the space's index)
    DIR/tasks.parquet, triples.parquet   the meta-dataset (format v1), written by consolidate
    DIR/README.md                        dataset card

Every shard is written atomically (temp file + ``os.replace``), so killing the builder at
any moment loses at most the evaluations in flight and never leaves a partial shard; rerunning
the same command skips every finished evaluation and continues; the last step
(``consolidate``) turns the shards into Parquet (also atomic). The result does not depend on
interruptions, on ``--workers`` or on completion order (rows are sorted by task then arch);
only the measured wall time (metric ``cost_s``) varies between runs. Use one builder per
output folder at a time.

Triples per evaluation (``fidelity`` = epochs): ``acc`` at ``valid`` and ``test`` (top-1 %),
``cost_s`` (wall seconds of the training run, ``valid``), ``params_norm`` (parameters in
millions) and ``flops_norm`` (MACs of one sample in millions), both ``valid``. The task row
holds ``n_classes``, ``class_ids`` (0-based indices in the source's class order) and
``sample_features`` (``metanas.train.features``, ``[n_classes][20][64]``).

``--workers N`` runs the evaluations on a local Dask cluster of N single-thread worker
processes; ``--scheduler ADDRESS`` on an existing cluster (its workers need metanas and the
dataset paths). Same results as serial. A tqdm bar shows progress and ETA.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from itertools import combinations
from math import comb
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import UserInputError
from ..io import atomic_write_bytes, atomic_write_json, read_json
from ..spaces import Arch
from ..spaces import get as get_space
from .data import DEFAULT_SPLIT, TaskSpec, build_task
from .features import FEAT_DIM, FEATURISER, N_PER_CLASS, task_sample_features
from .trainer import TrainConfig, train_and_evaluate

PLAN_VERSION = 1
BUILD_DIR = ".build"
SOURCE = "metanas live training (metanas.train)"
LICENCES = {"digits": "CC-BY-4.0 (UCI Optical Recognition of Handwritten Digits, via "
                      "scikit-learn load_digits)"}
UNKNOWN_LICENCE = "the source dataset's licence applies"


# ---------------------------------------------------------------------------- planning
def probe_archs(space, n: int, seed: int = 0) -> list[Arch]:
    """``n`` architectures drawn uniformly with ``default_rng(seed)``, one per isomorphism
    class (a draw whose class is already taken is redrawn), in draw order."""
    space = get_space(space) if isinstance(space, str) else space
    if n < 1:
        raise UserInputError(f"--archs-per-task must be >= 1, got {n}")
    if n > space.n_unique():
        raise UserInputError(f"{space.name} has {space.n_unique()} isomorphism classes; "
                             f"--archs-per-task {n} is too many")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out, keys = [], set()
    while len(out) < n:
        a = space.sample(rng, 1)[0]
        k = space.iso_key(a)
        if k not in keys:
            keys.add(k)
            out.append(a)
    return out


def draw_class_subsets(classes: Sequence[str], n_tasks: int, ways: int,
                       seed: int | np.random.Generator = 0) -> list[tuple[str, ...]]:
    """``n_tasks`` distinct ``ways``-class subsets of ``classes`` (each in source order),
    drawn with ``default_rng(seed)``: a uniform random choice of ``n_tasks`` of all subsets
    when there are at most ``4 * n_tasks`` of them, else repeated draws with duplicates
    redrawn."""
    k = len(classes)
    if not 2 <= ways <= k:
        raise UserInputError(f"--ways {ways}: the dataset has {k} classes; need 2 <= ways <= {k}")
    if n_tasks > comb(k, ways):
        raise UserInputError(f"--n-tasks {n_tasks}: only {comb(k, ways)} distinct {ways}-class "
                             f"subsets of {k} classes")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out: list[tuple[str, ...]] = []
    seen = set()
    if comb(k, ways) <= 4 * n_tasks and comb(k, ways) <= 100_000:
        pool = list(combinations(range(k), ways))
        pick = rng.permutation(len(pool))[:n_tasks]
        return [tuple(classes[i] for i in pool[p]) for p in pick]
    while len(out) < n_tasks:
        s = tuple(sorted(int(i) for i in rng.choice(k, size=ways, replace=False)))
        if s not in seen:
            seen.add(s)
            out.append(tuple(classes[i] for i in s))
    return out


def _slug(text: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_.-")
    return s or "task"


def task_name(spec: TaskSpec) -> str:
    """Short name of a task inside its collection: ``<source stem>[-<classes>]``."""
    base = _slug(Path(spec.source).stem if spec.source != "digits" else "digits")
    if spec.classes is not None:
        base += "-" + "-".join(_slug(c) for c in spec.classes)
    return base


@dataclass(frozen=True)
class BuildPlan:
    """Everything that defines a build's results (``plan.json``)."""

    collection: str
    space: str
    tasks: tuple[TaskSpec, ...]
    names: tuple[str, ...]
    archs: tuple[tuple[Arch, ...], ...]  # per task
    train: TrainConfig
    arch_mode: str = "probe"
    n_per_class: int = N_PER_CLASS
    feature_seed: int = 0

    def jobs(self) -> list[tuple[int, Arch]]:
        """``(task position, arch)`` in build order (task-major)."""
        return [(t, a) for t in range(len(self.tasks)) for a in self.archs[t]]

    def to_json(self) -> dict:
        space = get_space(self.space)
        return {"version": PLAN_VERSION, "collection": self.collection, "space": self.space,
                "featuriser": FEATURISER, "n_per_class": self.n_per_class,
                "feature_seed": self.feature_seed, "arch_mode": self.arch_mode,
                "train": self.train.to_dict(),
                "tasks": [{"name": n, "spec": s.id, "archs": [space.to_str(a) for a in archs]}
                          for n, s, archs in zip(self.names, self.tasks, self.archs)]}

    @classmethod
    def from_json(cls, d: dict) -> "BuildPlan":
        space = get_space(d["space"])
        return cls(collection=d["collection"], space=d["space"],
                   tasks=tuple(TaskSpec.parse(t["spec"]) for t in d["tasks"]),
                   names=tuple(t["name"] for t in d["tasks"]),
                   archs=tuple(tuple(space.from_str(a) for a in t["archs"]) for t in d["tasks"]),
                   train=TrainConfig.from_dict(d["train"]), arch_mode=d["arch_mode"],
                   n_per_class=int(d["n_per_class"]), feature_seed=int(d["feature_seed"]))


def make_plan(collection: str, tasks: Sequence[TaskSpec], *, space: str = "nb201",
              archs_per_task: int = 50, arch_mode: str = "probe", arch_seed: int = 0,
              train: TrainConfig | None = None, n_per_class: int = N_PER_CLASS,
              feature_seed: int = 0) -> BuildPlan:
    """The plan of a build (see the module doc for the architecture modes)."""
    sp = get_space(space)
    tasks = tuple(tasks)
    if not tasks:
        raise UserInputError("no tasks: give --dataset and/or --task")
    if len(set(t.id for t in tasks)) != len(tasks):
        raise UserInputError("the same task is listed twice")
    names, used = [], set()
    for t in tasks:
        n, i = task_name(t), 2
        while n in used:
            n, i = f"{task_name(t)}-{i}", i + 1
        used.add(n)
        names.append(n)
    if arch_mode == "probe":
        probe = tuple(probe_archs(sp, archs_per_task, arch_seed))
        archs = tuple(probe for _ in tasks)
    elif arch_mode == "sample":
        archs = tuple(tuple(probe_archs(sp, archs_per_task, np.random.default_rng([arch_seed, i])))
                      for i in range(len(tasks)))
    else:
        raise UserInputError(f"--arch-mode must be probe or sample, not {arch_mode!r}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", collection):
        raise UserInputError(f"collection name {collection!r}: use letters, digits, _ . -")
    return BuildPlan(collection, sp.name, tasks, tuple(names), archs, train or TrainConfig(),
                     arch_mode, int(n_per_class), int(feature_seed))


def tasks_from_datasets(datasets: Sequence[str], n_tasks: int | None, ways: int | None,
                        seed: int = 0, **spec_fields) -> list[TaskSpec]:
    """Task specs of ``datasets``: ``n_tasks`` class subsets of ``ways`` classes each, or
    (``ways`` None / 0) the whole dataset as one task."""
    out = []
    for k, d in enumerate(datasets):
        base = TaskSpec.parse(d, **spec_fields)
        if not ways:
            out.append(base)
            continue
        src = base.load_source()
        pool = base.classes if base.classes is not None else src.classes
        rng = np.random.default_rng([int(seed), k])  # dataset k of the list
        out.extend(base.replace(classes=cl)
                   for cl in draw_class_subsets(pool, int(n_tasks or 1), int(ways), rng))
    return out


# ---------------------------------------------------------------------------- jobs
def run_job(spec: TaskSpec, space: str, arch: Arch, train: TrainConfig,
            device=None) -> dict:
    """Train one architecture on one task (runs in a worker); a JSON-ready record."""
    data = build_task(spec)
    r = train_and_evaluate(arch, space, data, train, device=device)
    return {"arch": get_space(space).to_str(arch), "valid_acc": r.valid_acc,
            "test_acc": r.test_acc, "train_acc": r.train_acc, "train_loss": r.train_loss,
            "wall_s": r.wall_s, "params": r.params, "flops": r.flops, "epochs": r.epochs,
            "device": r.device}


def task_record(plan: BuildPlan, i: int) -> dict:
    """The task row of task ``i`` (loads its data; computes its sample features)."""
    spec = plan.tasks[i]
    data = build_task(spec)
    feats = task_sample_features(data, plan.n_per_class, plan.feature_seed)
    sizes = data.sizes()
    h, w = data.image_size
    src_name = spec.source if spec.source in LICENCES else Path(spec.source).name
    t = plan.train
    desc = (f"live training on {spec.id}: {data.n_classes} classes, {sizes['train']}/"
            f"{sizes['valid']}/{sizes['test']} train/valid/test images of {h}x{w}x"
            f"{data.in_channels}; TrainConfig({t.short()}); sample_features: {FEATURISER}, "
            f"{plan.n_per_class} train images per class (seed {plan.feature_seed})")
    return {"task": f"{plan.collection}/{plan.names[i]}", "space": plan.space,
            "description": desc, "n_classes": int(data.n_classes),
            "class_ids": [int(c) for c in data.class_ids],
            "sample_features": feats.tolist(), "default_metric": "acc",
            "report_metric": "acc", "source": f"{SOURCE}; data: {src_name}",
            "licence": LICENCES.get(spec.source, UNKNOWN_LICENCE)}


# ---------------------------------------------------------------------------- shards
class ShardStore:
    """The ``.build`` folder of an output folder."""

    def __init__(self, out: str | os.PathLike, work_dir: str | os.PathLike | None = None) -> None:
        self.out = Path(out)
        self.root = Path(work_dir) if work_dir is not None else self.out / BUILD_DIR
        self.plan_file = self.root / "plan.json"

    def task_file(self, name: str) -> Path:
        return self.root / "tasks" / f"{name}.json"

    def eval_file(self, name: str, index: int) -> Path:
        return self.root / "evals" / name / f"{index:06d}.json"

    def clean_temp(self) -> int:
        """Remove temp files left by a killed writer (``.<name>.*.tmp``); returns how many."""
        n = 0
        if self.root.is_dir():
            for p in self.root.rglob(".*.tmp"):
                p.unlink(missing_ok=True)
                n += 1
        for p in self.out.glob(".*.tmp"):
            p.unlink(missing_ok=True)
            n += 1
        return n

    def load_or_init_plan(self, plan: BuildPlan) -> None:
        """Write ``plan.json``, or check that an existing one is the same plan."""
        want = plan.to_json()
        if self.plan_file.is_file():
            have = read_json(self.plan_file)
            if have != want:
                diff = sorted(k for k in set(have) | set(want) if have.get(k) != want.get(k))
                raise UserInputError(
                    f"{self.out} holds a build with a different plan (differs in: "
                    f"{', '.join(diff)}); rerun the original command, or use another --out")
        else:
            atomic_write_json(self.plan_file, want, indent=1)


def _write_json(path: Path, obj) -> None:
    atomic_write_bytes(path, json.dumps(obj, separators=(",", ":")).encode())


# ---------------------------------------------------------------------------- build
def _eval_index(space, arch: Arch) -> int:
    return int(space.index(arch))


def pending_jobs(plan: BuildPlan, store: ShardStore) -> list[tuple[int, Arch]]:
    sp = get_space(plan.space)
    return [(t, a) for t, a in plan.jobs()
            if not store.eval_file(plan.names[t], _eval_index(sp, a)).is_file()]


def build(plan: BuildPlan, out: str | os.PathLike, *, workers: int = 0,
          scheduler: str | None = None, device=None, progress: bool = True,
          consolidate_at_end: bool = True, work_dir: str | os.PathLike | None = None) -> Path:
    """Run (or resume) a build; returns the output folder.

    Args:
        plan: from ``make_plan``.
        out: output folder (created).
        workers: ``0`` = serial in this process; ``N`` = local Dask cluster of N processes.
        scheduler: address of a running Dask scheduler (overrides ``workers``).
        device: training device (``None`` = CPU).
        progress: show a tqdm bar (ETA).
        consolidate_at_end: write the Parquet files when every evaluation is done.
        work_dir: shard folder (default ``<out>/.build``), e.g. to keep shards out of a
            folder that is shipped.
    """
    from tqdm.auto import tqdm

    store = ShardStore(out, work_dir)
    store.root.mkdir(parents=True, exist_ok=True)
    store.clean_temp()
    store.load_or_init_plan(plan)
    sp = get_space(plan.space)
    for i, name in enumerate(plan.names):
        f = store.task_file(name)
        if not f.is_file():
            _write_json(f, task_record(plan, i))
    todo = pending_jobs(plan, store)
    total = len(plan.jobs())
    bar = tqdm(total=total, initial=total - len(todo), unit="arch", desc=plan.collection,
               disable=not progress, dynamic_ncols=True, smoothing=0.1)

    def save(t: int, rec: dict) -> None:
        _write_json(store.eval_file(plan.names[t], _eval_index(sp, sp.from_str(rec["arch"]))),
                    {"task": f"{plan.collection}/{plan.names[t]}", **rec})
        bar.update(1)

    try:
        if todo and (workers or scheduler):
            from dask.distributed import Client, as_completed

            from ..benchmarks.live import local_client

            client = Client(scheduler) if scheduler else local_client(int(workers))
            try:
                futs = {}
                for t, a in todo:
                    f = client.submit(run_job, plan.tasks[t], plan.space, a, plan.train, device,
                                      pure=False)
                    futs[f] = t
                for f in as_completed(list(futs)):
                    save(futs[f], f.result())
            finally:
                cluster = None if scheduler else client.cluster
                client.close()
                if cluster is not None:
                    cluster.close()
        else:
            for t, a in todo:
                save(t, run_job(plan.tasks[t], plan.space, a, plan.train, device))
    finally:
        bar.close()
    if consolidate_at_end:
        consolidate(out, work_dir=work_dir)
    return Path(out)


# ---------------------------------------------------------------------------- consolidate
def collect(out: str | os.PathLike, partial: bool = False,
            work_dir: str | os.PathLike | None = None):
    """The shards of ``out`` as a ``MetaDataset`` (sorted: task order, then arch order).

    Raises ``UserInputError`` when evaluations are missing, unless ``partial`` (then only
    finished ones, and only tasks with at least one)."""
    import pandas as pd

    from ..meta_dataset import COST_METRIC, MetaDataset

    store = ShardStore(out, work_dir)
    if not store.plan_file.is_file():
        raise UserInputError(f"{out}: no build here ({store.plan_file} is missing)")
    plan = BuildPlan.from_json(read_json(store.plan_file))
    sp = get_space(plan.space)
    tasks, rows, missing = [], [], 0
    fid = int(plan.train.epochs)
    for t, name in enumerate(plan.names):
        recs = []
        for a in plan.archs[t]:
            f = store.eval_file(name, _eval_index(sp, a))
            if f.is_file():
                recs.append(read_json(f))
            else:
                missing += 1
        tf = store.task_file(name)
        if not recs or not tf.is_file():
            continue
        tasks.append(read_json(tf))
        tid = f"{plan.collection}/{name}"
        for r in recs:
            for metric, split, value in (("acc", "valid", r["valid_acc"]),
                                         ("acc", "test", r["test_acc"]),
                                         (COST_METRIC, "valid", r["wall_s"]),
                                         ("params_norm", "valid", r["params"] / 1e6),
                                         ("flops_norm", "valid", r["flops"] / 1e6)):
                rows.append((tid, plan.space, r["arch"], metric, float(value), fid, split, SOURCE))
    if missing and not partial:
        raise UserInputError(f"{out}: {missing} of {len(plan.jobs())} evaluations are not done; "
                             f"rerun the build command (or consolidate with --partial)")
    if not tasks:
        raise UserInputError(f"{out}: no finished evaluation yet")
    tdf = pd.DataFrame(tasks)
    tdf["sample_features"] = [np.asarray(f, dtype=np.float32).tolist() for f in tdf["sample_features"]]
    triples = pd.DataFrame(rows, columns=["task", "space", "arch", "metric", "value", "fidelity",
                                          "split", "source"])
    md = MetaDataset(tdf, triples, None, name=plan.collection)
    md.validate()
    return md


def dataset_card(name: str, md, plan: BuildPlan) -> str:
    files = ["tasks.parquet", "triples.parquet"]
    configs = "\n".join(f"- config_name: {f.split('.')[0]}\n  data_files: {f}" for f in files)
    lic = "; ".join(sorted(set(md.tasks["licence"])))
    # Hub licence tag: the single known source licence, else "other" (named in the text)
    tag = ("cc-by-4.0" if set(md.tasks["licence"]) == {LICENCES["digits"]} else "other")
    return (f"---\nlicense: {tag}\nconfigs:\n{configs}\n---\n# metanas meta-dataset: {name}\n\n"
            f"{len(md.tasks)} tasks x {len(plan.archs[0])} {plan.space} architectures "
            f"({plan.arch_mode} set), {len(md.triples)} triples (format v1, see the metanas "
            f"repository's meta_datasets/README.md).\n\n"
            f"Measured by live training (`metanas.train`): TrainConfig({plan.train.short()}). "
            f"Metrics: acc (valid, test; %), cost_s (wall seconds, the only value that varies "
            f"between builds), params_norm (M parameters), flops_norm (M MACs per sample). "
            f"sample_features: {FEATURISER} ({plan.n_per_class} x {FEAT_DIM} per class).\n\n"
            f"Licences: {lic}.\n\nGenerated by `python meta_datasets/build.py --out ...`; "
            f"the plan is in `.build/plan.json`; do not edit by hand.\n")


def consolidate(out: str | os.PathLike, partial: bool = False,
                work_dir: str | os.PathLike | None = None) -> Path:
    """Write ``tasks.parquet``, ``triples.parquet`` and ``README.md`` from the shards."""
    md = collect(out, partial=partial, work_dir=work_dir)
    plan = BuildPlan.from_json(read_json(ShardStore(out, work_dir).plan_file))
    md.save(out)
    atomic_write_bytes(Path(out) / "README.md", dataset_card(plan.collection, md, plan).encode())
    return Path(out)


# ---------------------------------------------------------------------------- CLI
def _parser() -> argparse.ArgumentParser:
    doc = (__doc__ or "").split("\n\n")[0]
    ap = argparse.ArgumentParser(prog="python -m metanas.train.build", description=doc,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (resumable)")
    ap.add_argument("--collection", help="collection name [the --out folder name]")
    ap.add_argument("--work-dir", help="shard folder [<out>/.build]")
    g = ap.add_argument_group("tasks")
    g.add_argument("--dataset", action="append", default=[],
                   help="dataset id (digits, folder, .npz, datasets folder, Hub id); repeatable")
    g.add_argument("--task", action="append", default=[],
                   help="explicit task id, e.g. digits:classes=0,3,5; repeatable")
    g.add_argument("--n-tasks", type=int, default=30, help="class-subset tasks per --dataset")
    g.add_argument("--ways", type=int, default=0,
                   help="classes per task; 0 = each --dataset is one task")
    g.add_argument("--task-seed", type=int, default=0)
    g.add_argument("--max-per-class", type=int)
    g.add_argument("--split", default=",".join(str(v) for v in DEFAULT_SPLIT),
                   help="train,valid,test fractions")
    g.add_argument("--split-seed", type=int, default=0)
    g = ap.add_argument_group("architectures")
    g.add_argument("--space", default="nb201")
    g.add_argument("--archs-per-task", type=int, default=50)
    g.add_argument("--arch-mode", choices=("probe", "sample"), default="probe",
                   help="probe: one shared set for all tasks; sample: a set per task")
    g.add_argument("--arch-seed", type=int, default=0)
    g = ap.add_argument_group("training recipe (TrainConfig)")
    d = TrainConfig()
    g.add_argument("--epochs", type=int, default=d.epochs, help="the fidelity")
    g.add_argument("--C", type=int, default=d.C)
    g.add_argument("--N", type=int, default=d.N)
    g.add_argument("--batch-size", type=int, default=d.batch_size)
    g.add_argument("--lr", type=float, default=d.lr)
    g.add_argument("--weight-decay", type=float, default=d.weight_decay)
    g.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    g.add_argument("--resolution", type=lambda s: None if s.lower() == "none" else int(s),
                   default=d.resolution, help="square input size, or none = native")
    g.add_argument("--augment", action="store_true")
    g.add_argument("--train-seed", type=int, default=d.seed)
    g = ap.add_argument_group("sample features")
    g.add_argument("--n-per-class", type=int, default=N_PER_CLASS)
    g.add_argument("--feature-seed", type=int, default=0)
    g = ap.add_argument_group("execution")
    g.add_argument("--workers", type=int, default=0, help="local Dask worker processes (0 = serial)")
    g.add_argument("--scheduler", help="address of a running Dask scheduler")
    g.add_argument("--device", default=None, help="cpu (default), auto, cuda, cuda:1 ...")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--consolidate-only", action="store_true",
                   help="only write the Parquet files from the shards")
    g.add_argument("--partial", action="store_true",
                   help="with --consolidate-only: write the finished evaluations only")
    return ap


def plan_from_args(args) -> BuildPlan:
    split = tuple(float(v) for v in str(args.split).split(","))
    spec_fields = {"max_per_class": args.max_per_class, "split": split,
                   "split_seed": args.split_seed}
    tasks = [TaskSpec.parse(t, **spec_fields) for t in args.task]
    datasets = args.dataset or ([] if args.task else ["digits"])
    tasks += tasks_from_datasets(datasets, args.n_tasks, args.ways, args.task_seed, **spec_fields)
    train = TrainConfig(C=args.C, N=args.N, epochs=args.epochs, batch_size=args.batch_size,
                        lr=args.lr, weight_decay=args.weight_decay,
                        label_smoothing=args.label_smoothing, resolution=args.resolution,
                        augment=args.augment, seed=args.train_seed)
    collection = args.collection or _slug(Path(args.out).resolve().name)
    return make_plan(collection, tasks, space=args.space, archs_per_task=args.archs_per_task,
                     arch_mode=args.arch_mode, arch_seed=args.arch_seed, train=train,
                     n_per_class=args.n_per_class, feature_seed=args.feature_seed)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.consolidate_only:
            consolidate(args.out, partial=args.partial, work_dir=args.work_dir)
            print(f"consolidated {args.out}")
            return 0
        plan = plan_from_args(args)
        t0 = time.perf_counter()
        build(plan, args.out, workers=args.workers, scheduler=args.scheduler, device=args.device,
              progress=not args.no_progress, work_dir=args.work_dir)
        n = len(plan.jobs())
        print(f"{args.out}: {len(plan.tasks)} tasks x {len(plan.archs[0])} archs = {n} "
              f"evaluations, done in {time.perf_counter() - t0:.1f} s (this run)")
        return 0
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
