"""Meta-dataset builder: changed data is refused (never mixed), --fresh, one-line errors for
bad options / unloadable data / unreachable scheduler / Ctrl-C, the --help program name."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from metanas.errors import UserInputError
from metanas.io import read_json
from metanas.train import TrainConfig
from metanas.train.build import (BuildPlan, ShardStore, build, main, make_plan, run_job,
                                 tasks_from_datasets)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "meta_datasets" / "build.py"
TINY = ["--archs-per-task", "2", "--epochs", "1", "--C", "4", "--N", "1", "--batch-size", "16",
        "--no-progress"]


def _npz(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 12)
    x = (rng.random((len(y), 8, 8)) * 255).astype(np.uint8)
    np.savez(path, x=x, y=rng.permutation(y) if seed else y)
    return path


def _change(path: Path) -> None:
    """Rewrite ``path`` with shuffled labels (and a later mtime, whatever the clock)."""
    st = path.stat()
    _npz(path, seed=1)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def _one_line_error(capsys, rc: int) -> str:
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("error: ")
    return err


# ----------------------------------------------------------------------- changed data
def test_changed_data_is_refused_not_mixed(tmp_path, capsys):
    data = _npz(tmp_path / "b.npz")
    out = tmp_path / "out"
    cmd = ["--dataset", str(data), "--out", str(out)] + TINY
    assert main(cmd) == 0
    plan_json = read_json(out / ".build" / "plan.json")
    assert plan_json["tasks"][0]["data"]  # the data fingerprint is recorded
    evals = sorted((out / ".build" / "evals").rglob("*.json"))
    assert len(evals) == 2
    evals[1].unlink()  # as if killed after one evaluation
    old = evals[0].read_bytes()
    _change(data)
    err = _one_line_error(capsys, main(cmd))
    assert "data of task b changed since this build started" in err and str(data) in err
    assert "--fresh" in err
    assert not evals[1].exists() and evals[0].read_bytes() == old  # nothing trained on it
    # the same check in a worker (data changed during a run)
    plan = BuildPlan.from_json(plan_json)
    with pytest.raises(UserInputError, match="changed since"):
        run_job(plan.tasks[0], plan.space, plan.archs[0][0], plan.train,
                fingerprint=plan.fingerprint(0))
    # --fresh starts over on the new data: equal to a clean build of it
    assert main(cmd + ["--fresh"]) == 0
    ref = tmp_path / "ref"
    assert main(["--dataset", str(data), "--out", str(ref), "--collection", "out"] + TINY) == 0
    got = {f.name: json.loads(f.read_text()) for f in (out / ".build" / "evals").rglob("*.json")}
    want = {f.name: json.loads(f.read_text()) for f in (ref / ".build" / "evals").rglob("*.json")}
    for d in (*got.values(), *want.values()):
        d.pop("wall_s")
    assert got == want and len(got) == 2
    # a built-in source has no fingerprint: its plan.json has no "data"
    plan = make_plan("d", tasks_from_datasets(["digits"], None, None), archs_per_task=1)
    assert plan.fingerprints == (None,) and "data" not in plan.to_json()["tasks"][0]
    assert BuildPlan.from_json(plan.to_json()) == plan


def test_old_plan_without_fingerprints_still_resumes(tmp_path):
    data = _npz(tmp_path / "b.npz")
    specs = tasks_from_datasets([str(data)], None, None)
    plan = make_plan("old", specs, archs_per_task=2,
                     train=TrainConfig(C=4, N=1, epochs=1, batch_size=16))
    out = tmp_path / "old"
    build(plan, out, progress=False, consolidate_at_end=False)
    store = ShardStore(out)
    saved = read_json(store.plan_file)
    for t in saved["tasks"]:
        t.pop("data")
    store.plan_file.write_text(json.dumps(saved))  # as written before fingerprints
    assert BuildPlan.from_json(saved).fingerprint(0) is None  # unknown
    build(plan, out, progress=False)  # resumes (nothing to redo) and consolidates
    assert (out / "triples.parquet").is_file()
    assert read_json(store.plan_file)["tasks"][0]["data"] == plan.fingerprint(0)  # recorded now


def test_fresh_removes_only_the_builders_files(tmp_path, capsys):
    out, work = tmp_path / "out", tmp_path / "work"
    out.mkdir()
    work.mkdir()
    (out / "notes.txt").write_text("mine")
    (work / "other.txt").write_text("mine")
    cmd = ["--task", "digits:classes=0,1", "--out", str(out), "--work-dir", str(work)] + TINY
    assert main(cmd) == 0
    assert (work / "plan.json").is_file() and (out / "README.md").is_file()
    assert main(cmd[:-1] + ["--epochs", "2", "--no-progress"]) == 2  # another plan: refused
    assert "--fresh" in capsys.readouterr().err
    assert main(cmd[:-1] + ["--epochs", "2", "--no-progress", "--fresh"]) == 0
    assert read_json(work / "plan.json")["train"]["epochs"] == 2
    assert (out / "notes.txt").read_text() == "mine" and (work / "other.txt").read_text() == "mine"
    # a folder that is not a build: --fresh removes nothing there
    other = tmp_path / "other"
    other.mkdir()
    (other / "README.md").write_text("my own card")
    assert ShardStore(other).remove() == []
    assert (other / "README.md").read_text() == "my own card"


# ----------------------------------------------------------------------- bad options
BASE = ["--task", "digits:classes=0,1"] + TINY


@pytest.mark.parametrize("extra, says", [
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--C", "0"], "--C must be >= 1"),
    (["--N", "-1"], "--N must be >= 0"),
    (["--batch-size", "0"], "--batch-size must be >= 1"),
    (["--resolution", "0"], "--resolution must be >= 1"),
    (["--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--lr", "nan"], "--lr must be > 0"),
    (["--n-per-class", "0"], "--n-per-class must be >= 1"),
    (["--feature-seed", "-1"], "--feature-seed must be >= 0"),
    (["--split", "a,b,c"], "give three fractions"),
    (["--space", "foo"], "--space foo: unknown search space"),
    (["--device", "bogus"], "--device bogus: not a torch device"),
    (["--workers", "-1"], "--workers must be >= 0"),
    (["--archs-per-task", "0"], "--archs-per-task must be >= 1"),
    (["--ways", "2"], "--ways applies to --dataset"),
    (["--n-tasks", "3"], "--n-tasks 3 needs --ways"),
    (["--dataset", "digits", "--n-tasks", "3"], "--n-tasks 3 needs --ways"),
    (["--dataset", "digits", "--ways", "2", "--n-tasks", "0"], "--n-tasks must be >= 1"),
    (["--partial"], "--partial applies to --consolidate-only"),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "not both"),
])
def test_bad_options_are_one_line_errors(tmp_path, capsys, extra, says):
    out = tmp_path / "x"
    err = _one_line_error(capsys, main(BASE + extra + ["--out", str(out)]))
    assert says in err
    assert not out.exists()  # checked before anything is written


def test_cuda_without_cuda_is_one_line(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    err = _one_line_error(capsys, main(BASE + ["--device", "cuda", "--out", str(tmp_path / "x")]))
    assert "--device cuda" in err and "no CUDA device" in err


def test_library_counts_are_checked(tmp_path):
    with pytest.raises(UserInputError, match="--n-tasks must be >= 1"):
        tasks_from_datasets(["digits"], 0, 2)
    with pytest.raises(UserInputError, match="needs --ways"):
        tasks_from_datasets(["digits"], 3, None)
    plan = make_plan("w", tasks_from_datasets(["digits:classes=0,1"], None, None),
                     archs_per_task=1)
    with pytest.raises(UserInputError, match="--workers must be >= 0"):
        build(plan, tmp_path / "w", workers=-1, progress=False)  # (was a hang)
    assert not (tmp_path / "w").exists()


def test_data_that_does_not_load_is_one_line(tmp_path, capsys):
    bad = tmp_path / "trunc.npz"
    bad.write_bytes(_npz(tmp_path / "good.npz").read_bytes()[:300])  # a truncated archive
    for extra in ([], ["--ways", "2", "--n-tasks", "1"]):
        err = _one_line_error(capsys, main(["--dataset", str(bad), "--out",
                                            str(tmp_path / "x")] + TINY + extra))
        assert "could not be loaded" in err and str(bad) in err


def test_unreachable_scheduler_is_one_line_and_quick(tmp_path, capsys):
    t0 = time.monotonic()
    err = _one_line_error(capsys, main(BASE + ["--scheduler", "tcp://127.0.0.1:1",
                                               "--out", str(tmp_path / "x")]))
    assert time.monotonic() - t0 < 25
    assert "tcp://127.0.0.1:1" in err and "dask scheduler" in err


# ----------------------------------------------------------------------- the script
def test_ctrl_c_is_one_line_and_resumable(tmp_path):
    out = tmp_path / "int"
    cmd = [sys.executable, str(SCRIPT), "--out", str(out), "--task", "digits:classes=0,1,2,3,4",
           "--archs-per-task", "12", "--epochs", "12", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    evals = out / ".build" / "evals"
    deadline = time.monotonic() + 120
    try:
        while not (evals.is_dir() and any(evals.rglob("*.json"))):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.monotonic() < deadline, "builder produced no shard"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert "interrupted" in err and "rerun the same command to resume" in err
    assert not (out / "triples.parquet").exists()


def test_help_names_the_script_run():
    r = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"usage: python {SCRIPT} "), r.stdout[:200]
    assert "--fresh" in r.stdout
