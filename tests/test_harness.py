"""The benchmark harness: per-run checkpoints are keyed by method, seed and method kwargs."""

import pytest

from metanas.harness import HarnessConfig, run_harness


def _cfg(kwargs):
    return HarnessConfig(space="transnas_micro", task="transnas_micro/class_scene",
                         methods=["rea"], seeds=[0], budget=6,
                         method_kwargs={"rea": kwargs} if kwargs else {})


def test_runs_with_other_method_kwargs_are_not_reused(tmp_path):
    out = tmp_path / "h.json"
    a = run_harness(_cfg({"population_size": 3, "tournament_size": 2}), out)
    runs = tmp_path / "h.runs"
    first = sorted(p.name for p in runs.iterdir())
    assert len(first) == 1 and first[0].startswith("rea-") and first[0].endswith("-seed0.json")
    again = run_harness(_cfg({"population_size": 3, "tournament_size": 2}), out)
    assert sorted(p.name for p in runs.iterdir()) == first  # resumed, not rerun
    assert again["results"]["rea"]["runs"] == a["results"]["rea"]["runs"]
    run_harness(_cfg({"population_size": 4, "tournament_size": 2}), out)
    run_harness(_cfg(None), out)  # the defaults (population 20, tournament 5): a third run
    names = sorted(p.name for p in runs.iterdir())
    assert len(names) == 3
    run_harness(_cfg({"population_size": 20}), out)  # = the default: the same run, reused
    assert len(list(runs.iterdir())) == 3


def test_runs_on_an_edited_user_table_are_not_reused(tmp_path):
    """Resuming keys a user table's runs by its content, not its path."""
    from metanas import spaces

    space = spaces.get("transnas_micro")
    archs = space.enumerate()[:40]
    table = tmp_path / "t.csv"

    def write(sign):
        table.write_text("arch,acc\n" + "".join(f"{space.to_str(a)},{sign * i}\n"
                                                  for i, a in enumerate(archs)))

    def run():
        cfg = HarnessConfig(space="transnas_micro", task="user/t", task_table=str(table),
                            metric="acc", methods=["rs"], seeds=[0], budget=40)
        return run_harness(cfg, tmp_path / "h.json")

    write(1)
    a = run()
    assert a["results"]["rs"]["runs"][0]["best_value"] == 39
    assert run()["results"]["rs"]["runs"][0] == a["results"]["rs"]["runs"][0]  # resumed
    assert len(list((tmp_path / "h.runs").iterdir())) == 1
    write(-1)  # the same path, other values: a new run on the new values
    b = run()
    assert b["results"]["rs"]["runs"][0]["best_value"] == 0
    assert b["task_table_sha1"] != a["task_table_sha1"]
    assert len(list((tmp_path / "h.runs").iterdir())) == 2


def test_runs_of_another_task_or_metric_are_not_reused(tmp_path):
    """One output path shared by two tasks (or two metrics of one table) keeps their runs
    apart: the second never reports the first one's values."""
    out = tmp_path / "h.json"

    def cfg(task, **kw):
        return HarnessConfig(space="transnas_micro", task=task, methods=["rs"], seeds=[0],
                             budget=5, **kw)

    a = run_harness(cfg("transnas_micro/class_scene"), out)
    b = run_harness(cfg("transnas_micro/class_object"), out)
    assert len(list((tmp_path / "h.runs").iterdir())) == 2
    assert b["task"] == "transnas_micro/class_object"
    # the same seed evaluates the same cells, so the values must be class_object's own
    from metanas.benchmarks import get_benchmark

    bench = get_benchmark("transnas_micro/class_object", space="transnas_micro")
    run = b["results"]["rs"]["runs"][0]
    assert [h["value"] for h in run["history"]] == [
        e.value for e in bench.evaluate([bench.space.from_str(h["arch"])
                                         for h in run["history"]])]
    assert run["history"] != a["results"]["rs"]["runs"][0]["history"]

    from metanas import spaces

    space = spaces.get("transnas_micro")
    table = tmp_path / "t.csv"
    table.write_text("arch,up,down\n" + "".join(f"{space.to_str(x)},{i},{-i}\n"
                                                 for i, x in enumerate(space.enumerate()[:30])))
    ups = run_harness(cfg("user/t", task_table=str(table), metric="up"), out)
    downs = run_harness(cfg("user/t", task_table=str(table), metric="down"), out)
    up_run, down_run = ups["results"]["rs"]["runs"][0], downs["results"]["rs"]["runs"][0]
    assert [h["value"] for h in down_run["history"]] == [-h["value"] for h in up_run["history"]]


def test_run_settings_include_the_defaults(monkeypatch):
    """A run is named by its strategy's defaults too: a changed default is a new run."""
    import inspect

    from metanas import strategies
    from metanas.harness import _kwargs_tag
    from metanas.strategies.rea import RegularizedEvolution as REA

    s = strategies.run_settings("rea", "nb201", {"tournament_size": 3})
    assert s["tournament_size"] == 3 and s["population_size"] == 20
    before = _kwargs_tag(strategies.run_settings("rea", "nb201"))
    sig = inspect.signature(REA)
    changed = sig.replace(parameters=[p.replace(default=30) if p.name == "population_size"
                                      else p for p in sig.parameters.values()])
    monkeypatch.setattr(REA, "__signature__", changed, raising=False)
    assert _kwargs_tag(strategies.run_settings("rea", "nb201")) != before
    # tnas: pretrained="auto" is the shipped checkpoint folder (fingerprinted by its weights)
    t = strategies.run_settings("tnas", "nb201")
    assert t["pretrained"].endswith("tnas-nb201") and t["adapt_guard"] == "holdout"


def test_checkpoint_kwargs_are_tagged_by_their_weights(tmp_path):
    """A checkpoint-folder kwarg enters the run name by its weights: re-trained weights in the
    same folder get a new name (old runs are not reused), a copy elsewhere the same name."""
    import shutil

    import torch
    from safetensors.torch import save_file

    from metanas.harness import _kwargs_tag

    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    save_file({"w": torch.zeros(3)}, str(a / "model.safetensors"))
    first = _kwargs_tag({"pretrained": str(a), "adapt": False})
    shutil.copytree(a, b)
    assert _kwargs_tag({"pretrained": str(b), "adapt": False}) == first
    save_file({"w": torch.ones(3)}, str(a / "model.safetensors"))  # re-trained in place
    assert _kwargs_tag({"pretrained": str(a), "adapt": False}) != first
    assert _kwargs_tag({"pretrained": str(tmp_path / "missing")}) != first  # plain value
    # the results record which weights were used: one folder, or a list (an ensemble)
    from metanas.harness import _checkpoint_fingerprints
    from metanas.io import weights_fingerprint

    fa, fb = weights_fingerprint(a), weights_fingerprint(b)
    assert fa != fb
    assert _checkpoint_fingerprints({"pretrained": str(a), "adapt": False}) == {"pretrained": fa}
    assert _checkpoint_fingerprints({"pretrained": [str(a), str(b)]}) == {"pretrained": [fa, fb]}
    assert _checkpoint_fingerprints({"pretrained": str(tmp_path / "missing")}) == {}
    assert _checkpoint_fingerprints(None) == {}
    # the same weights with another config or prior context are another checkpoint
    tags = {_kwargs_tag({"pretrained": str(b)})}
    (b / "config.json").write_text("{}")
    tags.add(_kwargs_tag({"pretrained": str(b)}))
    save_file({"X": torch.zeros(2, 6)}, str(b / "prior_context.safetensors"))
    tags.add(_kwargs_tag({"pretrained": str(b)}))
    assert len(tags) == 3
    # a damaged weights file is a one-line error naming it
    from metanas.errors import UserInputError

    (b / "model.safetensors").write_bytes(b"\x10\x00\x00")
    with pytest.raises(UserInputError, match="model.safetensors cannot be read"):
        _kwargs_tag({"pretrained": str(b)})


def test_summary_reports_the_incumbents_report_at_each_budget():
    """``summarise``: the report (e.g. test accuracy) of the best-so-far arch after k
    evaluations - the first of equal values, NaN skipped - and its top fraction in the
    report table."""
    from metanas.benchmarks import TabularBenchmark
    from metanas.harness import summarise

    bench = TabularBenchmark.from_task("nb201/cifar10")
    evs = [bench.lookup(a) for a in bench.candidates()[:12]]
    vals = [float(i % 5) for i in range(10)] + [float("nan"), 9.0]
    vals[7] = 4.0  # ties with index 4: the first one stays the incumbent
    best, history = -1.0, []
    for v, e in zip(vals, evs):
        best = max(best, v) if v == v else best
        history.append({"value": v, "best_so_far": best, "report": e.report, "time_s": 0.0})
    s = summarise([{"history": history, "best_report": None}], bench)
    assert s["report_test@10"]["mean"] == pytest.approx(evs[4].report["test"])
    assert s["report_top_fraction_test@10"]["mean"] == pytest.approx(
        bench.report_top_fraction(evs[4].report["test"]))
    assert "report_test@20" not in s  # fewer than 20 evaluations


def test_plot_with_failed_first_evaluations(tmp_path):
    """A run whose first evaluations failed (-inf best so far) still gets its plot."""
    from metanas.harness import plot_results

    hist = [{"value": float("nan"), "best_so_far": float("-inf")}] * 2 + [
        {"value": 50.0 + i, "best_so_far": 50.0 + i} for i in range(8)]
    results = {"task": "toy", "space": "nb201", "budget": 10,
               "results": {"rs": {"runs": [{"seed": 0, "history": hist}]}}}
    plot_results(results, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


def test_results_record_the_environment_that_produced_them(tmp_path):
    """Float results can depend on package versions and torch's thread count, so every
    results JSON says which ones produced it."""
    import json

    import numpy
    import torch

    run_harness(_cfg(None), tmp_path / "h.json")
    env = json.loads((tmp_path / "h.json").read_text())["environment"]
    assert env["packages"]["torch"] == torch.__version__
    assert env["packages"]["numpy"] == numpy.__version__
    assert env["packages"]["metanas"] is not None
    assert env["threads"] == torch.get_num_threads() and env["python"] and env["isa"]


@pytest.mark.parametrize("method", ["base", "base-prior"])
def test_base_auto_prior_is_tagged_by_its_weights(method):
    """``base`` / ``base-prior`` with ``pretrained="auto"`` are named by the shipped prior's
    folder (as ``tnas``), so the harness fingerprints its weights: a re-trained prior does not
    reuse old runs (``tests/strategies/test_oneshot.py`` checks the re-training)."""
    from metanas.harness import _checkpoint_fingerprints, _run_settings
    from metanas.io import weights_fingerprint
    from metanas.strategies.oneshot import shipped_prior

    folder = shipped_prior("nb201")
    assert (folder / "model.safetensors").is_file()  # the repo ships it
    settings = _run_settings(method, "nb201", None)
    assert settings["pretrained"] == str(folder)
    assert _checkpoint_fingerprints(settings) == {"pretrained": weights_fingerprint(folder)}


def test_summary_has_the_budget_outside_summary_at(tmp_path, capsys):
    """A budget outside ``SUMMARY_AT`` (here 13) gets ``best@13``, ``top_fraction@13`` and the
    report keys at 13 in the results' summary, and the printed table shows the summary's
    value (not a recomputed one)."""
    import json

    import numpy as np

    from metanas.cli import _print_summary
    from metanas.harness import HarnessConfig, run_harness, summarise

    cfg = HarnessConfig(space="nb201", task="nb201/cifar10", methods=["rs"],
                        seeds=[0, 1], budget=13)
    res = run_harness(cfg, tmp_path / "r.json")
    s = res["results"]["rs"]["summary"]
    assert {"best@10", "best@13", "top_fraction@10", "top_fraction@13"} <= set(s)
    assert "best@20" not in s
    assert {"report_test@13", "report_top_fraction_test@13"} <= set(s)
    runs = res["results"]["rs"]["runs"]
    assert s["best@13"]["mean"] == np.mean([r["best_value"] for r in runs])
    # without a budget: SUMMARY_AT only, as before
    assert "best@13" not in summarise(runs)
    assert json.loads((tmp_path / "r.json").read_text())["results"]["rs"]["summary"] == s
    doctored = json.loads(json.dumps(res))
    doctored["results"]["rs"]["summary"]["best@13"] = {"mean": 12.345, "se": 0.5}
    _print_summary(doctored)
    assert "12.345 ± 0.500" in capsys.readouterr().out


def test_all_failed_method_has_no_nonfinite_summary_point(capsys):
    """A method whose evaluations all failed (NaN values, best so far -inf) gets no
    ``best@<k>`` (no ``-inf ± nan`` in the table, no NaN in the JSON); the CLI shows n/a."""
    import json

    from metanas.cli import _print_summary
    from metanas.harness import summarise

    failed = [{"value": float("nan"), "best_so_far": float("-inf"), "report": {},
               "time_s": 0.0}] * 25
    ok = [{"value": 1.0 + i, "best_so_far": 1.0 + i, "report": {}, "time_s": 0.0}
          for i in range(25)]
    run = lambda h: {"seed": 0, "history": h, "best_report": {}}  # noqa: E731
    s_failed = summarise([run(failed)], budget=25)
    assert not any(k.startswith("best@") for k in s_failed)
    json.dumps(s_failed, allow_nan=False)  # strict JSON
    s_ok = summarise([run(ok)], budget=25)
    assert s_ok["best@25"]["mean"] == 25.0 and s_ok["best@10"]["mean"] == 10.0
    results = {"task": "toy", "space": "nb201", "metric": "v", "budget": 25, "seeds": [0],
               "results": {"bad": {"summary": s_failed}, "good": {"summary": s_ok}}}
    _print_summary(results)
    out = capsys.readouterr().out
    lines = out.splitlines()
    bad = next(line for line in lines if line.startswith("bad"))
    good = next(line for line in lines if line.startswith("good"))
    head = next(line for line in lines if line.startswith("method"))
    assert bad.split()[1:] == ["n/a"] * 3 + ["-"] and "inf" not in out and "nan" not in out
    assert len(bad) == len(good) == len(head)  # the columns line up
