#!/usr/bin/env python
"""BASE vs one-shot baselines vs random search on held-out digits tasks (real training).

Tasks: the BASE prior's held-out evaluation tasks (``heldout_tasks`` of its config.json:
5-way digits class subsets never meta-trained on), the first ``--n-tasks`` of them. For each
task and seed, each method yields one architecture, trained from scratch with the project's
recipe (``TrainConfig()``: C=8, N=1, 12 epochs; the result is a pure function of the arch,
so trained archs are cached per task) and reported by its test accuracy:

- ``base``: BASE quick adaptation (``--steps`` ELBO steps from the prior), derived cell;
- ``base-prior``: the prior's most probable cell, no adaptation (the same for every seed);
- ``darts`` / ``snas`` / ``darts+``: the one-shot searches with ``--steps`` supernet passes
  (equal compute to BASE's adaptation; DARTS+ may stop earlier);
- ``random``: one uniform cell;
- ``rs``: random search with the same wall time as BASE's adaptation + final training of
  that (task, seed): uniform cells trained one after another until their training time
  reaches BASE's total (at least one), the best by validation accuracy.

Every (method, task, seed) record is written atomically under ``base_digits.runs/<key>/`` as
soon as it finishes; re-running resumes. ``<key>`` is a short hash of the settings that change
the records (``--steps`` and the fingerprint of the ``--pretrained`` weights), so a rerun with
other settings never reuses them; trained cells are cached per (task, arch) under
``base_digits.runs/trained/`` (a pure function of the arch). ``--timing-reps`` then measures the search wall time of
BASE / DARTS / SNAS / DARTS+ interleaved on one task (same machine load for all), and the
summary (mean +- s.e. over tasks x seeds, NB201 CIFAR-10/100 test-accuracy percentile of each
derived cell, wall times) goes to ``base_digits.json`` + ``.png``.

    python benchmarks/base_digits.py --n-tasks 3 --seeds 5
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = ("base", "base-prior", "darts", "snas", "darts+", "random", "rs")


def _slug(t: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", t).strip("_")


class Trainer:
    """``train_and_evaluate`` with a per-(task, arch) JSON cache (results are deterministic)."""

    def __init__(self, cache_dir: Path, space) -> None:
        self.dir, self.space = cache_dir, space
        self.dir.mkdir(parents=True, exist_ok=True)

    def __call__(self, task: str, arch) -> dict:
        from metanas.io import atomic_write_json, read_json
        from metanas.train import TrainConfig, build_task, train_and_evaluate

        path = self.dir / f"{_slug(task)}__{'-'.join(map(str, arch))}.json"
        if path.exists():
            return read_json(path)
        r = train_and_evaluate(arch, self.space, build_task(task), TrainConfig())
        out = {"valid": r.valid_acc, "test": r.test_acc, "train_wall_s": r.wall_s}
        atomic_write_json(path, out)
        return out


def run_one(method: str, task: str, seed: int, a, space, trainer: Trainer, runs: Path) -> dict:
    from metanas import strategies
    from metanas.io import read_json

    t0 = time.perf_counter()
    if method == "random":
        arch = space.sample(np.random.default_rng([seed, 1]), 1)[0]
        rec = {"arch": list(arch), "search_wall_s": 0.0}
    elif method == "rs":
        bpath = runs / f"base__{_slug(task)}__{seed}.json"
        if not bpath.exists():
            from metanas.errors import UserInputError

            raise UserInputError(f"method rs needs BASE's record of {task} seed {seed} (its "
                                 f"budget is BASE's wall time): add base to --methods")
        base = read_json(bpath)
        budget = base["search_wall_s"] + base["train_wall_s"]
        rng = np.random.default_rng([seed, 2])
        spent, best, n, seen = 0.0, None, 0, set()
        while n == 0 or spent < budget:
            arch = space.sample(rng, 1)[0]
            if arch in seen:
                continue
            seen.add(arch)
            r = trainer(task, arch)
            spent += r["train_wall_s"]
            n += 1
            if best is None or r["valid"] > best[1]["valid"]:
                best = (arch, r)
        arch, r = best
        return {"arch": list(arch), "search_wall_s": spent, "n_evaluated": n,
                "budget_s": budget, **{k: r[k] for k in ("valid", "test", "train_wall_s")}}
    else:
        kw = {"steps": a.steps}
        if method in ("base", "base-prior"):
            kw["pretrained"] = a.pretrained
        st = strategies.make(method, space, seed=seed, task=f"dataset:{task}", **kw)
        arch = st.ask(1)[0]
        info = st.search_info
        rec = {"arch": list(arch), "search_wall_s": float(info["wall_s"]),
               "search_steps": int(info.get("steps", 0)), "stop": info.get("reason")}
    r = trainer(task, arch)
    rec.update({k: r[k] for k in ("valid", "test", "train_wall_s")})
    rec["wall_s"] = time.perf_counter() - t0
    return rec


def timing(a, space, task: str) -> dict:
    """Search wall time of the one-shot methods, interleaved (same load), ``--timing-reps``."""
    from metanas import strategies

    out: dict[str, list[float]] = {m: [] for m in ("base", "darts", "snas", "darts+")}
    for rep in range(a.timing_reps):
        for m in out:
            kw = {"steps": a.steps, **({"pretrained": a.pretrained} if m == "base" else {})}
            st = strategies.make(m, space, seed=100 + rep, task=f"dataset:{task}", **kw)
            st.ask(1)
            out[m].append(float(st.search_info["wall_s"]))
    return {m: {"median_s": float(np.median(v)), "all_s": v} for m, v in out.items()}


def _mean_se(v) -> dict:
    v = np.asarray(v, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "se": se, "n": int(len(v))}


def summarise(records: dict, space, tasks: list[str], seeds: list[int]) -> dict:
    from metanas.meta_dataset import MetaDataset

    md = MetaDataset.load("nb201")
    tables = {d: md.table(f"nb201/{d}", split="test").to_numpy(dtype=float)
              for d in ("cifar10", "cifar100")}
    lookups = {d: md.table(f"nb201/{d}", split="test") for d in tables}

    def pct(arch, d):  # share of NB201 cells with a strictly lower test accuracy, in %
        v = float(lookups[d][space.to_str(tuple(arch))])
        return 100.0 * float((tables[d] < v).mean())

    out = {}
    for m, recs in records.items():
        rs = [recs[(t, s)] for t in tasks for s in seeds if (t, s) in recs]
        if not rs:
            continue
        e = {"test": _mean_se([r["test"] for r in rs]), "valid": _mean_se([r["valid"] for r in rs]),
             "search_wall_s": _mean_se([r["search_wall_s"] for r in rs]),
             "nb201_cifar10_percentile": _mean_se([pct(r["arch"], "cifar10") for r in rs]),
             "nb201_cifar100_percentile": _mean_se([pct(r["arch"], "cifar100") for r in rs]),
             "per_task_test": {t: _mean_se([recs[(t, s)]["test"] for s in seeds
                                            if (t, s) in recs]) for t in tasks
                               if any((t, s) in recs for s in seeds)},
             "distinct_archs": len({tuple(r["arch"]) for r in rs}),
             "skip_connects_mean": float(np.mean([sum(space.ops[o] == "skip_connect"
                                                      for o in r["arch"]) for r in rs]))}
        if m == "rs":
            e["n_evaluated"] = _mean_se([r["n_evaluated"] for r in rs])
        if any("search_steps" in r for r in rs):
            e["search_steps"] = _mean_se([r.get("search_steps", 0) for r in rs])
        out[m] = e
    return out


def plot(summary: dict, timing_res: dict | None, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ms = list(summary)
    fig, ax = plt.subplots(1, 2, figsize=(11, 4))
    means = [summary[m]["test"]["mean"] for m in ms]
    ses = [summary[m]["test"]["se"] for m in ms]
    ax[0].bar(ms, means, yerr=ses, capsize=4, color="tab:blue")
    lo = min(means) - 3 * max(ses + [0.5])
    ax[0].set_ylim(max(0, lo), 100)
    ax[0].set_ylabel("test accuracy (%) of the found cell")
    ax[0].set_title("held-out 5-way digits tasks (mean ± s.e.)")
    ax[0].tick_params(axis="x", rotation=30)
    wm = [m for m in ms if m not in ("random", "base-prior")]
    ax[1].bar(wm, [summary[m]["search_wall_s"]["mean"] for m in wm],
              yerr=[summary[m]["search_wall_s"]["se"] for m in wm], capsize=4, color="tab:orange")
    ax[1].set_ylabel("search / adaptation wall time (s), 1 CPU thread")
    ax[1].set_title("search cost (rs: training time of its cells)")
    ax[1].tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def settings_key(steps: int, weights: str) -> str:
    """Short hash of the settings that change a (method, task, seed) record or the timing."""
    d = {"steps": int(steps), "weights": weights, "train_config": "TrainConfig()"}
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def main(argv=None) -> int:
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pretrained", default=str(ROOT / "pretrained" / "base-nb201"))
    p.add_argument("--n-tasks", type=int, default=3)
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--timing-reps", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "base_digits.json"))
    a = p.parse_args(argv)
    from metanas.errors import UserInputError

    for name, v, lo in (("--n-tasks", a.n_tasks, 1), ("--seeds", a.seeds, 1),
                        ("--steps", a.steps, 1), ("--timing-reps", a.timing_reps, 0)):
        if v < lo:
            raise UserInputError(f"{name} must be >= {lo}, got {v}")
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad or not methods:
        raise UserInputError(f"unknown method(s) {', '.join(bad) or '(none given)'} in "
                             f"--methods; choose from {','.join(METHODS)}")
    pre = Path(a.pretrained)
    src = pre / "config.json" if (pre / "config.json").exists() else pre / "training_state.json"
    if not src.exists() or not (pre / "model.safetensors").exists():
        raise UserInputError(f"--pretrained {pre}: not a BASE checkpoint folder (needs "
                             f"config.json and model.safetensors); give the folder of a "
                             f"trained prior, e.g. pretrained/base-nb201")
    import torch

    torch.set_num_threads(1)
    from metanas import spaces
    from metanas.io import atomic_write_json, read_json, weights_fingerprint

    space = spaces.get("nb201")
    tasks = list(json.loads(src.read_text())["heldout_tasks"])[:a.n_tasks]
    seeds = list(range(a.seeds))
    weights = weights_fingerprint(pre)
    key = settings_key(a.steps, weights)
    out = Path(a.out)
    root = out.with_name(out.stem + ".runs")
    runs = root / key  # records of these settings only
    runs.mkdir(parents=True, exist_ok=True)
    atomic_write_json(runs / "settings.json", {"steps": a.steps, "pretrained": str(pre),
                                               "weights_fingerprint": weights})
    trainer = Trainer(root / "trained", space)
    order = [m for m in METHODS if m in methods]  # base before rs (rs needs its wall time)
    for task in tasks:
        for seed in seeds:
            for m in order:
                path = runs / f"{m}__{_slug(task)}__{seed}.json"
                if path.exists():
                    continue
                rec = run_one(m, task, seed, a, space, trainer, runs)
                atomic_write_json(path, {"method": m, "task": task, "seed": seed, **rec})
                print(f"{m:10s} {task} seed {seed}: test {rec['test']:.2f} valid "
                      f"{rec['valid']:.2f} search {rec['search_wall_s']:.1f}s "
                      f"{space.to_str(tuple(rec['arch']))}", flush=True)
    records: dict = {}
    for f in sorted(runs.glob("*__*.json")):
        r = read_json(f)
        if "method" in r and r["task"] in tasks and r["seed"] in seeds:
            records.setdefault(r["method"], {})[(r["task"], r["seed"])] = r
    tpath = runs / f"timing__{_slug(tasks[0])}__reps{a.timing_reps}.json"
    tim = read_json(tpath) if tpath.exists() else None
    if a.timing_reps > 0 and tim is None:
        tim = timing(a, space, tasks[0])
        atomic_write_json(tpath, tim)
    summary = summarise(records, space, tasks, seeds)
    res = {"tasks": tasks, "seeds": seeds, "steps": a.steps, "settings_key": key,
           "weights_fingerprint": weights,
           "pretrained": str(pre.resolve().relative_to(ROOT)) if ROOT in pre.resolve().parents
           else str(pre),
           "train_config": "TrainConfig() (C=8, N=1, 12 epochs)", "summary": summary,
           "timing_interleaved": tim,
           "records": {m: [recs[k] for k in sorted(recs)] for m, recs in records.items()}}
    atomic_write_json(out, res, indent=1)
    plot(summary, tim, out.with_suffix(".png"))
    print(f"{'method':11s} {'test acc':>14s} {'search s':>10s} {'c10 pct':>8s} {'c100 pct':>8s}")
    for m, e in summary.items():
        print(f"{m:11s} {e['test']['mean']:7.2f} ± {e['test']['se']:4.2f} "
              f"{e['search_wall_s']['mean']:10.1f} {e['nb201_cifar10_percentile']['mean']:8.1f} "
              f"{e['nb201_cifar100_percentile']['mean']:8.1f}")
    if tim:
        print("interleaved search time (median s): " +
              ", ".join(f"{m} {v['median_s']:.1f}" for m, v in tim.items()))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
