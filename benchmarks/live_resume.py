#!/usr/bin/env python
"""Kill-and-resume demonstration of the meta-dataset builder (real SIGKILLs).

Builds the same small digits collection twice with ``meta_datasets/build.py`` (the default
recipe, serial): once uninterrupted, once killed with SIGKILL ``--kills`` times (each time
after a few more finished evaluations) and rerun with the same command until it completes.
Checks and reports: every shard on disk after each kill parses (no partial write), no
finished evaluation is redone (shard modification times unchanged by the reruns), and the
final ``triples.parquet`` / ``tasks.parquet`` equal the uninterrupted build's (all values,
the measured wall time ``cost_s`` aside). Writes ``live_resume.json`` + ``.png``.

    python benchmarks/live_resume.py --n-tasks 2 --archs-per-task 10 --kills 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "meta_datasets" / "build.py"


def _frames(out: Path):
    import numpy as np

    from metanas.meta_dataset import MetaDataset

    md = MetaDataset.load(out)
    t = md.triples.copy()
    t.loc[t["metric"] == "cost_s", "value"] = 0.0
    k = md.tasks.copy()
    k["sample_features"] = [np.asarray([[np.asarray(s, np.float32) for s in c] for c in f])
                            .tobytes() for f in k["sample_features"]]
    k["class_ids"] = [tuple(v) for v in k["class_ids"]]
    return t, k


def main(argv=None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-tasks", type=int, default=2)
    p.add_argument("--archs-per-task", type=int, default=10)
    p.add_argument("--kills", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "live_resume.json"))
    a = p.parse_args(argv)
    from metanas.errors import UserInputError

    for name, v, lo in (("--n-tasks", a.n_tasks, 1), ("--archs-per-task", a.archs_per_task, 1),
                        ("--kills", a.kills, 0)):
        if v < lo:
            raise UserInputError(f"{name} must be >= {lo}, got {v}")
    import pandas as pd

    total = a.n_tasks * a.archs_per_task
    args = ["--dataset", "digits", "--n-tasks", str(a.n_tasks), "--ways", "5",
            "--archs-per-task", str(a.archs_per_task), "--collection", "resume_demo",
            "--no-progress"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    tmp = Path(tempfile.mkdtemp(prefix="metanas-resume-"))
    rec: dict = {"n_evaluations": total, "kills": [], "command": "python benchmarks/"
                 "live_resume.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    try:
        ref = tmp / "uninterrupted"
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(BUILD), "--out", str(ref)] + args, env=env,
                       check=True, capture_output=True)
        rec["uninterrupted_wall_s"] = time.perf_counter() - t0
        out = tmp / "killed"
        cmd = [sys.executable, str(BUILD), "--out", str(out)] + args
        evals = out / ".build" / "evals"
        t0 = time.perf_counter()
        mtimes: dict = {}
        for i in range(a.kills):
            target = max(1, round(total * (i + 1) / (a.kills + 1)))
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
            while proc.poll() is None:
                n = len(list(evals.rglob("*.json"))) if evals.is_dir() else 0
                if n >= target:
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.01)
            proc.wait()
            shards = sorted(evals.rglob("*.json"))
            parsed = sum(1 for f in shards if json.loads(f.read_text()) is not None)
            changed = sum(1 for f, m in mtimes.items() if f.stat().st_mtime_ns != m)
            mtimes.update({f: f.stat().st_mtime_ns for f in shards if f not in mtimes})
            rec["kills"].append({"returncode": proc.returncode, "shards_on_disk": len(shards),
                                 "all_shards_parse": parsed == len(shards),
                                 "earlier_shards_rewritten": changed})
        final = subprocess.run(cmd, env=env, capture_output=True, text=True)
        rec["resumed_wall_s"] = time.perf_counter() - t0
        rec["final_returncode"] = final.returncode
        rec["shards_rewritten_by_reruns"] = sum(1 for f, m in mtimes.items()
                                                if f.stat().st_mtime_ns != m)
        t_ref, k_ref = _frames(ref)
        t_out, k_out = _frames(out)
        try:
            pd.testing.assert_frame_equal(t_ref, t_out)
            pd.testing.assert_frame_equal(k_ref, k_out)
            rec["final_equals_uninterrupted"] = True
        except AssertionError as exc:
            rec["final_equals_uninterrupted"] = False
            rec["difference"] = str(exc)[:2000]
        rec["triples"] = len(t_out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out_path = Path(a.out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp_json = out_path.with_suffix(".tmp")
    tmp_json.write_text(json.dumps(rec, indent=1))
    os.replace(tmp_json, out_path)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    xs = list(range(1, len(rec["kills"]) + 1))
    ax.step([0] + xs + [len(xs) + 1], [0] + [k["shards_on_disk"] for k in rec["kills"]]
            + [total], where="post", marker="o")
    ax.axhline(total, ls=":", c="gray")
    ax.set_xlabel("run (each ended by SIGKILL, last one completes)")
    ax.set_ylabel("finished evaluations on disk")
    ax.set_title(f"resumed build equals uninterrupted: {rec['final_equals_uninterrupted']}")
    fig.tight_layout()
    fig.savefig(out_path.with_suffix(".png"), dpi=110)
    print(json.dumps(rec, indent=1))
    return 0 if rec["final_equals_uninterrupted"] and rec["final_returncode"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
