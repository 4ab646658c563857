"""TabularBenchmark: the table-lookup Evaluator, and get_benchmark."""

from __future__ import annotations

import numpy as np
import pytest

from metanas import spaces
from metanas.benchmarks import Evaluation, Evaluator, TabularBenchmark, get_benchmark
from metanas.benchmarks import register_resolver
from metanas.errors import ArchNotInTable, UserInputError

A0 = "|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
A2 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"


@pytest.fixture(scope="module")
def c10() -> TabularBenchmark:
    return TabularBenchmark.from_task("nb201/cifar10")


def test_nb201_oracle(c10):
    b = TabularBenchmark.from_task("nb201/cifar10")  # fresh counter
    assert isinstance(b, Evaluator)
    assert b.task == "nb201/cifar10" and b.metric == "valid_acc" and b.fidelity == 200
    assert b.space is spaces.get("nb201") and b.is_full and len(b) == 15625
    assert b.optimum == pytest.approx(91.607, abs=5e-4)
    assert b.report_optimum() == pytest.approx(91.523, abs=5e-4)
    assert b.report_keys == ["test"]
    best = b.optimum_arch
    ev = b.evaluate([best, A2, best])
    assert b.n_evaluations == 3
    assert all(isinstance(e, Evaluation) for e in ev)
    assert ev[0].value == b.optimum and ev[0].cost_s is None and ev[0].info["fidelity"] == 200
    assert ev[1].value == pytest.approx(81.98266665690103)  # official index 0
    assert ev[1].report["test"] == pytest.approx(81.52)
    assert b.regret(ev[0].value) == 0 and b.top_fraction(ev[0].value) == 0
    assert b.report_regret(ev[0].report) == pytest.approx(b.report_optimum() - ev[0].report["test"])
    assert b.report_regret(91.0, key="test") == pytest.approx(b.report_optimum() - 91.0)
    b.evaluate([])
    assert b.n_evaluations == 3
    b.lookup(best)  # not counted
    assert b.n_evaluations == 3
    b.reset()
    assert b.n_evaluations == 0
    assert len(b.candidates()) == 15625 and b.candidates()[0] == spaces.get("nb201").from_index(0)


def test_top_fraction_and_regret(c10):
    vals = np.sort(c10.values())
    assert c10.top_fraction(vals[0]) == pytest.approx(np.mean(vals > vals[0]))
    assert c10.top_fraction(c10.optimum + 1) == 0.0
    assert c10.top_fraction(-1.0) == 1.0
    median = float(np.median(vals))
    assert 0.45 < c10.top_fraction(median) < 0.55
    assert c10.regret(90.0) == pytest.approx(c10.optimum - 90.0)
    test = np.array([c10.lookup(a).report["test"] for a in c10.candidates()])
    v = float(np.median(test))
    assert c10.report_top_fraction(v) == pytest.approx(np.mean(test > v))
    assert c10.report_top_fraction(c10.report_optimum(), "test") == 0.0


def test_low_fidelity_reports_final(c10):
    b = get_benchmark("cifar10", fidelity=12)
    assert b.fidelity == 12 and b.optimum == pytest.approx(84.892, abs=1e-3)
    e = b.evaluate([A0])[0]
    assert e.report["test"] == c10.lookup(A0).report["test"]  # final (200-epoch) test accuracy
    b2 = get_benchmark("cifar10", metric="valid_acc@12", report_metric=["test_acc@12", "test_acc"])
    e2 = b2.evaluate([A0])[0]
    assert set(e2.report) == {"test_acc@12", "test_acc"} and e2.value == e.value


@pytest.mark.parametrize("task, optimum, valid", [
    ("nb201/cifar100", 73.493, 73.513), ("nb201/imagenet16-120", 46.733, 47.311)])
def test_other_nb201_optima(task, optimum, valid):
    b = get_benchmark(task)
    assert b.optimum == pytest.approx(optimum, abs=5e-4)
    assert b.report_optimum() == pytest.approx(valid, abs=5e-4)


def test_partial_table_metad2a():
    b = get_benchmark("metad2a/3890")
    cands = b.candidates()
    assert not b.is_full and 1 <= len(cands) == len(b) < 10
    assert b.report_keys == [] and b.fidelity == 0
    b.evaluate(cands)
    assert b.n_evaluations == len(cands)
    missing = next(a for a in spaces.get("nb201").enumerate() if a not in set(cands))
    with pytest.raises(ArchNotInTable) as exc:
        b.evaluate([cands[0], missing])
    assert "candidates()" in str(exc.value) and "\n" not in str(exc.value)
    assert b.n_evaluations == len(cands)  # nothing counted for the failed batch
    with pytest.raises(UserInputError):
        b.report_regret(1.0)
    assert missing not in b and cands[0] in b


def test_transnas_task():
    b = get_benchmark("transnas_micro/room_layout")
    assert b.space is spaces.get("transnas_micro") and b.is_full and b.fidelity == 25
    assert b.optimum < 0 and b.metric == "valid_neg_loss"
    e = b.evaluate(["64-41414-3_13_123"])[0]
    assert e.value < 0 and e.report == {}
    with pytest.raises(UserInputError):
        get_benchmark("transnas_micro/room_layout", space="nb201")


def test_user_csv_benchmark(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text(f"arch,val,test,train_s\n{A0},90,89,100.5\n{A2},80,81,50\n")
    b = get_benchmark(p, space="nb201", metric="val", report_metric="test", cost_column="train_s")
    assert b.task == "user/runs" and b.metric == "val" and len(b) == 2
    ev = b.evaluate([A2, A0])
    assert [e.value for e in ev] == [80, 90] and [e.cost_s for e in ev] == [50, 100.5]
    assert ev[0].report == {"test": 81} and b.report_optimum() == 89
    assert b.top_fraction(80) == 0.5 and b.regret(80) == 10
    with pytest.raises(ArchNotInTable):
        b.evaluate([(0,) * 6])
    with pytest.raises(UserInputError, match="space"):
        get_benchmark(str(p))


def test_resolver_errors_and_registry():
    with pytest.raises(UserInputError) as exc:
        get_benchmark("nb201/cifar1000")
    assert "\n" not in str(exc.value) and "nb201/cifar100" in str(exc.value)
    seen = {}

    def factory(task, **kw):
        seen.update(kw, task=task)
        return "live"

    register_resolver("digits-test/", factory)
    assert get_benchmark("digits-test/x", space="nb201", metric="acc") == "live"
    assert seen["task"] == "digits-test/x" and seen["metric"] == "acc"


def test_run_search_against_table(c10):
    from metanas.search import run_search
    from metanas.strategies import make

    b = TabularBenchmark.from_task("cifar10")
    run = run_search(make("rs", b.space, 0), b, budget=20, batch_size=4)
    assert b.n_evaluations == 20 and len(run.history) == 20
    best = run.best
    assert set(best["report"]) == {"test"} and b.regret(best["value"]) >= 0
