"""Command-line front ends (thin: parse, resolve, call the library).

``adapt.py`` -> ``adapt_main``. Every user-facing error becomes one line on stderr and exit
status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path

from .errors import UserInputError

ADAPT_EPILOG = """examples:
  python adapt.py                                   # shipped default: nb201/cifar100, tnas vs baselines
  python adapt.py --space nb201 --task nb201/cifar100 --method rs,rea,ls,gp-bo --budget 50 \\
      --seeds 10 --output results.json
  python adapt.py --space transnas_micro --task transnas_micro/class_scene --method rea,gp-bo
  python adapt.py --space nb201 --task-table my_archs.csv --metric acc --report-metric test_acc
  python adapt.py --space nb201 --task-table my_archs.csv --metric acc --arch-column architecture
  python adapt.py --list-tasks                      # 'all': with every MetaD2A task
Writes OUTPUT (JSON: every evaluation of every run) and OUTPUT with .png (best-so-far vs
evaluations, mean +- s.e.). Runs checkpoint after every evaluation under OUTPUT's stem + '.runs/';
re-running the same command resumes where it stopped (--resume insists on an existing
checkpoint; --fresh starts over).
"""


def _parser() -> argparse.ArgumentParser:
    from . import spaces, strategies

    p = argparse.ArgumentParser(
        prog="adapt.py",
        description="Search a NAS task with one or several methods (benchmark mode: evaluations "
                    "are table lookups) and compare them over seeds.",
        epilog=ADAPT_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="nb201", help=f"search space: {', '.join(spaces.names())} "
                   "(default: nb201)")
    p.add_argument("--task", default=None,
                   help="shipped task id, e.g. nb201/cifar10, nb201/cifar100, "
                        "nb201/imagenet16-120, transnas_micro/class_scene (default: the space's "
                        "first CIFAR-100 / class_scene task); see --list-tasks")
    p.add_argument("--task-table", metavar="FILE.csv", default=None,
                   help="your own table instead of --task: a CSV with an architecture column "
                        "'arch' (else --arch-column) in the space's string form and metric "
                        "columns")
    p.add_argument("--arch-column", metavar="NAME", default=None,
                   help="with --task-table: the table's architecture column (default: arch)")
    p.add_argument("--dataset", metavar="PATH_OR_ID", default=None,
                   help="search on real data: every suggested architecture is trained (live "
                        "evaluator). 'digits' (scikit-learn's bundled digits; class subsets as "
                        "'digits:classes=0,3,5'), a folder of class sub-folders of images, a "
                        ".npz with x and y, a `datasets` folder saved with save_to_disk, or a "
                        "Hub dataset id")
    p.add_argument("--epochs", type=int, default=None,
                   help="with --dataset: training epochs per architecture (default: the "
                        "recipe's, metanas.train.TrainConfig)")
    p.add_argument("--metric", default=None,
                   help="metric to maximise (task default: validation accuracy; required "
                        "column name with --task-table)")
    p.add_argument("--report-metric", default=None,
                   help="metric reported for the returned arch (task default: test accuracy)")
    p.add_argument("--method", default="tnas,rs,rea,gp-bo",
                   help=f"comma-separated methods: {', '.join(strategies.available())} "
                        "(default: tnas,rs,rea,gp-bo)")
    p.add_argument("--pretrained", metavar="DIR|REPO_ID", default=None,
                   help="checkpoint folder or Hub id for the methods taking one (tnas: a TNAS "
                        "surrogate; base, base-prior: a BASE prior); default: "
                        "the checkpoint shipped for the space. tnas: several, comma-separated, "
                        "search with the ensemble of them (a mixture posterior)")
    p.add_argument("--set", dest="settings", metavar="METHOD.KEY=VALUE", action="append",
                   default=[],
                   help="a strategy setting (repeatable; VALUE is JSON, else a string), e.g. "
                        "--set tnas.acquisition=ts --set tnas.n_init=10 --set rea.population_size=30")
    p.add_argument("--budget", type=int, default=50, help="evaluations per run (default: 50)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds, 0..N-1 (default: 3)")
    p.add_argument("--seed-start", type=int, default=0, help="first seed (default: 0)")
    p.add_argument("--batch-size", type=int, default=1,
                   help="architectures proposed per round (default: 1); with --dataset a batch "
                        "trains in parallel on a Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="with --dataset: train on this running Dask scheduler "
                        "(tcp://host:8786) instead of a local cluster")
    p.add_argument("--output", default="results/adapt.json",
                   help="results JSON; the plot goes next to it (default: results/adapt.json)")
    p.add_argument("--workers", type=int, default=None,
                   help="parallel processes over (method, seed) runs (default: 1); with "
                        "--dataset and --batch-size > 1: local Dask workers (default: the "
                        "batch size)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch threads per run (default: 1, fastest for these small models; "
                        "0 = torch's default)")
    p.add_argument("--fresh", action="store_true",
                   help="ignore existing checkpoints of this output and start over")
    p.add_argument("--resume", action="store_true",
                   help="continue the saved runs of this output (an error when there are none; "
                        "without the flag a matching checkpoint is also resumed)")
    p.add_argument("--list-tasks", nargs="?", const="short", metavar="all", default=None,
                   help="list shipped tasks and exit ('--list-tasks all': with every MetaD2A "
                        "task metad2a/<id>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


@contextmanager
def _one_line_errors():
    try:
        yield
    except (UserInputError, KeyError, ValueError, FileNotFoundError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        print(f"error: {msg}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted: every finished evaluation is saved; rerun the same command to "
              "resume", file=sys.stderr)
        raise SystemExit(130) from None
    except BrokenPipeError:  # e.g. ``--list-tasks | head``
        sys.stderr.close()
        raise SystemExit(0) from None


def adapt_main(argv: list[str] | None = None) -> int:
    from . import spaces
    from .harness import (HarnessConfig, build_benchmark, plot_results, run_files, run_harness,
                          runs_dir)

    args = _parser().parse_args(argv)
    with _one_line_errors():
        if args.list_tasks:
            from .meta_dataset import MetaDataset

            if args.list_tasks not in ("short", "all"):
                raise UserInputError(f"--list-tasks {args.list_tasks}: expected nothing or "
                                     f"'all'")
            md = MetaDataset.load()
            every = args.list_tasks == "all"
            print(f"{'task':36s} {'space':15s} description")
            for row in md.tasks.itertuples():
                if every or not str(row.task).startswith("metad2a/"):
                    print(f"{row.task:36s} {row.space:15s} {_short(row.description)}")
            n = int(md.tasks.task.str.startswith("metad2a/").sum())
            if not every:
                print(f"... and {n} MetaD2A tasks metad2a/<id> (partial tables, 1-6 archs "
                      f"each): python adapt.py --list-tasks all")
            return 0
        space = spaces.get(args.space)
        for name, v, lo in (("--budget", args.budget, 1), ("--seeds", args.seeds, 1),
                            ("--batch-size", args.batch_size, 1), ("--workers", args.workers, 1),
                            ("--seed-start", args.seed_start, 0), ("--threads", args.threads, 0),
                            ("--epochs", args.epochs, 1)):
            if v is not None and v < lo:
                raise UserInputError(f"{name} must be >= {lo}, got {v}")
        methods = [m.strip() for m in args.method.split(",") if m.strip()]
        from . import strategies

        if not methods:
            raise UserInputError(f"--method names no method; choose from "
                                 f"{', '.join(strategies.available())}")
        unknown = [m for m in methods if m not in strategies.available()]
        if unknown:
            raise UserInputError(f"unknown method(s) {', '.join(unknown)}; choose from "
                                 f"{', '.join(strategies.available())}")
        if sum(x is not None for x in (args.task, args.task_table, args.dataset)) > 1:
            raise UserInputError("give one of --task, --task-table, --dataset")
        task = args.task or {"nb201": "nb201/cifar100",
                             "transnas_micro": "transnas_micro/class_scene"}[space.name]
        if args.dataset:
            task = "dataset:" + args.dataset + (f":epochs={args.epochs}"
                                                if args.epochs is not None else "")
        elif args.epochs is not None:
            raise UserInputError("--epochs applies to --dataset (real training) only")
        if args.scheduler and not args.dataset:
            raise UserInputError("--scheduler applies to --dataset (real training) only")
        live = bool(args.dataset)
        if args.task_table:
            if not Path(args.task_table).is_file():
                raise UserInputError(f"--task-table {args.task_table}: no such file")
            if not args.metric:
                raise UserInputError("--task-table needs --metric COLUMN (the column to maximise)")
        elif args.arch_column is not None:
            raise UserInputError("--arch-column applies to --task-table only")
        cfg = HarnessConfig(space=space.name, task=task, methods=methods,
                            seeds=list(range(args.seed_start, args.seed_start + args.seeds)),
                            budget=args.budget, batch_size=args.batch_size, metric=args.metric,
                            report_metric=args.report_metric, task_table=args.task_table,
                            arch_column=args.arch_column or "arch",
                            workers=1 if live else (args.workers or 1), threads=args.threads,
                            dask_workers=args.workers if live and args.workers else 0,
                            scheduler=args.scheduler,
                            method_kwargs=_merge_kwargs(
                                _pretrained_kwargs(args.pretrained, methods),
                                _setting_kwargs(args.settings, methods, space,
                                               task=args.task_table or task)))
        out = Path(args.output)
        saved = runs_dir(out)
        if out.suffix.lower() == ".png":
            raise UserInputError(f"--output {out}: the results are JSON and the plot is written "
                                 f"next to them as .png; give a .json path")
        if out.is_dir():
            raise UserInputError(f"--output {out} is a folder; give a file path, e.g. "
                                 f"{out / 'results.json'}")
        if args.fresh and args.resume:
            raise UserInputError("give one of --resume and --fresh")
        bench = build_benchmark(cfg)  # validates the task / table before any file is touched
        n_archs = len(bench.candidates()) if hasattr(bench, "candidates") else None
        if n_archs is not None and args.budget > n_archs:
            raise UserInputError(f"--budget {args.budget} is more than the {n_archs} "
                                 f"architectures of {bench.task}; lower --budget to at most "
                                 f"{n_archs}")
        files = run_files(cfg, out, bench)
        if args.resume and not any(f.is_file() for f in files.values()):
            raise UserInputError(f"--resume: no saved runs of this command in {saved} (other "
                                 f"task, metric, settings or an edited table?); run it without "
                                 f"--resume to start")
        removed = 0
        if args.fresh:  # this command's runs only (others may share the output folder)
            for f in files.values():
                removed += f.is_file()
                f.unlink(missing_ok=True)
        resumed = _resume_line(files, args.budget, removed)
        total = len(methods) * args.seeds * args.budget
        bar = None
        if not args.quiet:
            from tqdm import tqdm

            bar = tqdm(total=total, unit="eval", desc="search", file=sys.stderr, disable=None)
        try:
            results = run_harness(cfg, out, progress=bar.update if bar else None)
        finally:
            if bar is not None:
                bar.close()
        png = out.with_suffix(".png")
        plot_results(results, png)
    if resumed:
        print(resumed)
    _print_summary(results)
    print(f"wrote {out} and {png}")
    return 0


#: methods whose ``pretrained`` is a BASE prior (kind "base"); other takers load a "tnas" one
_BASE_METHODS = ("base", "base-prior")


def _pretrained_kwargs(pretrained: str | None, methods: list[str]) -> dict:
    """``--pretrained DIR`` -> ``{method: {"pretrained": DIR}}`` for the methods accepting it,
    resolved with the checkpoint kind of those methods (``base`` / ``base-prior``: a BASE
    prior; otherwise a TNAS surrogate)."""
    if not pretrained:
        return {}
    from . import strategies

    from .hub import resolve_pretrained  # a folder, or a Hub id (offline first)
    takers = [m for m in methods if "pretrained" in strategies.constructor_params(m)]
    if not takers:
        loaders = [m for m in strategies.available()
                   if "pretrained" in strategies.constructor_params(m)]
        raise UserInputError(f"--pretrained applies to methods that load a checkpoint "
                             f"({', '.join(loaders)}); none of --method {','.join(methods)} does")
    kinds = {"base" if m in _BASE_METHODS else "tnas" for m in takers}
    if len(kinds) > 1:
        raise UserInputError("--pretrained is ambiguous: " + ", ".join(takers) + " take "
                             "different checkpoints (BASE prior vs TNAS surrogate); run them "
                             "separately")
    kind = kinds.pop() if kinds else "tnas"
    names = [x.strip() for x in str(pretrained).split(",") if x.strip()]
    if not names:
        raise UserInputError(f"--pretrained {pretrained!r} names no checkpoint; give a folder "
                             "or Hub id (tnas: several, comma-separated)")
    if len(names) > 1 and kind != "tnas":
        raise UserInputError("--pretrained with several checkpoints (an ensemble) is a tnas "
                             "option; give " + ", ".join(takers) + " one checkpoint")
    #: the strategies' own values: the shipped checkpoint, no meta-training (ablation)
    keywords = ("auto", "scratch")
    if any(x.lower() in keywords for x in names) and len(names) > 1:
        raise UserInputError(f"--pretrained {', '.join(keywords)} cannot be part of an ensemble")
    paths = [x.lower() if x.lower() in keywords else str(resolve_pretrained(x, kind=kind))
             for x in names]
    return {m: {"pretrained": paths if len(paths) > 1 else paths[0]} for m in takers}


#: constructor arguments the harness sets itself (not settable with ``--set``)
_HARNESS_ARGS = ("space", "seed", "candidates", "task")


def _setting_kwargs(settings: list[str], methods: list[str], space,
                    task: str | None = None) -> dict:
    """``--set METHOD.KEY=VALUE`` items -> ``{method: {key: value}}``, each checked against
    the strategy's constructor (and built once, so a bad value fails here, in one line). A
    strategy that takes ``task`` is built with the run's ``task`` as the harness builds it
    (``harness.build_strategy``), so a setting that needs it (``proxybo.proxies=table``)
    passes."""
    import json

    from . import strategies

    out: dict[str, dict] = {}
    for item in settings:
        head, eq, raw = item.partition("=")
        method, dot, key = head.partition(".")
        if not (eq and dot and method and key):
            raise UserInputError(f"--set {item!r}: expected METHOD.KEY=VALUE, e.g. "
                                 f"--set tnas.acquisition=ts")
        if method not in methods:
            raise UserInputError(f"--set {item!r}: {method!r} is not among --method "
                                 f"{','.join(methods)}")
        allowed = sorted(strategies.constructor_params(method) - set(_HARNESS_ARGS))
        if key not in allowed:
            raise UserInputError(f"--set {item!r}: {method} has no setting {key!r}; choose from "
                                 f"{', '.join(allowed)}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out.setdefault(method, {})[key] = value
    for method, kw in out.items():
        extra = ({"task": task} if task is not None
                 and "task" in strategies.constructor_params(method) else {})
        try:
            strategies.make(method, space, seed=0, **extra, **kw)
        except (KeyError, TypeError, ValueError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            msg = msg[len(method) + 1:].strip() if msg.startswith(f"{method}:") else msg
            raise UserInputError(f"--set for {method}: {msg}") from None
    return out


def _merge_kwargs(*parts: dict) -> dict:
    """Per-method kwargs merged left to right."""
    out: dict[str, dict] = {}
    for part in parts:
        for method, kw in part.items():
            out.setdefault(method, {}).update(kw)
    return out


def _print_summary(results: dict) -> None:
    """One line per method: mean ± s.e. of the best value after 10 / 20 / 50 / 100 evaluations
    (those within the budget), after the whole budget, and of the final find's report."""
    budget = results["budget"]
    opt = results.get("optimum") or {}
    print(f"task {results['task']} ({results['space']}), metric {results['metric']}, "
          f"budget {budget}, {len(results['seeds'])} seed(s)"
          + (f", optimum {opt['value']:.3f}" if opt.get("value") is not None else ""))
    keys = [f"best@{k}" for k in (10, 20, 50, 100) if k < budget] + [f"best@{budget}"]
    head = f"{'method':14s}" + "".join(f"{k:>19s}" for k in keys) + f"{'final report':>22s}"
    print(head)
    missing = []
    for m, res in results["results"].items():
        s = res["summary"]  # best@<budget> included (``summarise`` gets the budget)
        # n/a: not in the summary (a run shorter, or every evaluation so far failed)
        cells = "".join(f"{s[k]['mean']:>11.3f} ± {s[k]['se']:<5.3f}" if k in s
                        else f"{'n/a':>11s}{'':8s}" for k in keys)
        rep = next((f"{k[13:]} {v['mean']:.3f} ± {v['se']:.3f}" for k, v in s.items()
                    if k.startswith("final_report_") and "regret" not in k), "-")
        missing.append(rep == "-")
        print(f"{m:14s}{cells}{rep:>22s}")
    if missing and all(missing):  # (one method alone without it: its runs failed)
        print("(no report metric: pass --report-metric COLUMN)" if results.get("task_table_sha1")
              else f"(no report metric: {results['task']} has no test values)")


def _short(text, width: int = 70) -> str:
    """A task description as one short line: its first clause (up to '; ' or '. ') without
    parenthesised details, cut to ``width`` characters with '...'."""
    import re

    text = " ".join(re.sub(r"\s*\([^()]*\)", "", str(text)).split())
    for sep in ("; ", ". "):
        text = text.split(sep, 1)[0]
    return text if len(text) <= width else text[:width - 3].rstrip(" ,:(") + "..."


def _resume_line(files: dict, budget: int, removed: int = 0) -> str | None:
    """One line saying what became of the saved runs of this command (``files``: its
    checkpoint files, before the search): removed by --fresh, or resumed (evaluations done and
    still to do; a run checkpoint does not record the budget it was started with, so an
    interrupted run and a run extended to a larger budget read alike); ``None`` for a
    brand-new command."""
    from .io import read_json

    if removed:
        return f"--fresh: removed {removed} saved run{'s' * (removed != 1)}; starting over"
    lengths = []
    for f in files.values():
        if f.is_file():
            try:
                lengths.append(len(read_json(f).get("history", [])))
            except (OSError, ValueError):
                lengths.append(0)
    if not lengths:
        return None
    k, total = len(lengths), len(files) * budget
    runs = f"{k} saved run{'s' * (k != 1)}"
    done = sum(min(n, budget) for n in lengths)
    fresh = len(files) - k
    extra = f", {fresh} new run{'s' * (fresh != 1)}" if fresh else ""
    return f"resumed {runs} ({done} of {total} evaluations done, {total - done} new{extra})"
