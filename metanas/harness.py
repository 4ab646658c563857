"""Benchmark harness: several strategies x seeds on one task, through ``run_search``.

Writes the results JSON::

    {"space", "task", "metric", "budget", "batch_size",
     "results": {method: {"runs": [{"seed", "history": [{"arch", "value", "best_so_far",
                                                          "report", "time_s", "cost_s"}],
                                    "best_arch", "best_value", "best_report"}],
                          "summary": {...}, "settings": {...},
                          "checkpoint_sha1": {...}}},
     "optimum": {...}, "environment": {...}}

The summary (``summarise``) has, per number of evaluations k (``SUMMARY_AT`` within the
budget, and the budget itself), the best-so-far (``best@k``),
its top fraction in a table (``top_fraction@k``), and the report (e.g. test accuracy) of the
incumbent at k (``report_<key>@k`` and, in a table, ``report_top_fraction_<key>@k``); the
settings are the run's ``strategies.run_settings``; ``checkpoint_sha1`` (only for methods
whose settings name checkpoint folders) the fingerprints of the weights the runs used;
``environment`` (``io.environment_info``) the Python, platform, package versions and torch
thread count of the process that wrote the file.

and a PNG of best-so-far vs evaluations (mean +- standard error over seeds). Every run
checkpoints after each evaluation under ``<output stem>.runs/`` (one file per method, seed and
settings), so an interrupted harness resumes where it stopped. The settings in a run's file
name are ``strategies.run_settings``: the strategy's defaults overridden by the method keyword
arguments, a checkpoint folder entering by the fingerprint of its weights; so a changed
default, a changed argument or re-trained weights start a new run instead of reusing an old
one. The task enters the names too (``run_files``: space, task, metric, report metric,
batch size, and a user table by the SHA-1 of its content, ``task_table_sha1`` in the JSON), so
one output path shared by several tasks, metrics or an edited table never mixes their runs.
(A change of the code behind the same settings is not detected: ``adapt.py --fresh``.)
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .errors import UserInputError
from .io import atomic_write_json, environment_info, read_json
from .search import run_search

#: evaluation counts at which the summary reports the mean best-so-far
SUMMARY_AT = (10, 20, 50, 100, 200)


@dataclass
class HarnessConfig:
    """What to compare. ``task`` is a shipped task id or, with ``task_table``, a label."""

    space: str
    task: str
    methods: Sequence[str]
    seeds: Sequence[int]
    budget: int
    batch_size: int = 1
    metric: str | None = None
    report_metric: str | None = None
    task_table: str | None = None
    #: with ``task_table``: the table's architecture column
    arch_column: str = "arch"
    method_kwargs: dict[str, dict] = field(default_factory=dict)
    workers: int = 1
    #: torch threads per run. 1 by default: the models here are small (n <= a few hundred
    #: observations), and on 2 cores a second thread made a GP-BO step 4-10x *slower*
    #: (benchmarks/gpbo_step.py); 0 leaves torch's default.
    threads: int = 1
    #: live tasks (``dataset:...``) only: train each batch's architectures in parallel on
    #: ``dask.distributed``, on a local cluster of ``dask_workers`` single-thread workers
    #: (0 = one per batch slot, ``batch_size``) or on the running cluster at ``scheduler``.
    #: Used when ``batch_size > 1`` or ``scheduler`` is set; the runs then go one after the
    #: other (``workers`` is ignored) and share the cluster.
    dask_workers: int = 0
    scheduler: str | None = None


def uses_dask(cfg: "HarnessConfig", bench) -> bool:
    """Whether ``cfg`` evaluates ``bench``'s batches on Dask (live tasks with batches)."""
    return hasattr(bench, "factory") and (cfg.batch_size > 1 or cfg.scheduler is not None)


def build_benchmark(cfg: HarnessConfig):
    from .benchmarks import get_benchmark

    return get_benchmark(cfg.task_table or cfg.task, space=cfg.space, metric=cfg.metric,
                         report_metric=cfg.report_metric, arch_column=cfg.arch_column)


def build_strategy(name: str, space, seed: int, bench, kwargs: dict | None = None):
    from . import strategies

    kw = dict(kwargs or {})
    cands = bench.candidates() if hasattr(bench, "candidates") else None
    if cands is not None and len(cands) < space.size:
        kw.setdefault("candidates", cands)
    if "task" in strategies.constructor_params(name):
        kw.setdefault("task", bench.task)  # task-aware methods (transfer, meta-learned)
    return strategies.make(name, space, seed=seed, **kw)


def _one_run(cfg: HarnessConfig, method: str, seed: int, ckpt: str | None,
             client=None) -> dict:
    if cfg.threads:
        import torch

        torch.set_num_threads(cfg.threads)
    bench = build_benchmark(cfg)
    _apply_threads(cfg, bench)
    if client is not None:  # live task: the batch trains in parallel on the Dask cluster
        from .benchmarks.live import DaskEvaluator

        live = bench
        bench = DaskEvaluator(live.factory(), client=client)
    strategy = build_strategy(method, bench.space, seed, bench, cfg.method_kwargs.get(method))
    run = run_search(strategy, bench, cfg.budget, seed=seed, batch_size=cfg.batch_size,
                     checkpoint=ckpt)
    return run.to_json()


def summary_points(budget: int | None) -> list[int]:
    """Evaluation counts ``summarise`` reports at: ``SUMMARY_AT`` (those within ``budget``)
    and ``budget`` itself (when given)."""
    if budget is None:
        return list(SUMMARY_AT)
    return sorted({k for k in SUMMARY_AT if k <= budget} | {int(budget)})


def summarise(runs: list[dict], bench=None, budget: int | None = None) -> dict:
    """Mean / standard error of best-so-far at ``SUMMARY_AT`` and at ``budget`` (when given:
    ``best@<budget>`` also for a budget outside ``SUMMARY_AT``; a count is left out where a
    run is shorter or the mean is not finite: every evaluation of a run failed so far), the
    incumbent's report at the same counts, plus the final best's report and, with a full table, its top fraction
    (share of the space strictly better)."""
    out: dict = {"n_runs": len(runs)}
    curves = [np.array([h["best_so_far"] for h in r["history"]]) for r in runs]
    at = summary_points(budget)
    for k in at:
        vals = [c[k - 1] for c in curves if len(c) >= k]
        # not reported when a run is shorter, or when the mean is not finite (a run whose
        # evaluations all failed so far: best so far -inf; NaN is no JSON)
        if len(vals) == len(runs) and vals and np.isfinite(np.mean(vals)):
            out[f"best@{k}"] = _mean_se(vals)
            if bench is not None and hasattr(bench, "top_fraction"):
                out[f"top_fraction@{k}"] = _mean_se([bench.top_fraction(v) for v in vals])
    # the incumbent's report (e.g. its test accuracy) after k evaluations: on a noisy or
    # saturated searched metric the best-so-far value rewards luck, the report does not
    for k in at:
        reps = [_incumbent_report(r["history"][:k]) for r in runs if len(r["history"]) >= k]
        if len(reps) != len(runs) or not reps:
            continue
        for key in sorted({key for rep in reps for key in rep}):
            vals = [rep[key] for rep in reps if key in rep]
            if len(vals) != len(reps):
                continue
            out[f"report_{key}@{k}"] = _mean_se(vals)
            if bench is not None and key in getattr(bench, "report_keys", ()):
                out[f"report_top_fraction_{key}@{k}"] = _mean_se(
                    [bench.report_top_fraction(v, key) for v in vals])
    finals = [r["best_report"] or {} for r in runs]
    for key in sorted({k for f in finals for k in f}):
        vals = [f[key] for f in finals if key in f]
        if len(vals) == len(finals):
            out[f"final_report_{key}"] = _mean_se(vals)
            if bench is not None and key in getattr(bench, "report_keys", ()):
                out[f"final_report_regret_{key}"] = _mean_se(
                    [bench.report_regret(v, key) for v in vals])
    times = [r["history"][-1]["time_s"] for r in runs if r["history"]]
    if times:
        out["wall_s"] = _mean_se(times)
    return out


def _incumbent_report(history: list[dict]) -> dict:
    """The report of the best finite value in ``history`` (the first of equal ones, as
    ``best_so_far``); ``{}`` when none."""
    best, rep = -math.inf, {}
    for h in history:
        v = h["value"]
        if v is not None and math.isfinite(v) and v > best:
            best, rep = v, h.get("report") or {}
    return rep


def optimum_info(bench) -> dict | None:
    """``{"value", "arch", "report": {key: best}}`` of a table benchmark (None otherwise)."""
    if not hasattr(bench, "optimum"):
        return None
    return {"value": bench.optimum, "arch": bench.space.to_str(bench.optimum_arch),
            "report": {k: bench.report_optimum(k) for k in bench.report_keys}}


def _mean_se(vals) -> dict:
    v = np.asarray(vals, dtype=float)
    se = float(v.std(ddof=1) / math.sqrt(len(v))) if len(v) > 1 else 0.0
    return {"mean": float(v.mean()), "se": se}


def runs_dir(output: str | os.PathLike) -> Path:
    """Folder of the per-run checkpoints of the results file ``output``: ``<stem>.runs/``."""
    output = Path(output)
    return output.with_suffix("").with_name(output.stem + ".runs")


def task_key(cfg: HarnessConfig, bench) -> dict:
    """What identifies the task of ``cfg``'s runs: space, task (as given and as the benchmark
    names it, e.g. ``user/<table stem>``), metric, report metric, batch size, for a user
    table the SHA-1 of its content (``table_sha1``) and for a live task on local files their
    fingerprint (``data``: ``metanas.train.data.source_fingerprint``), plus a table's
    ``arch_column`` other than ``"arch"``, so that runs on other values or other images are
    never reused."""
    spec = getattr(bench, "spec", None)
    data = None
    if spec is not None and hasattr(spec, "source"):
        from .train.data import source_fingerprint

        data = source_fingerprint(spec.source)
    key = {"space": bench.space.name, "task": cfg.task, "label": bench.task,
           "metric": bench.metric,
           "report_metric": cfg.report_metric, "batch_size": cfg.batch_size,
           "table_sha1": _file_sha1(cfg.task_table) if cfg.task_table else None,
           "data": data}
    if cfg.task_table and cfg.arch_column != "arch":  # the default keeps earlier runs' keys
        key["arch_column"] = cfg.arch_column
    return key


def run_files(cfg: HarnessConfig, output: str | os.PathLike, bench=None,
              task: dict | None = None) -> dict[tuple[str, int], Path]:
    """``{(method, seed): checkpoint file}`` of ``cfg``'s runs under ``runs_dir(output)``. The
    name holds the method, the seed, a tag of the run's settings (``_kwargs_tag``) and a tag
    of ``task_key`` (``task``, computed when not given), so a run is resumed only by the same
    method with the same settings on the same task: never on another task, metric or an
    edited table."""
    import hashlib
    import json

    bench = bench if bench is not None else build_benchmark(cfg)
    task = task if task is not None else task_key(cfg, bench)
    task_tag = "-task" + hashlib.sha1(json.dumps(task, sort_keys=True).encode()).hexdigest()[:8]
    tags = {m: _kwargs_tag(_run_settings(m, bench.space.name, cfg.method_kwargs.get(m)))
            for m in cfg.methods}
    return {(m, s): runs_dir(output) / f"{m}{tags[m]}{task_tag}-seed{s}.json"
            for m in cfg.methods for s in cfg.seeds}


def run_harness(cfg: HarnessConfig, output: str | os.PathLike,
                progress: Callable[[int], None] | None = None) -> dict:
    """Run every (method, seed), checkpointing under ``<output>.runs/``; write ``output``."""
    output = Path(output)
    bench = build_benchmark(cfg)  # validates the task (and user table) before any run
    runs_dir(output).mkdir(parents=True, exist_ok=True)
    jobs = [(m, s) for m in cfg.methods for s in cfg.seeds]
    results: dict = {
        "space": bench.space.name, "task": bench.task, "metric": bench.metric,
        "budget": cfg.budget, "batch_size": cfg.batch_size, "seeds": list(cfg.seeds),
        "results": {m: {"runs": [], "settings": _run_settings(m, bench.space.name,
                                                               cfg.method_kwargs.get(m))}
                    for m in cfg.methods},
    }
    results["optimum"] = optimum_info(bench)
    results["environment"] = environment_info()
    for m in cfg.methods:  # which weights the runs used (a folder can be re-trained)
        fps = _checkpoint_fingerprints(results["results"][m]["settings"])
        if fps:
            results["results"][m]["checkpoint_sha1"] = fps

    task = task_key(cfg, bench)
    if task["table_sha1"]:
        results["task_table_sha1"] = task["table_sha1"]
    files = run_files(cfg, output, bench, task)

    def ckpt(m, s):
        return str(files[(m, s)])

    done: dict[tuple[str, int], dict] = {}
    todo = []
    for m, s in jobs:
        p = Path(ckpt(m, s))
        if p.exists():
            state = read_json(p)
            if len(state.get("history", [])) >= cfg.budget:
                from .search import SearchRun

                r = SearchRun(m, s, bench.task, state["history"][: cfg.budget])
                done[(m, s)] = r.to_json()
                continue
        todo.append((m, s))

    def finish(m, s, res):
        done[(m, s)] = res
        if progress is not None:
            progress(cfg.budget)
        _write(results, done, cfg, bench, output)

    if progress is not None and done:
        progress(cfg.budget * len(done))
    if todo and uses_dask(cfg, bench):
        from .benchmarks.live import local_client

        bench.data  # a dataset that does not load fails here, in one line, not on every worker
        if cfg.scheduler:
            from .benchmarks.live import connect

            client = connect(cfg.scheduler)
        else:
            client = local_client(cfg.dask_workers or cfg.batch_size)
        try:
            for m, s in todo:
                finish(m, s, _one_run(cfg, m, s, ckpt(m, s), client=client))
        finally:
            cluster = None if cfg.scheduler else client.cluster
            client.close()
            if cluster is not None:
                cluster.close()
    elif cfg.workers <= 1 or len(todo) <= 1:
        for m, s in todo:
            finish(m, s, _one_run(cfg, m, s, ckpt(m, s)))
    else:
        with ProcessPoolExecutor(max_workers=cfg.workers) as pool:
            futs = {pool.submit(_one_run, cfg, m, s, ckpt(m, s)): (m, s)
                    for m, s in todo}
            for fut in _as_completed(futs):
                m, s = futs[fut]
                finish(m, s, fut.result())
    return _write(results, done, cfg, bench, output)


def _apply_threads(cfg: HarnessConfig, bench) -> None:
    """Live training follows the run's thread count (``cfg.threads``; 0: torch's default):
    the recipe's own ``TrainConfig.threads`` would otherwise override it. The thread count
    does not change the results' identity (``TrainConfig`` leaves it out of its text form)."""
    tc = getattr(bench, "train_config", None)
    if tc is not None and hasattr(tc, "threads"):
        bench.train_config = tc.replace(threads=cfg.threads or None)


def _run_settings(method: str, space: str, kwargs: dict | None) -> dict:
    """``strategies.run_settings`` (defaults + kwargs); the kwargs alone for a method outside
    the registry."""
    from . import strategies

    try:
        return strategies.run_settings(method, space, kwargs)
    except KeyError:
        return dict(kwargs or {})


def _checkpoint_fp(v) -> str | None:
    """The weights' fingerprint (``metanas.io.weights_fingerprint``) when ``v`` names a
    checkpoint folder (holds ``model.safetensors``), else ``None``; a file that cannot be read
    is a one-line ``UserInputError``."""
    from .io import weights_fingerprint

    if isinstance(v, (str, os.PathLike)) and str(v) and (Path(v) / "model.safetensors").is_file():
        try:
            return weights_fingerprint(v)
        except Exception as exc:  # safetensors raises its own error type on a damaged file
            raise UserInputError(f"{Path(v) / 'model.safetensors'} cannot be read ("
                                 f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
                                 f"); copy or download the checkpoint again") from None
    return None


#: files of a checkpoint folder besides the weights that change what a run does (the model's
#: config; TNAS's prior context, its initial design)
CHECKPOINT_FILES = ("config.json", "prior_context.safetensors")


def _weights_ref(v):
    """``v`` with every checkpoint folder (also inside a list) replaced by
    ``"weights:<fingerprint>"`` (plus ``":files:<sha1>"`` of its ``CHECKPOINT_FILES``)."""
    if isinstance(v, (list, tuple)):  # e.g. an ensemble's checkpoints
        return [_weights_ref(x) for x in v]
    fp = _checkpoint_fp(v)
    if fp is None:
        return v
    import hashlib

    h = hashlib.sha1()
    for name in CHECKPOINT_FILES:
        f = Path(v) / name
        h.update(name.encode() + (f.read_bytes() if f.is_file() else b"<none>"))
    return f"weights:{fp}:files:{h.hexdigest()[:8]}"


def _checkpoint_fingerprints(settings: dict | None) -> dict:
    """``{setting: fingerprint, or a list of them}`` for the settings that name checkpoint
    folders (``{}`` when none does): recorded with the results, since a folder's weights can
    be re-trained, and the same recipe re-trained on another machine gives other weights."""
    out: dict = {}
    for k, v in (settings or {}).items():
        if isinstance(v, (list, tuple)):
            fps = [_checkpoint_fp(x) for x in v]
            if any(fps):
                out[k] = fps
        elif (fp := _checkpoint_fp(v)) is not None:
            out[k] = fp
    return out


def _file_sha1(path: str | os.PathLike) -> str:
    import hashlib

    return hashlib.sha1(Path(path).read_bytes()).hexdigest()


def _kwargs_tag(kwargs: dict | None) -> str:
    """Run-name tag of a settings dict (``_run_settings``): ``""`` when empty, else
    ``"-<8 hex digits of its JSON>"``. A value that is a
    checkpoint folder (holds ``model.safetensors``) enters by its weights' fingerprint
    (``metanas.io.weights_fingerprint``), not its path (also inside a list: an ensemble's
    checkpoints): a run made with weights since
    re-trained in the same folder is not reused, and a copy of the same weights elsewhere is."""
    if not kwargs:
        return ""
    import hashlib
    import json

    text = json.dumps({k: _weights_ref(v) for k, v in kwargs.items()}, sort_keys=True,
                      default=str)
    return "-" + hashlib.sha1(text.encode()).hexdigest()[:8]


def _as_completed(futs):
    from concurrent.futures import as_completed

    return as_completed(futs)


def _write(results: dict, done: dict, cfg: HarnessConfig, bench, output: Path) -> dict:
    for m in cfg.methods:
        runs = [done[(m, s)] for s in cfg.seeds if (m, s) in done]
        results["results"][m].update(runs=runs, summary=summarise(runs, bench, cfg.budget))
    atomic_write_json(output, results)
    return results


def plot_results(results: dict, png: str | os.PathLike, title: str | None = None) -> None:
    """Best-so-far vs evaluations, mean +- standard error over seeds, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for method, res in results["results"].items():
        curves = [np.array([h["best_so_far"] for h in r["history"]]) for r in res["runs"]]
        if not curves:
            continue
        n = min(len(c) for c in curves)
        c = np.stack([c[:n] for c in curves])
        mean = c.mean(0)
        se = c.std(0, ddof=1) / math.sqrt(len(c)) if len(c) > 1 else np.zeros(n)
        x = np.arange(1, n + 1)
        ax.plot(x, mean, label=f"{method} (n={len(c)})")
        ax.fill_between(x, mean - se, mean + se, alpha=0.2)
    opt = results.get("optimum")
    if isinstance(opt, dict) and opt.get("value") is not None:
        ax.axhline(opt["value"], color="k", ls=":", lw=1, label="optimum")
    ax.set_xlabel("evaluations")
    ax.set_ylabel(f"best {results.get('metric', 'value')} so far")
    ax.set_title(title or f"{results['task']} ({results['space']})")
    ax.grid(alpha=0.3)
    # zoom on the interesting range: from the median best after a tenth of the budget up
    k = max(1, results.get("budget", 10) // 10)
    firsts = [r["history"][min(k, len(r["history"])) - 1]["best_so_far"]
              for res in results["results"].values() for r in res["runs"] if r["history"]]
    firsts = [v for v in firsts if v is not None and math.isfinite(v)]
    if firsts:
        lo = float(np.median(firsts))
        hi = max(ax.get_ylim()[1], lo + 1e-9)
        ax.set_ylim(lo, hi)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
