"""The search loop: budget, history fields, checkpoint/resume, mismatch errors."""

import json

import numpy as np
import pytest

from metanas import spaces, strategies
from metanas.benchmarks import Evaluation
from metanas.search import CheckpointMismatch, run_search
from metanas.spaces import encodings as enc


class LinearToy:
    """Synthetic evaluator (unit tests only): a fixed random linear function of the one-hot."""

    def __init__(self, space_name="transnas_micro", seed=0):
        self.space = spaces.get(space_name)
        self.task = f"toy/{space_name}"
        self.metric = "toy"
        self.n_evaluations = 0
        self.w = np.random.default_rng(seed).normal(size=self.space.n_edges * self.space.n_ops)

    def evaluate(self, archs):
        self.n_evaluations += len(archs)
        v = enc.onehot(self.space, archs) @ self.w
        return [Evaluation(float(x), {"test": float(x) / 2}) for x in v]


def test_budget_and_history_fields():
    ev = LinearToy()
    run = run_search(strategies.make("rs", ev.space, seed=0), ev, budget=13, batch_size=4)
    assert len(run.history) == 13 == ev.n_evaluations
    h = run.history
    assert all(set(x) >= {"arch", "value", "best_so_far", "report", "time_s"} for x in h)
    best = np.maximum.accumulate([x["value"] for x in h])
    assert np.allclose(best, [x["best_so_far"] for x in h])
    assert all(b["time_s"] >= a["time_s"] for a, b in zip(h, h[1:]))
    out = run.to_json()
    assert out["best_value"] == max(x["value"] for x in h)
    assert out["best_report"]["test"] == pytest.approx(out["best_value"] / 2)
    ev.space.from_str(out["best_arch"])  # a valid arch string


def test_resume_continues_same_trajectory(tmp_path):
    full = run_search(strategies.make("rs", LinearToy().space, seed=5), LinearToy(), budget=20,
                      seed=5)
    ck = tmp_path / "run.json"
    run_search(strategies.make("rs", LinearToy().space, seed=5), LinearToy(), budget=8, seed=5,
               checkpoint=ck)
    assert len(json.loads(ck.read_text())["history"]) == 8
    ev = LinearToy()
    resumed = run_search(strategies.make("rs", ev.space, seed=5), ev, budget=20, seed=5,
                         checkpoint=ck)
    assert ev.n_evaluations == 12  # nothing re-evaluated
    assert [h["arch"] for h in resumed.history] == [h["arch"] for h in full.history]


def test_checkpoint_for_other_run_is_refused(tmp_path):
    ck = tmp_path / "run.json"
    run_search(strategies.make("rs", LinearToy().space, seed=1), LinearToy(), budget=3, seed=1,
               checkpoint=ck)
    with pytest.raises(CheckpointMismatch, match="not"):
        run_search(strategies.make("rs", LinearToy().space, seed=2), LinearToy(), budget=5,
                   seed=2, checkpoint=ck)


@pytest.mark.parametrize("kw", [{"budget": 0}, {"budget": 3, "batch_size": 0}])
def test_bad_arguments(kw):
    ev = LinearToy()
    with pytest.raises(ValueError):
        run_search(strategies.make("rs", ev.space), ev, **kw)


def test_best_is_the_best_finite_value():
    """A failed (NaN) first evaluation is never the run's best."""
    from metanas.search import SearchRun

    run = SearchRun("rs", 0, "toy", history=[
        {"arch": "a", "value": float("nan")}, {"arch": "b", "value": 3.0},
        {"arch": "c", "value": 5.0}, {"arch": "d", "value": 5.0}])
    assert run.best["arch"] == "c"
    assert SearchRun("rs", 0, "toy", history=[{"arch": "a", "value": float("nan")}]).best["arch"] == "a"
    assert SearchRun("rs", 0, "toy").best is None


def _resume(ck, budget, batch_size=4, seed=5):
    ev = LinearToy()
    run = run_search(strategies.make("rea", ev.space, seed=seed), ev, budget=budget, seed=seed,
                     batch_size=batch_size, checkpoint=ck)
    return run, ev


def test_extending_budget_from_a_shortened_batch_warns(tmp_path, caplog):
    """Budget 10 in batches of 4 is 4, 4, 2; extended to 12 it goes on 2 (evaluations are not
    undone) where a fresh budget-12 run asks 4: the resume says so, and the boundaries are
    recorded in the run and the checkpoint."""
    ck = tmp_path / "run.json"
    first, _ = _resume(ck, 10)
    assert first.batches == [4, 4, 2] and json.loads(ck.read_text())["batches"] == [4, 4, 2]
    with caplog.at_level("WARNING", logger="metanas.search"):
        run, ev = _resume(ck, 12)
    assert ev.n_evaluations == 2 and run.batches == [4, 4, 2, 2]
    assert json.loads(ck.read_text())["batches"] == [4, 4, 2, 2]
    msgs = [r.getMessage() for r in caplog.records if r.name == "metanas.search"]
    assert len(msgs) == 1 and "\n" not in msgs[0]
    assert "shortened final batch" in msgs[0] and "budget 12" in msgs[0]
    assert "--fresh" in msgs[0] and "4, 4, 2" in msgs[0]
    fresh, _ = _resume(None, 12)
    assert fresh.batches == [4, 4, 4]


def test_extending_budget_from_whole_batches_is_silent(tmp_path, caplog):
    """Budget 8 in batches of 4 extended to 12 is the fresh budget-12 run: no warning; nor
    when the run is already complete."""
    ck = tmp_path / "run.json"
    _resume(ck, 8)
    with caplog.at_level("WARNING", logger="metanas.search"):
        run, _ = _resume(ck, 12)
        _resume(ck, 12)
    assert not [r for r in caplog.records if r.name == "metanas.search"]
    fresh, _ = _resume(None, 12)
    assert run.batches == fresh.batches == [4, 4, 4]
    assert [h["arch"] for h in run.history] == [h["arch"] for h in fresh.history]


def test_checkpoint_without_batches_still_resumes(tmp_path, caplog):
    """A checkpoint written before ``batches`` was recorded resumes as before (boundaries
    unknown: ``None``); a length that is no multiple of the batch size still warns."""
    ck = tmp_path / "run.json"
    _resume(ck, 10)
    state = json.loads(ck.read_text())
    del state["batches"]
    ck.write_text(json.dumps(state))
    with caplog.at_level("WARNING", logger="metanas.search"):
        run, ev = _resume(ck, 12)
    assert ev.n_evaluations == 2 and len(run.history) == 12 and run.batches is None
    assert json.loads(ck.read_text())["version"] == 1
    msgs = [r.getMessage() for r in caplog.records if r.name == "metanas.search"]
    assert len(msgs) == 1 and "shortened final batch" in msgs[0]
