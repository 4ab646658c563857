#!/usr/bin/env python
"""Meta-train a TNAS deep-kernel GP or a BASE prior (thin CLI over ``metanas.meta.tnas_train``
and ``metanas.base.meta``).

    python train_meta.py --space nb201 --exclude-source digits_live --out pretrained/tnas-nb201
    python train_meta.py --method base --space nb201 --out pretrained/base-nb201
    python train_meta.py --space transnas_micro --exclude-task transnas_micro/jigsaw --out DIR
    python train_meta.py --space nb201 --out DIR --resume            # continue an interrupted run

Rerunning a command continues the run saved in ``--out`` (same settings; only ``--iters`` may
grow, a smaller one is refused); a saved run with other settings is refused. ``--resume``
insists on a saved run, ``--fresh`` starts over. The last line says whether the run was
trained, continued or already complete.

``--tasks T1,T2`` (or ``all``, the default) picks the meta-training tasks of the space,
``--exclude-task`` (repeatable, or comma-separated) removes some (leave-one-task-out).

``--method base``: meta-trains BASE on image classification tasks: by default ``--ways``-class
subsets of ``--source`` (digits), drawn with ``--task-seed`` after holding out ``--n-heldout``
evaluation and ``--n-val`` validation subsets (both recorded in the checkpoint); ``--tasks``
takes ';'-separated task ids instead (e.g. ``"digits:classes=0,1,2,3,4;/data/flowers"``).
"""

from __future__ import annotations

import argparse
import sys


def _error(exc: Exception) -> int:
    """Print ``exc`` as one line (a ``KeyError``'s message without its quotes); status 2."""
    text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    msg = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    print(f"train_meta.py: error: {msg}", file=sys.stderr)
    return 2


def _recipe_args(argv) -> list[str]:
    """The command-line arguments that define the checkpoint (for its card's rebuild command):
    all but ``--resume`` / ``--fresh``, which only say how this invocation got there."""
    args = list(sys.argv[1:] if argv is None else argv)
    return [x for x in args if x not in ("--resume", "--fresh")]


def _push_problem(repo_id: str) -> str | None:
    """Why ``--push-to-hub repo_id`` cannot work, checked before training (``None``: fine)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    from metanas.hub import hub_offline

    if hub_offline():
        return (f"HF_HUB_OFFLINE is set: cannot push to {repo_id!r}; unset it, or drop "
                f"--push-to-hub and push the folder later")
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        return f"--push-to-hub {repo_id!r} is not a Hub repo id; use NAME or OWNER/NAME"
    return None


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
    p.add_argument("--exclude-source", action="append", default=[], metavar="COLLECTION",
                   help="leave out every task of a meta-dataset collection (repeatable / "
                        "comma-separated; the shipped NB201 checkpoint: digits_live)")
    p.add_argument("--val-tasks", default="", help="comma-separated tasks held out for "
                   "validation (default: held-out archs of the training tasks)")
    p.add_argument("--out", required=True, help="checkpoint folder")
    p.add_argument("--iters", type=int, default=None,
                   help="Reptile outer iterations (max; default tnas 600, base 200)")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--resume", action="store_true",
                      help="continue the run saved in --out (an error when there is none; "
                           "without the flag a run with the same settings is also continued)")
    when.add_argument("--fresh", action="store_true",
                      help="start over, discarding the run saved in --out")
    p.add_argument("--meta-dataset", default=None,
                   help="meta-dataset: collection name, folder, or Hub dataset id org/name "
                        "(default: all shipped)")
    # None: the method's own default (_fill_defaults), so a typed value is never replaced
    p.add_argument("--batch-size", type=int, default=None,
                   help="mini-batch size: tnas archs per task (default 100), base images of "
                        "the ELBO (default 64)")
    p.add_argument("--inner-steps", type=int, default=None,
                   help="inner-loop steps (default tnas 5, base 20)")
    p.add_argument("--inner-lr", type=float, default=None,
                   help="inner-loop Adam rate (default tnas 0.01, base 0.001)")
    p.add_argument("--outer-lr", type=float, default=None,
                   help="Reptile outer rate (default 0.5 for both)")
    p.add_argument("--outer-lr-final", type=float, default=None,
                   help="outer rate at the last iteration (default 0.1 for both)")
    p.add_argument("--val-every", type=int, default=None,
                   help="iterations between validations (default tnas 50, base 25)")
    p.add_argument("--patience", type=int, default=None,
                   help="validations without improvement before stopping, 0: never "
                        "(default tnas 5, base 4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--balance-sources", action="store_true",
                   help="tnas: draw large tasks by source collection first (e.g. nb201 vs "
                        "digits_live), then within it")
    p.add_argument("--target-transform", choices=("standardise", "copula"), default=None,
                   help="tnas: per-task targets standardised (default) or replaced by their "
                        "normal scores first (copula)")
    p.add_argument("--top-share", type=float, default=None,
                   help="tnas: share of each mini-batch drawn from the task's top "
                        "--top-quantile archs (default 0: uniform mini-batches)")
    p.add_argument("--top-quantile", type=float, default=None,
                   help="tnas: the top of a task for --top-share (default 0.05)")
    p.add_argument("--inner-optimizer", choices=("adam", "sgd"), default=None,
                   help="tnas: inner-loop optimiser, a fresh state per task (default adam, as "
                        "the shipped checkpoints; the paper's Algorithm 1 writes sgd)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    bar = p.add_mutually_exclusive_group()
    bar.add_argument("--no-progress", action="store_true", help="no progress bar")
    bar.add_argument("--progress", action="store_true",
                     help="draw the progress bar even when stderr is not a terminal (default: "
                          "only on a terminal)")
    p.add_argument("--push-to-hub", metavar="REPO_ID", default=None,
                   help="after training, upload --out as Hub model repo REPO_ID")
    b = p.add_argument_group("--method base")
    b.add_argument("--source", default="digits", help="image source of the drawn tasks")
    b.add_argument("--ways", type=int, default=5, help="classes per drawn task (default 5)")
    b.add_argument("--n-tasks", type=int, default=40, help="drawn training tasks (default 40)")
    b.add_argument("--n-heldout", type=int, default=5, help="held-out evaluation tasks (5)")
    b.add_argument("--n-val", type=int, default=3, help="validation tasks (default 3)")
    b.add_argument("--task-seed", type=int, default=0, help="seed of the task draw (0)")
    b.add_argument("--tasks-per-iter", type=int, default=2, help="tasks per outer step C (2)")
    b.add_argument("--val-steps", type=int, default=20, help="adaptation steps in validation")
    a = p.parse_args(argv)
    a.given = {k for k in _METHOD_OPTIONS + _TNAS_ONLY if getattr(a, k) is not None}
    if a.balance_sources:
        a.given.add("balance_sources")
    a.resume = True if a.resume else (False if a.fresh else "auto")
    # a bar only on a terminal (piped output would fill with its redraws), unless forced
    a.show_progress = a.progress or (not a.no_progress and sys.stderr.isatty())
    _announce_resume()
    if a.push_to_hub:
        err = _push_problem(a.push_to_hub)
        if err:
            print(f"train_meta.py: error: {err}", file=sys.stderr)
            return 2
    if a.method == "base":
        return _main_base(a, p, argv)
    import torch

    from metanas.errors import UserInputError
    from metanas.meta.tnas_train import TrainConfig, command_line, train

    torch.set_num_threads(max(1, a.threads))
    _fill_defaults(a, TrainConfig(), _METHOD_OPTIONS + _TNAS_ONLY)
    tasks = None if a.tasks.strip().lower() in ("all", "") else _split([a.tasks])
    cfg = TrainConfig(space=a.space, tasks=tasks, exclude=_split(a.exclude_task),
                      exclude_sources=_split(a.exclude_source),
                      val_tasks=_split([a.val_tasks]), method=a.method, iters=a.iters,
                      inner_steps=a.inner_steps, inner_lr=a.inner_lr, outer_lr=a.outer_lr,
                      outer_lr_final=a.outer_lr_final, batch_size=a.batch_size,
                      val_every=a.val_every, patience=a.patience, seed=a.seed,
                      balance_sources=a.balance_sources, meta_dataset=a.meta_dataset,
                      target_transform=a.target_transform, top_share=a.top_share,
                      top_quantile=a.top_quantile, inner_optimizer=a.inner_optimizer)
    cmd = command_line(["train_meta.py"] + _recipe_args(argv))
    try:
        st = train(cfg, a.out, resume=a.resume, progress=a.show_progress, command=cmd)
        from metanas.hub import push_to_hub
        url = push_to_hub(a.out, a.push_to_hub) if a.push_to_hub else None
    except (UserInputError, ValueError, KeyError, FileNotFoundError) as exc:
        return _error(exc)
    bm = st.get("best_metrics") or {}
    rho = f"{bm['spearman']:.3f}" if "spearman" in bm else "n/a (no validation set)"
    print(_final_line(a.out, st, f"validation Spearman {rho}", url))
    return 0


def _announce_resume() -> None:
    """Print the trainers' one line ``continuing <out> from iteration A to N`` (their
    checkpoint logger's INFO) to stderr, once."""
    import logging

    class _ToStderr(logging.Handler):  # the sys.stderr of the moment (tests swap it)
        def emit(self, record):
            print(record.getMessage(), file=sys.stderr)

    log = logging.getLogger("metanas.meta.checkpoint")
    if not any(type(h).__name__ == "_ToStderr" for h in log.handlers):
        log.addHandler(_ToStderr(logging.INFO))
    log.setLevel(logging.INFO)


def _final_line(out, st: dict, val: str, url: str | None) -> str:
    """The last line: what this invocation did (trained, continued, or nothing: complete)."""
    n = f"{st['iter']} iteration{'s' * (st['iter'] != 1)}"
    push = f"; pushed to {url}" if url else ""
    outcome = st.get("outcome")
    if outcome == "complete":
        early = " (stopped early)" if st.get("stopped_early") else ""
        return f"{out} is already complete at {n}{early}; nothing to do{push}"
    head = (f"continued {out} from {st.get('resumed_from')} to {n}"
            if outcome == "continued" else f"trained {out}: {n}")
    return f"{head}, best iter {st['best_iter']}, {val}, wall {st['wall_s']:.0f} s{push}"


# options whose default depends on --method (argparse default None; filled by _fill_defaults)
_METHOD_OPTIONS = ("iters", "inner_steps", "inner_lr", "outer_lr", "outer_lr_final", "val_every",
                   "patience", "batch_size")
_TNAS_ONLY = ("target_transform", "top_share", "top_quantile", "inner_optimizer")


def _fill_defaults(a, cfg, names) -> None:
    """Set each option in ``names`` the user did not give to ``cfg``'s value of it."""
    for k in names:
        if getattr(a, k) is None:
            setattr(a, k, getattr(cfg, k))


def _main_base(a, p, argv) -> int:
    """``--method base``: BASE prior meta-training (``metanas.base.meta``)."""
    import torch

    from metanas.errors import UserInputError

    torch.set_num_threads(max(1, a.threads))
    given = a.given
    try:
        from metanas.base.meta import BaseMetaConfig, command_line, meta_train_base

        if a.exclude_task or a.exclude_source or a.val_tasks or a.meta_dataset:
            raise UserInputError("--exclude-task / --exclude-source / --val-tasks / "
                                 "--meta-dataset apply to --method tnas; BASE holds tasks out "
                                 "with --n-heldout / --n-val")
        tnas_only = [f"--{k.replace('_', '-')}" for k in _TNAS_ONLY + ("balance_sources",)
                     if k in given]
        if tnas_only:
            one = len(tnas_only) == 1
            what = "is an option" if one else "are options"
            raise UserInputError(f"{' / '.join(tnas_only)} {what} of --method tnas; drop "
                                 f"{'it' if one else 'them'} for --method base")
        elbo = {}
        if a.batch_size is not None:  # BASE's mini-batch: images per ELBO step
            if a.batch_size < 1:
                raise UserInputError(f"batch_size must be an integer >= 1, got {a.batch_size}")
            elbo["batch_size"] = a.batch_size
        opt = {k: getattr(a, k) for k in _METHOD_OPTIONS if k != "batch_size"
               and getattr(a, k) is not None}  # the rest: BaseMetaConfig's defaults
        tasks = None if a.tasks.strip().lower() in ("all", "") else \
            [t.strip() for t in a.tasks.split(";") if t.strip()]
        cfg = BaseMetaConfig(space=a.space, source=a.source, ways=a.ways,
                             task_seed=a.task_seed, n_heldout=a.n_heldout, n_val=a.n_val,
                             n_tasks=a.n_tasks, tasks=tasks, tasks_per_iter=a.tasks_per_iter,
                             val_steps=a.val_steps, seed=a.seed, elbo=elbo, **opt)
        cmd = command_line(["train_meta.py"] + _recipe_args(argv))
        st = meta_train_base(cfg, a.out, resume=a.resume, progress=a.show_progress,
                             command=cmd)
        from metanas.hub import push_to_hub
        url = push_to_hub(a.out, a.push_to_hub, kind="base") if a.push_to_hub else None
    except (UserInputError, ValueError, KeyError, FileNotFoundError) as exc:
        return _error(exc)
    val = "n/a (no validation task)" if st["best_val"] is None else f"{st['best_val']:.3f}"
    print(_final_line(a.out, st, f"validation CE after adaptation {val}", url))
    return 0


if __name__ == "__main__":
    sys.exit(main())
