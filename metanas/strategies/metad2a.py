"""MetaD2A-style predictor search (after Lee, Hyung & Hwang, "Rapid Neural Architecture Search
by Learning to Generate Graphs from Datasets", ICLR 2021): a meta-learned
``(dataset, architecture) -> accuracy`` predictor ranks every candidate, and the search simply
evaluates the candidates in that order. No test-time adaptation: the values observed during the
search are never used to change the ranking (that is what distinguishes it from BO).

**Meta-training (leave-one-task-out).** The training set is every task of the meta-dataset in
the same space **except the target task** (``task=``) and the tasks of the collections
``exclude_sources`` (default ``("digits_live",)``): for NB201, the other two NB201
datasets (15625 archs each) plus the MetaD2A ImageNet-32 subset tasks with at least
``min_task_archs`` (2) measured archs; for TransNAS micro, the other six tasks. The 20
``digits_live/*`` tasks (150 NB201 cells each, trained here on digits; a later collection)
are left out by default, as in TNAS's shipped NB201 recipe (where they hurt the NB201 prior):
they rank NB201 cells unlike the NB201 datasets (their mean ranking has Spearman 0.40 with
NB201's, ``meta_datasets/README.md``) and 20 tasks would outvote the two other NB201 ones; the
recorded ``benchmarks/results/proxy_methods_*.json`` runs predate the collection.
``exclude_sources=[]`` (or ``None``) meta-trains on every collection. Each task's
search metric (``default_metric`` at split ``valid``, highest fidelity) is replaced by its
within-task percentile rank (``rank / n`` in ``(0, 1]``, ties averaged): the predictor learns
*within-task* ranking, since the absolute level of an unseen task cannot be known. (Per-task
z-scores were tried first: the many ~10%-accuracy NB201 cells with ``none`` edges dominate a
squared loss and the top of the ranking came out poorly resolved, e.g. NB201 CIFAR-10
leave-one-out Spearman 0.92 and a top-100 mean of 89.5% vs 0.97 and 91.0% with percentiles.)
Architecture input: one-hot + path encoding; model: an MLP (``hidden`` x ``layers``, ReLU),
float32, Adam on mini-batches for ``epochs`` epochs (2-4 s on one shared core for NB201's
~34k training rows).

**Dataset input.** When tasks carry per-class sample features (``tasks.sample_features``,
``[class][sample][feature]``), the dataset embedding is their class-wise mean, averaged over
classes (a fixed mean-pooling set encoder; the MLP learns what to do with it), plus a flag 1.
The shipped tabular tasks have no samples (``sample_features`` is null for all of them), so
their dataset input is the shared "no data" input (zeros, flag 0): **on these tables the
predictor degenerates to a cross-task prior ranking** (which archs are good on the other tasks
of the space), which is the honest transfer baseline those tables allow.

**Determinism / seeds.** The predictor is a deterministic function of (space, excluded task,
meta-dataset, ``predictor_seed``, config); ``predictor_seed`` defaults to a number drawn from the
strategy's seed, so different seeds are independent meta-trainings (the spread across seeds is
the meta-training variance). Predictors are cached per process under that key
(``PREDICTOR_CACHE``), so a harness with 10 seeds trains 10 of them per task once.

With ``candidates`` only those are ranked; once every candidate is taken, repeats follow
(``sample_unseen``).
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np

from ..errors import UserInputError
from ..spaces import Arch, CellSpace
from ..spaces.encodings import encode
from ._checks import integer, positive
from .base import Strategy, register

logger = logging.getLogger(__name__)

#: (space, excluded task, meta-dataset key, seed, config) -> MetaPredictor
PREDICTOR_CACHE: dict[tuple, "MetaPredictor"] = {}
_MD_CACHE: dict[str, Any] = {}
#: (target, same tasks) pairs already warned about (``_excluded``)
_SAME_WARNED: set[tuple] = set()


def _shipped_md():
    if "shipped" not in _MD_CACHE:
        from ..meta_dataset import MetaDataset

        _MD_CACHE["shipped"] = MetaDataset.load()
    return _MD_CACHE["shipped"]


def arch_features(space: CellSpace, archs) -> np.ndarray:
    a = np.asarray(archs, dtype=np.int64).reshape(-1, space.n_edges)
    return np.concatenate([encode(space, a, "onehot"), encode(space, a, "path")], axis=1)


def dataset_embedding(sample_features: Any) -> np.ndarray | None:
    """Mean over classes of the class-wise mean sample features (``None`` without samples)."""
    if sample_features is None:
        return None
    try:
        per_class = [np.asarray(list(c), dtype=np.float64).mean(axis=0)
                     for c in sample_features if c is not None and len(c)]
    except (TypeError, ValueError):
        return None
    if not per_class:
        return None
    return np.mean(np.stack(per_class), axis=0)


def source_of(task: str) -> str:
    """A task's collection: its id's first path component (``digits_live/digits-0-1`` ->
    ``digits_live``), as ``metanas.meta.tnas_train.source_of``."""
    return str(task).split("/", 1)[0]


def training_table(md, space: CellSpace, exclude: str | Sequence[str] | None,
                   min_task_archs: int = 2,
                   exclude_sources: Sequence[str] = ()):
    """``(tasks, arch_rows [n], targets [n], task_of_row [n], embeddings {task: vec|None})``:
    the within-task percentile rank of the search metric, for every task of ``space`` with at
    least ``min_task_archs`` archs, except ``exclude`` and the tasks of the collections
    ``exclude_sources`` (a task's collection: its id's first path component)."""
    import pandas as pd

    tasks = md.tasks[md.tasks["space"] == space.name]
    if exclude is not None:  # one task id, or several (the target and its copies)
        drop = {exclude} if isinstance(exclude, str) else set(exclude)
        tasks = tasks[~tasks["task"].isin(drop)]
    if exclude_sources:
        tasks = tasks[~tasks["task"].map(source_of).isin(set(exclude_sources))]
    metric = dict(zip(tasks["task"], tasks["default_metric"]))
    tr = md.triples
    tr = tr[(tr["space"] == space.name) & (tr["split"] == "valid") & tr["task"].isin(metric.keys())]
    tr = tr[tr["metric"].to_numpy() == tr["task"].map(metric).to_numpy()]
    if not len(tr):
        raise ValueError(f"no meta-training data in space {space.name!r} besides {exclude!r}")
    top = tr.groupby("task")["fidelity"].transform("max")
    tr = tr[tr["fidelity"] == top]
    index = {space.to_str(a): i for i, a in enumerate(space.enumerate())}
    rows = tr["arch"].map(index).to_numpy()
    ok = ~pd.isna(rows)
    tr = tr[ok]
    rows = rows[ok].astype(np.int64)
    vals = tr["value"].to_numpy(dtype=np.float64)
    task_col = tr["task"].to_numpy()
    codes, uniq = pd.factorize(task_col)
    counts = np.bincount(codes)
    keep_task = counts >= int(min_task_archs)
    keep = keep_task[codes]
    y = pd.Series(vals).groupby(codes).rank(pct=True, method="average").to_numpy()
    used = [str(t) for t, k in zip(uniq, keep_task) if k]
    emb = {}
    feats = dict(zip(tasks["task"], tasks["sample_features"]))
    for t in used:
        emb[t] = dataset_embedding(feats.get(t))
    return used, rows[keep], y[keep], task_col[keep], emb


class MetaPredictor:
    """The meta-trained ``(dataset, arch) -> within-task percentile of accuracy`` MLP of one space.

    Attributes:
        tasks: the training tasks (the target task is never among them).
        emb_dim: dataset-embedding width (0 when no training task has samples).
    """

    def __init__(self, space: CellSpace, md, exclude: str | None, *, seed: int = 0,
                 hidden: int = 128, layers: int = 2, epochs: int = 10, batch_size: int = 1024,
                 lr: float = 3e-3, min_task_archs: int = 2,
                 exclude_sources: Sequence[str] = ()) -> None:
        import torch

        self.space = space
        self.exclude = exclude
        tasks, rows, y, task_col, emb = training_table(md, space, exclude, min_task_archs,
                                                       exclude_sources)
        self.tasks = tasks
        dims = {len(v) for v in emb.values() if v is not None}
        self.emb_dim = dims.pop() if len(dims) == 1 else 0
        A = arch_features(space, space.all_array())
        self._arch_feats = A
        D = np.zeros((len(rows), self.emb_dim + 1))
        if self.emb_dim:
            for t, v in emb.items():
                if v is not None and len(v) == self.emb_dim:
                    m = task_col == t
                    D[m, :-1] = v
                    D[m, -1] = 1.0
        X = np.concatenate([A[rows], D], axis=1)
        gen = torch.Generator().manual_seed(int(seed))
        torch_state = torch.random.get_rng_state()
        torch.manual_seed(int(seed))
        dims_ = [X.shape[1]] + [hidden] * layers + [1]
        mods: list = []
        for i in range(len(dims_) - 1):
            mods.append(torch.nn.Linear(dims_[i], dims_[i + 1]))
            if i + 2 < len(dims_):
                mods.append(torch.nn.ReLU())
        self.net = torch.nn.Sequential(*mods)
        torch.random.set_rng_state(torch_state)
        Xt = torch.as_tensor(X, dtype=torch.float32)
        yt = torch.as_tensor(y, dtype=torch.float32)
        opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        n = len(yt)
        for _ in range(int(epochs)):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, batch_size):
                idx = perm[s:s + batch_size]
                opt.zero_grad()
                loss = ((self.net(Xt[idx]).squeeze(-1) - yt[idx]) ** 2).mean()
                loss.backward()
                opt.step()
        self.net.eval()
        self.n_train = int(n)

    def predict(self, archs, sample_features: Any = None) -> np.ndarray:
        """Predicted within-task percentile of ``archs`` on a task with ``sample_features``
        (``None``: the "no data" input)."""
        import torch

        a = np.asarray(archs, dtype=np.int64).reshape(-1, self.space.n_edges)
        A = arch_features(self.space, a)
        D = np.zeros((len(a), self.emb_dim + 1))
        v = dataset_embedding(sample_features) if self.emb_dim else None
        if v is not None and len(v) == self.emb_dim:
            D[:, :-1] = v
            D[:, -1] = 1.0
        with torch.no_grad():
            X = torch.as_tensor(np.concatenate([A, D], axis=1), dtype=torch.float32)
            return self.net(X).squeeze(-1).numpy().astype(np.float64)


def get_predictor(space: CellSpace, md, exclude: str | None, seed: int, md_key: str,
                  **config) -> MetaPredictor:
    key = (space.name, exclude, md_key, int(seed), tuple(sorted(config.items())))
    if key not in PREDICTOR_CACHE:
        PREDICTOR_CACHE[key] = MetaPredictor(space, md, exclude, seed=seed, **config)
    return PREDICTOR_CACHE[key]


@register("metad2a")
class MetaD2A(Strategy):
    """Rank every candidate with the meta-trained predictor; evaluate them best first.

    Args:
        task: the target task id; it is excluded from meta-training (and its sample features,
            if any, are the predictor's dataset input). ``None``: nothing excluded, no data.
        meta_dataset: ``MetaDataset`` (or a name / path for ``MetaDataset.load``) to
            meta-train on; default every shipped collection.
        predictor_seed: meta-training seed; ``None``: drawn from the strategy's seed.
        hidden, layers, epochs, batch_size, lr, min_task_archs: predictor config.
        exclude_sources: collections left out of meta-training (module doc; default
            ``("digits_live",)``; ``[]`` / ``None``: none). Each must be a collection of the
            meta-dataset or a shipped one.
    """

    #: collections MetaD2A leaves out of meta-training by default (see the module doc)
    DEFAULT_EXCLUDE_SOURCES = ("digits_live",)

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, task: str | None = None,
                 meta_dataset: Any = None, predictor_seed: int | None = None,
                 hidden: int = 128, layers: int = 2, epochs: int = 10, batch_size: int = 1024,
                 lr: float = 3e-3, min_task_archs: int = 2,
                 exclude_sources: Sequence[str] | None = DEFAULT_EXCLUDE_SOURCES) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        m = self.name
        # the predictor config, checked before any meta-dataset is loaded
        config = dict(hidden=integer("hidden", hidden, 1, m),
                      layers=integer("layers", layers, 0, m),  # 0: a linear predictor
                      epochs=integer("epochs", epochs, 1, m),
                      batch_size=integer("batch_size", batch_size, 1, m),
                      lr=positive("lr", lr, m),
                      min_task_archs=integer("min_task_archs", min_task_archs, 1, m))
        if predictor_seed is not None:
            predictor_seed = integer("predictor_seed", predictor_seed, 0, m)
        if meta_dataset is None:
            md, md_key = _shipped_md(), "shipped"
        elif isinstance(meta_dataset, (str, bytes)) or hasattr(meta_dataset, "__fspath__"):
            from ..meta_dataset import MetaDataset

            md, md_key = MetaDataset.load(meta_dataset), f"path:{meta_dataset}"
        else:
            md, md_key = meta_dataset, f"obj:{id(meta_dataset)}"
        config["exclude_sources"] = _check_sources(exclude_sources, md, m)
        self.meta_dataset = md
        self._md_key = md_key
        self.task = (md.resolve_task(task) if task is not None and _resolvable(md, task)
                     else task)
        self._exclude = _excluded(md, space, self.task, config["exclude_sources"], m)
        self.predictor_seed = (int(self.rng.integers(2**31 - 1)) if predictor_seed is None
                               else int(predictor_seed))
        self.config = config
        self._order: list[Arch] | None = None

    @property
    def predictor(self) -> MetaPredictor:
        return get_predictor(self.space, self.meta_dataset, self._exclude, self.predictor_seed,
                             self._md_key, **self.config)

    @property
    def training_tasks(self) -> list[str]:
        return list(self.predictor.tasks)

    def _sample_features(self):
        if self.task is None or self.task not in set(self.meta_dataset.tasks["task"]):
            return None
        return self.meta_dataset.task(self.task).get("sample_features")

    def ranking(self) -> list[Arch]:
        """Every allowed arch, best predicted first (fixed for the whole search)."""
        if self._order is None:
            pool = self.pool()
            pred = self.predictor.predict(self.pool_array(), self._sample_features())
            order = np.lexsort((np.arange(len(pool)), -pred))
            self._order = [pool[int(i)] for i in order]
        return self._order

    def _propose(self, n: int) -> list[Arch]:
        taken = self.seen
        out: list[Arch] = []
        for a in self.ranking():
            if a not in taken:
                out.append(a)
                if len(out) == n:
                    return out
        return out + self.sample_unseen(n - len(out), exclude=set(out))

    @classmethod
    def resolve_setting(cls, key: str, value: Any, space: str) -> Any:
        """``exclude_sources`` identifies a run as a sorted list (a tuple default and a JSON
        list from ``--set`` are the same setting; ``None`` is ``[]``)."""
        if key == "exclude_sources" and (value is None or isinstance(value, (list, tuple))):
            return sorted(set(value or ()), key=str)
        return value

    def _extra_state(self) -> dict[str, Any]:
        return {"predictor_seed": self.predictor_seed}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if state and "predictor_seed" in state:
            if int(state["predictor_seed"]) != self.predictor_seed:
                self.predictor_seed = int(state["predictor_seed"])
                self._order = None


def _check_sources(value: Any, md, method: str) -> tuple[str, ...]:
    """``exclude_sources`` as a sorted tuple of collection names (``None``: none)."""
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)) \
            or not all(isinstance(v, str) for v in value):
        raise UserInputError(f"{method}: exclude_sources must be a list of collection names "
                             f"(e.g. [\"digits_live\"]) or null, got {value!r}")
    from ..meta_dataset import SHIPPED_COLLECTIONS

    known = {source_of(t) for t in md.tasks["task"]} | set(SHIPPED_COLLECTIONS)
    unknown = sorted(set(value) - known)
    if unknown:
        raise UserInputError(f"{method}: exclude_sources {unknown[0]!r} is no collection of "
                             f"the meta-dataset; choose from {', '.join(sorted(known))}")
    return tuple(sorted(set(value)))


def _excluded(md, space: CellSpace, task: Any, exclude_sources: Sequence[str], method: str):
    """What meta-training leaves out for target ``task``: the task itself (its id, as
    always) and every other task of ``md`` that is the same task
    (``metanas.meta_dataset.same_tasks``: a live spec equal to a live-trained task, a user
    table copying a task's values), with a warning; a tuple of ids only in that case, so
    the predictor (and its cache key) is unchanged otherwise."""
    if task is None:
        return None
    from ..meta_dataset import same_tasks

    same = same_tasks(md, task, space=space.name)  # cached on md: not once per seed
    extra = [t for t in same if t != task and source_of(t) not in set(exclude_sources)]
    if not extra:
        return task
    if (str(task), tuple(extra)) not in _SAME_WARNED:  # once per process, not per seed
        _SAME_WARNED.add((str(task), tuple(extra)))
        logger.warning("%s: the target task %r is the same task as %s of the meta-dataset "
                       "(not a transfer setting); left out of meta-training", method, task,
                       ", ".join(extra))
    return tuple(sorted({str(task), *extra}))


def _resolvable(md, task: str) -> bool:
    try:
        md.resolve_task(task)
        return True
    except Exception:
        return False
