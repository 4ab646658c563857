"""Meta-dataset builder: plan, shards, kill (SIGKILL) and resume, consolidate."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metanas import spaces
from metanas.errors import UserInputError
from metanas.meta_dataset import MetaDataset
from metanas.train.build import (BuildPlan, ShardStore, build, collect, draw_class_subsets,
                                 main, make_plan, probe_archs, tasks_from_datasets)
from metanas.train import TrainConfig

REPO = Path(__file__).resolve().parents[2]
ARGS = ["--dataset", "digits", "--n-tasks", "2", "--ways", "3", "--max-per-class", "16",
        "--archs-per-task", "6", "--epochs", "2", "--C", "4", "--N", "1", "--batch-size", "16",
        "--collection", "live", "--no-progress"]
NB = spaces.get("nb201")


def _nested(f) -> np.ndarray:
    """Parquet's nested lists (object arrays of arrays) -> one float32 array."""
    return np.asarray([[np.asarray(s, dtype=np.float32) for s in c] for c in f])


def _frames(out):
    md = MetaDataset.load(out)
    t = md.triples.copy()
    t.loc[t["metric"] == "cost_s", "value"] = 0.0  # measured wall time: the one varying value
    tasks = md.tasks.copy()
    tasks["sample_features"] = [_nested(f).tobytes() for f in tasks["sample_features"]]
    for col in ("class_ids",):
        tasks[col] = [tuple(v) for v in tasks[col]]
    return md, t, tasks


def test_plan_helpers():
    a = probe_archs(NB, 10, seed=0)
    assert a == probe_archs("nb201", 10, seed=0) and len(a) == 10
    assert len({NB.iso_key(x) for x in a}) == 10
    subs = draw_class_subsets([str(i) for i in range(10)], 5, 3, seed=1)
    assert len(set(subs)) == 5 and all(len(s) == 3 for s in subs)
    assert subs == draw_class_subsets([str(i) for i in range(10)], 5, 3, seed=1)
    with pytest.raises(UserInputError):
        draw_class_subsets(["a", "b", "c"], 4, 2)
    specs = tasks_from_datasets(["digits"], 3, 4, seed=0)
    plan = make_plan("c", specs, archs_per_task=3, train=TrainConfig(epochs=1))
    assert len(plan.jobs()) == 9 and plan.archs[0] == plan.archs[2]  # probe set shared
    assert BuildPlan.from_json(json.loads(json.dumps(plan.to_json()))) == plan
    sampled = make_plan("c", specs, archs_per_task=3, arch_mode="sample")
    assert sampled.archs[0] != sampled.archs[1]


def test_kill_and_resume_equals_uninterrupted_run(tmp_path):
    ref = tmp_path / "ref"
    assert main(ARGS + ["--out", str(ref)]) == 0
    out = tmp_path / "killed"
    cmd = [sys.executable, str(REPO / "meta_datasets" / "build.py"), "--out", str(out)] + ARGS
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    evals = out / ".build" / "evals"
    deadline = time.monotonic() + 120
    try:
        while not any(evals.rglob("*.json")) if evals.is_dir() else True:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "builder produced no shard"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)  # a real, uncatchable kill
    finally:
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    done = sorted(evals.rglob("*.json"))
    assert 1 <= len(done) < 12, "the kill should interrupt the build"
    for f in done:  # never a partial shard
        json.loads(f.read_text())
    assert not (out / "triples.parquet").exists()
    with pytest.raises(UserInputError, match="not done"):
        collect(out)
    partial = collect(out, partial=True)
    assert len(partial.triples) == 5 * len(done)
    mtimes = {f: f.stat().st_mtime_ns for f in done}
    # rerun the same command: finishes the rest, redoes nothing
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert all(f.stat().st_mtime_ns == m for f, m in mtimes.items())
    assert len(list(evals.rglob("*.json"))) == 12
    md_ref, t_ref, k_ref = _frames(ref)
    md_out, t_out, k_out = _frames(out)
    pd.testing.assert_frame_equal(t_ref, t_out)
    pd.testing.assert_frame_equal(k_ref, k_out)
    assert len(md_out.task_ids()) == 2 and len(md_out.triples) == 2 * 6 * 5
    # a different command on the same folder is refused
    assert main(ARGS[:-1] + ["--epochs", "3", "--out", str(out)]) == 2


def test_consolidated_collection_is_a_usable_meta_dataset(tmp_path):
    out = tmp_path / "mini"
    specs = tasks_from_datasets(["digits"], 1, 2, seed=0, max_per_class=10)
    plan = make_plan("mini", specs, archs_per_task=2,
                     train=TrainConfig(C=4, N=1, epochs=1, batch_size=16))
    build(plan, out, progress=False, work_dir=tmp_path / "shards")  # shards kept outside
    assert not (out / ".build").exists() and (tmp_path / "shards" / "plan.json").is_file()
    md = MetaDataset.load(out)
    md.validate()
    (tid,) = md.task_ids()
    row = md.task(tid)
    assert row["n_classes"] == 2 and _nested(row["sample_features"]).shape == (2, 20, 64)
    assert set(md.triples["metric"]) == {"acc", "cost_s", "params_norm", "flops_norm"}
    assert set(md.triples["fidelity"]) == {1}
    from metanas.benchmarks.tabular import TabularBenchmark

    tb = TabularBenchmark.from_task(tid, meta_dataset=md)
    ev = tb.evaluate([plan.archs[0][0]])[0]
    assert set(ev.report) == {"test"} and ev.cost_s > 0
    # the table equals what a LiveBenchmark measures for the same arch
    from metanas.benchmarks.live import LiveBenchmark

    live = LiveBenchmark("nb201", plan.tasks[0], plan.train).evaluate([plan.archs[0][0]])[0]
    assert (live.value, live.report) == (ev.value, ev.report)
    assert (out / "README.md").is_file()
    assert not list(ShardStore(out, tmp_path / "shards").root.rglob(".*.tmp"))
