""""Not a transfer setting" checks: every way a meta-learned method's meta-training can have
seen the target task (short names, live specs, user-table copies, validation tasks), and
searching the test split."""

import json
import logging
import shutil

import pandas as pd
import pytest

from metanas import spaces, strategies
from metanas.meta_dataset import MetaDataset, load_user_table
from strategy_toys import toy_meta_dataset

LIVE = "dataset:digits:classes=2,3,4,5,7"  # the same data as digits_live/digits-2-3-4-5-7
SMALL = dict(epochs=1, hidden=8)


@pytest.fixture(scope="module")
def md():
    return MetaDataset.load()


def _copy_csv(md, task, path, n=None):
    t = md.table(task)
    if n is not None:
        t = t.iloc[:n]
    pd.DataFrame({"arch": t.index, "acc": t.to_numpy()}).to_csv(path, index=False)
    return path


def _clear_warned():
    import metanas.strategies.metad2a as m2
    import metanas.strategies.tnas as tn
    from metanas.strategies import _leak

    tn._LEAK_WARNED.clear()
    m2._SAME_WARNED.clear()
    _leak._CHECKED.clear()


@pytest.fixture(autouse=True)
def _fresh_user_tables():
    """Every test starts (and leaves) with no user table registered."""
    import metanas.meta_dataset as mdm

    mdm.USER_TABLES.clear()
    mdm._USER_CONTENTS.clear()
    yield
    mdm.USER_TABLES.clear()
    mdm._USER_CONTENTS.clear()


# ---------------------------------------------------------------------- shared helper
def test_same_tasks_maps_every_form_of_a_target(md, tmp_path):
    from metanas.meta_dataset import same_task_in, same_tasks

    assert same_tasks(md, "nb201/cifar100") == ["nb201/cifar100"]
    assert same_tasks(md, "cifar100") == ["nb201/cifar100"]
    assert same_tasks(md, LIVE) == ["digits_live/digits-2-3-4-5-7"]
    assert same_tasks(md, "dataset:digits:classes=7,5,4,3,2:epochs=3") == \
        ["digits_live/digits-2-3-4-5-7"]
    assert same_tasks(md, "dataset:digits:classes=2,3,4,5,6,7") == []
    user = load_user_table(_copy_csv(md, "transnas_micro/jigsaw", tmp_path / "jig.csv", 40),
                           "transnas_micro", "acc")
    assert same_tasks(md, user) == ["transnas_micro/jigsaw"]
    assert same_tasks(md, "user/jig") == ["transnas_micro/jigsaw"]
    # too few shared archs: no verdict
    few = load_user_table(_copy_csv(md, "transnas_micro/jigsaw", tmp_path / "few.csv", 10),
                          "transnas_micro", "acc")
    assert same_tasks(md, few) == []
    # a TaskSpec id in a checkpoint's task list is the same task as the live target
    assert same_task_in(md, "dataset:digits:classes=0,2,3,5,8:epochs=1",
                        ["digits:classes=0,2,3,5,8", "digits:classes=1,2,3,5,6"]) == \
        ["digits:classes=0,2,3,5,8"]


def test_a_rounded_copy_is_a_copy(md, tmp_path):
    """A user CSV exported with 2 decimals still matches the shipped table it copies (equal
    to the precision it shows); shifting every value by more than that does not."""
    from metanas.meta_dataset import same_tasks

    t = md.table("transnas_micro/jigsaw").iloc[:40]
    pd.DataFrame({"arch": t.index, "acc": t.round(2).to_numpy()}).to_csv(
        tmp_path / "r2.csv", index=False, float_format="%.2f")
    user = load_user_table(tmp_path / "r2.csv", "transnas_micro", "acc")
    assert same_tasks(md, user) == ["transnas_micro/jigsaw"]
    pd.DataFrame({"arch": t.index, "acc": (t.round(2) + 0.01).to_numpy()}).to_csv(
        tmp_path / "off.csv", index=False, float_format="%.2f")
    assert same_tasks(md, load_user_table(tmp_path / "off.csv", "transnas_micro", "acc")) == []


def test_user_tables_of_the_same_stem_are_all_checked(md, tmp_path):
    """Two ``results.csv`` in other folders share the id ``user/results``: the id checks
    every table loaded with it (not only the latest), and each table alone checks itself;
    the registry keeps one table per id and a bounded number of contents."""
    import metanas.meta_dataset as mdm
    from metanas.meta_dataset import same_tasks

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    copy = load_user_table(_copy_csv(md, "transnas_micro/jigsaw", tmp_path / "a" / "results.csv",
                                     40), "transnas_micro", "acc")
    t = md.table("transnas_micro/jigsaw").iloc[:40]
    pd.DataFrame({"arch": t.index, "acc": t.to_numpy() + 3.0}).to_csv(
        tmp_path / "b" / "results.csv", index=False)
    other = load_user_table(tmp_path / "b" / "results.csv", "transnas_micro", "acc")
    assert same_tasks(md, other) == [] and same_tasks(md, copy) == ["transnas_micro/jigsaw"]
    assert same_tasks(md, "user/results") == ["transnas_micro/jigsaw"]  # the copy not lost
    assert mdm.USER_TABLES["user/results"] is other and len(mdm.USER_TABLES) == 1
    for k in range(2 * mdm.USER_CONTENTS_PER_ID):
        pd.DataFrame({"arch": t.index, "acc": t.to_numpy() + 10.0 + k}).to_csv(
            tmp_path / "b" / "results.csv", index=False)
        load_user_table(tmp_path / "b" / "results.csv", "transnas_micro", "acc")
    assert len(mdm._USER_CONTENTS["user/results"]) == mdm.USER_CONTENTS_PER_ID


def test_metad2a_checks_the_same_task_once(md, tmp_path, monkeypatch):
    """``same_tasks`` of a user table's id makes its content pass once per meta-dataset, id,
    space and the contents loaded under the id: not per seed of ``_excluded`` nor per leak
    check (``same_task_in``); loading another content under the id checks again."""
    import metanas.meta_dataset as mdm
    from metanas.meta_dataset import same_task_in, same_tasks
    from metanas.strategies import metad2a as m2

    _clear_warned()
    md.__dict__.pop("_same_tasks", None)
    calls = []
    real = mdm._content_matches
    monkeypatch.setattr(mdm, "_content_matches",
                        lambda *a, **k: calls.append(a[2]) or real(*a, **k))
    _copy_csv(md, "transnas_micro/jigsaw", tmp_path / "mine.csv")
    load_user_table(tmp_path / "mine.csv", "transnas_micro", "acc")
    space = spaces.get("transnas_micro")
    for _ in range(3):
        assert m2._excluded(md, space, "user/mine", (), "metad2a") == \
            ("transnas_micro/jigsaw", "user/mine")
    assert calls == ["transnas_micro"]
    for _ in range(2):
        assert same_task_in(md, "user/mine", ["transnas_micro/jigsaw", "nb201/cifar10"]) == \
            ["transnas_micro/jigsaw"]
    assert calls == ["transnas_micro", None]  # the leak check: any space, once
    t = md.table("transnas_micro/jigsaw")
    pd.DataFrame({"arch": t.index, "acc": t.to_numpy() + 3.0}).to_csv(
        tmp_path / "mine.csv", index=False)
    load_user_table(tmp_path / "mine.csv", "transnas_micro", "acc")  # a second content
    assert same_tasks(md, "user/mine", space="transnas_micro") == ["transnas_micro/jigsaw"]
    assert len(calls) == 4  # both contents checked again (the first still loaded)
    assert same_tasks(md, "user/mine", space="transnas_micro") == ["transnas_micro/jigsaw"]
    assert len(calls) == 4
    copy = mdm.USER_TABLES["user/mine"]
    same_tasks(md, copy)
    same_tasks(md, copy)
    assert len(calls) == 6  # a table target: not cached


# ---------------------------------------------------------------------- metad2a
def test_metad2a_leaves_out_a_live_copy_of_the_target(caplog):
    _clear_warned()
    nb = spaces.get("nb201")
    with caplog.at_level(logging.WARNING, logger="metanas.strategies.metad2a"):
        st = strategies.make("metad2a", nb, seed=0, task=LIVE, exclude_sources=[], **SMALL)
        tasks = st.training_tasks
    assert "digits_live/digits-2-3-4-5-7" not in tasks
    assert "digits_live/digits-2-3-4-5-6" in tasks  # the other live tasks stay
    assert "not a transfer setting" in caplog.text and "digits-2-3-4-5-7" in caplog.text


def test_metad2a_leaves_out_the_task_a_user_table_copies(md, tmp_path, caplog):
    _clear_warned()
    _copy_csv(md, "transnas_micro/jigsaw", tmp_path / "mine.csv")
    load_user_table(tmp_path / "mine.csv", "transnas_micro", "acc")
    sp = spaces.get("transnas_micro")
    with caplog.at_level(logging.WARNING, logger="metanas.strategies.metad2a"):
        st = strategies.make("metad2a", sp, seed=0, task="user/mine", **SMALL)
        tasks = st.training_tasks
    assert "transnas_micro/jigsaw" not in tasks and "transnas_micro/normal" in tasks
    assert "transnas_micro/jigsaw" in caplog.text


# ---------------------------------------------------------------------- tnas
def _tnas_warnings(caplog, **kw):
    _clear_warned()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="metanas.strategies.tnas"):
        st = strategies.make("tnas", spaces.get(kw.pop("space", "transnas_micro")), seed=0, **kw)
        st.model
    return [r.getMessage() for r in caplog.records if "not a transfer setting" in r.getMessage()]


def test_tnas_warns_for_a_short_name_and_a_user_table_copy(md, tmp_path, caplog):
    msgs = _tnas_warnings(caplog, task="transnas_micro/jigsaw")
    assert len(msgs) == 1 and "meta-trained on the target task 'transnas_micro/jigsaw' " \
        "(not a transfer setting)" in msgs[0]  # the original wording
    msgs = _tnas_warnings(caplog, task="jigsaw")
    assert len(msgs) == 1 and "meta-trained" in msgs[0] and "transnas_micro/jigsaw" in msgs[0]
    _copy_csv(md, "transnas_micro/jigsaw", tmp_path / "jg.csv")
    load_user_table(tmp_path / "jg.csv", "transnas_micro", "acc")
    msgs = _tnas_warnings(caplog, task="user/jg")
    assert len(msgs) == 1 and "transnas_micro/jigsaw" in msgs[0]
    assert _tnas_warnings(caplog, task="transnas_micro/nonexistent-task") == []


def test_tnas_warns_for_a_live_spec_of_a_training_task(tmp_path, caplog):
    from metanas.strategies.tnas import shipped_checkpoint

    ck = tmp_path / "ck"
    shutil.copytree(shipped_checkpoint("transnas_micro"), ck)
    state = json.loads((ck / "training_state.json").read_text())
    state["training_tasks"] = ["digits_live/digits-2-3-4-5-7"]
    (ck / "training_state.json").write_text(json.dumps(state))
    msgs = _tnas_warnings(caplog, task=LIVE, pretrained=str(ck))
    assert len(msgs) == 1 and "digits_live/digits-2-3-4-5-7" in msgs[0]


def _toy_md():
    return toy_meta_dataset("transnas_micro")


def test_tnas_warns_for_a_validation_task_and_records_it(tmp_path, caplog):
    from metanas.meta.tnas_train import TrainConfig, train

    md = _toy_md()
    cfg = TrainConfig(space="transnas_micro", iters=3, inner_steps=2, batch_size=20,
                      val_every=3, val_k=8, val_m=10, val_draws=1, context_top=4,
                      context_random=20, model={"mlp_hidden": [16]}, val_tasks=["toy/t2"])
    train(cfg, tmp_path / "ck", progress=False, md=md)
    state = json.loads((tmp_path / "ck" / "training_state.json").read_text())
    assert state["val_tasks"] == ["toy/t2"] and "toy/t2" not in state["training_tasks"]
    msgs = _tnas_warnings(caplog, task="toy/t2", pretrained=str(tmp_path / "ck"),
                          meta_dataset=md)
    assert len(msgs) == 1 and "validated on the target task 'toy/t2'" in msgs[0]
    # an older checkpoint without the record: unknown, no error
    from metanas.strategies._leak import read_val_tasks

    del state["val_tasks"], state["config"]
    (tmp_path / "ck" / "training_state.json").write_text(json.dumps(state))
    assert read_val_tasks(tmp_path / "ck") is None


# ---------------------------------------------------------------------- base / base-prior
@pytest.mark.parametrize("task,word", [("dataset:digits:classes=0,2,3,5,8:epochs=1", "meta-trained"),
                                       ("dataset:digits:classes=2,3,4,5,6", "validated")])
def test_base_prior_warns_for_its_meta_training_tasks(task, word, caplog):
    _clear_warned()
    with caplog.at_level(logging.WARNING, logger="metanas.strategies.oneshot"):
        strategies.make("base-prior", spaces.get("nb201"), seed=0, task=task)
    msgs = [r.getMessage() for r in caplog.records if "not a transfer setting" in r.getMessage()]
    assert len(msgs) == 1 and word in msgs[0]


def test_base_prior_quiet_on_a_new_task(caplog):
    _clear_warned()
    with caplog.at_level(logging.WARNING, logger="metanas.strategies.oneshot"):
        strategies.make("base-prior", spaces.get("nb201"), seed=0,
                        task="dataset:digits:classes=0,1,2,3,4")
    assert "not a transfer setting" not in caplog.text


# ---------------------------------------------------------------------- test split
def test_searching_the_test_split_warns(caplog):
    import metanas.benchmarks.tabular as tab
    from metanas.benchmarks import get_benchmark

    tab._TEST_SEARCH_WARNED.clear()
    with caplog.at_level(logging.WARNING, logger="metanas.benchmarks.tabular"):
        get_benchmark("cifar100")
        get_benchmark("transnas_micro/jigsaw")
        assert "unbiased" not in caplog.text  # the default commands stay quiet
        get_benchmark("cifar100", metric="test_acc")
    assert "searching the test split" in caplog.text and "search valid_acc" in caplog.text
