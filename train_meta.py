#!/usr/bin/env python
"""Meta-train a TNAS deep-kernel GP checkpoint (thin CLI over ``metanas.meta.tnas_train``).

    python train_meta.py --space nb201 --out pretrained/tnas-nb201
    python train_meta.py --space transnas_micro --exclude-task transnas_micro/jigsaw --out DIR
    python train_meta.py --space nb201 --out DIR --resume            # continue an interrupted run

``--tasks T1,T2`` (or ``all``, the default) picks the meta-training tasks of the space,
``--exclude-task`` (repeatable, or comma-separated) removes some (leave-one-task-out).
"""

from __future__ import annotations

import argparse
import sys


def _split(values):
    out = []
    for v in values or []:
        out += [x.strip() for x in v.split(",") if x.strip()]
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="train_meta.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", required=True, help="search space id (nb201, transnas_micro)")
    p.add_argument("--method", default="tnas", choices=["tnas", "base"],
                   help="meta-learned surrogate (default tnas)")
    p.add_argument("--tasks", default="all", help="comma-separated task ids, or 'all'")
    p.add_argument("--exclude-task", action="append", default=[], metavar="T",
                   help="task to leave out (repeatable / comma-separated)")
    p.add_argument("--val-tasks", default="", help="comma-separated tasks held out for "
                   "validation (default: held-out archs of the training tasks)")
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--iters", type=int, default=600, help="Reptile outer iterations (max)")
    p.add_argument("--resume", action="store_true", help="continue from --out's last state")
    p.add_argument("--meta-dataset", default=None,
                   help="meta-dataset collection name or folder (default: all shipped)")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--inner-steps", type=int, default=5)
    p.add_argument("--inner-lr", type=float, default=1e-2)
    p.add_argument("--outer-lr", type=float, default=0.5)
    p.add_argument("--outer-lr-final", type=float, default=0.1)
    p.add_argument("--val-every", type=int, default=50)
    p.add_argument("--patience", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="after training, upload --out as Hub model repo REPO_ID")
    a = p.parse_args(argv)
    if a.method == "base":
        print("train_meta.py: error: --method base is not available yet: see issue BASE",
              file=sys.stderr)
        return 2
    import torch

    from metanas.errors import UserInputError
    from metanas.meta.tnas_train import TrainConfig, command_line, train

    torch.set_num_threads(max(1, a.threads))
    tasks = None if a.tasks.strip().lower() in ("all", "") else _split([a.tasks])
    cfg = TrainConfig(space=a.space, tasks=tasks, exclude=_split(a.exclude_task),
                      val_tasks=_split([a.val_tasks]), method=a.method, iters=a.iters,
                      inner_steps=a.inner_steps, inner_lr=a.inner_lr, outer_lr=a.outer_lr,
                      outer_lr_final=a.outer_lr_final, batch_size=a.batch_size,
                      val_every=a.val_every, patience=a.patience, seed=a.seed,
                      meta_dataset=a.meta_dataset)
    cmd = command_line(["train_meta.py"] + list(sys.argv[1:] if argv is None else argv))
    try:
        st = train(cfg, a.out, resume=a.resume, progress=not a.no_progress, command=cmd)
        from metanas.hub import push_to_hub
        url = push_to_hub(a.out, a.push_to_hub) if a.push_to_hub else None
    except (UserInputError, ValueError, KeyError, FileNotFoundError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"train_meta.py: error: {msg}", file=sys.stderr)
        return 2
    bm = st.get("best_metrics") or {}
    print(f"wrote {a.out}: {st['iter']} iterations, best iter {st['best_iter']}, "
          f"validation Spearman {bm.get('spearman', float('nan')):.3f}, "
          f"wall {st['wall_s']:.0f} s" + (f"; pushed to {url}" if url else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
