"""The TNAS benchmark scripts' argument checks and result merging (``benchmarks/tnas_*.py``):
bad input is a one-line usage error before any meta-training, and a rerun never mixes in
results made with other settings. No search runs here."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))

import tnas_common  # noqa: E402
import tnas_loto  # noqa: E402
import tnas_select  # noqa: E402


def _parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="x")


def _usage_error(capsys, f, *args, **kw) -> str:
    with pytest.raises(SystemExit) as e:
        f(*args, **kw)
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "Traceback" not in err
    return err


def test_parse_variants(capsys):
    p = _parser()
    assert tnas_common.parse_variants(p, '{"ucb": {"acquisition": "ucb"}}') == {
        "ucb": {"acquisition": "ucb"}}
    assert tnas_common.parse_variants(p, '{"e": {"meta_seeds": [0, 1]}}',
                                      extra=("meta_seeds",))["e"] == {"meta_seeds": [0, 1]}
    assert "not JSON" in _usage_error(capsys, tnas_common.parse_variants, p, "{ucb")
    err = _usage_error(capsys, tnas_common.parse_variants, p, '{"ucb": {"acqusition": "ucb"}}')
    assert "'acqusition'" in err and "did you mean 'acquisition'" in err
    # a script's own key is valid only where the script takes it
    assert "'meta_seeds'" in _usage_error(capsys, tnas_common.parse_variants, p,
                                          '{"e": {"meta_seeds": [0]}}')
    assert "JSON object" in _usage_error(capsys, tnas_common.parse_variants, p, '{"a": 1}')


def test_parse_tnas_kw(capsys):
    p = _parser()
    assert tnas_common.parse_tnas_kw(p, '{"adapt_every": 5}') == {"adapt_every": 5}
    assert "not JSON" in _usage_error(capsys, tnas_common.parse_tnas_kw, p, "{adapt")
    assert "did you mean 'adapt_every'" in _usage_error(capsys, tnas_common.parse_tnas_kw, p,
                                                        '{"adapt_evry": 5}')
    assert "JSON object" in _usage_error(capsys, tnas_common.parse_tnas_kw, p, "[1]")


def test_check_names(capsys):
    tnas_common.check_names(_parser(), "--x", ["a"], ["a", "b"])
    err = _usage_error(capsys, tnas_common.check_names, _parser(), "--methods", ["rss"],
                       ["rs", "rea"])
    assert "unknown 'rss'" in err and "did you mean 'rs'" in err


class _Bench:
    """What ``summarise`` needs of a table: the top fraction of a value."""

    values = [float(v) for v in range(100)]

    def top_fraction(self, v: float) -> float:
        return sum(x > v for x in self.values) / len(self.values)


def _runs(n_seeds: int, budget: int) -> list[dict]:
    runs = []
    for s in range(n_seeds):
        best, hist = -1.0, []
        for i in range(budget):
            v = float((7 * i + 13 * s) % 100)
            best = max(best, v)
            hist.append({"arch": str(i), "value": v, "best_so_far": best, "report": {},
                         "time_s": 0.0, "cost_s": None})
        runs.append({"seed": s, "history": hist, "best_arch": "", "best_value": best,
                     "best_report": {}})
    return runs


def test_select_rows_come_from_the_harness_summary():
    """tnas_select reads its numbers from ``metanas.harness.summarise`` (10, 20 and the
    budget); a run shorter than a count gives ``None`` there and ``n/a`` in the log line,
    not a crash."""
    from metanas.harness import summarise

    runs, bench = _runs(3, 50), _Bench()
    s = summarise(runs, bench, budget=30)
    row = tnas_select.variant_row(s, [10, 20, 30], 30)
    for k in (10, 20, 30):
        assert row[f"top_fraction@{k}"] == s[f"top_fraction@{k}"]["mean"]
    assert row["best@30"] == s["best@30"]["mean"]
    short = summarise(runs[:2] + [{**runs[2], "history": runs[2]["history"][:15]}], bench,
                      budget=30)
    row = tnas_select.variant_row(short, [10, 20, 30], 30)
    assert row["top_fraction@10"] is not None
    assert row["top_fraction@20"] is None and row["best@30"] is None
    line = tnas_select.task_line({"tnas": row}, [10, 20, 30])
    assert line.startswith("tnas ") and line.endswith("/n/a/n/a")


def test_read_json_or_none(tmp_path):
    logs = []
    f = tmp_path / "r.json"
    assert tnas_common.read_json_or_none(f, logs.append) is None and not logs
    f.write_text('{"results": {"a"')  # truncated
    assert tnas_common.read_json_or_none(f, logs.append) is None
    assert len(logs) == 1 and "treating it as absent" in logs[0]
    f.write_text('{"a": 1}')
    assert tnas_common.read_json_or_none(f, logs.append) == {"a": 1}


def test_kept_tasks_and_mean_over_tasks(tmp_path):
    settings = {"seeds": 2, "budget": 100, "sources": ("a", "b")}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"tasks": {
        "t1": {"settings": tnas_common.plain(settings), "methods": {"rs": {"tf": 0.1}}},
        "t2": {"settings": {**tnas_common.plain(settings), "budget": 20},
               "methods": {"rs": {"tf": 0.9}}},
        "t3": {"methods": {"rs": {"tf": 0.9}}},  # an older summary: no settings recorded
        "t4": {"settings": tnas_common.plain(settings), "methods": {"rs": {"tf": 0.5}}}}}))
    logs = []
    kept = tnas_common.kept_tasks(path, settings, ["t4"], logs.append)
    assert list(kept) == ["t1"]
    assert len(logs) == 1 and "t2" in logs[0] and "t3" in logs[0] and "t4" not in logs[0]
    kept["t5"] = {"methods": {"rs": {"tf": 0.3, "tf_se": 0.1}, "tnas": {"tf": 0.0}}}
    mean, covers = tnas_common.mean_over_tasks(kept)
    assert mean == {"rs": {"tf": pytest.approx(0.2)}, "tnas": {"tf": 0.0}}
    assert covers == {"rs": ["t1", "t5"], "tnas": ["t5"]}
    assert tnas_common.kept_tasks(tmp_path / "none.json", settings, [], logs.append) == {}


def _entry(method: str, space: str, kw: dict, seeds: int, budget: int) -> dict:
    from metanas.harness import _run_settings

    return {"runs": _runs(seeds, budget), "settings": _run_settings(method, space, kw)}


def test_loto_kept_results(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    tnas_kw = {"pretrained": ckpt}
    args = argparse.Namespace(budget=20, seeds=2, tnas_kw={})
    prev = {"rs": _entry("rs", "nb201", {}, 2, 20),  # same budget, seeds, settings: kept
            "rea": _entry("rea", "nb201", {}, 2, 5),  # another budget
            "gp-bo": _entry("gp-bo", "nb201", {}, 3, 20),  # other seeds
            "tnas": _entry("tnas", "nb201", {**tnas_kw, "adapt_every": 5}, 2, 20),
            # an ablation keeps its own seed count
            "tnas[noadapt]": _entry("tnas", "nb201", {**tnas_kw, "adapt": False}, 5, 20),
            "tnas[scratch]": _entry("tnas", "nb201", tnas_kw, 5, 20),  # not scratch's settings
            "tnas[retired]": _entry("tnas", "nb201", tnas_kw, 5, 20)}  # no longer defined
    logs = []
    kept = tnas_loto.kept_results(prev, "nb201", args, tnas_kw, "nb201/cifar10", logs.append)
    assert sorted(kept) == ["rs", "tnas[noadapt]", "tnas[retired]"]
    assert len(logs) == 1
    for k in ("rea (budget 5)", "gp-bo (3 seeds)", "tnas (other settings)",
              "tnas[scratch] (other settings)"):
        assert k in logs[0]
    # a retired ablation made with other --tnas-kw is dropped
    args.tnas_kw = {"adapt_every": 5}
    kept = tnas_loto.kept_results({"tnas[retired]": prev["tnas[retired]"]}, "nb201", args,
                                  {**tnas_kw, "adapt_every": 5}, "t", logs.append)
    assert kept == {}


@pytest.mark.parametrize("argv, msg", [
    (["--space", "foo"], "--space: unknown 'foo'"),
    (["--methods", "tnas,rss"], "did you mean 'rs'"),
    (["--tasks", "nb201/cifar11"], "did you mean 'nb201/cifar10'"),
    (["--space", "nb201", "--tasks", "transnas_micro/jigsaw"], "unknown 'transnas_micro/jigsaw'"),
    (["--seeds", "-2"], "--seeds must be >= 1"),
    (["--budget", "0"], "--budget must be >= 1"),
    (["--ablations", "noadapt,foo"], "--ablations: unknown 'foo'"),
    (["--ablation-tasks", "nb201/cifar1"], "--ablation-tasks: unknown"),
    (["--tnas-kw", "{adapt"], "--tnas-kw is not JSON"),
    (["--tnas-kw", '{"acqusition": "ucb"}'], "did you mean 'acquisition'"),
])
def test_loto_rejects_bad_arguments_before_training(capsys, tmp_path, argv, msg):
    err = _usage_error(capsys, tnas_loto.main, [*argv, "--out", str(tmp_path)])
    assert msg in err
    assert not any(tmp_path.iterdir())  # nothing trained or written


@pytest.mark.parametrize("argv, msg", [
    (["--budget", "0"], "--budget must be >= 1"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--variants", "{ucb"], "--variants is not JSON"),
    (["--variants", '{"ucb": {"acqusition": "ucb"}}'], "did you mean 'acquisition'"),
    (["--variants", '{"rs": {}}'], "'rs' is a reference method's"),
    (["--references", "rs,rea", "--variants", '{"rea": {}}'], "'rea' is a reference"),
    (["--references", "rs,reaa"], "did you mean 'rea'"),
    (["--groups", "digitsval"], "did you mean 'digits-val'"),
    (["--groups", "loto,lotto"], "--groups: unknown 'lotto'"),
    (["--groups", "loto", "--tasks", "cifar10,cifar11"], "'cifar11' is no task of the groups"),
])
def test_select_rejects_bad_arguments_before_training(capsys, tmp_path, argv, msg):
    err = _usage_error(capsys, tnas_select.main, [*argv, "--out", str(tmp_path)])
    assert msg in err
    assert not any(tmp_path.iterdir())


def test_select_accepts_its_variant_keys():
    p = _parser()
    v = tnas_common.parse_variants(p, '{"e": {"meta_seeds": [0, 1], "meta": {"top_share": 0.5}}}',
                                   extra=tnas_select.VARIANT_KEYS)
    assert v["e"]["meta_seeds"] == [0, 1]


def test_digits_checkpoint_compares_the_recipe(monkeypatch, tmp_path):
    import tnas_digits

    seen = {}

    def fake(d, cfg, log, what, command):
        seen.update(d=d, cfg=cfg)
        return d, 0.0

    monkeypatch.setattr(tnas_loto, "trained_checkpoint", fake)
    out = tnas_digits.nb201_checkpoint(tmp_path / "c", ["digits_live/x"], "w")
    assert out == tmp_path / "c" and seen["cfg"].exclude == ["digits_live/x"]
    assert seen["cfg"].space == "nb201"
