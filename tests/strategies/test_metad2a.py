"""MetaD2A-style predictor strategy (``metanas.strategies.metad2a``): leave-one-task-out
meta-training, ranking transfer, no test-time adaptation."""

import numpy as np
import pandas as pd
import pytest

from metanas import spaces, strategies
from metanas.meta_dataset import MetaDataset
from metanas.search import run_search
from metanas.strategies.metad2a import PREDICTOR_CACHE, training_table
from metanas.spaces.encodings import onehot

SMALL = dict(epochs=3, hidden=32)


def _synthetic_md(target_sign=1.0):
    """Three transnas tasks sharing one linear ranking; task ``toy/c`` (the target) has it
    multiplied by ``target_sign``."""
    sp = spaces.get("transnas_micro")
    w = np.random.default_rng(0).normal(size=sp.n_edges * sp.n_ops)
    base = onehot(sp, sp.all_array()) @ w
    archs = [sp.to_str(a) for a in sp.enumerate()]
    tasks, triples = [], []
    for name, sign, scale in (("toy/a", 1.0, 1.0), ("toy/b", 1.0, 3.0), ("toy/c", target_sign, 2.0)):
        tasks.append(dict(task=name, space=sp.name, description="synthetic", n_classes=None,
                          class_ids=None, sample_features=None, default_metric="acc",
                          report_metric=None, source="test", licence="test"))
        triples.append(pd.DataFrame(dict(task=name, space=sp.name, arch=archs, metric="acc",
                                         value=sign * scale * base + 50, fidelity=0,
                                         split="valid", source="test")))
    return sp, MetaDataset(pd.DataFrame(tasks), pd.concat(triples, ignore_index=True)), base


def test_training_tasks_exclude_target_shipped():
    md = MetaDataset.load()
    nb = spaces.get("nb201")
    tasks, rows, y, task_col, _ = training_table(md, nb, "nb201/cifar10")
    assert "nb201/cifar10" not in tasks and "nb201/cifar10" not in set(task_col)
    assert {"nb201/cifar100", "nb201/imagenet16-120"} <= set(tasks)
    assert any(t.startswith("metad2a/") for t in tasks)
    assert ((y > 0) & (y <= 1)).all()
    tn = spaces.get("transnas_micro")
    st = strategies.make("metad2a", tn, seed=0, task="jigsaw", meta_dataset=md,
                         epochs=1, hidden=8)
    assert st.task == "transnas_micro/jigsaw"
    assert st.training_tasks == [t for t in md.task_ids("transnas_micro")
                                 if t != "transnas_micro/jigsaw"]


def test_excluded_target_cannot_leak():
    """The target's ranking is the reverse of the training tasks': a predictor that never saw
    the target ranks it backwards (a leak of the target would make it rank it forwards)."""
    sp, md, base = _synthetic_md(target_sign=-1.0)
    st = strategies.make("metad2a", sp, seed=0, task="toy/c", meta_dataset=md, **SMALL)
    assert st.training_tasks == ["toy/a", "toy/b"]
    pred = st.predictor.predict(sp.all_array())
    target = md.table("toy/c").to_numpy()
    assert np.corrcoef(pred, target)[0, 1] < -0.8
    # without exclusion (task=None) the target's reversed table enters training
    st_all = strategies.make("metad2a", sp, seed=0, meta_dataset=md, **SMALL)
    assert st_all.training_tasks == ["toy/a", "toy/b", "toy/c"]


def test_ranking_transfers_and_no_test_time_adaptation():
    sp, md, base = _synthetic_md(target_sign=1.0)
    from metanas.benchmarks import TabularBenchmark

    bench = TabularBenchmark.from_task("toy/c", meta_dataset=md)
    st = strategies.make("metad2a", sp, seed=0, task="toy/c", meta_dataset=md, **SMALL)
    run = run_search(st, bench, budget=10, seed=0)
    assert run.best["value"] >= np.quantile(bench.values(), 0.99)
    # values told do not change the proposals: same ranking whatever was observed
    a = strategies.make("metad2a", sp, seed=0, task="toy/c", meta_dataset=md, **SMALL)
    b = strategies.make("metad2a", sp, seed=0, task="toy/c", meta_dataset=md, **SMALL)
    xa, xb = a.ask(3), b.ask(3)
    assert xa == xb
    a.tell(xa, [0.0, 0.0, 0.0])
    b.tell(xb, [1e6, -1e6, 3.0])
    assert a.ask(5) == b.ask(5)


def test_predictor_cached_per_seed():
    sp, md, _ = _synthetic_md()
    n0 = len(PREDICTOR_CACHE)
    s1 = strategies.make("metad2a", sp, seed=0, task="toy/c", meta_dataset=md, **SMALL)
    s2 = strategies.make("metad2a", sp, seed=0, task="toy/c", meta_dataset=md, **SMALL)
    assert s1.predictor is s2.predictor
    s3 = strategies.make("metad2a", sp, seed=5, task="toy/c", meta_dataset=md, **SMALL)
    assert s3.predictor is not s1.predictor
    assert len(PREDICTOR_CACHE) >= n0 + 2


def test_digits_live_left_out_by_default():
    """The 20 ``digits_live/*`` tasks (a later collection) are not meta-trained on by default
    (as the docstring, README and the recorded ``proxy_methods`` runs have it);
    ``exclude_sources=[]`` takes every collection. The setting identifies the run."""
    from metanas.strategies.base import run_settings

    md = MetaDataset.load()
    nb = spaces.get("nb201")
    assert any(t.startswith("digits_live/") for t in md.task_ids("nb201"))
    st = strategies.make("metad2a", nb, seed=0, task="nb201/cifar10", epochs=1, hidden=8)
    tasks = st.training_tasks
    assert not any(t.startswith("digits_live/") for t in tasks)
    assert {"nb201/cifar100", "nb201/imagenet16-120"} <= set(tasks)
    assert any(t.startswith("metad2a/") for t in tasks)
    every = strategies.make("metad2a", nb, seed=0, task="nb201/cifar10", epochs=1, hidden=8,
                            exclude_sources=[])
    assert sum(t.startswith("digits_live/") for t in every.training_tasks) == 20
    assert set(every.training_tasks) - set(tasks) == {t for t in md.task_ids("nb201")
                                                      if t.startswith("digits_live/")}
    assert run_settings("metad2a", "nb201")["exclude_sources"] == ["digits_live"]
    assert run_settings("metad2a", "nb201", {"exclude_sources": None})["exclude_sources"] == []
    with pytest.raises(ValueError, match="exclude_sources"):
        strategies.make("metad2a", nb, seed=0, exclude_sources=["digits"])
