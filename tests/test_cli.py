"""adapt.py end to end (benchmark mode) and its one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from metanas import spaces
from metanas.cli import adapt_main
from metanas.meta_dataset import MetaDataset

REPO = Path(__file__).resolve().parents[1]


def test_adapt_shipped_task(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert adapt_main(["--task", "nb201/cifar100", "--method", "rs,rea", "--budget", "12",
                       "--seeds", "2", "--output", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    assert res["task"] == "nb201/cifar100" and res["budget"] == 12
    assert set(res["results"]) == {"rs", "rea"}
    for m in ("rs", "rea"):
        runs = res["results"][m]["runs"]
        assert [r["seed"] for r in runs] == [0, 1]
        for r in runs:
            assert len(r["history"]) == 12
            assert set(r["history"][0]) >= {"arch", "value", "best_so_far", "report", "time_s"}
            assert r["best_value"] == max(h["value"] for h in r["history"])
            assert "test" in r["best_report"]
    assert out.with_suffix(".png").stat().st_size > 1000
    assert "wrote" in capsys.readouterr().out


def test_adapt_resumes_without_reevaluating(tmp_path):
    out = tmp_path / "r.json"
    args = ["--task", "transnas_micro/class_scene", "--space", "transnas_micro", "--method",
            "rs", "--seeds", "1", "--output", str(out), "--quiet"]
    adapt_main(args + ["--budget", "5"])
    first = json.loads(out.read_text())["results"]["rs"]["runs"][0]["history"]
    adapt_main(args + ["--budget", "9"])
    second = json.loads(out.read_text())["results"]["rs"]["runs"][0]["history"]
    assert second[:5] == first and len(second) == 9
    adapt_main(args + ["--budget", "10", "--resume"])  # explicit resume of the saved runs
    third = json.loads(out.read_text())["results"]["rs"]["runs"][0]["history"]
    assert third[:9] == second and len(third) == 10


def test_adapt_resume_without_checkpoint_is_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as ei:
        adapt_main(["--method", "rs", "--budget", "3", "--seeds", "1", "--quiet",
                    "--output", str(tmp_path / "none.json"), "--resume"])
    assert ei.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --resume: no saved runs") and "\n" not in err


def test_adapt_resume_of_another_task_is_one_line_error(tmp_path, capsys):
    """Saved runs of one task do not count as a checkpoint of another task's command."""
    args = ["--space", "transnas_micro", "--method", "rs", "--budget", "3", "--seeds", "1",
            "--quiet", "--output", str(tmp_path / "o.json")]
    adapt_main(args + ["--task", "transnas_micro/class_scene"])
    with pytest.raises(SystemExit) as ei:
        adapt_main(args + ["--task", "transnas_micro/jigsaw", "--resume"])
    assert ei.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: --resume: no saved runs of this command")
    adapt_main(args + ["--task", "transnas_micro/class_scene", "--resume"])  # its own: fine


def test_adapt_user_table(tmp_path):
    t = MetaDataset.load("nb201").table("nb201/cifar10", split="valid")
    sub = t.iloc[:300]
    csv = tmp_path / "mine.csv"
    pd.DataFrame({"arch": sub.index, "acc": sub.values, "test_acc": sub.values - 1}).to_csv(
        csv, index=False)
    out = tmp_path / "u.json"
    assert adapt_main(["--task-table", str(csv), "--metric", "acc", "--report-metric",
                       "test_acc", "--method", "rs,gp-bo", "--budget", "15", "--seeds", "1",
                       "--output", str(out), "--quiet"]) == 0
    res = json.loads(out.read_text())
    archs = set(sub.index)
    for m in ("rs", "gp-bo"):
        hist = res["results"][m]["runs"][0]["history"]
        assert all(h["arch"] in archs for h in hist)  # only the table's archs are proposed
    assert res["optimum"]["value"] == pytest.approx(float(sub.max()))


@pytest.mark.parametrize("args,needle", [
    (["--method", "nope"], "unknown method"),
    (["--budget", "0"], "--budget"),
    (["--space", "darts"], "unknown search space"),
    (["--task", "nb201/cifar1000"], "cifar1000"),
    (["--task-table", "/nonexistent.csv", "--metric", "a"], "no such file"),
    (["--set", "tnas.foo=1"], "tnas has no setting 'foo'; choose from"),
    (["--set", "tnas.acquisition=thompson"], "unknown acquisition 'thompson'"),
    (["--method", "rs", "--set", "tnas.n_init=3"], "not among --method"),
    (["--set", "tnas_n_init"], "METHOD.KEY=VALUE"),
    (["--set", "tnas.seed=3"], "tnas has no setting 'seed'"),
    (["--method", ""], "--method names no method"),
    (["--threads", "-1"], "--threads must be >= 0"),
    (["--seed-start", "-5"], "--seed-start must be >= 0"),
    (["--task", "nb201/cifar10", "--task-table", str(REPO / "README.md"), "--metric", "a"],
     "give one of --task, --task-table, --dataset"),
    (["--epochs", "0", "--dataset", "digits"], "--epochs must be >= 1"),
    (["--task", "metad2a/0", "--method", "rs", "--budget", "50"], "lower --budget to at most"),
    (["--method", "rs", "--pretrained", "x"], "--pretrained applies to methods that load"),
])
def test_bad_input_is_one_line(args, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        adapt_main(args + ["--output", str(tmp_path / "x.json"), "--quiet"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err


@pytest.mark.parametrize("name", ["x.png", "folder"])
def test_bad_output_path_is_checked_first(tmp_path, capsys, name):
    """An output that would overwrite the JSON with the plot, or a folder, fails in one line
    before any run."""
    (tmp_path / "folder").mkdir()
    with pytest.raises(SystemExit) as e:
        adapt_main(["--method", "rs", "--budget", "3", "--seeds", "1", "--quiet", "--output",
                    str(tmp_path / name)])
    assert e.value.code == 2 and "--output" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder"]


def test_fresh_removes_only_this_commands_runs_after_checking_it(tmp_path, capsys):
    """``--fresh`` with a bad task touches nothing; with a good one it starts this command's
    runs over and keeps other commands' runs in the same output folder."""
    out = tmp_path / "o.json"
    args = ["--space", "transnas_micro", "--budget", "3", "--seeds", "1", "--quiet", "--output",
            str(out)]
    adapt_main(args + ["--method", "rs"])
    adapt_main(args + ["--method", "rea"])
    runs = sorted(p.name for p in (tmp_path / "o.runs").iterdir())
    assert len(runs) == 2
    with pytest.raises(SystemExit):
        adapt_main(args + ["--method", "rs", "--task", "transnas_micro/nope", "--fresh"])
    assert sorted(p.name for p in (tmp_path / "o.runs").iterdir()) == runs
    rea = next(p for p in (tmp_path / "o.runs").iterdir() if p.name.startswith("rea"))
    before = rea.stat().st_mtime_ns
    adapt_main(args + ["--method", "rs", "--fresh"])
    assert sorted(p.name for p in (tmp_path / "o.runs").iterdir()) == runs
    assert rea.stat().st_mtime_ns == before


def test_bad_csv_row_is_named(tmp_path, capsys):
    csv = tmp_path / "bad.csv"
    csv.write_text("arch,acc\n|none~0|+|none~0|none~1|+|none~0|none~1|none~2|,1.0\nnot-an-arch,2\n")
    with pytest.raises(SystemExit):
        adapt_main(["--task-table", str(csv), "--metric", "acc", "--output",
                    str(tmp_path / "x.json"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "row 2" in err


def test_script_help_runs():
    r = subprocess.run([sys.executable, str(REPO / "adapt.py"), "--help"], capture_output=True,
                       text=True, cwd=REPO)
    assert r.returncode == 0 and "--task-table" in r.stdout


def test_adapt_live_dataset(tmp_path):
    """--dataset trains every suggested architecture for real (tiny recipe: 2 classes)."""
    out = tmp_path / "live.json"
    assert adapt_main(["--dataset", "digits:classes=0,1:max_per_class=40:C=4:N=1", "--epochs",
                       "1", "--method", "rs", "--budget", "2", "--seeds", "1", "--output",
                       str(out), "--quiet"]) == 0
    run = json.loads(out.read_text())["results"]["rs"]["runs"][0]
    assert len(run["history"]) == 2
    assert all(0 <= h["value"] <= 100 and h["cost_s"] > 0 for h in run["history"])
    assert "test" in run["best_report"]


def test_adapt_live_batch_trains_on_dask(tmp_path, monkeypatch):
    """--batch-size 2 with --dataset: each batch trains on a local Dask cluster, and the
    accuracies equal serial training of the same architectures."""
    from metanas.benchmarks import live

    started = []
    real = live.local_client

    def spy(n_workers=2, *a, **kw):
        started.append(n_workers)
        return real(n_workers, *a, **kw)

    monkeypatch.setattr(live, "local_client", spy)
    spec = "digits:classes=0,1:max_per_class=30:C=4:N=1"
    out = tmp_path / "dask.json"
    assert adapt_main(["--dataset", spec, "--epochs", "1", "--method", "rs", "--budget", "4",
                       "--batch-size", "2", "--seeds", "1", "--output", str(out),
                       "--quiet"]) == 0
    assert started == [2]  # one cluster, one worker per batch slot
    hist = json.loads(out.read_text())["results"]["rs"]["runs"][0]["history"]
    assert len(hist) == 4
    serial = live.resolve_live("dataset:" + spec + ":epochs=1")
    evs = serial.evaluate([h["arch"] for h in hist])
    assert [e.value for e in evs] == [h["value"] for h in hist]


def test_adapt_live_runs_on_changed_data_are_not_reused(tmp_path, monkeypatch):
    """A live task on a local file: the runs are named by the data's fingerprint, so after
    the file changes the same command trains again instead of reporting the old data's
    accuracies; the run's thread count reaches the training recipe."""
    import numpy as np
    from sklearn.datasets import load_digits

    from metanas.train import trainer

    threads = []
    real = trainer._threads
    monkeypatch.setattr(trainer, "_threads", lambda n: threads.append(n) or real(n))
    d = load_digits()
    keep = d.target < 2
    x, y = (d.images[keep][:60] * 15).astype(np.uint8), d.target[keep][:60]
    data = tmp_path / "mine.npz"
    np.savez(data, x=x, y=y)
    out = tmp_path / "o.json"
    args = ["--dataset", f"{data}:C=4:N=1", "--epochs", "1", "--method", "rs", "--budget", "1",
            "--seeds", "1", "--output", str(out), "--quiet", "--threads", "2"]
    assert adapt_main(args) == 0
    assert threads == [2]
    np.savez(data, x=x, y=np.random.default_rng(0).permutation(y))
    assert adapt_main(args) == 0
    assert len(list((tmp_path / "o.runs").iterdir())) == 2 and threads == [2, 2]


def test_unreachable_scheduler_is_one_quick_line(tmp_path, capsys, monkeypatch):
    import time

    from metanas.benchmarks import live

    monkeypatch.setattr(live, "CONNECT_TIMEOUT", "1s")
    t0 = time.perf_counter()
    with pytest.raises(SystemExit) as e:
        adapt_main(["--dataset", "digits:classes=0,1:max_per_class=30", "--method", "rs",
                    "--budget", "2", "--seeds", "1", "--scheduler", "tcp://127.0.0.1:1",
                    "--output", str(tmp_path / "x.json"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "no Dask scheduler answers" in err
    assert time.perf_counter() - t0 < 20


def test_scheduler_needs_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        adapt_main(["--scheduler", "tcp://127.0.0.1:1", "--output", str(tmp_path / "x.json"),
                    "--quiet"])
    assert "--scheduler applies to --dataset" in capsys.readouterr().err


def test_epochs_needs_dataset(tmp_path, capsys):
    with pytest.raises(SystemExit):
        adapt_main(["--epochs", "3", "--output", str(tmp_path / "x.json"), "--quiet"])
    assert "--dataset" in capsys.readouterr().err


def test_set_passes_strategy_settings(tmp_path):
    """``--set METHOD.KEY=VALUE`` (JSON values) reaches the strategy and is recorded with the
    results; the run differs from the default's."""
    out = tmp_path / "s.json"
    args = ["--space", "transnas_micro", "--method", "rea", "--budget", "8", "--seeds", "1",
            "--quiet", "--output", str(out)]
    adapt_main(args + ["--set", "rea.population_size=3", "--set", "rea.tournament_size=2"])
    res = json.loads(out.read_text())
    s = res["results"]["rea"]["settings"]
    assert s["population_size"] == 3 and s["tournament_size"] == 2
    adapt_main(args + ["--output", str(tmp_path / "d.json")])
    default = json.loads((tmp_path / "d.json").read_text())["results"]["rea"]
    assert default["settings"]["population_size"] == 20
    hist = [h["arch"] for h in res["results"]["rea"]["runs"][0]["history"]]
    assert hist != [h["arch"] for h in default["runs"][0]["history"]]


def test_set_proxybo_table_gets_the_task(tmp_path):
    """``--set proxybo.proxies=table`` (or a list of the table's proxy names) needs the task id:
    the check of the settings builds the strategy with the run's task, as the harness does."""
    out = tmp_path / "p.json"
    for value in ("table", '["synflow","nwot"]'):
        assert adapt_main(["--task", "nb201/cifar10", "--method", "proxybo", "--set",
                           f"proxybo.proxies={value}", "--budget", "5", "--seeds", "1",
                           "--quiet", "--output", str(out)]) == 0
        res = json.loads(out.read_text())
        assert len(res["results"]["proxybo"]["runs"][0]["history"]) == 5


@pytest.mark.parametrize("value,needle", [
    ('{"a":1}', "proxies must map names to callables"),
    ("Table", "unknown proxies string 'Table'; use 'table' or 'live'"),
])
def test_set_bad_proxybo_proxies_is_one_line(value, needle, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        adapt_main(["--method", "proxybo", "--set", f"proxybo.proxies={value}", "--budget", "5",
                    "--seeds", "1", "--quiet", "--output", str(tmp_path / "a.json")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err
    assert not (tmp_path / "a.json").exists()


def test_adapt_arch_column_names_the_tables_architecture_column(tmp_path, capsys):
    """A table whose architecture column is not 'arch': the error names --arch-column, which
    then reads it; the flag is refused without --task-table."""
    t = MetaDataset.load("nb201").table("nb201/cifar10", split="valid").iloc[:40]
    csv = tmp_path / "noarch.csv"
    pd.DataFrame({"architecture": t.index, "acc": t.values}).to_csv(csv, index=False)
    base = ["--task-table", str(csv), "--metric", "acc", "--method", "rs", "--budget", "5",
            "--seeds", "1", "--quiet", "--output", str(tmp_path / "n.json")]
    with pytest.raises(SystemExit) as ei:
        adapt_main(base)
    err = capsys.readouterr().err.strip()
    assert ei.value.code == 2 and "\n" not in err
    assert err.endswith("rename the column to 'arch' or pass --arch-column architecture"), err
    assert adapt_main(base + ["--arch-column", "architecture"]) == 0
    hist = json.loads((tmp_path / "n.json").read_text())["results"]["rs"]["runs"][0]["history"]
    assert len(hist) == 5 and all(h["arch"] in set(t.index) for h in hist)
    with pytest.raises(SystemExit) as ei:
        adapt_main(["--method", "rs", "--arch-column", "architecture", "--quiet",
                    "--output", str(tmp_path / "m.json")])
    err = capsys.readouterr().err.strip()
    assert ei.value.code == 2 and err == "error: --arch-column applies to --task-table only"


def test_adapt_says_what_became_of_saved_runs(tmp_path, capsys):
    """One line before the summary: nothing for new runs, then resumed (also when extended to
    a larger budget: a run checkpoint does not record the budget it began with) / removed."""
    args = ["--task", "transnas_micro/class_scene", "--space", "transnas_micro", "--method",
            "rs", "--seeds", "2", "--output", str(tmp_path / "r.json"), "--quiet"]

    def line_before_table(extra):
        assert adapt_main(args + extra) == 0
        lines = capsys.readouterr().out.splitlines()
        i = next(k for k, x in enumerate(lines) if x.startswith("task "))
        return lines[i - 1] if i else None

    assert line_before_table(["--budget", "4"]) is None
    assert line_before_table(["--budget", "4"]) == \
        "resumed 2 saved runs (8 of 8 evaluations done, 0 new)"
    assert line_before_table(["--budget", "6"]) == \
        "resumed 2 saved runs (8 of 12 evaluations done, 4 new)"
    assert line_before_table(["--budget", "6", "--seeds", "3"]) == \
        "resumed 2 saved runs (12 of 18 evaluations done, 6 new, 1 new run)"
    assert line_before_table(["--budget", "6", "--fresh"]) == \
        "--fresh: removed 2 saved runs; starting over"


def test_adapt_summary_marks_a_missing_report(tmp_path, capsys):
    """class_scene has no test values: the report column says '-' and a note says why."""
    assert adapt_main(["--task", "transnas_micro/class_scene", "--space", "transnas_micro",
                       "--method", "rs", "--budget", "3", "--seeds", "1", "--quiet",
                       "--output", str(tmp_path / "r.json")]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(x for x in lines if x.startswith("rs "))
    assert row.rstrip().endswith(" -")
    assert "(no report metric: transnas_micro/class_scene has no test values)" in lines


def test_list_tasks_short_lines_with_header(capsys):
    assert adapt_main(["--list-tasks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["task", "space", "description"]
    ids = [x.split()[0] for x in lines[1:-1]]
    assert "nb201/cifar100" in ids and "transnas_micro/class_scene" in ids
    assert sum(i.startswith("digits_live/") for i in ids) >= 1
    assert all(len(x) <= 125 and "TrainConfig(" not in x for x in lines[:-1])
    assert lines[-1].startswith("... and ") and "--list-tasks all" in lines[-1]
    assert adapt_main(["--list-tasks", "all"]) == 0
    ids_all = [x.split()[0] for x in capsys.readouterr().out.splitlines()[1:]]
    assert set(ids) < set(ids_all) and any(i.startswith("metad2a/") for i in ids_all)
    assert len(ids_all) == len(MetaDataset.load().task_ids())


def test_unknown_task_points_to_the_full_list(capsys):
    with pytest.raises(SystemExit):
        adapt_main(["--method", "rs", "--task", "nb201/nope", "--quiet"])
    err = capsys.readouterr().err
    assert "python adapt.py --list-tasks all" in err and "tasks in shipped" not in err


def test_user_table_without_report_metric_says_how_to_get_one(tmp_path, capsys):
    """A user table searched without --report-metric: the note names the option (the task
    may well have test values in another column)."""
    space = spaces.get("transnas_micro")
    table = tmp_path / "r.csv"
    table.write_text("arch,acc,test_acc\n" + "".join(
        f"{space.to_str(a)},{i},{i}\n" for i, a in enumerate(space.enumerate()[:30])))
    assert adapt_main(["--space", "transnas_micro", "--task-table", str(table), "--metric",
                       "acc", "--method", "rs", "--seeds", "1", "--budget", "3", "--output",
                       str(tmp_path / "o.json"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "(no report metric: pass --report-metric COLUMN)" in out.splitlines()
