"""GP-BO output warping ("none" vs "copula") chosen on tasks *other* than the foundation
must-show tasks (NB201 CIFAR-100, TransNAS class_scene), so the default is not tuned to them.

    python benchmarks/gpbo_warp_study.py --seeds 10 --budget 50
Writes benchmarks/results/gpbo_warp_study.json and .png (``--out`` defaults to the repository's
``benchmarks/results``, wherever the script is run from). Each (task, warp, seed) run is
checkpointed as soon as it finishes under ``gpbo_warp_study.runs/budget<B>/`` next to the output
(atomic writes): an interrupted study resumes, and another budget never reuses them.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from metanas import strategies  # noqa: E402
from metanas.benchmarks import get_benchmark  # noqa: E402
from metanas.search import run_search  # noqa: E402

TASKS = ("nb201/cifar10", "nb201/imagenet16-120", "transnas_micro/class_object",
         "transnas_micro/jigsaw", "transnas_micro/room_layout")
WARPS = ("none", "copula")


def _slug(t: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", t).strip("_")


def run_unit(bench, task: str, warp: str, seed: int, budget: int, runs: Path) -> dict:
    """Best-so-far of one GP-BO run, from its checkpoint when it has one."""
    from metanas.io import atomic_write_json, read_json

    path = runs / f"{_slug(task)}__{warp}__s{seed}.json"
    if path.exists():
        rec = read_json(path)
        if (rec.get("task"), rec.get("warp"), rec.get("seed"), rec.get("budget")) == \
                (task, warp, seed, budget):
            return rec
    bench.reset()
    st = strategies.make("gp-bo", bench.space, seed=seed, warp=warp)
    run = run_search(st, bench, budget, seed=seed)
    b = float(run.history[-1]["best_so_far"])
    rec = {"task": task, "warp": warp, "seed": seed, "budget": budget, "best": b,
           "top_fraction": float(bench.top_fraction(b))}
    atomic_write_json(path, rec)
    return rec


def summarise(best: list[float], topf: list[float]) -> dict:
    se = float(np.std(best, ddof=1) / np.sqrt(len(best))) if len(best) > 1 else None
    return {"best_mean": float(np.mean(best)), "best_se": se,
            "top_fraction_mean": float(np.mean(topf))}


def plot(res: dict, png: Path, budget: int, seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(res)
    x = np.arange(len(tasks))
    w = 0.38
    fig, ax = plt.subplots(figsize=(1.6 * len(tasks) + 3, 3.8))
    for j, warp in enumerate(WARPS):
        m = [100 * res[t][warp]["top_fraction_mean"] for t in tasks]
        ax.bar(x + (j - 0.5) * w, m, w, label=f"warp={warp}")
    ax.set_xticks(x, [t.replace("/", "\n") for t in tasks], fontsize=8)
    ax.set_ylabel("mean top fraction of the best found (%)\n(lower is better)")
    ax.set_title(f"GP-BO output warping, budget {budget}, {seeds} seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def main(argv=None):
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None):
    from metanas.errors import UserInputError
    from metanas.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--budget", type=int, default=50)
    p.add_argument("--tasks", default=",".join(TASKS))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "gpbo_warp_study.json"))
    a = p.parse_args(argv)
    for name, v in (("--seeds", a.seeds), ("--budget", a.budget)):
        if v < 1:
            raise UserInputError(f"{name} must be >= 1, got {v}")
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    if not tasks:
        raise UserInputError("--tasks is empty; give task ids, e.g. nb201/cifar10")
    benches = {t: get_benchmark(t) for t in tasks}  # an unknown task fails here, before any run
    torch.set_num_threads(1)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = out.with_name(out.stem + ".runs") / f"budget{a.budget}"
    runs.mkdir(parents=True, exist_ok=True)
    res = {}
    for task in tasks:
        bench = benches[task]
        res[task] = {}
        for warp in WARPS:
            recs = [run_unit(bench, task, warp, s, a.budget, runs) for s in range(a.seeds)]
            res[task][warp] = summarise([r["best"] for r in recs], [r["top_fraction"] for r in recs])
            print(task, warp, res[task][warp], flush=True)
    atomic_write_json(out, {"budget": a.budget, "seeds": a.seeds, "results": res}, indent=1)
    plot(res, out.with_suffix(".png"), a.budget, a.seeds)
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
