"""The ask/tell interface every search method speaks.

A strategy proposes architectures (``ask``) and is told their values (``tell``); it never
evaluates anything itself. The one search loop (``metanas.search.run_search``) and the
benchmark harness treat every method alike through this interface.

Randomness comes only from the ``numpy.random.Generator`` built from ``seed`` (and, for torch
models, a ``torch.Generator`` seeded from it), so a strategy is reproducible per seed and its
whole state (RNG state + observations + method extras) round-trips through ``state_dict``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any, Callable, Sequence

import numpy as np

from ..spaces import Arch, CellSpace


class Strategy:
    """Base class: keeps observations, pending archs and the RNG; subclasses implement
    ``_propose(n)``.

    Subclass contract:
        - ``_propose(n) -> list[Arch]``: ``n`` new archs, ideally not in ``self.seen``
          (observed or pending). Use ``self.rng`` for all randomness.
        - optionally ``_on_tell(archs, values)`` to update internal models, and
          ``_extra_state()`` / ``_load_extra_state(d)`` for state that cannot be re-derived
          from the observations (JSON-serialisable).

    Args:
        space: the search space.
        seed: int or ``numpy.random.Generator``.
        candidates: optional list of archs (e.g. those a partial table covers); when given the
            strategy proposes only from it (``sample_unseen`` draws from it; subclasses use
            ``allowed`` / ``pool``). Config, not state: pass the same list when resuming.

    Attributes:
        space: the search space.
        rng: ``numpy.random.Generator``.
        X: observed archs, in the order told. y: their values (higher is better).
        pending: archs asked but not yet told.
        candidates: the allowed archs or ``None`` (whole space).
    """

    name = "base"
    #: options added after runs were recorded, each with the value that leaves the method
    #: exactly as it was (off): ``run_settings`` leaves an option at that value out, so adding
    #: an opt-in option does not rename (and re-run) every recorded run of the method
    NEUTRAL_SETTINGS: dict[str, Any] = {}

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None) -> None:
        self.space = space
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.X: list[Arch] = []
        self.y: list[float] = []
        self.pending: list[Arch] = []
        #: the only archs this strategy may propose (e.g. the rows of a partial table), in
        #: the given order without duplicates; ``None``: the whole space.
        self.candidates: list[Arch] | None = None
        if candidates is not None:
            cands = list(dict.fromkeys(space.validate(a) for a in candidates))
            if not cands:
                raise ValueError("candidates is empty")
            self.candidates = cands
        self._pool_cache: tuple[list[Arch], np.ndarray, dict[Arch, int]] | None = None

    # ------------------------------------------------------------------ interface
    def ask(self, n: int = 1) -> list[Arch]:
        """``n`` architectures to evaluate next (marked pending until told).

        Atomic: when the proposal fails (an exception from ``_propose``, e.g. a surrogate's
        ``RuntimeError``, or a wrong number of archs) exactly what ``_rng_states`` snapshots
        is put back: the state of ``self.rng`` and the method's ``_extra_state()`` (a
        subclass's own generators only where it puts them there or extends the hooks), plus
        ``pending``; the exception is then re-raised, so a retried ``ask`` proposes exactly
        what it would have had the failure never happened. Other attributes ``_propose``
        sets on the way (diagnostics such as ``last_step``) are not put back.
        """
        if n < 1:
            raise ValueError(f"ask(n) needs n >= 1, got {n}")
        snapshot = self._rng_states()
        pending = list(self.pending)
        try:
            archs = [tuple(int(v) for v in a) for a in self._propose(n)]
            if len(archs) != n:
                raise RuntimeError(f"{self.name} proposed {len(archs)} archs, asked for {n}")
        except BaseException:
            self._set_rng_states(snapshot)
            self.pending = pending
            raise
        self.pending.extend(archs)
        return archs

    def tell(self, archs: Sequence[Arch], values: Sequence[float]) -> None:
        """Record the values of ``archs`` (higher is better; NaN / -inf for a failed
        evaluation).

        Archs that were not asked are taken as observations too (a warm start), and an arch
        told twice is observed twice (the harness does so only once every allowed arch is
        taken). Every arch and value is checked before anything changes: an invalid arch
        raises ``InvalidArchitecture``, a value that is not a number ``TypeError``, and the
        strategy is left as it was.
        """
        if len(archs) != len(values):
            raise ValueError(f"tell got {len(archs)} archs and {len(values)} values")
        archs = [self.space.validate(a) for a in archs]
        vals = []
        for a, v in zip(archs, values):
            try:
                vals.append(float(v))
            except (TypeError, ValueError) as exc:
                raise TypeError(f"tell: the value of {a} is {v!r}, not a number (use NaN for "
                                f"a failed evaluation)") from exc
        for a in archs:
            if a in self.pending:
                self.pending.remove(a)
        self.X.extend(archs)
        self.y.extend(vals)
        self._on_tell(archs, vals)

    # ------------------------------------------------------------------ helpers
    @property
    def seen(self) -> set[Arch]:
        """Observed or pending archs."""
        return set(self.X) | set(self.pending)

    @property
    def incumbent(self) -> tuple[Arch, float] | None:
        """The best finite observation ``(arch, value)`` (the first of equal ones); ``None``
        when nothing finite is observed (a failed NaN / inf evaluation is never the best)."""
        y = np.asarray(self.y, dtype=np.float64)
        if not np.isfinite(y).any():
            return None
        i = int(np.argmax(np.where(np.isfinite(y), y, -np.inf)))
        return self.X[i], self.y[i]

    def sample_unseen(self, n: int, exclude: set[Arch] | None = None,
                      max_tries: int = 1000) -> list[Arch]:
        """``n`` distinct uniform archs (of ``candidates`` when set) not in ``seen`` (nor
        ``exclude``). Only once every allowed arch is taken are repeats returned.

        Whole space: rejection sampling from ``space.sample``; after ``max_tries * n``
        rejections the remaining unseen archs are listed and drawn from directly.
        Candidates: drawn without replacement from the unseen candidates.
        """
        taken = self.seen | set(exclude or ())
        out: list[Arch] = []
        if self.candidates is not None:
            free = [a for a in self.candidates if a not in taken]
            k = min(n, len(free))
            if k:
                out = [free[int(i)] for i in self.rng.choice(len(free), size=k, replace=False)]
            while len(out) < n:  # exhausted: repeats
                out.append(self.candidates[int(self.rng.integers(len(self.candidates)))])
            return out
        tries = 0
        while len(out) < n:
            a = self.space.sample(self.rng, 1)[0]
            tries += 1
            if a not in taken:
                out.append(a)
                taken.add(a)
            elif tries > max_tries * n:
                free = [b for b in self.pool() if b not in taken]
                if free:
                    a = free[int(self.rng.integers(len(free)))]
                out.append(a)  # a repeat only when the space is exhausted
                taken.add(a)
        return out

    # ------------------------------------------------------------------ candidate pool
    def _pool(self) -> tuple[list[Arch], np.ndarray, dict[Arch, int]]:
        if self._pool_cache is None:
            if self.candidates is not None:
                archs = list(self.candidates)
                arr = np.asarray(archs, dtype=np.int64).reshape(len(archs), self.space.n_edges)
            else:
                archs = self.space.enumerate()
                arr = np.asarray(self.space.all_array())
            self._pool_cache = (archs, arr, {a: i for i, a in enumerate(archs)})
        return self._pool_cache

    def pool(self) -> list[Arch]:
        """Every arch this strategy may propose: ``candidates``, else the whole space (in
        index order)."""
        return self._pool()[0]

    def pool_array(self) -> np.ndarray:
        """``pool()`` as an ``[N, n_edges]`` int array (same order)."""
        return self._pool()[1]

    def pool_index(self, arch: Arch) -> int | None:
        """Row of ``arch`` in ``pool()``, ``None`` when it is not allowed."""
        return self._pool()[2].get(tuple(arch))

    def allowed(self, arch: Arch) -> bool:
        """Whether ``arch`` may be proposed (in ``candidates``, or any arch of the space)."""
        if self.candidates is None:
            return True
        return tuple(arch) in self._pool()[2]

    def nearest_unseen(self, arch: Arch, exclude: set[Arch] | None = None) -> list[Arch]:
        """Allowed archs not in ``seen`` (nor ``exclude``) at the smallest Hamming distance
        (>= 1) from ``arch``, in pool order; empty when every allowed arch is taken."""
        taken = self.seen | set(exclude or ())
        archs, arr, index = self._pool()
        dist = (arr != np.asarray(arch, dtype=np.int64)).sum(axis=1)
        rows = [index[a] for a in taken if a in index]
        dist[rows] = 0
        dist[dist == 0] = self.space.n_edges + 1
        d = int(dist.min())
        if d > self.space.n_edges:
            return []
        return [archs[int(i)] for i in np.nonzero(dist == d)[0]]

    def initial_quota(self, n: int, n_init: int) -> int:
        """How many of the next ``n`` proposals still belong to a model-based method's initial
        design of ``n_init`` archs (all ``n`` while fewer than two finite values are known)."""
        if int(np.isfinite(np.asarray(self.y, dtype=np.float64)).sum()) < 2:
            return n
        return min(n, max(0, n_init - len(self.X) - len(self.pending)))

    def pick_greedy(self, n: int, out: list[Arch], score: Callable[[np.ndarray], Any],
                    believe: Callable[[Arch], None]) -> list[Arch]:
        """Fill ``out`` up to ``n`` archs by greedy acquisition over ``pool()``.

        ``score(rows)`` gives the acquisition value of pool rows ``rows`` (``[m]`` ints ->
        ``[m]`` floats; NaN counts as -inf); the argmax (ties broken with ``self.rng``) is
        taken, then ``believe(arch)`` lets the model account for it as pending (Kriging
        believer) before the next pick. Observed, pending and already chosen archs are never
        picked; when the pool is exhausted the rest is filled by ``sample_unseen``.
        """
        free = np.ones(len(self.pool()), dtype=bool)
        for a in self.seen | set(out):
            i = self.pool_index(a)
            if i is not None:
                free[i] = False
        pool = self.pool()
        while len(out) < n:
            rows = np.nonzero(free)[0]
            if rows.size == 0:  # every allowed arch is taken: repeats
                out += self.sample_unseen(n - len(out), exclude=set(out))
                break
            vals = np.asarray(score(rows), dtype=np.float64)
            vals = np.where(np.isnan(vals), -np.inf, vals)
            top = np.flatnonzero(vals == vals.max())
            j = int(rows[top[int(self.rng.integers(top.size))]])
            out.append(pool[j])
            free[j] = False
            if len(out) < n:
                believe(pool[j])
        return out

    @classmethod
    def resolve_setting(cls, key: str, value: Any, space: str) -> Any:
        """A constructor setting as it identifies a run (``run_settings``); identity here."""
        return value

    def _propose(self, n: int) -> list[Arch]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _propose")

    def _on_tell(self, archs: list[Arch], values: list[float]) -> None:
        pass

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

    def _rng_states(self) -> dict[str, Any]:
        """What a failed ``ask`` restores (``_set_rng_states``): the state of ``self.rng`` and
        a copy of ``_extra_state()`` (seeds drawn and cached, a sub-strategy's generator,
        warm-start hyper-parameters, ...). Reads only, so a successful ``ask`` is unchanged.
        A subclass keeping another generator across calls (e.g. a ``torch.Generator``) or
        other state ``_propose`` changes extends both hooks."""
        return {"rng": copy.deepcopy(self.rng.bit_generator.state),
                "extra": copy.deepcopy(self._extra_state())}

    def _set_rng_states(self, states: dict[str, Any]) -> None:
        """Put back what ``_rng_states`` returned."""
        self.rng.bit_generator.state = states["rng"]
        self._load_extra_state(states["extra"])

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; ``load_state_dict`` on a fresh instance continues the
        exact same trajectory."""
        return {
            "name": self.name,
            "rng": self.rng.bit_generator.state,
            "X": [list(a) for a in self.X],
            "y": list(self.y),
            "pending": [list(a) for a in self.pending],
            "extra": self._extra_state(),
            "candidates": self._candidates_digest(),
        }

    def _candidates_digest(self) -> str | None:
        """Fingerprint of ``candidates`` (``None`` for the whole space), checked on resume."""
        if self.candidates is None:
            return None
        return hashlib.sha1(json.dumps(self.candidates).encode()).hexdigest()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state of {state.get('name')!r} cannot be loaded into {self.name!r}")
        if "candidates" in state and state["candidates"] != self._candidates_digest():
            raise ValueError(f"state of {self.name!r} was saved with another candidates list "
                             f"(or with/without one); resume with the same candidates")
        self.rng.bit_generator.state = state["rng"]
        self.X = [tuple(a) for a in state["X"]]
        self.y = [float(v) for v in state["y"]]
        self.pending = [tuple(a) for a in state["pending"]]
        self._load_extra_state(state.get("extra", {}))


# ---------------------------------------------------------------------- registry
_REGISTRY: dict[str, Callable[..., Strategy]] = {}


def register(name: str):
    """Class decorator adding a strategy to the registry under ``name``."""

    def deco(cls):
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return deco


def available() -> list[str]:
    return sorted(_REGISTRY)


def constructor_params(name: str) -> set[str]:
    """Keyword arguments strategy ``name`` accepts (e.g. ``task`` for transfer methods)."""
    import inspect

    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; choose from {', '.join(available())}")
    return set(inspect.signature(_REGISTRY[name]).parameters)


def _plain(v: Any) -> bool:
    if v is None or isinstance(v, (str, bool, int, float)):
        return True
    if isinstance(v, (list, tuple)):
        return all(_plain(x) for x in v)
    if isinstance(v, dict):
        return all(isinstance(k, str) and _plain(x) for k, x in v.items())
    return False


def run_settings(name: str, space: str, kwargs: dict | None = None) -> dict:
    """What defines a run of strategy ``name`` on ``space`` besides its seed: the constructor's
    defaults (those that are plain JSON values) overridden by ``kwargs``, each value passed
    through the class's ``resolve_setting`` (e.g. ``tnas``'s ``pretrained="auto"`` -> the
    shipped checkpoint folder). The harness names run checkpoints by it, so a changed default
    or setting never reuses an old run. An option at its ``NEUTRAL_SETTINGS`` value (off, the
    method as before the option existed) is left out."""
    import inspect

    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; choose from {', '.join(available())}")
    cls = _REGISTRY[name]
    out = {k: p.default for k, p in inspect.signature(cls).parameters.items()
           if k not in ("space", "seed") and p.default is not inspect.Parameter.empty
           and _plain(p.default)}
    out.update(kwargs or {})
    neutral = cls.NEUTRAL_SETTINGS
    return {k: cls.resolve_setting(k, v, space) for k, v in out.items()
            if not (k in neutral and v == neutral[k])}


def make(name: str, space: CellSpace, seed: int | np.random.Generator = 0, **kwargs) -> Strategy:
    """Strategy ``name`` on ``space``; ``kwargs`` go to its constructor (its config)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; choose from {', '.join(available())}")
    return _REGISTRY[name](space, seed=seed, **kwargs)
