#!/usr/bin/env python
"""How strong should BASE's quick adaptation be? Chosen on BASE's *validation* tasks.

For each adaptation learning rate (``--lrs``; 100 steps of Adam, the shipped default
``AdaptConfig``), adapts the shipped prior ``pretrained/base-nb201`` to each of the prior's
three validation tasks (``metanas.base.meta.draw_tasks``: never trained on, and disjoint from
the held-out tasks that ``benchmarks/base_digits.py`` reports on), derives the argmax cell,
trains it from scratch with the default ``TrainConfig`` and records its validation accuracy,
the cell and the posterior's max probability per edge. Writes ``base_adapt_strength.json`` +
``.png``. Each (learning rate, task) unit is checkpointed as soon as it finishes under
``base_adapt_strength.runs/<key>/`` next to the output (atomic writes; ``<key>`` hashes the prior's
weights fingerprint and the adaptation / training settings), so an interrupted run resumes and
other settings never reuse them.

    python benchmarks/base_adapt_strength.py --lrs 1e-3,1e-2,3e-2
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def plot(rows: list[dict], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    lrs = sorted({r["lr"] for r in rows})
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for t in sorted({r["task"] for r in rows}):
        ax.plot(lrs, [next(r["valid"] for r in rows if r["lr"] == lr and r["task"] == t)
                      for lr in lrs], marker="o", alpha=0.6, label=t.split(":", 1)[1])
    ax.plot(lrs, [np.mean([r["valid"] for r in rows if r["lr"] == lr]) for lr in lrs],
            c="k", lw=2, label="mean")
    ax.set_xscale("log")
    ax.set_xlabel("adaptation learning rate (100 Adam steps)")
    ax.set_ylabel("valid acc of the derived cell (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def parse_lrs(text: str) -> list[float]:
    from metanas.errors import UserInputError

    try:
        lrs = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        lrs = []
    if not lrs or not all(0 < lr < float("inf") for lr in lrs):
        raise UserInputError(f"--lrs {text!r}: give comma-separated positive learning rates, "
                             f"e.g. 1e-3,1e-2,3e-2")
    return lrs


def main(argv=None) -> int:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from metanas.cli import _one_line_errors

    with _one_line_errors():
        return _main(argv)


def _main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lrs", default="1e-3,1e-2,3e-2")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" /
                                        "base_adapt_strength.json"))
    a = p.parse_args(argv)
    lrs = parse_lrs(a.lrs)
    import torch

    torch.set_num_threads(1)
    from metanas import spaces
    from metanas.base.adapt import AdaptConfig, adapt
    from metanas.base.meta import BaseMetaConfig, draw_tasks, load_base
    from metanas.io import atomic_write_json, read_json, weights_fingerprint
    from metanas.train import TrainConfig, build_task, train_and_evaluate

    sp = spaces.get("nb201")
    _, val, _ = draw_tasks(BaseMetaConfig())
    pre = ROOT / "pretrained" / "base-nb201"
    prior, _ = load_base(pre, space="nb201")
    settings = {"weights": weights_fingerprint(pre), "adapt": repr(AdaptConfig()),
                "train": repr(TrainConfig()), "generator_seed": 0}
    key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = out.with_name(out.stem + ".runs") / key
    runs.mkdir(parents=True, exist_ok=True)
    rows = []
    for lr in lrs:
        for t in val:
            path = runs / f"lr{lr!r}__{re.sub(r'[^A-Za-z0-9]+', '_', t).strip('_')}.json"
            row = read_json(path) if path.exists() else None
            if row is None or row.get("lr") != lr or row.get("task") != t:
                d = build_task(t)
                r = adapt(prior, d, AdaptConfig(lr=lr), torch.Generator().manual_seed(0))
                ev = train_and_evaluate(r.arch, sp, d, TrainConfig())
                pmax = torch.softmax(r.logits, -1).max(-1).values
                row = dict(lr=lr, task=t, arch=sp.to_str(r.arch), valid=ev.valid_acc,
                           test=ev.test_acc, adapt_wall_s=r.wall_s,
                           pmax=[round(float(x), 3) for x in pmax])
                atomic_write_json(path, row)
            rows.append(row)
            print(rows[-1], flush=True)
    atomic_write_json(out, {"rows": rows, "val_tasks": val, "settings_key": key,
                            "weights_fingerprint": settings["weights"], "command":
                            "python benchmarks/base_adapt_strength.py " + " ".join(
                                argv if argv is not None else sys.argv[1:])}, indent=1)
    plot(rows, out.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
