"""Dask: a 2-worker LocalCluster gives the same results as serial (evaluator and builder)."""

import pandas as pd

from metanas import spaces
from metanas.benchmarks.live import DaskEvaluator, LiveBenchmark, LiveFactory, local_client
from metanas.meta_dataset import MetaDataset
from metanas.train import TrainConfig
from metanas.train.build import build, make_plan, probe_archs, tasks_from_datasets

NB = spaces.get("nb201")
TINY = TrainConfig(C=4, N=1, epochs=1, batch_size=16)
TASK = "digits:classes=1,4,7:max_per_class=12"


def _strip_cost(md):
    t = md.triples.copy()
    t.loc[t["metric"] == "cost_s", "value"] = 0.0
    return t


def test_dask_two_workers_equal_serial(tmp_path):
    archs = probe_archs(NB, 4, seed=3)
    serial = LiveBenchmark(NB, TASK, TINY)
    want = serial.evaluate(archs)
    specs = tasks_from_datasets(["digits"], 2, 2, seed=5, max_per_class=10)
    plan = make_plan("dask", specs, archs_per_task=2, train=TINY)
    build(plan, tmp_path / "serial", progress=False)

    client = local_client(2, 1)
    try:
        assert len(client.scheduler_info()["workers"]) == 2
        factory = serial.factory()
        assert isinstance(factory, LiveFactory) and factory == LiveFactory(
            "nb201", serial.spec, TINY, None, serial.task)
        with DaskEvaluator(factory, client=client) as ev:
            assert (ev.space, ev.task, ev.metric) == (NB, serial.task, "valid_acc")
            got = ev.evaluate(archs)
            assert ev.n_evaluations == 4
        assert [(e.value, e.report, e.info["params"], e.info["flops"]) for e in got] == \
               [(e.value, e.report, e.info["params"], e.info["flops"]) for e in want]
        # the builder on the same cluster (as --scheduler ADDRESS)
        build(plan, tmp_path / "dask", scheduler=client.scheduler.address, progress=False)
    finally:
        cluster = client.cluster
        client.close()
        cluster.close()
    pd.testing.assert_frame_equal(_strip_cost(MetaDataset.load(tmp_path / "serial")),
                                  _strip_cost(MetaDataset.load(tmp_path / "dask")))
