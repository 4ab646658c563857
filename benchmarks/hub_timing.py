#!/usr/bin/env python
"""Hub resolution timings: cold start to the first prediction with the shipped default, and how
long an unreachable Hub id takes to fail.

1. **Cold start** (a new Python process each time): ``load_pretrained("metanas/tnas-<space>")``
   (resolves to the shipped ``pretrained/tnas-<space>/``, validated load), condition on 20
   observations and predict every cell of the space (15625 for NB201). Timed with
   ``HF_HUB_OFFLINE=1`` and with it unset (the default run must not wait on the network
   either way). Reported: process wall time from spawn to the first prediction, and its
   phases measured inside the process (imports, resolve + load, first prediction).
2. **Unreachable Hub**: ``load_pretrained("org/not-reachable")`` with ``HF_HUB_OFFLINE`` unset
   and ``HF_ENDPOINT`` pointing at (a) a closed loopback port, (b) a loopback server that
   accepts connections and never answers, (c) the default endpoint (huggingface.co; no DNS /
   network on the measuring machine). Reported: the time of the failing call (inside the
   process) and the one-line message.

Median (min, max) over ``--reps`` processes, one torch thread. Writes
``benchmarks/results/hub_timing.json`` and ``.png``.

    python benchmarks/hub_timing.py --reps 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COLD = r"""
import time, json, sys
t0 = time.perf_counter()
import torch
torch.set_num_threads(1)
from metanas import hub, spaces
import metanas.surrogates.deep_kernel  # gpytorch / botorch imports belong to "import"
t1 = time.perf_counter()
space = spaces.get(sys.argv[1])
model = hub.load_pretrained(f"metanas/tnas-{space.name}", kind="tnas", space=space.name)
t2 = time.perf_counter()
allx = torch.as_tensor(space.all_array(), dtype=torch.float64)
g = torch.Generator().manual_seed(0)
idx = torch.randperm(len(allx), generator=g)[:20]
model.set_task(allx[idx], torch.randn(20, generator=g, dtype=torch.float64))
mean, var = model.predict(allx)
t3 = time.perf_counter()
print("RESULT " + json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "predict_s": t3 - t2,
      "n_predicted": int(mean.numel()), "folder": str(hub.resolve_pretrained(
      f"metanas/tnas-{space.name}", kind="tnas"))}), flush=True)
"""

FAIL = r"""
import time, json
from metanas import hub
t0 = time.perf_counter()
try:
    hub.load_pretrained("org/not-reachable", kind="tnas")
    msg = "loaded?!"
except Exception as exc:
    msg = f"{type(exc).__name__}: {exc}"
print("RESULT " + json.dumps({"fail_s": time.perf_counter() - t0, "message": msg}), flush=True)
"""


def _env(**kw) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env["HF_HOME"] = str(Path(os.environ.get("TMPDIR", "/tmp")) / "hub_timing_hf_home")
    env["PYTHONWARNINGS"] = "ignore"
    for k, v in kw.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = v
    return env


def _run(code: str, args: list[str], env: dict) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                       text=True, timeout=300, cwd=ROOT)
    wall = time.perf_counter() - t0
    line = next((x for x in r.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"child failed ({r.returncode}): {r.stderr[-1500:]}")
    out = json.loads(line[7:])
    out["process_wall_s"] = wall
    return out


def _stats(xs: list[float]) -> dict:
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "values": xs}


class Silent:
    """Loopback server that accepts connections and never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns: list = []
        self.stop = threading.Event()
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def _loop(self) -> None:
        while not self.stop.is_set():
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                pass

    def close(self) -> None:
        self.stop.set()
        self.th.join(5)
        for c in self.conns:
            c.close()
        self.sock.close()


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> int:
    from metanas.errors import UserInputError
    from metanas.io import atomic_write_json

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--space", default="nb201")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "hub_timing.json"))
    a = p.parse_args(argv)
    if a.reps < 1:
        raise UserInputError(f"--reps must be >= 1, got {a.reps}")
    shipped = sorted(d.name[len("tnas-"):] for d in (ROOT / "pretrained").glob("tnas-*")
                     if d.is_dir())
    if a.space not in shipped:
        raise UserInputError(f"--space {a.space!r}: no shipped pretrained/tnas-{a.space}; "
                             f"choose one of {', '.join(shipped) or '(none shipped)'}")

    res: dict = {"space": a.space, "reps": a.reps, "python": platform.python_version(),
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared, loaded)",
                 "cold_start": {}, "unreachable": {}}
    for label, offline in (("HF_HUB_OFFLINE=1", "1"), ("HF_HUB_OFFLINE unset", None)):
        runs = [_run(COLD, [a.space], _env(HF_HUB_OFFLINE=offline)) for _ in range(a.reps)]
        res["cold_start"][label] = {
            k: _stats([r[k] for r in runs]) for k in ("process_wall_s", "import_s", "load_s",
                                                      "predict_s")}
        res["cold_start"][label]["folder"] = runs[0]["folder"]
        res["cold_start"][label]["n_predicted"] = runs[0]["n_predicted"]
        print(f"cold start ({label}): first prediction after "
              f"{res['cold_start'][label]['process_wall_s']['median']:.2f} s (process wall)",
              flush=True)

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    silent = Silent()
    try:
        cases = {"closed loopback port": f"http://127.0.0.1:{closed}",
                 "silent loopback server": f"http://127.0.0.1:{silent.port}",
                 "default endpoint (no network)": None}
        for label, ep in cases.items():
            runs = [_run(FAIL, [], _env(HF_ENDPOINT=ep, HF_HUB_OFFLINE=None))
                    for _ in range(a.reps)]
            res["unreachable"][label] = {"fail_s": _stats([r["fail_s"] for r in runs]),
                                         "process_wall_s": _stats([r["process_wall_s"]
                                                                   for r in runs]),
                                         "message": runs[0]["message"]}
            print(f"unreachable ({label}): failed after "
                  f"{res['unreachable'][label]['fail_s']['median']:.3f} s: "
                  f"{runs[0]['message']}", flush=True)
    finally:
        silent.close()
    # the same unknown id with HF_HUB_OFFLINE=1 (no network attempt at all)
    runs = [_run(FAIL, [], _env(HF_HUB_OFFLINE="1")) for _ in range(a.reps)]
    res["unreachable"]["HF_HUB_OFFLINE=1"] = {"fail_s": _stats([r["fail_s"] for r in runs]),
                                             "process_wall_s": _stats([r["process_wall_s"]
                                                                       for r in runs]),
                                             "message": runs[0]["message"]}

    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, res, indent=1)
    _plot(res, out.with_suffix(".png"))
    print(f"wrote {out} and {out.with_suffix('.png')}")
    return 0


def _plot(res: dict, png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = list(res["cold_start"])
    bottoms = [0.0] * len(labels)
    for phase, color in (("import_s", "#9ecae1"), ("load_s", "#3182bd"),
                         ("predict_s", "#08519c")):
        vals = [res["cold_start"][k][phase]["median"] for k in labels]
        ax1.bar(labels, vals, bottom=bottoms, color=color, label=phase[:-2])
        bottoms = [b + v for b, v in zip(bottoms, vals)]
    walls = [res["cold_start"][k]["process_wall_s"]["median"] for k in labels]
    ax1.scatter(labels, walls, color="k", zorder=3, label="process wall (spawn -> prediction)")
    for x, w in zip(labels, walls):
        ax1.annotate(f"{w:.1f} s", (x, w), textcoords="offset points", xytext=(0, 4),
                     ha="center")
    ax1.set_ylim(0, max(walls) * 1.45)
    ax1.set_ylabel("seconds (median)")
    ax1.set_title(f"cold start to first prediction, shipped metanas/tnas-{res['space']}",
                  fontsize=10)
    ax1.legend(fontsize=7, loc="upper right", ncol=2)
    ul = list(res["unreachable"])
    uv = [res["unreachable"][k]["fail_s"]["median"] for k in ul]
    ax2.barh(ul, uv, color="#de2d26")
    for y, v in zip(ul, uv):
        ax2.annotate(f"{v:.2f} s", (v, y), textcoords="offset points", xytext=(4, -3))
    ax2.axvline(2.0, color="k", ls="--", lw=1)
    ax2.text(2.0, -0.6, " 2 s target", fontsize=8)
    ax2.set_xlabel("seconds until the one-line error (median)")
    ax2.set_title("unreachable Hub id 'org/not-reachable'")
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
