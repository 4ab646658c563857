"""The benchmark harness: per-run checkpoints are keyed by method, seed and method kwargs."""

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
    run_harness(_cfg(None), out)
    names = sorted(p.name for p in runs.iterdir())
    assert len(names) == 3 and "rea-seed0.json" in names  # no kwargs: the plain name
