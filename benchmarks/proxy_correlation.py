"""Check metanas' zero-cost proxies against the published NAS-Bench-201 zero-cost table.

For a random sample of the architectures of NASLib's published NB201 zero-cost table
(NAS-Bench-Suite-Zero, ~725 archs per dataset, shipped as ``meta_datasets/nb201/proxies.parquet``),
compute our proxies (``metanas.proxies``) on the NB201 network (C=16, N=5,
``metanas.nn.CellNetwork``) with one real mini-batch of scikit-learn digits (upsampled to
32x32, 3 channels; CIFAR-10 images are not available offline) and report Spearman rank
correlations:

(a) ours vs the published proxy column, (b) ours vs the NB201 test accuracy (200 epochs, the
shipped ``nb201`` meta-dataset), (c) the published proxy vs that accuracy (same sample, and
all archs of the published table);

plus the proxy cost per architecture on this CPU (median seconds, 1 thread), and a check of
our parameter / FLOP counts against the published ``params`` / ``flops`` columns.

Only the repository's shipped data is read (``metanas.meta_dataset.MetaDataset.load("nb201")``).
The NASLib tuple -> NB201 arch conversion is checked (and asserted) when the shipped tables are
built (``meta_datasets/build_shipped.py``, "NASLib mapping check" in ``meta_datasets/README.md``).
The published table's ``val_accuracy`` is not shipped: accuracies are the benchmark's own
200-epoch test accuracies (NASLib's ``val_accuracy`` is within a median of 0.13 points of them).
Failed published scores (null in the shipped table) rank worst, NASLib's convention.

Per-architecture scores are checkpointed under ``<out>/proxy_correlation.runs/<settings key>/``
(atomic writes; an interrupted run resumes, other settings never reuse them). Example (about
5-8 minutes on 1 core)::

    python benchmarks/proxy_correlation.py --n-archs 200 --batch-size 32 \\
        --out /tmp/metanas_proxy_correlation

Writes ``proxy_correlation.json`` and ``proxy_correlation.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: published column -> our registry name
PROXY_COLUMNS = {"snip": "snip", "synflow": "synflow_log", "jacov": "jacob_cov",
                 "grad_norm": "grad_norm", "nwot": "nwot"}
#: --dataset -> shipped task id
TASKS = {"cifar10": "nb201/cifar10", "cifar100": "nb201/cifar100",
         "ImageNet16-120": "nb201/imagenet16-120"}


def spearman(a, b) -> tuple[float, int]:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3:
        return float("nan"), int(ok.sum())
    # +-inf are valid extreme scores (e.g. nwot of a singular kernel, a failed published
    # score): rank them as such
    return float(spearmanr(a[ok], b[ok])[0]), int(ok.sum())


def json_safe(obj):
    """``obj`` with every non-finite float replaced by ``None`` (JSON has no NaN / inf)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    return obj


def load_published(task: str):
    """The shipped NASLib zero-cost table of ``task`` and the task's NB201 test accuracy.

    Returns ``(archs, pub, times, acc)``: arch strings in the table's stored order (NB201 index
    order), ``pub[proxy][arch]`` the published score (``-inf`` where NASLib's proxy failed,
    NASLib's ranking convention; absent where the table has no score), ``times[proxy][arch]``
    the published seconds, ``acc[arch]`` the 200-epoch test accuracy (%).
    """
    from metanas.meta_dataset import MetaDataset

    md = MetaDataset.load("nb201")
    p = md.proxies[md.proxies["task"] == task]
    p = p[~p["proxy"].str.startswith("digits_")]  # metanas' own full-space table, not published
    archs = list(dict.fromkeys(p["arch"].tolist()))
    pub: dict[str, dict[str, float]] = {}
    times: dict[str, dict[str, float]] = {}
    for row in p.itertuples(index=False):
        sc = float(row.score)
        pub.setdefault(row.proxy, {})[row.arch] = -math.inf if math.isnan(sc) else sc
        times.setdefault(row.proxy, {})[row.arch] = float(row.time_s)
    acc = md.table(task, "acc", split="test", fidelity=200)
    return archs, pub, times, {a: float(acc[a]) for a in archs}


def settings_key(d: dict) -> str:
    return hashlib.sha1(json.dumps(d, sort_keys=True).encode()).hexdigest()[:10]


def scores_resumable(names, archs, strings, batch, config, seed: int, folder: Path):
    """``compute_many`` one arch at a time, each arch's result checkpointed in ``folder``."""
    from metanas.io import atomic_write_json, read_json
    from metanas.proxies import compute_many

    folder.mkdir(parents=True, exist_ok=True)
    scores = {n: np.full(len(archs), np.nan) for n in names}
    times = {n: np.zeros(len(archs)) for n in names + ["build"]}
    n_resumed = 0
    for i, (a, s) in enumerate(zip(archs, strings)):
        path = folder / (hashlib.sha1(s.encode()).hexdigest()[:16] + ".json")
        rec = read_json(path) if path.exists() else None
        if rec is not None and rec.get("arch") == s:
            n_resumed += 1
        else:
            sc, tm = compute_many(names, [a], "nb201", batch, config, seed=seed,
                                  return_times=True)
            # scores may be +-inf (valid extremes): stored as strings, JSON has no inf
            rec = {"arch": s, "scores": {n: repr(float(sc[n][0])) for n in names},
                   "times": {n: float(tm[n][0]) for n in tm}}
            atomic_write_json(path, rec)
        for n in names:
            scores[n][i] = float(rec["scores"][n])
        for n in times:
            times[n][i] = rec["times"][n]
    return scores, times, n_resumed


def main(argv=None) -> int:
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> int:
    from metanas.errors import UserInputError

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", default="cifar10", choices=list(TASKS))
    ap.add_argument("--n-archs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32,
                    help="digits per mini-batch (the published table's scores fit 32)")
    ap.add_argument("--size", type=int, default=32, help="image side after upsampling")
    ap.add_argument("--seed", type=int, default=0, help="arch sample / batch / init seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/metanas_proxy_correlation")
    args = ap.parse_args(argv)
    for name, v, lo in (("--n-archs", args.n_archs, 3), ("--batch-size", args.batch_size, 1),
                        ("--size", args.size, 8), ("--threads", args.threads, 1),
                        ("--seed", args.seed, 0)):
        if v < lo:
            raise UserInputError(f"{name} must be >= {lo}, got {v}")

    import torch

    torch.set_num_threads(args.threads)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metanas.io import atomic_write_json
    from metanas.nn import CellNetwork, NetworkConfig, count_flops, count_params
    from metanas.proxies import digits_batch
    from metanas.spaces import get as get_space

    space = get_space("nb201")
    task = TASKS[args.dataset]
    keys, published_scores, published_times, acc_of = load_published(task)
    n_classes = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}[args.dataset]

    def pub(k, col):
        return published_scores.get(col, {}).get(k, float("nan"))

    report: dict = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                    "args": vars(args), "task": task,
                    "data": "meta_datasets/nb201 (proxies.parquet: NASLib's published "
                            "zero-cost table; triples.parquet: test acc at 200 epochs)",
                    "accuracy": "NB201 test accuracy (%), 200 epochs",
                    "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "machine": platform.processor()
                    or platform.machine(), "n_table_archs": len(keys),
                    "mapping_check": "done when the shipped table is built "
                                     "(meta_datasets/build_shipped.py, see meta_datasets/README.md)"}

    # ---- 1. sample (archs in the shipped table's NB201 index order)
    rng = np.random.default_rng(args.seed)
    pick = sorted(rng.choice(len(keys), size=min(args.n_archs, len(keys)), replace=False))
    sample = [keys[i] for i in pick]
    archs = [space.from_str(k) for k in sample]
    val = np.array([acc_of[k] for k in sample])
    config = NetworkConfig(C=16, N=5, in_channels=3, num_classes=n_classes)

    # ---- 3. params / flops check on the sample
    ours_params, ours_flops = [], []
    for a in archs:
        net = CellNetwork(a, "nb201", config, seed=args.seed)
        ours_params.append(count_params(net))
        ours_flops.append(count_flops(net, (3, 32, 32)))
    pub_params = np.array([pub(k, "params") for k in sample])
    pub_flops = np.array([pub(k, "flops") for k in sample])
    # published FLOPs = our MACs + a + b * (#conv ops) + c * (#pool ops): check it is affine
    n_conv = np.array([sum(o in (2, 3) for o in a) for a in archs], float)
    n_pool = np.array([sum(o == 4 for o in a) for a in archs], float)
    X = np.stack([np.ones(len(archs)), n_conv, n_pool], 1)
    extra = pub_flops - np.array(ours_flops) / 1e6
    coef = np.linalg.lstsq(X, extra, rcond=None)[0]
    report["params_flops_check"] = {
        "params_exact_match": int(np.sum(np.round(np.array(ours_params) / 1e6, 6) == pub_params)),
        "n": len(sample),
        "flops_spearman_ours_macs_vs_published": spearman(ours_flops, pub_flops)[0],
        "flops_published_minus_ours_fit_M": {
            "const": float(coef[0]), "per_conv_op": float(coef[1]),
            "per_pool_op": float(coef[2]),
            "max_abs_residual": float(np.abs(X @ coef - extra).max())},
        "note": "ours: conv+linear MACs on 3x32x32; published FLOPs also count BN/ReLU/pool "
                "elements, an exact affine function of the op counts",
    }
    print("params/flops check:", report["params_flops_check"])

    # ---- 4. proxies (one checkpoint file per arch, keyed by the settings)
    if args.dataset != "cifar10":
        print("note: digits have 10 classes; the head has", n_classes, "outputs")
    batch = digits_batch(n=args.batch_size, size=args.size, seed=args.seed, channels=3)
    batch = batch._replace(num_classes=n_classes)
    names = list(PROXY_COLUMNS.values())
    key = settings_key({"batch_size": args.batch_size, "size": args.size, "seed": args.seed,
                        "n_classes": n_classes, "C": 16, "N": 5, "proxies": names,
                        "threads": args.threads})
    out = Path(args.out)
    runs = out / "proxy_correlation.runs" / key
    t0 = time.perf_counter()
    scores, times, n_resumed = scores_resumable(names, archs, sample, batch, config, args.seed,
                                                runs)
    wall = time.perf_counter() - t0
    print(f"proxies of {len(archs)} archs in {wall:.1f} s ({n_resumed} resumed from {runs})")

    table_rows = {}
    for col, ours_name in PROXY_COLUMNS.items():
        ours = scores[ours_name]
        published = np.array([pub(k, col) for k in sample])
        published_all = np.array([pub(k, col) for k in keys])
        val_all = np.array([acc_of[k] for k in keys])
        ra, na = spearman(ours, published)
        rb, nb = spearman(ours, val)
        rc, nc = spearman(published, val)
        rc_all, nc_all = spearman(published_all, val_all)
        table_rows[col] = {
            "ours": ours_name, "a_ours_vs_published": ra, "b_ours_vs_acc": rb,
            "c_published_vs_acc": rc, "c_published_vs_acc_all_archs": rc_all,
            "n": na, "n_all": nc_all,
            "median_cost_s": float(np.median(times[ours_name])),
            "mean_cost_s": float(np.mean(times[ours_name])),
            "median_published_time_s": float(np.nanmedian(
                [published_times[col][k] for k in sample if k in published_times[col]])),
            "n_nonfinite_ours": int(np.sum(~np.isfinite(ours))),
        }
    # per-arch cost of all five together (shared gradient counted once) + network build
    per_arch_total = (times["build"] + times["synflow_log"] + times["jacob_cov"]
                      + times["nwot"] + np.maximum(times["grad_norm"], times["snip"]))
    report["correlations"] = table_rows
    report["cost"] = {"median_build_s": float(np.median(times["build"])),
                      "median_all_five_per_arch_s": float(np.median(per_arch_total)),
                      "wall_s": wall, "n_archs": len(archs), "n_resumed": n_resumed,
                      "note": "costs of resumed archs were measured by the interrupted run"}
    report["sample"] = [{"arch_str": k, "arch": list(a), "test_acc": float(v),
                         **{n: float(scores[n][i]) for n in names}}
                        for i, (k, a, v) in enumerate(zip(sample, archs, val))]

    # ---- 5. print the table
    print(f"\nSpearman rho, {len(archs)} archs of NB201 {args.dataset} (published table; test acc), ours on "
          f"digits {args.batch_size}x3x{args.size}x{args.size}, seed {args.seed}")
    print(f"{'proxy':10s} {'(a) ours~pub':>12s} {'(b) ours~acc':>12s} {'(c) pub~acc':>11s} "
          f"{'(c) all':>8s} {'cost s':>7s}")
    for col, r in table_rows.items():
        print(f"{col:10s} {r['a_ours_vs_published']:12.3f} {r['b_ours_vs_acc']:12.3f} "
              f"{r['c_published_vs_acc']:11.3f} {r['c_published_vs_acc_all_archs']:8.3f} "
              f"{r['median_cost_s']:7.3f}")
    print(f"median build {report['cost']['median_build_s']:.3f} s, all five per arch "
          f"{report['cost']['median_all_five_per_arch_s']:.3f} s")

    # ---- 6. outputs
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "proxy_correlation.json", json_safe(report), indent=1)
    from scipy.stats import rankdata

    fig, axes = plt.subplots(2, len(PROXY_COLUMNS), figsize=(4 * len(PROXY_COLUMNS), 7.5))
    for j, (col, ours_name) in enumerate(PROXY_COLUMNS.items()):
        ours = scores[ours_name]
        published = np.array([pub(k, col) for k in sample])
        ok = ~(np.isnan(ours) | np.isnan(published))
        ax = axes[0, j]
        ax.scatter(rankdata(published[ok]), rankdata(ours[ok]), s=8, alpha=0.6)
        ax.set_title(f"{col}: rho={table_rows[col]['a_ours_vs_published']:.2f}")
        ax.set_xlabel(f"rank, published ({args.dataset})")
        ax.set_ylabel("rank, ours (digits)")
        ax = axes[1, j]
        ax.scatter(rankdata(ours[ok]), val[ok], s=8, alpha=0.6, label="ours")
        ax.set_title(f"ours vs test acc: rho={table_rows[col]['b_ours_vs_acc']:.2f} "
                     f"(pub {table_rows[col]['c_published_vs_acc']:.2f})", fontsize=9)
        ax.set_xlabel(f"rank of our {ours_name}")
        ax.set_ylabel(f"NB201 {args.dataset} test acc (%), 200 ep.")
    fig.suptitle(f"metanas zero-cost proxies vs NAS-Bench-Suite-Zero, NB201 {args.dataset}, "
                 f"{len(archs)} archs")
    fig.tight_layout()
    fig.savefig(out / "proxy_correlation.png", dpi=110)
    print(f"wrote {out / 'proxy_correlation.json'} and {out / 'proxy_correlation.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
