"""ProxyBO: Bayesian optimisation with zero-cost proxies fused by dynamic, data-driven weights
(Shen et al., "ProxyBO: Accelerating Neural Architecture Search via Bayesian Optimization with
Zero-cost Proxies", AAAI 2023; Algorithms 1-2, Eq. 7-8).

Each step (Algorithm 2 + Algorithm 1 "Sample"):

1. while ``|D| < n_init`` (5 in the paper): a uniform random unseen arch;
2. generalisation score of every proxy ``P_i`` from the observations ``D`` (Eq. 5-6):
   ``G(P; D) = 2 F / (|D| (|D| - 1))`` where ``F`` counts the pairs ``(j, k)`` ordered the same
   way by the proxy and by the observed values (pairs where either side is tied count 1/2, so a
   constant proxy scores 0.5, "chance"); only the observed archs the proxy has a score for enter
   (0.5 when fewer than 2 have one);
3. generalisation score of the surrogate ``M`` (exact GP, ``metanas.surrogates.gp``, on the
   one-hot encoding by default): the same pair agreement between the observed values and the
   ``k``-fold cross-validated GP predictions (each arch predicted by the GP conditioned on the
   other folds). The folds reuse the hyperparameters fitted on all of ``D`` (closed-form
   conditioning, no refit per fold): refitting ``k`` GPs per step would cost ``k`` times
   more for a ranking statistic that hardly moves;
4. weights ``I = softmax(G / tau)`` over the ``K`` proxies and the surrogate with the
   temperature ``tau = tau0 / (1 + log T)`` (Eq. 8), ``T`` the iteration (= ``|D|``), so the
   weights sharpen over the search;
5. ``Q`` sampled candidates (``n_random`` uniform unseen archs + ``n_local`` mutations of the
   ``n_incumbents`` best archs: one or two edges changed), ranked by the GP's expected
   improvement (``R_M``) and by each proxy (``R_{P_i}``; rank 1 = best); combined rank
   ``CR = I_M R_M + sum_i I_{P_i} R_{P_i}`` (Eq. 7); the candidate with the lowest ``CR`` is
   proposed (ties broken at random; ``ask(n)`` takes the ``n`` lowest).

**Proxy source** (``proxies=``): a ``ProxyProvider`` giving ``[n, K]`` scores of archs (NaN
where unknown, ``-inf`` where the proxy failed):

- ``TableProxyProvider(task)``: the shipped tables of the meta-dataset (benchmark mode):
  NAS-Bench-Suite-Zero scores for ~725 NB201 / 711 TransNAS archs per task, ``zen`` for all
  4096 TransNAS archs, and on NB201 the full-space ``digits_synflow_log``, ``digits_nwot``,
  ``digits_jacob_cov`` (all 15625 cells, ``meta_datasets/nb201/proxies_digits.parquet``).
  Default proxies (``proxies=None``): **the full-space ones when the task has them** — every
  proxy with a row (a score or a failed, NaN, computation) for >= 99% of the space's cells
  (``FULL_SPACE_COVERAGE``), provided their finite scores jointly cover >= 99% of the cells
  too — so the candidates are the whole space; on NB201 that selects the three ``digits_*``
  proxies (``digits_nwot`` fails, ``-inf``, on 201 of the cells whose output is cut off from
  the input, the other two score them). Otherwise the paper's ``synflow``, ``jacov``
  (jacob_cov), ``snip``, plus ``zen`` where the task has it (TransNAS: ``zen`` has a row for every cell but is NaN on
  169 = 4.1%, so it does not count as full-space and TransNAS keeps these defaults).
- ``LiveProxyProvider(names)``: computed with ``metanas.proxies`` on a (small, by default
  ``NetworkConfig.small()``) cell network and the offline digits batch, cached per arch.
- ``FunctionProvider({name: fn(space, archs) -> array})``: any callable (tests, user
  scores).

The string ``"table"`` builds a ``TableProxyProvider`` for the ``task`` kwarg, ``"live"`` a
``LiveProxyProvider`` with its defaults, a list of names ``TableProxyProvider(task,
proxies=[...])`` (so ``adapt.py --set 'proxybo.proxies=["synflow","nwot"]'`` works).

**Partial proxy tables** (``coverage=``): the published NB201 tables score only ~725 of the
15625 cells (moot by default on NB201 now that the full-space ``digits_*`` are selected; still
relevant for ``proxies=[...published names...]``). ``"restrict"`` (default) lets ProxyBO propose only archs the provider scores with at
least one proxy (intersected with ``candidates``): on NB201 that is the ~725 archs of the
published table (which still hold a top-0.03% / 0.01% / 0.08% cell of CIFAR-10 / CIFAR-100 /
ImageNet16-120), on TransNAS 3947 of the 4096 cells (``zen`` is stored for all, but is NaN, a
failed computation, on 169 degenerate cells: mean accuracy 26.5% vs 39.4% on class_object,
0.05% vs 79.5% on jigsaw; both tasks' optima are covered). This matches NASLib's convention of
treating a failed proxy as the worst score.

**Failed vs unknown scores.** A ``-inf`` score (a failed computation with a documented worst
value, e.g. NASWOT's singular kernel) ranks last among the candidates and counts as the lowest
score in ``G`` (``+inf`` the highest); only NaN means unknown. The shipped ``digits_nwot``
column stores its ``-inf`` as NaN; ``TableProxyProvider`` reads those back as ``-inf``
(``NAN_IS_WORST``). A candidate lacking one proxy's score (NaN) gets that proxy's mean rank
("neutral": that proxy does not discriminate it), and ``G`` of a proxy uses only the observed
archs it scores. ``"neutral"`` searches the whole space
with that same neutral rank for unscored archs (on NB201 the proxies then inform only ~5% of
the candidates, so the method is close to plain GP-BO there). A provider covering the whole
space (``LiveProxyProvider``, ``FunctionProvider``) makes both modes equal.

**Cost.** Proxy scores are free here: they are not counted as evaluations (the budget counts
only the benchmark's evaluations), as in the paper. They are not free to make: the full NB201
``digits_*`` table took 19 min to build (``meta_datasets/build_proxies.py``: 1148 s wall, two
worker processes on 2 shared cores, ~0.15 s per cell per process), and the live provider,
which uses that same setting (three proxies, C=8 N=1 network, digits batch), costs ~0.1-0.3 s
per new arch; the five proxies of ``benchmarks/proxy_correlation.py`` on the full-size NB201
network (C=16, N=5) cost 1.7 s per arch.

State: the GP hyperparameters (warm start / fallback) are in ``_extra_state``; the weights are
re-derived from the observations, so a resumed run continues the exact same trajectory.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import UserInputError
from ..spaces import Arch, CellSpace
from ..spaces.encodings import ENCODINGS, encode
from ._checks import integer, one_of, optional_positive, positive
from .acquisition import incumbent
from .base import Strategy, register

logger = logging.getLogger(__name__)

#: proxies ProxyBO uses from a shipped table by default (the paper's three + zen where present)
DEFAULT_TABLE_PROXIES = ("synflow", "jacov", "snip", "zen")
#: proxies a LiveProxyProvider computes by default
DEFAULT_LIVE_PROXIES = ("synflow_log", "nwot", "jacob_cov")


# ---------------------------------------------------------------------- proxy providers
class ProxyProvider:
    """Source of zero-cost proxy scores (higher is better). Subclasses set ``names`` and
    implement ``scores``; ``covered`` says which archs have at least one score."""

    names: tuple[str, ...] = ()

    def scores(self, space: CellSpace, archs: Sequence[Arch]) -> np.ndarray:
        """``[len(archs), len(names)]`` float64 scores, NaN where unknown."""
        raise NotImplementedError

    def covered(self, space: CellSpace) -> set[Arch] | None:
        """Archs scored by at least one proxy; ``None``: every arch of the space."""
        return None


@lru_cache(maxsize=8)
def _str_index(space_name: str) -> dict[str, int]:
    from ..spaces import get as get_space

    sp = get_space(space_name)
    return {sp.to_str(a): i for i, a in enumerate(sp.enumerate())}


@lru_cache(maxsize=4)
def _shipped(collection: str | None):
    from ..meta_dataset import MetaDataset

    return MetaDataset.load(collection)


#: share of the space's cells a table must cover to count as full-space (default selection)
FULL_SPACE_COVERAGE = 0.99

#: table columns whose NaN is a lost ``-inf``, the measure's documented worst score, not an
#: unknown: ``meta_datasets/build_proxies.py`` stores every non-finite score as NaN, and
#: ``metanas.proxies.measures.nwot`` is ``-inf`` exactly when its kernel is singular (it never
#: gives NaN or ``+inf``, and ``compute_many`` does not catch errors). Checked on the shipped
#: table: the 201 NaN cells of ``digits_nwot`` (the same for the three NB201 tasks) all
#: compute the zero function (``CellSpace.computes_zero``) and all 201 recompute to ``-inf``.
#: The published NAS-Bench-Suite-Zero ``nwot`` NaNs (3 on NB201) are of unknown cause: unknown.
NAN_IS_WORST = frozenset({"digits_nwot"})


def _full_space_proxies(md: Any, task: str, available: Sequence[str], size: int) -> list[str]:
    """The task's proxies with a row (a score or a failed NaN) for >= ``FULL_SPACE_COVERAGE``
    of the space's cells, provided their finite scores jointly cover that share too; else
    ``[]``."""
    full, tables = [], []
    for p in available:
        s = md.proxy_table(task, p)
        if s.index.nunique() >= FULL_SPACE_COVERAGE * size:
            full.append(p)
            tables.append(s[np.isfinite(s.to_numpy(dtype=np.float64))])
    if not full:
        return []
    scored = set().union(*(set(t.index) for t in tables))
    return full if len(scored) >= FULL_SPACE_COVERAGE * size else []


class TableProxyProvider(ProxyProvider):
    """Scores from a meta-dataset's ``proxies`` table for one task.

    Scores are as stored; ``-inf`` / ``+inf`` are the worst / best score, a NaN (or no row)
    is unknown, except in the columns of ``NAN_IS_WORST`` (``digits_nwot``): there a stored
    NaN is a singular NASWOT kernel that the table builder saved as NaN, so it is read back as
    ``-inf``, the worst score (an arch without a row stays unknown).

    Args:
        task: task id (``"nb201/cifar10"``, ``"transnas_micro/jigsaw"``...).
        proxies: proxy names of the table; ``None``: the task's full-space proxies if it has
            some (rows for >= 99% of the cells whose finite scores jointly cover >= 99%, e.g.
            NB201's ``digits_*``), else ``DEFAULT_TABLE_PROXIES`` that the task has (every
            proxy of the task if it has none of them).
        meta_dataset: where the table lives (default: the shipped collection of the task).
    """

    def __init__(self, task: str, proxies: Sequence[str] | None = None,
                 meta_dataset: Any = None) -> None:
        if meta_dataset is None:
            prefix = task.split("/", 1)[0] if "/" in task else None
            try:
                meta_dataset = _shipped(prefix)
            except Exception:  # not a collection name: every shipped collection
                meta_dataset = _shipped(None)
        md = meta_dataset
        self.task = md.resolve_task(task)
        available = md.proxy_names(self.task)
        self.space_name = str(md.task(self.task)["space"])
        index = _str_index(self.space_name)
        from ..spaces import get as get_space

        size = get_space(self.space_name).size
        if proxies is None:
            proxies = _full_space_proxies(md, self.task, available, size) or \
                [p for p in DEFAULT_TABLE_PROXIES if p in available] or available
        if not proxies:
            raise ValueError(f"task {self.task!r} has no proxy scores")
        self.names = tuple(proxies)
        self._table = np.full((size, len(self.names)), np.nan)
        for k, p in enumerate(self.names):
            s = md.proxy_table(self.task, p)
            rows = np.array([index[a] for a in s.index], dtype=np.int64)
            v = s.to_numpy(dtype=np.float64)
            if p in NAN_IS_WORST:
                v = np.where(np.isnan(v), -np.inf, v)
            self._table[rows, k] = v
        self._covered_rows = np.nonzero((~np.isnan(self._table)).any(axis=1))[0]

    def scores(self, space: CellSpace, archs: Sequence[Arch]) -> np.ndarray:
        rows = [space.index(a) for a in archs]
        return self._table[rows]

    def covered(self, space: CellSpace) -> set[Arch] | None:
        if len(self._covered_rows) == space.size:
            return None
        return {space.from_index(int(i)) for i in self._covered_rows}

    @property
    def coverage(self) -> np.ndarray:
        """Number of archs scored per proxy (``-inf``, a failed score, included)."""
        return (~np.isnan(self._table)).sum(axis=0)


class LiveProxyProvider(ProxyProvider):
    """Proxies computed with ``metanas.proxies.compute_many`` (cached per arch).

    Args:
        names: proxy names of ``metanas.proxies`` (default ``DEFAULT_LIVE_PROXIES``).
        batch: ``ProxyBatch``; default ``digits_batch(n=32, size=16)`` (offline digits).
        config: ``NetworkConfig``; default ``NetworkConfig.small()`` with the batch's
            channels / classes.
        seed: network initialisation seed (the same for every arch).
    """

    def __init__(self, names: Sequence[str] = DEFAULT_LIVE_PROXIES, batch: Any = None,
                 config: Any = None, seed: int = 0) -> None:
        self.names = tuple(names)
        self.batch = batch
        self.config = config
        self.seed = int(seed)
        self._cache: dict[tuple[str, Arch], np.ndarray] = {}

    def _setup(self):
        from ..nn.cell_network import NetworkConfig
        from ..proxies import digits_batch

        if self.batch is None:
            self.batch = digits_batch(n=32, size=16)
        if self.config is None:
            small = NetworkConfig.small()
            self.config = NetworkConfig(C=small.C, N=small.N,
                                        in_channels=int(self.batch.inputs.shape[1]),
                                        num_classes=int(self.batch.num_classes))

    def scores(self, space: CellSpace, archs: Sequence[Arch]) -> np.ndarray:
        from ..proxies import compute_many

        archs = [tuple(a) for a in archs]
        todo = list(dict.fromkeys(a for a in archs if (space.name, a) not in self._cache))
        if todo:
            self._setup()
            res = compute_many(self.names, todo, space, batch=self.batch, config=self.config,
                               seed=self.seed)
            for i, a in enumerate(todo):
                row = np.array([res[n][i] for n in self.names], dtype=np.float64)
                self._cache[(space.name, a)] = row
        return np.stack([self._cache[(space.name, a)] for a in archs]) if archs else \
            np.zeros((0, len(self.names)))


class FunctionProvider(ProxyProvider):
    """Scores from callables ``{name: fn(space, archs) -> array [n]}`` (NaN = unknown,
    ``-inf`` = worst)."""

    def __init__(self, fns: Mapping[str, Callable[[CellSpace, Sequence[Arch]], Any]]) -> None:
        self.fns = dict(fns)
        if not self.fns:
            raise ValueError("proxybo: proxies must name at least one proxy function, got {}")
        for name, fn in self.fns.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError(f"proxybo: proxies must map names to callables "
                                f"fn(space, archs) -> scores, got {name!r}: {fn!r}")
        self.names = tuple(self.fns)

    def scores(self, space: CellSpace, archs: Sequence[Arch]) -> np.ndarray:
        if not len(archs):
            return np.zeros((0, len(self.names)))
        cols = [np.asarray(fn(space, list(archs)), dtype=np.float64).reshape(-1)
                for fn in self.fns.values()]
        return np.stack(cols, axis=1)


# ---------------------------------------------------------------------- statistics
def rank_agreement(scores: np.ndarray, y: np.ndarray) -> float:
    """``G = 2F / (n (n - 1))``: share of pairs the scores order like ``y`` (Eq. 5-6). Pairs
    tied in either counts 1/2; NaN scores (unknown) and non-finite ``y`` are left out, a
    ``-inf`` / ``+inf`` score is the lowest / highest (tied with an equal one); 0.5 when fewer
    than 2 remain."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    ok = ~np.isnan(s) & np.isfinite(y)
    s, y = s[ok], y[ok]
    n = len(s)
    if n < 2:
        return 0.5
    if not np.isfinite(s).all():  # order-preserving finite stand-ins (inf - inf is NaN)
        s = _rank_average(s)
    ds = np.sign(s[:, None] - s[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(n, 1)
    prod = (ds * dy)[iu]
    agree = (prod > 0).sum() + 0.5 * (prod == 0).sum()
    return float(agree / len(prod))


def softmax_weights(G: np.ndarray, tau: float) -> np.ndarray:
    z = np.asarray(G, dtype=np.float64) / float(tau)
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def temperature(tau0: float, T: int) -> float:
    """``tau = tau0 / (1 + log T)`` (Eq. 8), ``T >= 1``."""
    return float(tau0) / (1.0 + math.log(max(1, int(T))))


def _rank_average(x: np.ndarray) -> np.ndarray:
    """Ascending ranks 1..n, ties get their mean rank (``scipy.stats.rankdata`` "average")."""
    sorter = np.argsort(x, kind="mergesort")
    inv = np.empty_like(sorter)
    inv[sorter] = np.arange(len(x))
    xs = x[sorter]
    obs = np.r_[True, xs[1:] != xs[:-1]]
    dense = obs.cumsum()[inv]
    count = np.r_[np.nonzero(obs)[0], len(obs)]
    return 0.5 * (count[dense] + count[dense - 1] + 1)


def ranks_desc(v: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Rank 1 = largest; ties share their mean rank (``+inf`` is the largest, ``-inf`` the
    smallest, a failed score); NaN entries (unknown) get the mean rank of all (neutral)."""
    v = np.asarray(v, dtype=np.float64)
    out = np.empty(len(v))
    ok = ~np.isnan(v)
    if ok.any():
        out[ok] = _rank_average(-v[ok])
        # scale the scored ranks to the 1..n range of all candidates
        m = int(ok.sum())
        if m > 1 and m < len(v):
            out[ok] = 1 + (out[ok] - 1) * (len(v) - 1) / (m - 1)
    out[~ok] = (len(v) + 1) / 2.0
    return out


# ---------------------------------------------------------------------- strategy
@register("proxybo")
class ProxyBO(Strategy):
    """ProxyBO (see the module doc).

    Args:
        proxies: a ``ProxyProvider``, ``"table"`` (shipped table of ``task``), ``"live"``, a
            list of proxy names of the shipped table of ``task`` (``["synflow", "nwot"]``), or
            a dict ``{name: fn(space, archs)}`` (callables); ``None``: the shipped table of
            ``task`` when it has one (the harness passes ``task=bench.task``), else
            ``"live"``.
        task: target task id (for ``"table"``).
        coverage: ``"restrict"`` (propose only archs with a proxy score) or ``"neutral"``
            (see the module doc).
        n_init: random archs while ``|D| < n_init`` (paper: 5).
        tau0: initial softmax temperature of Eq. 8.
        n_random, n_local: uniform and local candidates per step (``Q = n_random + n_local``).
        n_incumbents: best archs mutated for the local candidates.
        n_folds: folds of the surrogate's cross-validation.
        encoding: GP encoding (``"onehot"``, ``"path"``, ``"opdist"``).
        fit_maxiter, fit_ftol: GP fit settings (as ``GPBO``).
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, proxies: Any = None,
                 task: str | None = None, coverage: str = "restrict", n_init: int = 5,
                 tau0: float = 0.1, n_random: int = 100, n_local: int = 100,
                 n_incumbents: int = 5, n_folds: int = 5, encoding: str = "onehot",
                 fit_maxiter: int = 100, fit_ftol: float | None = 1e-6) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        m = self.name
        one_of("coverage", coverage, ("restrict", "neutral"), m)
        # settings first: a bad value fails before any proxy table is read
        self.n_init = integer("n_init", n_init, 1, m)
        self.tau0 = positive("tau0", tau0, m)
        self.n_random = integer("n_random", n_random, 0, m)
        self.n_local = integer("n_local", n_local, 0, m)
        self.n_incumbents = integer("n_incumbents", n_incumbents, 1, m)
        self.n_folds = integer("n_folds", n_folds, 2, m)
        self.encoding = one_of("encoding", encoding, ENCODINGS, m)
        self.fit_maxiter = integer("fit_maxiter", fit_maxiter, 1, m)
        self.fit_ftol = optional_positive("fit_ftol", fit_ftol, m)
        self.task = task
        if proxies is None and task is not None:
            try:  # the published table of the task when there is one ...
                proxies = TableProxyProvider(task)
            except Exception as exc:  # unknown task, user table, no proxy scores
                logger.warning("ProxyBO: no proxy table for task %r (%s); computing proxies "
                               "live", task, exc)
                proxies = "live"  # ... else computed on the fly
        if proxies is None:
            proxies = "live"
        if isinstance(proxies, str):
            if proxies not in ("table", "live"):
                raise UserInputError(f"{m}: unknown proxies string {proxies!r}; use 'table' "
                                     f"or 'live'")
            if proxies == "table" and task is None:
                raise ValueError("proxies='table' needs the task id (task=...)")
            proxies = TableProxyProvider(task) if proxies == "table" else LiveProxyProvider()
        elif isinstance(proxies, Mapping):
            proxies = FunctionProvider(proxies)
        elif isinstance(proxies, (list, tuple)):  # proxy names of the task's table
            if not proxies or not all(isinstance(p, str) for p in proxies):
                raise UserInputError(f"{m}: proxies as a list must name the task's table "
                                     f"proxies (strings), got {proxies!r}")
            if task is None:
                raise ValueError(f"proxies={list(proxies)!r} (table proxy names) needs the "
                                 f"task id (task=...)")
            proxies = TableProxyProvider(task, proxies=list(proxies))
        if not isinstance(proxies, ProxyProvider):
            raise TypeError(f"proxies must be a ProxyProvider, 'table', 'live', a list of "
                            f"table proxy names or a dict, not {type(proxies).__name__}")
        self.provider = proxies
        self.coverage = coverage
        self._hp: dict[str, Any] | None = None
        self._restricted: list[Arch] | None = None  # proposable archs when restricting
        if coverage == "restrict":
            cov = proxies.covered(space)
            if cov is not None:
                base = self.candidates if self.candidates is not None else space.enumerate()
                allowed = [a for a in base if a in cov]
                if allowed:
                    self._restricted = allowed
                else:
                    logger.warning("ProxyBO: no candidate has a proxy score; not restricting")
        self._allowed_set = None if self._restricted is None else set(self._restricted)
        #: diagnostics of the last model step (not state)
        self.last_step: dict[str, Any] = {}

    # ------------------------------------------------------------------ helpers
    def _ok(self, a: Arch) -> bool:
        if self._allowed_set is not None:
            return a in self._allowed_set
        return self.allowed(a)

    def _random(self, n: int, exclude: set[Arch]) -> list[Arch]:
        """``n`` distinct unseen proposable archs (fewer only when exhausted)."""
        if n <= 0:  # e.g. n_random=0: local candidates only
            return []
        if self._restricted is None:
            taken = self.seen | exclude
            if self.candidates is None:
                out = []
                for a in self.space.sample(self.rng, 3 * n + 10):
                    if a not in taken:
                        out.append(a)
                        taken.add(a)
                    if len(out) == n:
                        break
                return out
            free = [a for a in self.candidates if a not in taken]
        else:
            taken = self.seen | exclude
            free = [a for a in self._restricted if a not in taken]
        k = min(n, len(free))
        return [free[int(i)] for i in self.rng.choice(len(free), size=k, replace=False)] if k else []

    def _local(self, n: int, exclude: set[Arch]) -> list[Arch]:
        """Mutations (1 or 2 edges) of the best observed archs."""
        if not self.X or n <= 0:
            return []
        y = np.asarray(self.y, dtype=np.float64)
        y = np.where(np.isfinite(y), y, -np.inf)
        order = np.argsort(-y, kind="stable")
        parents, seen_p = [], set()
        for i in order:
            if self.X[i] not in seen_p:
                parents.append(self.X[i])
                seen_p.add(self.X[i])
            if len(parents) == self.n_incumbents:
                break
        taken = self.seen | exclude
        out: list[Arch] = []
        for t in range(4 * n):
            p = parents[t % len(parents)]
            c = self.space.mutate(p, self.rng)
            if self.rng.random() < 0.5:
                c = self.space.mutate(c, self.rng)
            if c not in taken and self._ok(c):
                out.append(c)
                taken.add(c)
            if len(out) == n:
                break
        return out

    def proxy_scores(self, archs: Sequence[Arch]) -> np.ndarray:
        return self.provider.scores(self.space, list(archs))

    def _encode(self, archs) -> "Any":
        import torch

        return torch.as_tensor(encode(self.space, np.asarray(archs, dtype=np.int64).reshape(
            -1, self.space.n_edges), self.encoding), dtype=torch.float64)

    # ------------------------------------------------------------------ model
    def _fit(self, X, Y):
        from ..surrogates.gp import (CandidatePosterior, build_gp, fit_gp,
                                     hyperparameters_to_json, quiet_warnings)

        seed = int(self.rng.integers(2**31 - 1))
        gp = build_gp(X, Y)
        res = fit_gp(gp, init=self._hp, fallback=self._hp, maxiter=self.fit_maxiter,
                     ftol=self.fit_ftol, seed=seed)
        if res.ok:
            self._hp = hyperparameters_to_json(res.hp)
        with quiet_warnings():
            return gp, CandidatePosterior(gp)

    def cv_predictions(self, gp) -> np.ndarray:
        """``k``-fold cross-validated posterior means of the training points (standardised
        scale) with the hyperparameters of ``gp`` (closed-form conditioning per fold)."""
        import torch

        X = gp.train_inputs[0]
        y = gp.train_targets
        n = X.shape[0]
        k = min(self.n_folds, n)
        folds = np.arange(n) % k  # deterministic fold assignment (order of observation)
        with torch.no_grad():
            K = gp.covar_module(X).to_dense()
            noise = gp.likelihood.noise.detach().reshape(-1)
            K = K + noise.mean() * torch.eye(n, dtype=K.dtype)
            m = gp.mean_module(X)
            pred = torch.empty(n, dtype=K.dtype)
            for f in range(k):
                te = torch.as_tensor(np.nonzero(folds == f)[0])
                tr = torch.as_tensor(np.nonzero(folds != f)[0])
                Ktr = K[tr][:, tr]
                L, info = torch.linalg.cholesky_ex(Ktr)
                if int(info) != 0:
                    L = torch.linalg.cholesky(Ktr + 1e-6 * torch.eye(len(tr), dtype=K.dtype))
                a = torch.cholesky_solve((y[tr] - m[tr]).unsqueeze(-1), L).squeeze(-1)
                pred[te] = m[te] + K[te][:, tr] @ a
        return pred.numpy()

    def weights(self, G: np.ndarray, T: int) -> np.ndarray:
        return softmax_weights(G, temperature(self.tau0, T))

    # ------------------------------------------------------------------ proposals
    def _propose(self, n: int) -> list[Arch]:
        out: list[Arch] = []
        y_all = np.asarray(self.y, dtype=np.float64)
        ok = np.isfinite(y_all)
        if int(ok.sum()) < self.n_init or int(ok.sum()) < 2:
            out = self._random(n, set())
            if len(out) < n:
                out += self.sample_unseen(n - len(out), exclude=set(out))
            return out
        import torch
        from botorch.acquisition.analytic import LogExpectedImprovement

        from ..surrogates.gp import quiet_warnings

        Xo = [a for a, k in zip(self.X, ok) if k]
        yo = y_all[ok]
        gp, model = self._fit(self._encode(Xo), torch.as_tensor(yo))
        # generalisation scores: surrogate (k-fold CV) and proxies (observed archs)
        G_m = rank_agreement(self.cv_predictions(gp), yo)
        P_obs = self.proxy_scores(Xo)
        G_p = [rank_agreement(P_obs[:, i], yo) for i in range(P_obs.shape[1])]
        G = np.array([G_m] + G_p)
        T = len(Xo)
        w = self.weights(G, T)
        # Q candidates: random + local
        cands = self._random(self.n_random, set())
        cands += self._local(self.n_local, set(cands))
        cands = list(dict.fromkeys(cands))
        if len(cands) < n:
            cands += self._random(n - len(cands), set(cands))
        if not cands:  # every proposable arch is taken: repeats
            return self.sample_unseen(n)
        with torch.no_grad(), quiet_warnings():
            acq = LogExpectedImprovement(model, best_f=incumbent(yo.max()))
            ei = acq(self._encode(cands).unsqueeze(-2)).numpy()
        ei = np.where(np.isnan(ei), -np.inf, ei)
        R = [ranks_desc(np.where(np.isfinite(ei), ei, -1e300))]
        P = self.proxy_scores(cands)
        R += [ranks_desc(P[:, i]) for i in range(P.shape[1])]
        CR = np.asarray(w) @ np.stack(R)
        # lowest combined rank first, exact ties at random
        order = np.lexsort((self.rng.random(len(cands)), CR))
        out = [cands[int(i)] for i in order[:n]]
        if len(out) < n:  # every proposable arch is taken: repeats
            out += self.sample_unseen(n - len(out), exclude=set(out))
        self.last_step = {"G": G.tolist(), "weights": np.asarray(w).tolist(),
                          "tau": temperature(self.tau0, T), "Q": len(cands),
                          "names": ["surrogate", *self.provider.names]}
        return out

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        return {"hp": self._hp}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._hp = state.get("hp")
