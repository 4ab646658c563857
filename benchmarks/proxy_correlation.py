"""Check metanas' zero-cost proxies against the published NAS-Bench-201 zero-cost table.

For a random sample of the architectures of the CIFAR-10 entry of NASLib's
``zc_nasbench201_samples.json`` (NAS-Bench-Suite-Zero), compute our proxies
(``metanas.proxies``) on the NB201 network (C=16, N=5, ``metanas.nn.CellNetwork``) with one
real mini-batch of scikit-learn digits (upsampled to 32x32, 3 channels; CIFAR-10 images are not
available offline) and report Spearman rank correlations:

(a) ours vs the published proxy column, (b) ours vs the published validation accuracy,
(c) the published proxy vs the published validation accuracy (same sample, and all archs);

plus the proxy cost per architecture on this CPU (median seconds, 1 thread), and two checks of
the NASLib -> metanas arch conversion: the published ``val_accuracy`` against the full NB201
table (``nb201/nasbench201_cifar10.csv``), and our parameter / FLOP counts against the
published ``params`` / ``flops`` columns.

NASLib tuple keys ``(e01, e02, e03, e12, e13, e23)`` (edge order 0->1, 0->2, 0->3, 1->2, 1->3,
2->3) over NASLib's ops ``skip_connect, none, nor_conv_3x3, nor_conv_1x1, avg_pool_3x3`` become
our arch ``(m[e01], m[e02], m[e12], m[e03], m[e13], m[e23])`` (edge order (0,1), (0,2), (1,2),
(0,3), (1,3), (2,3)) with ``m = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}`` (our ops ``none,
skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3``), as stated in
``shared/data/README.md``; this script re-checks it.

This is a check script, not part of the library: it reads ``--data`` (default
``../shared/data``, relative to the repository root). Example (about 5-8 minutes on 1 core)::

    python benchmarks/proxy_correlation.py --data ../shared/data --n-archs 200 \\
        --batch-size 32 --out /tmp/metanas_proxy_correlation

Writes ``proxy_correlation.json`` and ``proxy_correlation.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

#: NASLib op index -> metanas NB201 op index
NASLIB_OP_TO_OURS = {0: 1, 1: 0, 2: 3, 3: 2, 4: 4}
#: published column -> our registry name
PROXY_COLUMNS = {"snip": "snip", "synflow": "synflow_log", "jacov": "jacob_cov",
                 "grad_norm": "grad_norm", "nwot": "nwot"}


def naslib_to_arch(key: str) -> tuple[int, ...]:
    t = ast.literal_eval(key)
    m = NASLIB_OP_TO_OURS
    return (m[t[0]], m[t[1]], m[t[3]], m[t[2]], m[t[4]], m[t[5]])


def naslib_to_arch_wrong_order(key: str) -> tuple[int, ...]:
    """Control: the same op map, but NASLib's edge order taken as ours (no 0->3 / 1->2 swap)."""
    t = ast.literal_eval(key)
    return tuple(NASLIB_OP_TO_OURS[o] for o in t)


def spearman(a, b) -> tuple[float, int]:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = ~(np.isnan(a) | np.isnan(b))
    if ok.sum() < 3:
        return float("nan"), int(ok.sum())
    # +-inf are valid extreme scores (e.g. nwot of a singular kernel): rank them as such
    return float(spearmanr(a[ok], b[ok])[0]), int(ok.sum())


def load_table_test_acc(path: Path) -> dict[tuple[int, ...], float]:
    from metanas.spaces import get as get_space

    space = get_space("nb201")
    out = {}
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            out[space.from_str(row["arch str"])] = float(row["test accuracy"])
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="../shared/data", help="shared data folder")
    ap.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100",
                                                             "ImageNet16-120"])
    ap.add_argument("--n-archs", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=32,
                    help="digits per mini-batch (the published table's scores fit 32)")
    ap.add_argument("--size", type=int, default=32, help="image side after upsampling")
    ap.add_argument("--seed", type=int, default=0, help="arch sample / batch / init seed")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="/tmp/metanas_proxy_correlation")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from metanas.nn import CellNetwork, NetworkConfig, count_flops, count_params
    from metanas.proxies import compute_many, digits_batch

    data = Path(args.data)
    zc = json.loads((data / "nb201" / "zc_nasbench201_samples.json").read_text())[args.dataset]
    keys = sorted(zc, key=lambda k: int(zc[k]["idx"]))
    n_classes = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}[args.dataset]

    def pub(k, col):
        v = zc[k].get(col)
        if v is None:
            return float("nan")
        return float(v["score"]) if isinstance(v, dict) else float(v)

    report: dict = {"command": " ".join([os.path.basename(sys.executable)] + sys.argv),
                    "args": vars(args), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(), "machine": platform.processor()
                    or platform.machine(), "n_table_archs": len(keys)}

    # ---- 1. conversion check against the full NB201 table (CIFAR-10 only)
    csv_path = data / "nb201" / "nasbench201_cifar10.csv"
    if args.dataset == "cifar10" and csv_path.is_file():
        table = load_table_test_acc(csv_path)
        val = np.array([pub(k, "val_accuracy") for k in keys])
        chk = {}
        for name, conv in (("readme_mapping", naslib_to_arch),
                           ("control_unswapped_edges", naslib_to_arch_wrong_order)):
            test = np.array([table[conv(k)] for k in keys])
            chk[name] = {"median_abs_diff": float(np.median(np.abs(val - test))),
                         "spearman": spearman(val, test)[0]}
        report["mapping_check_vs_nb201_table"] = chk
        print("mapping check (published val_accuracy vs NB201 table test accuracy):", chk)

    # ---- 2. sample
    rng = np.random.default_rng(args.seed)
    pick = sorted(rng.choice(len(keys), size=min(args.n_archs, len(keys)), replace=False))
    sample = [keys[i] for i in pick]
    archs = [naslib_to_arch(k) for k in sample]
    val = np.array([pub(k, "val_accuracy") for k in sample])
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

    # ---- 4. proxies
    if args.dataset != "cifar10":
        print("note: digits have 10 classes; the head has", n_classes, "outputs")
    batch = digits_batch(n=args.batch_size, size=args.size, seed=args.seed, channels=3)
    batch = batch._replace(num_classes=n_classes)
    names = list(PROXY_COLUMNS.values())
    t0 = time.perf_counter()
    scores, times = compute_many(names, archs, "nb201", batch, config, seed=args.seed,
                                 return_times=True)
    wall = time.perf_counter() - t0
    print(f"proxies of {len(archs)} archs in {wall:.1f} s")

    table_rows = {}
    for col, ours_name in PROXY_COLUMNS.items():
        ours = scores[ours_name]
        published = np.array([pub(k, col) for k in sample])
        published_all = np.array([pub(k, col) for k in keys])
        val_all = np.array([pub(k, "val_accuracy") for k in keys])
        ra, na = spearman(ours, published)
        rb, nb = spearman(ours, val)
        rc, nc = spearman(published, val)
        rc_all, nc_all = spearman(published_all, val_all)
        table_rows[col] = {
            "ours": ours_name, "a_ours_vs_published": ra, "b_ours_vs_val_acc": rb,
            "c_published_vs_val_acc": rc, "c_published_vs_val_acc_all_archs": rc_all,
            "n": na, "n_all": nc_all,
            "median_cost_s": float(np.median(times[ours_name])),
            "mean_cost_s": float(np.mean(times[ours_name])),
            "median_published_time_s": float(np.nanmedian(
                [zc[k][col]["time"] for k in sample if col in zc[k]])),
            "n_nonfinite_ours": int(np.sum(~np.isfinite(ours))),
        }
    # per-arch cost of all five together (shared gradient counted once) + network build
    per_arch_total = (times["build"] + times["synflow_log"] + times["jacob_cov"]
                      + times["nwot"] + np.maximum(times["grad_norm"], times["snip"]))
    report["correlations"] = table_rows
    report["cost"] = {"median_build_s": float(np.median(times["build"])),
                      "median_all_five_per_arch_s": float(np.median(per_arch_total)),
                      "wall_s": wall, "n_archs": len(archs)}
    report["sample"] = [{"naslib_key": k, "arch": list(a), "val_accuracy": float(v),
                         **{n: float(scores[n][i]) for n in names}}
                        for i, (k, a, v) in enumerate(zip(sample, archs, val))]

    # ---- 5. print the table
    print(f"\nSpearman rho, {len(archs)} archs of NB201 {args.dataset} (published table), ours on "
          f"digits {args.batch_size}x3x{args.size}x{args.size}, seed {args.seed}")
    print(f"{'proxy':10s} {'(a) ours~pub':>12s} {'(b) ours~acc':>12s} {'(c) pub~acc':>11s} "
          f"{'(c) all':>8s} {'cost s':>7s}")
    for col, r in table_rows.items():
        print(f"{col:10s} {r['a_ours_vs_published']:12.3f} {r['b_ours_vs_val_acc']:12.3f} "
              f"{r['c_published_vs_val_acc']:11.3f} {r['c_published_vs_val_acc_all_archs']:8.3f} "
              f"{r['median_cost_s']:7.3f}")
    print(f"median build {report['cost']['median_build_s']:.3f} s, all five per arch "
          f"{report['cost']['median_all_five_per_arch_s']:.3f} s")

    # ---- 6. outputs
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "proxy_correlation.json").write_text(json.dumps(report, indent=1, allow_nan=True))
    from scipy.stats import rankdata

    fig, axes = plt.subplots(2, len(PROXY_COLUMNS), figsize=(4 * len(PROXY_COLUMNS), 7.5))
    for j, (col, ours_name) in enumerate(PROXY_COLUMNS.items()):
        ours = scores[ours_name]
        published = np.array([pub(k, col) for k in sample])
        ok = ~(np.isnan(ours) | np.isnan(published))
        ax = axes[0, j]
        ax.scatter(rankdata(published[ok]), rankdata(ours[ok]), s=8, alpha=0.6)
        ax.set_title(f"{col}: rho={table_rows[col]['a_ours_vs_published']:.2f}")
        ax.set_xlabel("rank, published (CIFAR-10)")
        ax.set_ylabel("rank, ours (digits)")
        ax = axes[1, j]
        ax.scatter(rankdata(ours[ok]), val[ok], s=8, alpha=0.6, label="ours")
        ax.set_title(f"ours vs val acc: rho={table_rows[col]['b_ours_vs_val_acc']:.2f} "
                     f"(pub {table_rows[col]['c_published_vs_val_acc']:.2f})", fontsize=9)
        ax.set_xlabel(f"rank of our {ours_name}")
        ax.set_ylabel("published CIFAR-10 val acc (%)")
    fig.suptitle(f"metanas zero-cost proxies vs NAS-Bench-Suite-Zero, NB201 {args.dataset}, "
                 f"{len(archs)} archs")
    fig.tight_layout()
    fig.savefig(out / "proxy_correlation.png", dpi=110)
    print(f"wrote {out / 'proxy_correlation.json'} and {out / 'proxy_correlation.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
