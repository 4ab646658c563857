"""The benchmark scripts under ``benchmarks/``: one-line errors, settings-keyed caches, summary
merging, JSON without NaN, shipped data only (fast checks; no benchmark is run)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _load(name: str):
    mod = sys.modules.get(f"_bench_{name}")
    if mod is None:
        spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("script,argv", [
    ("gpbo_step", ["--obs", "-5"]),
    ("gpbo_step", ["--threads", "a,b"]),
    ("base_adapt_strength", ["--lrs", "abc"]),
    ("base_digits", ["--methods", "foo"]),
    ("base_digits", ["--steps", "0"]),
    ("foundation", ["--methods", "foo"]),
    ("foundation", ["--tasks", "nb201/cifar1000"]),
    ("proxy_methods", ["--methods", "base,foo"]),
    ("proxy_methods", ["--tasks", "nb201/cifar1000"]),
    ("gpbo_warp_study", ["--seeds", "0"]),
    ("gpbo_warp_study", ["--tasks", "nosuch/task"]),
    ("digits_collection", ["--collection", "nosuch"]),
    ("hub_timing", ["--space", "nosuch"]),
    ("live_resume", ["--kills", "-1"]),
    ("live_throughput", ["--n-archs", "0"]),
    ("proxy_correlation", ["--n-archs", "1"]),
])
def test_bad_input_is_one_line_error(script, argv, capsys, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exc:
        _load(script).main(argv + ["--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    assert not out.exists()  # nothing was run or written


def test_proxy_correlation_reads_shipped_table_only():
    pc = _load("proxy_correlation")
    from metanas.meta_dataset import MetaDataset

    archs, pub, times, acc = pc.load_published("nb201/cifar10")
    assert len(archs) == len(set(archs)) == 725
    assert set(pc.PROXY_COLUMNS) | {"params", "flops"} <= set(pub)
    assert not any(p.startswith("digits_") for p in pub)  # metanas' own table is not published
    assert len(pub["synflow"]) == 724  # NASLib has no synflow for one cell: absent, not ranked
    # the cell whose output is zero: NASLib's failed nwot / jacov rank worst
    assert sum(v == -math.inf for v in pub["nwot"].values()) == 1
    assert sum(v == -math.inf for v in pub["jacov"].values()) == 1
    test = MetaDataset.load("nb201").table("nb201/cifar10", "acc", split="test", fidelity=200)
    assert all(acc[a] == test[a] for a in archs)
    assert all(times["snip"][a] > 0 for a in archs)
    for name in ("proxy_correlation", "base_digits", "foundation", "proxy_methods"):
        src = (BENCH / f"{name}.py").read_text()
        assert "../shared" not in src and "shared/data" not in src and "\"--data\"" not in src


def test_json_safe():
    pc = _load("proxy_correlation")
    got = pc.json_safe({"a": float("nan"), "b": [1.0, float("inf"), {"c": -math.inf}], "d": 2})
    assert got == {"a": None, "b": [1.0, None, {"c": None}], "d": 2}
    json.dumps(got, allow_nan=False)


def test_base_digits_cache_key_follows_settings():
    bd = _load("base_digits")
    k = bd.settings_key(100, "abc123")
    assert k == bd.settings_key(100, "abc123") and len(k) == 10
    assert k != bd.settings_key(30, "abc123") and k != bd.settings_key(100, "abc124")


def test_gpbo_warp_summary_one_seed_has_no_nan():
    gw = _load("gpbo_warp_study")
    s = gw.summarise([90.0], [0.1])
    assert s["best_se"] is None
    json.dumps(s, allow_nan=False)
    s = gw.summarise([90.0, 91.0], [0.1, 0.0])
    assert s["best_se"] == pytest.approx(0.5)


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_foundation_summary_merge(tmp_path):
    fd = _load("foundation")
    meth = ["rs", "rea"]
    sets = {m: {"k": 1} for m in meth}

    def row(v, seeds=3, budget=50, settings=sets):
        return {"optimum": v, "methods": {m: {} for m in meth},
                "settings": {"seeds": seeds, "budget": budget, "methods": settings}}

    path = _write(tmp_path / "s.json", {"seeds": 3, "budget": 50,
                                        "tasks": {"a/x": row(1), "b/y": row(2)}})
    new = {"seeds": 3, "budget": 50, "tasks": {"a/x": row(9)}}
    exp = lambda t: row(0)["settings"]  # noqa: E731
    got = fd.merge_summary(path, new, ["rea", "rs"], expected=exp)
    assert got["tasks"] == {"b/y": row(2), "a/x": row(9)}  # other task kept, own task replaced
    for other in ({"seeds": 4}, {"budget": 100}, {"settings": {"rs": {"k": 1}}},
                  {"settings": {"rs": {"k": 1}, "rea": {"k": 2}}}):
        got = fd.merge_summary(path, new, meth, expected=lambda t: row(0, **other)["settings"])
        assert list(got["tasks"]) == ["a/x"]  # other settings (a method's too): dropped
    assert fd.merge_summary(tmp_path / "none.json", new, meth, expected=exp) == new
    (tmp_path / "bad.json").write_text("{")
    assert fd.merge_summary(tmp_path / "bad.json", new, meth, expected=exp) == new


def test_summary_merge_compares_method_settings(tmp_path):
    """An entry made with another default of a method (MetaD2A before ``exclude_sources``)
    is dropped though seeds, budget and method names match; one recording the settings this
    run gives is kept (both scripts, through ``common.kept_tasks``)."""
    pm, fd = _load("proxy_methods"), _load("foundation")
    import common

    assert pm.merge_summary is common.merge_summary is fd.merge_summary  # one merge
    meth = ["rs", "metad2a"]
    for mod, kw in ((pm, pm.method_kwargs), (fd, None)):
        exp = common.expected_settings("nb201/cifar10", meth, 2, 20, kw)
        assert exp["methods"]["metad2a"]["exclude_sources"]  # recorded, as the harness does
        old = json.loads(json.dumps(exp))
        del old["methods"]["metad2a"]["exclude_sources"]
        tasks = {"nb201/cifar10": {"methods": {m: {} for m in meth}, "settings": exp},
                 "nb201/cifar100": {"methods": {m: {} for m in meth}, "settings": old}}
        path = _write(tmp_path / f"{mod.__name__}.json",
                      {"seeds": 2, "budget": 20, "methods": meth, "tasks": tasks})
        new = {"seeds": 2, "budget": 20, "methods": meth, "tasks": {"x/y": {}}}
        got = mod.merge_summary(path, new, meth, kw)
        assert sorted(got["tasks"]) == ["nb201/cifar10", "x/y"]


def test_proxy_methods_summary_merge(tmp_path, monkeypatch):
    pm = _load("proxy_methods")
    import common

    meth = ["rs", "rea"]

    def row(v, budget=20):
        return {"optimum": v, "methods": {m: {} for m in meth},
                "settings": common.expected_settings("nb201/cifar10", meth, 2, budget,
                                                     pm.method_kwargs)}

    def merge(path, new):
        return pm.merge_summary(path, new, new["methods"], pm.method_kwargs)

    path = _write(tmp_path / "s.json", {"seeds": 2, "budget": 20, "methods": meth,
                                        "tasks": {"nb201/cifar10": row(1), "b/y": row(2)}})
    new = {"seeds": 2, "budget": 20, "methods": ["rea", "rs"], "tasks": {"b/y": row(9)}}
    assert merge(path, new)["tasks"] == {"nb201/cifar10": row(1), "b/y": row(9)}
    assert list(merge(path, {**new, "methods": ["rs"]})["tasks"]) == ["b/y"]
    assert list(merge(path, {**new, "budget": 30})["tasks"]) == ["b/y"]
    old = {"optimum": 1, "methods": {m: {} for m in meth}}  # an older summary: no settings
    path = _write(tmp_path / "o.json", {"seeds": 2, "budget": 20, "methods": meth,
                                        "tasks": {"nb201/cifar10": old}})
    assert list(merge(path, new)["tasks"]) == ["b/y"]
    # the settings of a task on disk: from the tasks table (no benchmark built), once a run
    import metanas.benchmarks as mb

    monkeypatch.setattr(mb, "get_benchmark", lambda *a, **k: pytest.fail("table loaded"))
    assert common.task_id_and_space("cifar100") == ("nb201/cifar100", "nb201")
    r0, calls = row(0), []
    path = _write(tmp_path / "s.json", {"seeds": 2, "budget": 20, "methods": meth,
                                        "tasks": {"nb201/cifar10": row(1)}})
    real = common.expected_settings
    monkeypatch.setattr(common, "expected_settings",
                        lambda t, *a: calls.append(t) or real(t, *a))
    expected = common.settings_per_task(meth, 2, 20, pm.method_kwargs)
    for t in ("a/x", "b/y"):
        new["tasks"][t] = r0
        got = pm.merge_summary(path, new, meth, pm.method_kwargs, expected=expected)
        assert list(got["tasks"]) == ["nb201/cifar10", "b/y", "a/x"]
        _write(path, got)
    assert calls == ["nb201/cifar10"]  # the task on disk: once, not at every merge


def test_default_outputs_are_anchored_at_the_repo():
    for name in ("foundation", "proxy_methods", "gpbo_warp_study", "gpbo_step"):
        src = (BENCH / f"{name}.py").read_text()
        assert 'default="benchmarks/results' not in src, name
        assert "ROOT / \"benchmarks\" / \"results\"" in src, name
