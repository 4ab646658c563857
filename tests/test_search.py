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
