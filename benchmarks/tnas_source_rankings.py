#!/usr/bin/env python
"""What the other tasks' rankings reach after 20 evaluations, without BO: each leave-one-task-out
target of issue #3 (top fraction <= 0.5% at 20) against the tables it could transfer from.

For each target of the LOTO benchmark (TransNAS micro: the 7 tasks, each against the other 6;
NB201: each dataset against the other two; MetaD2A's tasks are too sparse to rank the space and
are left out, as ``TNAS(prior="tables")`` does), from the shipped tables only (``meta_datasets/``):

* ``rho``: Spearman rank correlation of each source table with the target over the whole
  space, and ``rho_on_prior_top``: the same on the ``m`` cells a transfer search evaluates
  first (the top ``m`` of the mean-of-sources ranking);
* ``tf_top_k``: the top fraction (share of the space strictly better than the best find) of
  evaluating the top ``k`` (``k = --budget``) of each source's ranking, of the mean normal
  score of the sources (``prior="tables"``'s design without BO), and of the best single source
  in hindsight (an oracle: only the target's table tells which source that is);
* ``sources_meeting_target``: the sources whose top ``k`` alone meets the target, and
  ``pick_rate``: on how many of ``--draws`` random samples of ``n`` cells (``n`` = 10, 20, 50,
  100, 400) the source whose ranks agree best with the sample's values (Spearman) is one of
  them, i.e. how many evaluations a rule that picks a source by its agreement with the
  observations needs before it picks one that meets the target;
* ``select``: such a rule run as a search: evaluate ``m`` cells (the mean-of-sources top ``m``,
  or ``m`` random cells, ``--draws`` draws), pick the best-agreeing source, then evaluate that
  source's best unevaluated cells up to the budget;
* ``tnas_tf``: TNAS's measured top fraction at the budget, read from
  ``benchmarks/results/tnas_loto_summary.json`` where it exists (context, not recomputed).

These are rankings followed without adaptation, not a bound on BO: TNAS adapts after its
initial design and can do better than any of them (see the README). Tables only, no model is
trained: seconds. Example (what produced the shipped result)::

    python benchmarks/tnas_source_rankings.py --out benchmarks/results

Writes ``tnas_source_rankings.json`` and ``tnas_source_rankings.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tnas_loto import TARGET_TOP_FRACTION  # noqa: E402

#: the spaces of the LOTO benchmark; every task with a table of the whole space is a source
SPACES = ("transnas_micro", "nb201")
#: sample sizes at which the source-picking rate is measured
PICK_AT = (10, 20, 50, 100, 400)
#: where the plot draws a top fraction of 0 (log axis): below one cell in 15625
FLOOR = 3e-5


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def top_fraction(y: np.ndarray, picked) -> float:
    """Share of the space strictly better than the best of ``picked`` (indices into ``y``)."""
    return float(np.mean(y > np.max(y[np.asarray(picked)])))


def top_unseen(score: np.ndarray, seen: list[int], k: int) -> list[int]:
    """The ``k`` best cells by ``score`` not in ``seen`` (ties broken by index)."""
    out, skip = [], set(seen)
    for i in np.argsort(-score, kind="stable"):
        if len(out) == k:
            break
        if int(i) not in skip:
            out.append(int(i))
    return out


def load_tables(space: str) -> tuple[list[str], np.ndarray]:
    """The space's tasks that measure every cell: ``(task ids, values [n_tasks, n_cells])``."""
    import pandas as pd

    from metanas import spaces
    from metanas.meta_dataset import MetaDataset

    md = MetaDataset.load(space)
    n = spaces.get(space).size
    tabs = {t: md.table(t, None, "valid") for t in md.task_ids(space)}
    tabs = {t: s for t, s in tabs.items() if np.isfinite(s.to_numpy(float)).sum() == n}
    df = pd.DataFrame(tabs)
    if len(df) != n:
        raise SystemExit(f"error: {space}: the full tables do not cover the same {n} cells")
    return list(df.columns), df.to_numpy(dtype=np.float64).T


def best_agreeing(Z: np.ndarray, y: np.ndarray, cells) -> int:
    """Row of ``Z`` whose ranks on ``cells`` agree best with ``y``'s (Spearman)."""
    return int(np.nanargmax([spearman(z[cells], y[cells]) for z in Z]))


def select_search(Z: np.ndarray, y: np.ndarray, first: list[int], budget: int) -> dict:
    """Evaluate ``first``, pick the best-agreeing source (row of ``Z``), fill the budget
    with its best unevaluated cells."""
    s = best_agreeing(Z, y, first)
    return {"source": s, "tf": top_fraction(y, first + top_unseen(Z[s], first, budget
                                                                    - len(first)))}


def analyse(space: str, budget: int, m: int, draws: int, tnas: dict) -> dict:
    from metanas.strategies.gp_bo import warp_values

    tasks, V = load_tables(space)
    Zall = np.stack([warp_values(v, "copula") for v in V])  # normal scores of the ranks
    rng = np.random.default_rng(0)
    out = {}
    for ti, target in enumerate(tasks):
        y = V[ti]
        src = [i for i in range(len(tasks)) if i != ti]
        names = [tasks[i] for i in src]
        Z = Zall[src]
        mean = Z.mean(0)
        prior_top = top_unseen(mean, [], m)
        tf_src = [top_fraction(y, top_unseen(z, [], budget)) for z in Z]
        oracle = int(np.argmin(tf_src))
        good = {i for i in range(len(src)) if tf_src[i] <= TARGET_TOP_FRACTION}
        pick_rate = None
        if good:
            pick_rate = {n: float(np.mean([best_agreeing(Z, y, rng.choice(len(y), n,
                                                                           replace=False))
                                           in good for _ in range(draws)]))
                         for n in PICK_AT}
        rand = [select_search(Z, y, [int(i) for i in rng.choice(len(y), m, replace=False)],
                              budget) for _ in range(draws)]
        prior_sel = select_search(Z, y, prior_top, budget)
        tfs = [r["tf"] for r in rand]
        out[target] = {
            "sources": names,
            "rho": dict(zip(names, (spearman(z, y) for z in Z))),
            "rho_on_prior_top": dict(zip(names, (spearman(z[prior_top], y[prior_top])
                                                 for z in Z))),
            "tf_top_k": {"per_source": dict(zip(names, tf_src)),
                         "mean_of_sources": top_fraction(y, top_unseen(mean, [], budget)),
                         "oracle_source": names[oracle], "oracle": tf_src[oracle]},
            "sources_meeting_target": [names[i] for i in sorted(good)],
            "pick_rate": pick_rate,
            "select": {"after_prior_top": {"source": names[prior_sel["source"]],
                                           "tf": prior_sel["tf"]},
                       "after_random": {"tf_mean": float(np.mean(tfs)),
                                        "tf_se": float(np.std(tfs, ddof=1) / np.sqrt(draws))
                                        if draws > 1 else None,
                                        "picked_a_source_meeting_target": int(sum(
                                            r["source"] in good for r in rand))}},
            "tnas_tf": tnas.get(target),
        }
    return out


def read_tnas(path: Path, budget: int) -> dict:
    if not path.is_file():
        return {}
    d = json.loads(path.read_text())
    key = f"top_fraction@{budget}"
    return {t: v["methods"]["tnas"].get(key) for t, v in d.get("tasks", {}).items()
            if "tnas" in v.get("methods", {})}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget, m = result["budget"], result["m"]
    rows = [(t, r) for sp in result["spaces"].values() for t, r in sp.items()]
    x = np.arange(len(rows))
    series = [("mean of sources (no BO)", lambda r: r["tf_top_k"]["mean_of_sources"]),
              (f"pick a source after {m} random", lambda r: r["select"]["after_random"]
               ["tf_mean"]),
              (f"pick a source after the prior's top {m}",
               lambda r: r["select"]["after_prior_top"]["tf"]),
              ("best single source (hindsight)", lambda r: r["tf_top_k"]["oracle"]),
              ("tnas (measured)", lambda r: r["tnas_tf"] if r["tnas_tf"] is not None
               else np.nan)]
    w = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(12, 4.5))
    for j, (label, f) in enumerate(series):
        # 0 (the optimum found) is drawn at FLOOR: the log axis has no 0
        ax.bar(x + (j - len(series) / 2 + 0.5) * w, [100 * max(f(r), FLOOR) for _, r in rows],
               w, label=label)
    ax.axhline(100 * TARGET_TOP_FRACTION, color="k", ls="--", lw=1,
               label=f"target {100 * TARGET_TOP_FRACTION:g}%")
    ax.set_yscale("log")
    ax.set_xticks(x, [t.split("/")[-1] for t, _ in rows], rotation=30, ha="right")
    ax.set_ylabel(f"top fraction after {budget} evaluations (%)\n(0 drawn at {100 * FLOOR}%)")
    ax.set_title(f"Following the other tasks' rankings for {budget} evaluations, without BO")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=int, default=20, help="evaluations (default 20)")
    ap.add_argument("--m", type=int, default=10,
                    help="evaluations spent before a source is picked (default 10)")
    ap.add_argument("--draws", type=int, default=200,
                    help="random samples per estimate (default 200)")
    ap.add_argument("--out", default="benchmarks/results")
    args = ap.parse_args(argv)
    if not 2 < args.m < args.budget:
        ap.error(f"--m must be in 3..{args.budget - 1} (it is {args.m})")
    if args.draws < 1:
        ap.error("--draws must be at least 1")
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(args, argv)


def _main(args, argv) -> int:
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tnas = read_tnas(Path(__file__).parent / "results" / "tnas_loto_summary.json", args.budget)
    result = {"command": "python benchmarks/tnas_source_rankings.py " + shlex.join(
        sys.argv[1:] if argv is None else argv),
        "budget": args.budget, "m": args.m, "draws": args.draws, "target": TARGET_TOP_FRACTION,
        "spaces": {sp: analyse(sp, args.budget, args.m, args.draws, tnas) for sp in SPACES}}
    from metanas.io import atomic_write_json

    atomic_write_json(out / "tnas_source_rankings.json", result, indent=1)
    plot(result, out / "tnas_source_rankings.png")
    for sp in result["spaces"].values():
        for t, r in sp.items():
            tk, pr = r["tf_top_k"], r["pick_rate"]
            print(f"{t:32s} mean-of-sources {100 * tk['mean_of_sources']:6.2f}%  "
                  f"pick(prior) {100 * r['select']['after_prior_top']['tf']:6.2f}%  "
                  f"pick(random) {100 * r['select']['after_random']['tf_mean']:6.2f}%  "
                  f"best source {100 * tk['oracle']:5.2f}% ({tk['oracle_source'].split('/')[-1]})"
                  f"  pick rate " + ("-" if pr is None else
                                     " ".join(f"{n}:{v:.2f}" for n, v in pr.items()))
                  + "  tnas " + ("-" if r["tnas_tf"] is None else f"{100 * r['tnas_tf']:.2f}%"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
