"""Live evaluators: train each architecture on a real dataset (``metanas.train``).

``LiveBenchmark(space, dataset, train_config)`` implements the ``Evaluator`` protocol by
training every asked architecture from scratch with one fixed recipe (``TrainConfig``):
``value`` = valid accuracy (%), ``report = {"test": test accuracy}``, ``cost_s`` = wall
seconds of the run, ``info`` = parameters, FLOPs, final train loss / accuracy, epochs, device.
On CPU the results are a pure function of ``(space, arch, dataset, train_config)``.

``DaskEvaluator(factory, n_workers=...)`` evaluates a batch of architectures in parallel on
``dask.distributed``: a ``LocalCluster`` of ``n_workers`` processes with one thread each
(default), or an existing scheduler (``scheduler_address``) or ``client``. ``factory`` is a
picklable zero-argument callable returning an evaluator (``LiveFactory`` for live training;
``LiveBenchmark.factory()`` gives one); each worker process builds it once and keeps it.
Results come back in the order asked and equal the serial ones.

``get_benchmark("dataset:<task id>[:<TrainConfig field>=<value>]...", space=...)`` returns a
``LiveBenchmark``: the task id is ``metanas.train.TaskSpec``'s text form (``digits``,
``digits:classes=0,3,5,7,9``, a folder, a ``.npz``, a ``datasets`` folder, a Hub id), and any
``TrainConfig`` field may follow as an option (``dataset:digits:classes=0,1,2:epochs=4:C=4``);
``fidelity=`` sets the epochs; ``metric`` must be ``None``/``"valid_acc"``/``"acc"``.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass, fields
from typing import Callable, Sequence

from ..errors import UserInputError
from ..spaces import Arch, CellSpace
from ..spaces import get as get_space
from .base import Evaluation, Evaluator

PREFIX = "dataset:"


def _train():
    from .. import train  # torch + data stack, imported on first use

    return train


class LiveBenchmark:
    """Evaluator that trains each architecture (see the module doc).

    Args:
        space: a ``CellSpace`` or its name.
        dataset: a ``TaskSpec``, a task id string (``"digits:classes=0,3,5"``) or a ready
            ``TaskData``. The data is loaded on the first evaluation (construction is cheap,
            so the object ships cheaply to Dask workers).
        train_config: the recipe (default ``TrainConfig()``).
        device: ``None``/``"cpu"`` (default), ``"auto"`` (CUDA when available) or a torch
            device string.
        task: the evaluator's task id (default ``"dataset:<spec id>"``).

    Attributes: ``space``, ``task``, ``metric = "valid_acc"``, ``n_evaluations``,
    ``fidelity`` (epochs), ``train_config``, ``spec``.
    """

    metric = "valid_acc"

    def __init__(self, space: CellSpace | str = "nb201", dataset="digits", train_config=None, *,
                 device=None, task: str | None = None) -> None:
        train = _train()
        self.space = get_space(space) if isinstance(space, str) else space
        self._data = None
        if isinstance(dataset, train.TaskData):
            self._data = dataset
            self.spec = dataset.spec
        else:
            self.spec = train.as_task_spec(dataset)
        self.train_config = train_config if train_config is not None else train.TrainConfig()
        self.device = device
        self.task = task or f"{PREFIX}{self.spec.id}"
        self.n_evaluations = 0

    @property
    def fidelity(self) -> int:
        return int(self.train_config.epochs)

    @property
    def data(self):
        """The task's ``TaskData`` (built on first use)."""
        if self._data is None:
            self._data = _train().build_task(self.spec)
        return self._data

    def train(self, arch: Arch):
        """The full ``TrainResult`` of one architecture (not counted)."""
        return _train().train_and_evaluate(arch, self.space, self.data, self.train_config,
                                           device=self.device)

    def evaluate(self, archs: Sequence[Arch]) -> list[Evaluation]:
        """Train and measure every arch (validated first); counts each in ``n_evaluations``."""
        archs = [self.space.validate(self.space.from_str(a) if isinstance(a, str) else a)
                 for a in archs]
        out = []
        for a in archs:
            r = self.train(a)
            self.n_evaluations += 1
            out.append(Evaluation(
                value=float(r.valid_acc), report={"test": float(r.test_acc)}, cost_s=float(r.wall_s),
                info={"params": r.params, "flops": r.flops, "train_loss": r.train_loss,
                      "train_acc": r.train_acc, "epochs": r.epochs, "device": r.device,
                      "wall_s": r.wall_s}))
        return out

    def reset(self) -> None:
        self.n_evaluations = 0

    def factory(self) -> "LiveFactory":
        """A picklable recipe rebuilding this evaluator (for ``DaskEvaluator``)."""
        return LiveFactory(self.space.name, self.spec, self.train_config, self.device, self.task)

    def __repr__(self) -> str:
        return f"LiveBenchmark({self.task!r}, space={self.space.name!r}, {self.train_config})"


@dataclass(frozen=True)
class LiveFactory:
    """Picklable, hashable zero-argument factory of a ``LiveBenchmark``."""

    space: str
    spec: object  # metanas.train.TaskSpec
    train_config: object  # metanas.train.TrainConfig
    device: str | None = None
    task: str | None = None

    def __call__(self) -> LiveBenchmark:
        return LiveBenchmark(self.space, self.spec, self.train_config, device=self.device,
                             task=self.task)


# ---------------------------------------------------------------------------- Dask
_WORKER_EVALUATORS: dict = {}
_WORKER_LOCK = threading.Lock()


def _factory_key(factory) -> object:
    try:
        hash(factory)
        return factory
    except TypeError:
        from dask.base import tokenize

        return tokenize(factory)


def _worker_evaluator(factory) -> Evaluator:
    """The evaluator of ``factory`` in this process (built once)."""
    key = _factory_key(factory)
    with _WORKER_LOCK:
        ev = _WORKER_EVALUATORS.get(key)
        if ev is None:
            if len(_WORKER_EVALUATORS) >= 8:
                _WORKER_EVALUATORS.clear()
            ev = _WORKER_EVALUATORS[key] = factory()
    return ev


def _evaluate_on_worker(factory, arch: Arch) -> Evaluation:
    return _worker_evaluator(factory).evaluate([arch])[0]


def local_client(n_workers: int = 2, threads_per_worker: int = 1, **cluster_kwargs):
    """A ``dask.distributed`` client of a new ``LocalCluster`` (worker processes, no
    dashboard, quiet logs); close it with ``client.close(); client.cluster.close()``."""
    import logging

    from dask.distributed import Client, LocalCluster

    kw = dict(n_workers=int(n_workers), threads_per_worker=int(threads_per_worker),
              processes=True, dashboard_address=None, silence_logs=logging.ERROR)
    kw.update(cluster_kwargs)
    cluster = LocalCluster(**kw)
    return Client(cluster)


#: how long connecting to a running Dask scheduler may take before it is an error
CONNECT_TIMEOUT = "5s"


def connect(address: str):
    """A ``dask.distributed`` client of the running scheduler at ``address``; one that cannot
    be reached within ``CONNECT_TIMEOUT`` is a one-line ``UserInputError``."""
    from dask.distributed import Client

    try:
        return Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise UserInputError(f"--scheduler {address}: no Dask scheduler answers there within "
                             f"{CONNECT_TIMEOUT} ({type(exc).__name__}); start one with "
                             f"`dask scheduler` (and workers) or drop --scheduler") from None


def _close_client(client, owns_cluster: bool) -> None:
    try:
        cluster = client.cluster if owns_cluster else None
        client.close()
        if cluster is not None:
            cluster.close()
    except Exception:  # pragma: no cover - best effort at shutdown
        pass


class DaskEvaluator:
    """Evaluate batches of architectures in parallel on ``dask.distributed``.

    Args:
        factory: picklable zero-argument callable returning an ``Evaluator`` (e.g.
            ``LiveBenchmark(...).factory()`` or a module-level function); called once here
            (for ``space`` / ``task`` / ``metric``) and once per worker process.
        n_workers, threads_per_worker: of the ``LocalCluster`` started on the first
            ``evaluate`` when neither ``scheduler_address`` nor ``client`` is given.
        scheduler_address: connect to this scheduler (``tcp://host:8786``) instead; the
            workers must be able to import metanas and read the dataset.
        client: or use this ``dask.distributed.Client`` (not closed by ``close``).

    ``evaluate(archs)`` submits one job per arch and returns the evaluations in order;
    ``n_evaluations`` counts them. Use as a context manager or call ``close()``.
    """

    def __init__(self, factory: Callable[[], Evaluator], *, n_workers: int = 2,
                 threads_per_worker: int = 1, scheduler_address: str | None = None,
                 client=None) -> None:
        self.factory = factory
        local = factory()
        self.space = local.space
        self.task = local.task
        self.metric = getattr(local, "metric", "value")
        if hasattr(local, "fidelity"):
            self.fidelity = local.fidelity
        self.n_evaluations = 0
        self.n_workers = int(n_workers)
        self.threads_per_worker = int(threads_per_worker)
        self.scheduler_address = scheduler_address
        self._client = client
        self._owns = False
        self._finalizer = None

    @property
    def client(self):
        """The ``dask.distributed.Client`` (started on first use)."""
        if self._client is None:
            if self.scheduler_address is not None:
                self._client = connect(self.scheduler_address)
                self._owns = False
                self._finalizer = weakref.finalize(self, _close_client, self._client, False)
            else:
                self._client = local_client(self.n_workers, self.threads_per_worker)
                self._owns = True
                self._finalizer = weakref.finalize(self, _close_client, self._client, True)
        return self._client

    def evaluate(self, archs: Sequence[Arch]) -> list[Evaluation]:
        archs = [self.space.validate(self.space.from_str(a) if isinstance(a, str) else a)
                 for a in archs]
        if not archs:
            return []
        client = self.client
        futures = [client.submit(_evaluate_on_worker, self.factory, a, pure=False)
                   for a in archs]
        out = client.gather(futures)
        self.n_evaluations += len(out)
        return list(out)

    def reset(self) -> None:
        self.n_evaluations = 0

    def close(self) -> None:
        """Close the client (and the cluster this evaluator started)."""
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._client = None

    def __enter__(self) -> "DaskEvaluator":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.scheduler_address or f"LocalCluster({self.n_workers}x{self.threads_per_worker})"
        return f"DaskEvaluator({self.task!r}, {where})"


# ---------------------------------------------------------------------------- resolver
def resolve_live(task_id: str, *, space: str | None = None, metric: str | None = None,
                 report_metric=None, fidelity: int | None = None, device=None) -> LiveBenchmark:
    """``get_benchmark`` factory for ``"dataset:..."`` ids (see the module doc)."""
    train = _train()
    text = str(task_id)
    if text.startswith(PREFIX):
        text = text[len(PREFIX):]
    if metric not in (None, "valid_acc", "acc"):
        raise UserInputError(f"live task {task_id!r} measures valid_acc (report: test); "
                             f"metric {metric!r} is not available")
    if report_metric not in (None, "test", "test_acc", "acc", ["test"], ["test_acc"]):
        raise UserInputError(f"live task {task_id!r} reports only the test accuracy ('test')")
    cfg_fields = [f.name for f in fields(train.TrainConfig)]
    spec, extras = train.TaskSpec.parse_with_extras(text, allowed_extra=cfg_fields)
    try:
        cfg = train.TrainConfig.from_strings(extras)
        if fidelity is not None:
            cfg = cfg.replace(epochs=int(fidelity))
    except ValueError as exc:
        raise UserInputError(f"{task_id!r}: {exc}") from None
    return LiveBenchmark(space or "nb201", spec, cfg, device=device, task=f"{PREFIX}{text}")


__all__ = ["LiveBenchmark", "LiveFactory", "DaskEvaluator", "local_client", "resolve_live",
           "PREFIX"]
