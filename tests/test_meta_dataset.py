"""The shipped meta-datasets and their loader (metanas.meta_dataset)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metanas import spaces
from metanas.errors import UserInputError
from metanas.meta_dataset import (ENV_VAR, PROXIES_SCHEMA, TASKS_SCHEMA, TRIPLES_SCHEMA,
                                  MetaDataset, MetaDatasetNotFound, list_collections,
                                  load_user_table, nb201_latency, shipped_root)

NB201_TASKS = ["nb201/cifar10", "nb201/cifar100", "nb201/imagenet16-120"]
TNB_TASKS = ["autoencoder", "class_object", "class_scene", "jigsaw", "normal", "room_layout",
             "segmentsemantic"]
OPTIMA = {  # (valid, test) at 200 epochs, from the benchmark README
    "nb201/cifar10": (91.607, 91.523),
    "nb201/cifar100": (73.493, 73.513),
    "nb201/imagenet16-120": (46.733, 47.311),
}
A0 = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
A1 = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
A2 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def md() -> MetaDataset:
    return MetaDataset.load()


# ---------------------------------------------------------------------------- shipped data
def test_shipped_collections_exist():
    assert list_collections() == ["digits_live", "metad2a", "nb201", "transnas_micro"]
    root = shipped_root()
    for name in list_collections():
        for f in ("tasks.parquet", "triples.parquet"):
            assert (root / name / f).is_file()


def test_schema_columns_and_dtypes(md):
    assert list(md.triples.columns) == TRIPLES_SCHEMA.names
    assert list(md.tasks.columns) == TASKS_SCHEMA.names
    assert list(md.proxies.columns) == PROXIES_SCHEMA.names
    for df, strings in ((md.triples, ["task", "space", "arch", "metric", "split", "source"]),
                        (md.proxies, ["task", "space", "arch", "proxy", "source"]),
                        (md.tasks, ["task", "space", "description", "default_metric", "source",
                                    "licence"])):
        for c in strings:
            assert pd.api.types.is_string_dtype(df[c]), c
    assert md.triples["value"].dtype == np.float64
    assert md.triples["fidelity"].dtype == np.int32
    assert md.proxies["score"].dtype == np.float64 and md.proxies["time_s"].dtype == np.float64
    assert str(md.tasks["n_classes"].dtype) == "Int32"
    assert set(md.triples["split"]) == {"valid", "test"}
    assert set(md.tasks["space"]) == {"nb201", "transnas_micro"}
    assert np.isfinite(md.triples["value"]).all()


def test_row_counts(md):
    assert len(md.task_ids()) == 3 + 3031 + 7 + 20
    assert len(md.task_ids("nb201")) == 3 + 3031 + 20
    assert len(md.task_ids("transnas_micro")) == 7
    nb = md.triples[md.triples["task"].str.startswith("nb201/")]
    counts = nb.groupby(["task", "metric", "split", "fidelity"]).size()
    assert len(counts) == 3 * 2 * 2 and (counts == 15625).all()
    tnb = md.triples[md.triples["space"] == "transnas_micro"]
    assert (tnb.groupby("task").size() == 4096).all() and tnb["task"].nunique() == 7
    m = md.for_space("nb201").triples
    m = m[m["task"].str.startswith("metad2a/")]
    assert m["task"].nunique() == 3031
    assert (m["metric"] == "acc").sum() == 4628  # 4630 source rows, 2 duplicates averaged
    dl = md.triples[md.triples["task"].str.startswith("digits_live/")]
    assert len(dl) == 20 * 150 * 5  # acc valid + test, cost_s, params_norm, flops_norm
    assert (dl.groupby(["task", "metric", "split"]).size() == 150).all()
    assert len(md.triples) == 187500 + 4 * 4628 + 7 * 4096 + len(dl)
    md.subset(["nb201/cifar10", "metad2a/0", "class_scene"]).validate()


@pytest.mark.parametrize("task", NB201_TASKS)
def test_nb201_optima(md, task):
    valid, test = OPTIMA[task]
    assert md.table(task).max() == pytest.approx(valid, abs=5e-4)
    assert md.table(task, split="test").max() == pytest.approx(test, abs=5e-4)
    assert md.table(task, "test_acc").max() == pytest.approx(test, abs=5e-4)
    low = md.table(task, fidelity=12)
    assert len(low) == 15625 and low.attrs["fidelity"] == 12 and low.max() < valid
    assert md.fidelities(task) == [12, 200]


def test_tables_follow_official_index_order(md):
    nb = spaces.get("nb201")
    s = md.table("nb201/cifar10")
    assert list(s.index[:3]) == [nb.to_str(nb.from_index(i)) for i in range(3)]
    assert [nb.index(nb.from_str(a)) for a in s.index[::977]] == list(range(0, 15625, 977))
    assert s.iloc[0] == pytest.approx(81.98266665690103)  # official index 0, cifar10-valid
    assert s.name == "valid_acc" and s.index.name == "arch"
    tn = spaces.get("transnas_micro")
    t = md.table("transnas_micro/class_scene")
    assert t.index[0] == "64-41414-2_32_323"  # row 0 of the benchmark table: (2, 3, 2, 3, 2, 3)
    assert [tn.index(tn.from_str(a)) for a in t.index[::512]] == list(range(0, 4096, 512))


def test_nb201_latency_table(md):
    """The shipped HELP latencies: every NB201 cell in the official order, 27 devices."""
    lat = nb201_latency()
    nb = spaces.get("nb201")
    assert lat.shape == (15625, 27) and lat.index.name == "arch"
    assert list(lat.index) == list(md.table("nb201/cifar10").index)  # the official order
    assert [nb.index(nb.from_str(a)) for a in lat.index[::977]] == list(range(0, 15625, 977))
    assert (lat.to_numpy() > 0).all() and all(lat.dtypes == np.float64)
    # official index 0 on the Raspberry Pi 4 and the FPGA: HELP's values exactly
    assert lat["raspi4"].iloc[0] == 10.481976820010459 and lat["fpga"].iloc[0] == 2.57296
    assert lat["raspi4"].nunique() == 15624  # no precision lost (float32 merged 9 values)
    two = nb201_latency(["pixel3", "raspi4"])
    assert list(two.columns) == ["pixel3", "raspi4"]
    np.testing.assert_array_equal(two["raspi4"].to_numpy(), lat["raspi4"].to_numpy())
    assert list(nb201_latency("fpga").columns) == ["fpga"]  # one name, not its letters
    with pytest.raises(UserInputError) as exc:
        nb201_latency(["raspi", "pixel3", "tpu"])
    msg = str(exc.value)
    assert "\n" not in msg and "'raspi', 'tpu'" in msg and "'raspi4'" in msg
    # not a collection: nothing meta-trains on it
    assert "hardware" not in list_collections()


def test_nb201_latency_missing_message(tmp_path):
    with pytest.raises(MetaDatasetNotFound) as exc:
        nb201_latency(root=tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and "build_shipped.py" in msg and ENV_VAR in msg


def test_transnas_tasks(md):
    metrics = {t: md.task(f"transnas_micro/{t}")["default_metric"] for t in TNB_TASKS}
    assert metrics["autoencoder"] == metrics["normal"] == "ssim"
    assert metrics["room_layout"] == "neg_loss"
    assert metrics["class_scene"] == "acc" and metrics["segmentsemantic"] == "pixel_acc"
    assert md.table("room_layout").max() < 0
    assert 0 < md.table("normal").min() < md.table("normal").max() < 1
    assert md.table("class_scene").max() == pytest.approx(54.936306, abs=1e-5)
    assert md.table("jigsaw").attrs["fidelity"] == 10
    assert md.task("class_scene")["report_metric"] is None or pd.isna(md.task("class_scene")["report_metric"])
    zen = md.proxy_table("transnas_micro/class_scene", "zen")
    assert len(zen) == 4096 and zen.isna().sum() == 169  # the 169 zero-output cells
    assert len(md.proxy_names("class_scene")) == 12


def test_metad2a_tasks(md):
    row = md.task("metad2a/103")
    assert row["n_classes"] == 20 and len(row["class_ids"]) == 20
    ids = np.concatenate(md.tasks.loc[md.tasks["task"].str.startswith("metad2a/"), "class_ids"].to_list())
    assert ids.min() >= 1 and ids.max() <= 600
    t = md.table("metad2a/103")
    assert len(t) == 1 and t.iloc[0] == pytest.approx((78.999999 + 53.65) / 2, abs=1e-3)
    assert set(md.metrics("metad2a/3890")["metric"]) == {"acc", "flops_norm", "params_norm",
                                                         "latency_norm"}
    assert row["sample_features"] is None


def test_nb201_proxies(md):
    published = md.proxies[md.proxies["source"] != "metanas-digits"]
    ours = md.proxies[md.proxies["source"] == "metanas-digits"]
    for task, n in zip(NB201_TASKS, (725, 725, 724)):
        assert published.loc[published["task"] == task, "arch"].nunique() == n
        # proxies_digits.parquet (meta_datasets/build_proxies.py) scores the whole space
        assert ours.loc[ours["task"] == task, "arch"].nunique() == 15625
    assert "synflow" in md.proxy_names("cifar10") and "flops" in md.proxy_names("cifar10")
    nwot = md.proxy_table("nb201/cifar10", "nwot")
    # NASLib's "(1, 0, 1, 4, 0, 1)": under the documented mapping it is a cell whose output is
    # identically zero, which is why every proxy that needs gradients failed on it
    failed = nwot.index[nwot.isna()].tolist()
    assert failed == ["|none~0|+|skip_connect~0|avg_pool_3x3~1|+|none~0|skip_connect~1|none~2|"]
    times = md.proxies["time_s"]
    assert (times.dropna() >= 0).all()


# ---------------------------------------------------------------------------- loader API
def test_load_by_name_path_and_concat(md, tmp_path):
    tnb = MetaDataset.load("transnas_micro")
    assert tnb.task_ids() == [f"transnas_micro/{t}" for t in sorted(TNB_TASKS, key=
                              ["class_object", "class_scene", "jigsaw", "segmentsemantic",
                               "autoencoder", "normal", "room_layout"].index)]
    same = MetaDataset.load(shipped_root() / "transnas_micro")
    pd.testing.assert_frame_equal(tnb.triples, same.triples)
    both = MetaDataset.load(["metad2a", "transnas_micro"])
    assert len(both.task_ids()) == 3038 and both.table("class_scene").equals(md.table("class_scene"))
    rest = both + MetaDataset.load("nb201") + MetaDataset.load("digits_live")
    assert len(rest.task_ids()) == len(md.task_ids())
    with pytest.raises(ValueError, match="appears twice"):
        tnb + tnb
    small = md.subset(["cifar100", "metad2a/5", "room_layout"])
    sizes = small.save(tmp_path / "mine", compression_level=3)
    assert set(sizes) == {"tasks.parquet", "triples.parquet", "proxies.parquet"}
    back = MetaDataset.load(tmp_path / "mine")
    pd.testing.assert_frame_equal(back.triples, small.triples)
    pd.testing.assert_frame_equal(back.tasks.drop(columns=["class_ids"]),
                                  small.tasks.drop(columns=["class_ids"]))
    assert back.table("cifar100").equals(small.table("cifar100"))
    assert len(MetaDataset.load(tmp_path).task_ids()) == 3  # folder of collections


def test_task_and_metric_resolution(md):
    assert md.resolve_task("CIFAR100") == "nb201/cifar100"
    assert md.resolve_task("ImageNet16-120") == "nb201/imagenet16-120"
    assert md.resolve_metric("cifar10", "test_acc") == ("acc", "test")
    assert md.resolve_metric("cifar10", None, "test") == ("acc", "test")
    for bad, call in (("cifar1000", lambda: md.table("cifar1000")),
                      ("metric", lambda: md.table("cifar10", "ssim")),
                      ("fidelity", lambda: md.table("cifar10", fidelity=50)),
                      ("split", lambda: md.table("cifar10", split="train"))):
        with pytest.raises(UserInputError) as exc:
            call()
        assert "\n" not in str(exc.value), bad
    with pytest.raises(UserInputError, match="valid_acc"):
        md.table("cifar10", "ssim")


def test_missing_shipped_folder_message(monkeypatch, tmp_path):
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "nowhere"))
    with pytest.raises(MetaDatasetNotFound) as exc:
        MetaDataset.load()
    msg = str(exc.value)
    assert "\n" not in msg and "build_shipped.py" in msg and ENV_VAR in msg


def test_env_override(monkeypatch, tmp_path, md):
    md.subset(["class_scene"]).save(tmp_path / "tiny", compression_level=3)
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert list_collections() == ["tiny"]
    assert MetaDataset.load().task_ids() == ["transnas_micro/class_scene"]


def test_loading_never_opens_shared(tmp_path):
    """Run the loader under an audit hook that fails on any access under /shared/."""
    script = textwrap.dedent("""
        import json, os, sys
        seen = []
        def hook(event, args):
            if event in ("open", "os.listdir", "os.scandir", "os.stat") and args:
                p = args[0]
                if isinstance(p, (str, bytes, os.PathLike)):
                    p = os.fsdecode(p)
                    if "/shared/" in p or p.rstrip("/").endswith("/shared"):
                        raise RuntimeError("touched " + p)
                    if event == "open":
                        seen.append(p)
        sys.addaudithook(hook)
        from metanas.meta_dataset import MetaDataset
        from metanas.benchmarks import get_benchmark
        md = MetaDataset.load()
        md.table("nb201/cifar10"); md.proxy_table("class_scene", "zen")
        b = get_benchmark("nb201/cifar100"); b.evaluate([b.optimum_arch])
        get_benchmark("metad2a/3890")
        print(json.dumps([p for p in seen if p.endswith(".parquet") or p.endswith(".npy")]))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    opened = json.loads(out.stdout.strip().splitlines()[-1])
    assert any(p.endswith("nb201/triples.parquet") for p in opened)  # the hook does see reads
    assert any(p.endswith("nb201_index.npy") for p in opened)
    assert all("/meta_datasets/" in p or "/spaces/data/" in p for p in opened)


# ---------------------------------------------------------------------------- user tables
def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def test_user_table_ok(tmp_path):
    p = write(tmp_path / "mine.csv", f"""
        arch,acc,test_acc,seconds
        {A0},90.5,90.1,120
        {A1.strip("|")},10,10.2,30
        "{A2}",80,79.5,60
        """)
    md = load_user_table(p, "nb201", "acc", "test_acc", cost_column="seconds")
    assert md.task_ids() == ["user/mine"]
    t = md.table("user/mine")
    assert list(t.index) == [A0, A1, A2] and t.tolist() == [90.5, 10.0, 80.0]
    assert md.table("user/mine", split="test").tolist() == [90.1, 10.2, 79.5]
    assert md.table("user/mine", "cost_s").tolist() == [120, 30, 60]
    md.validate()
    tn = write(tmp_path / "tn.csv", "cell;score\n64-41414-3_13_123;1.5\n1_11_111;2\n".replace(";", ","))
    for sep in (";", "\t"):  # a spreadsheet's semicolon / tab export reads the same
        other = write(tmp_path / "sep.csv", f"arch{sep}acc{sep}test_acc\n{A0}{sep}90.5{sep}90.1\n")
        assert load_user_table(other, "nb201", "acc", "test_acc").table("user/sep").tolist() \
            == [90.5]
    t2 = load_user_table(tn, "transnas_micro", "score", arch_column="cell").table("user/tn")
    assert list(t2.index) == ["64-41414-3_13_123", "64-41414-1_11_111"]


@pytest.mark.parametrize("body, column, row", [
    (f"{A0},90\nnot-an-arch,80\n", "arch", 2),
    (f"{A0},90\n{A2},nan\n", "acc", 2),
    (f"{A0},inf\n", "acc", 1),
    (f"{A0},90\n{A2},\n", "acc", 2),
    (f"{A0},90\n{A2},abc\n", "acc", 2),
    (f"{A0},90\n,80\n", "arch", 2),
    (f"{A0},90\n\n{A2},80\n", "arch", 2),
    ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|bogus~2|,1\n", "arch", 1),
])
def test_user_table_bad_cells(tmp_path, body, column, row):
    p = write(tmp_path / "bad.csv", "arch,acc\n" + body)
    with pytest.raises(UserInputError) as exc:
        load_user_table(p, "nb201", "acc")
    msg = str(exc.value)
    assert "\n" not in msg
    assert f"data row {row} (spreadsheet row {row + 1})" in msg and f"column {column!r}" in msg
    assert isinstance(exc.value, ValueError)


def test_user_table_structure_errors(tmp_path):
    ok = write(tmp_path / "ok.csv", f"arch,acc\n{A0},90\n")
    cases = [
        (lambda: load_user_table(ok, "nb201", "accuracy"), "'accuracy'"),
        (lambda: load_user_table(ok, "nb201", "acc", arch_column="cell"), "'cell'"),
        (lambda: load_user_table(tmp_path / "nope.csv", "nb201", "acc"), "no such file"),
        (lambda: load_user_table(write(tmp_path / "h.csv", "arch,acc\n"), "nb201", "acc"),
         "no data rows"),
        (lambda: load_user_table(ok, "nb201", "acc", "acc"), "different columns"),
        (lambda: load_user_table(write(tmp_path / "d.csv", f'arch,acc\n{A1},1\n{A0},2\n'
                                       f'{A1.strip("|")},3\n'), "nb201", "acc"),
         "data row 1 (spreadsheet row 2) and data row 3 (spreadsheet row 4)"),
        (lambda: load_user_table(write(tmp_path / "c.csv", f"arch,acc,s\n{A0},1,-5\n"), "nb201",
                                 "acc", cost_column="s"), "negative"),
        (lambda: load_user_table(ok, "transnas_micro", "acc"), "TransNAS"),
        # NB201 tuples are refused: NASLib's op_indices order ops and edges differently
        (lambda: load_user_table(write(tmp_path / "t.csv", 'arch,acc\n"(0, 1, 2, 3, 4, 0)",1\n'),
                                 "nb201", "acc"), "tuple of op indices"),
    ]
    for call, needle in cases:
        with pytest.raises(UserInputError) as exc:
            call()
        assert "\n" not in str(exc.value)
        assert needle in str(exc.value)


# ---------------------------------------------------------------------------- validation
def _user_md(tmp_path: Path, name: str = "mine") -> MetaDataset:
    p = write(tmp_path / f"{name}.csv", f"""
        arch,acc,test_acc
        {A0},90.5,90.1
        {A1},10,10.2
        {A2},80,79.5
        """)
    return load_user_table(p, "nb201", "acc", "test_acc")


def _edit(md: MetaDataset, case: str) -> MetaDataset:
    """``md`` (one user task 'user/mine' on nb201) broken in one way."""
    tasks, tr = md.tasks.copy(), md.triples.copy()
    if case == "nan":
        tr.loc[1, "value"] = np.nan
    elif case == "inf":
        tr.loc[2, "value"] = np.inf
    elif case == "orphan":
        tr = pd.concat([tr, tr.iloc[[0]].assign(task="user/ghost")], ignore_index=True)
    elif case == "space":
        tr.loc[0, "space"] = "transnas_micro"
    elif case == "conflict":
        tr = pd.concat([tr, tr.iloc[[0]].assign(value=12.0)], ignore_index=True)
    elif case == "repeat":
        tr = pd.concat([tr, tr.iloc[[0]]], ignore_index=True)
    elif case == "wrongmetric":
        tasks["default_metric"] = "accuracy"
    elif case == "wrongreport":
        tasks["report_metric"] = "ssim"
    elif case == "norows":
        tasks = pd.concat([tasks, tasks.assign(task="user/empty")], ignore_index=True)
    elif case == "split":
        tr.loc[0, "split"] = "train"
    elif case == "arch":  # parses, but is not the canonical string
        tr.loc[1, "arch"] = f" {A1} "
    elif case == "badarch":
        tr.loc[0, "arch"] = A1.replace("none~2", "bogus~2")
    elif case == "taskspace":
        tasks["space"] = "nb202"
        tr["space"] = "nb202"
    elif case == "missing":
        tasks["licence"] = None
    return MetaDataset(tasks, tr, md.proxies, name="bad")


BROKEN = {  # case -> words the one-line message must hold
    "nan": ["triples.parquet", "'user/mine'", "'value'", "non-finite", "finite numbers"],
    "inf": ["triples.parquet", "'user/mine'", "value inf", "finite numbers"],
    "orphan": ["triples.parquet", "'user/ghost'", "no row in tasks.parquet", "add the task"],
    "space": ["triples.parquet", "'user/mine'", "'transnas_micro'", "'nb201'", "agree"],
    "conflict": ["triples.parquet", "'user/mine'", "2 rows", "different values 90.5, 12.0",
                 "keep one row"],
    "repeat": ["triples.parquet", "'user/mine'", "2 rows", "same value", "keep one row"],
    "wrongmetric": ["tasks.parquet", "'user/mine'", "default_metric 'accuracy'", "valid_acc",
                    "set default_metric"],
    "wrongreport": ["tasks.parquet", "'user/mine'", "report_metric 'ssim'", "split 'test'",
                    "set report_metric"],
    "norows": ["tasks.parquet", "'user/empty'", "no rows in triples.parquet", "drop the task"],
    "split": ["triples.parquet", "'user/mine'", "'train'", "'split'", "valid or test"],
    "arch": ["triples.parquet", "'user/mine'", f"' {A1} '", "canonical nb201",
             f"write '{A1}'"],
    "badarch": ["triples.parquet", "'user/mine'", "bogus~2", "'arch'", "fix or drop that row"],
    "taskspace": ["tasks.parquet", "'user/mine'", "'nb202'", "'space'", "nb201"],
    "missing": ["tasks.parquet", "'user/mine'", "'licence'", "fill them in"],
}


def _one_line(exc) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, msg
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, UserInputError)
    return msg


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_validate_rejects_broken_tables(tmp_path, case):
    good = _user_md(tmp_path)
    good.validate()
    bad = _edit(good, case)
    with pytest.raises(UserInputError) as exc:
        bad.validate()
    msg = _one_line(exc)
    for needle in BROKEN[case]:
        assert needle in msg, (needle, msg)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_save_refuses_invalid_and_writes_nothing(tmp_path, case):
    bad = _edit(_user_md(tmp_path), case)
    out = tmp_path / "out"
    with pytest.raises(UserInputError) as exc:
        bad.save(out)
    msg = _one_line(exc)
    assert msg.startswith(f"not saved to {out}: ") and BROKEN[case][1] in msg
    assert not out.exists() or not any(out.iterdir())


def test_concat_of_user_tables_is_checked_on_save(tmp_path):
    """A collection built from user tables + concat: a stray triple of an unknown task is
    refused on save (before the fix it was saved and meta-training dropped it)."""
    a, b = _user_md(tmp_path, "a"), _user_md(tmp_path, "b")
    both = MetaDataset.concat([a, b])
    both.save(tmp_path / "ok")
    assert MetaDataset.load(tmp_path / "ok").task_ids() == ["user/a", "user/b"]
    stray = MetaDataset(a.tasks, pd.concat([a.triples, b.triples], ignore_index=True))
    with pytest.raises(UserInputError, match="'user/b'.*no row in tasks.parquet"):
        stray.save(tmp_path / "stray")
    assert not (tmp_path / "stray").exists()


def _write_raw(md: MetaDataset, folder: Path) -> Path:
    """The tables as parquet files, bypassing ``save``'s check (a folder made elsewhere)."""
    from metanas.meta_dataset import table_to_parquet_bytes

    folder.mkdir(parents=True, exist_ok=True)
    for fname, df, schema in (("tasks.parquet", md.tasks, TASKS_SCHEMA),
                              ("triples.parquet", md.triples, TRIPLES_SCHEMA)):
        (folder / fname).write_bytes(table_to_parquet_bytes(df, schema, compression_level=1))
    return folder


@pytest.mark.parametrize("case", ["nan", "orphan", "space", "conflict", "wrongmetric"])
def test_load_rejects_invalid_user_folder(tmp_path, case):
    folder = _write_raw(_edit(_user_md(tmp_path), case), tmp_path / "coll")
    with pytest.raises(UserInputError) as exc:
        MetaDataset.load(folder)
    msg = _one_line(exc)
    assert msg.startswith(str(folder / BROKEN[case][0])), msg
    for needle in BROKEN[case][1:]:
        assert needle in msg, (needle, msg)
    with pytest.raises(UserInputError):  # also inside a folder of collections
        MetaDataset.load(tmp_path)


def test_load_checks_again_when_the_folder_changes(tmp_path):
    good = _user_md(tmp_path)
    good.save(tmp_path / "coll")
    assert MetaDataset.load(tmp_path / "coll").task_ids() == ["user/mine"]
    assert MetaDataset.load(tmp_path / "coll").task_ids() == ["user/mine"]  # checked once
    _write_raw(_edit(good, "conflict"), tmp_path / "coll")
    with pytest.raises(UserInputError, match="different values"):
        MetaDataset.load(tmp_path / "coll")


def test_meta_training_cli_reports_an_invalid_folder_in_one_line(tmp_path, capsys):
    root = Path(__file__).resolve().parents[1]
    sys.path.insert(0, str(root))
    try:
        import train_meta
    finally:
        sys.path.remove(str(root))
    folder = _write_raw(_edit(_user_md(tmp_path), "orphan"), tmp_path / "coll")
    rc = train_meta.main(["--space", "nb201", "--meta-dataset", str(folder), "--out",
                          str(tmp_path / "ckpt"), "--iters", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "'user/ghost'" in err, err


def test_shipped_collections_pass_validate(md):
    """The shipped collections are not re-checked on every load (cost): they are here."""
    md.validate()
    for name in list_collections():
        MetaDataset.load(name).validate()
