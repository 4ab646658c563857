"""ANASOD: search over operation distributions (Wan, Ru, Esperança et al., "Approximate Neural
Architecture Search via Operation Distribution Learning", WACV 2022).

The ANASOD encoding of a cell is the share of its edges carrying each op, a point of the
``k``-simplex (``metanas.spaces.encodings.opdist``). A point ``p`` of the simplex is decoded to
integer op counts with the source's rounding rule (``round_to_counts``: floor, then the
``N - sum floor`` largest fractional parts get one more edge) and then to an architecture drawn
uniformly among those with exactly these counts (a uniformly shuffled assignment of the op
multiset to the edges). Three strategies:

``anasod-rs``
    ``p ~ Dir(1, ..., 1)`` (uniform on the simplex), rounded, one arch sampled per encoding.
``anasod-biased-rs``
    ``p ~ Dir(alpha)``, ``alpha_i = k * beta_t * p*_i + 1`` around the incumbent's encoding
    ``p*``; ``beta_t`` annealed linearly from 0 to ``beta_max`` over ``anneal_steps``
    proposals (exploration first, exploitation later).
``anasod-bo`` (Algorithm 2 of the source)
    ``n_init`` random encodings from ``Dir(1)``; then each step fits an exact GP
    (``metanas.surrogates.gp``, Matern-5/2 ARD) on the (encoding, value) pairs, draws a pool of
    ``pool_size`` encodings from the *encoding-generating distribution* ``Dir(alpha)`` (the
    biased-RS form around the incumbent encoding with concentration ``beta``; ``beta = 0``
    = uniform), rounds them to the count grid (duplicates merged), takes the encoding of
    largest expected improvement (log-EI) and evaluates ONE architecture sampled from it.
    ``beta`` is adapted TuRBO-style (line 9): after ``success_tol`` consecutive improvements
    of the incumbent it is halved (broader pool, more exploration), after ``failure_tol``
    consecutive non-improvements it is doubled (pool concentrated on the incumbent), within
    ``[beta_min, beta_max]``; it starts at ``beta0`` once the model phase begins.

Unseen archs: a sampled arch already observed / pending is redrawn (up to 50 times per
encoding); if every arch of an encoding is taken the next encoding is drawn (for BO: the next
best one). With ``candidates`` an encoding is decoded to a uniform unseen candidate with those
counts, or, when none has them, to an unseen candidate whose counts are nearest in L1 distance.

State: biased-RS needs only the RNG and observations; BO keeps ``beta``, the streak counters
and the GP hyperparameters in ``_extra_state`` (exact resume).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from ..spaces import Arch, CellSpace
from ..spaces.encodings import opdist, round_to_counts
from ._checks import at_least, integer, optional_positive
from .acquisition import incumbent
from .base import Strategy, register


class _AnasodBase(Strategy):
    """Shared decoding: simplex point -> counts -> one unseen arch with these counts."""

    max_arch_tries = 50

    def _counts_of_pool(self) -> np.ndarray:
        if getattr(self, "_pool_counts", None) is None:
            arr = self.pool_array()
            self._pool_counts = np.stack([(arr == o).sum(axis=1)
                                          for o in range(self.space.n_ops)], axis=1)
        return self._pool_counts

    def dirichlet(self, alpha: np.ndarray, n: int = 1) -> np.ndarray:
        return self.rng.dirichlet(np.asarray(alpha, dtype=np.float64), size=n)

    def to_counts(self, p: np.ndarray) -> np.ndarray:
        return round_to_counts(np.asarray(p, dtype=np.float64), self.space.n_edges)

    def arch_from_counts(self, counts: np.ndarray, taken: set[Arch]) -> Arch | None:
        """A uniform unseen arch with op counts ``counts`` (``None`` if all are taken)."""
        counts = np.asarray(counts, dtype=np.int64)
        if self.candidates is not None:
            pc = self._counts_of_pool()
            pool = self.pool()
            exact = np.nonzero((pc == counts).all(axis=1))[0]
            free = [pool[int(i)] for i in exact if pool[int(i)] not in taken]
            if free:
                return free[int(self.rng.integers(len(free)))]
            return None
        ops = np.repeat(np.arange(self.space.n_ops), counts)
        for _ in range(self.max_arch_tries):
            a = tuple(int(v) for v in self.rng.permutation(ops))
            if a not in taken:
                return a
        return None

    def nearest_counts_arch(self, counts: np.ndarray, taken: set[Arch]) -> Arch | None:
        """Unseen allowed arch whose counts are nearest (L1) to ``counts``."""
        pc = self._counts_of_pool()
        pool = self.pool()
        d = np.abs(pc - np.asarray(counts)[None, :]).sum(axis=1).astype(float)
        for a in taken:
            i = self.pool_index(a)
            if i is not None:
                d[i] = np.inf
        if not np.isfinite(d).any():
            return None
        best = np.nonzero(d == d.min())[0]
        return pool[int(best[int(self.rng.integers(len(best)))])]

    def decode(self, p: np.ndarray, taken: set[Arch]) -> Arch | None:
        """An unseen arch for simplex point ``p`` (see the module doc)."""
        counts = self.to_counts(p)
        a = self.arch_from_counts(counts, taken)
        if a is None and self.candidates is not None:
            a = self.nearest_counts_arch(counts, taken)
        return a

    def sample_from(self, alpha: np.ndarray, n: int, exclude: set[Arch] | None = None
                    ) -> list[Arch]:
        """``n`` distinct unseen archs (not in ``exclude``), each from a fresh
        ``p ~ Dir(alpha)``."""
        out: list[Arch] = []
        exclude = set(exclude or ())
        taken = self.seen | exclude
        for _ in range(n):
            a = None
            for _ in range(20):
                a = self.decode(self.dirichlet(alpha)[0], taken)
                if a is not None:
                    break
            if a is None:
                a = self.sample_unseen(1, exclude=exclude | set(out))[0]
            out.append(a)
            taken.add(a)
        return out

    def incumbent_encoding(self) -> np.ndarray | None:
        inc = self.incumbent  # the best finite observation; None when there is none
        if inc is None:
            return None
        return opdist(self.space, [inc[0]])[0]

    def concentration(self, beta: float) -> np.ndarray:
        """``alpha_i = k * beta * p*_i + 1`` (uniform when ``beta = 0`` or nothing observed)."""
        k = self.space.n_ops
        p = self.incumbent_encoding()
        if p is None:
            return np.ones(k)
        return k * float(beta) * p + 1.0


@register("anasod-rs")
class AnasodRS(_AnasodBase):
    """Random search on the ANASOD encoding: ``p ~ Dir(1)``, one arch per encoding."""

    def _propose(self, n: int) -> list[Arch]:
        return self.sample_from(np.ones(self.space.n_ops), n)


@register("anasod-biased-rs")
class AnasodBiasedRS(_AnasodBase):
    """Biased random search: ``p ~ Dir(k beta_t p* + 1)`` around the incumbent encoding.

    Args:
        beta_max: final concentration ``beta_T``.
        anneal_steps: proposals over which ``beta_t`` grows linearly from 0 to ``beta_max``.
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, beta_max: float = 10.0,
                 anneal_steps: int = 100) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        self.beta_max = at_least("beta_max", beta_max, 0, self.name)
        self.anneal_steps = integer("anneal_steps", anneal_steps, 1, self.name)

    def beta(self, t: int) -> float:
        """``beta_t`` at proposal ``t`` (0-based)."""
        return self.beta_max * min(1.0, t / self.anneal_steps)

    def _propose(self, n: int) -> list[Arch]:
        out: list[Arch] = []
        for _ in range(n):
            t = len(self.X) + len(self.pending) + len(out)
            alpha = self.concentration(self.beta(t))
            out += self.sample_from(alpha, 1, exclude=set(out))
        return out


@register("anasod-bo")
class AnasodBO(_AnasodBase):
    """GP-BO on the ANASOD encoding (Algorithm 2 of the source; see the module doc).

    Args:
        n_init: random encodings (``Dir(1)``) before the first GP step.
        pool_size: encodings drawn from the encoding-generating distribution per step.
        beta0: concentration once the model phase starts; ``beta_min`` / ``beta_max`` bound it.
        success_tol, failure_tol: streak lengths that halve / double ``beta``.
        fit_maxiter, fit_ftol: GP fit settings.
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, n_init: int = 10,
                 pool_size: int = 200, beta0: float = 1.0, beta_min: float = 0.125,
                 beta_max: float = 64.0, success_tol: int = 2, failure_tol: int = 5,
                 fit_maxiter: int = 100, fit_ftol: float | None = 1e-6) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        m = self.name
        self.n_init = integer("n_init", n_init, 1, m)
        self.pool_size = integer("pool_size", pool_size, 1, m)
        #: 0: the pool stays uniform (``Dir(1)``) in the model phase, never adapted
        self.beta0 = at_least("beta0", beta0, 0, m)
        self.beta_min = at_least("beta_min", beta_min, 0, m)
        self.beta_max = at_least("beta_max", beta_max, self.beta_min, m, "beta_min")
        self.success_tol = integer("success_tol", success_tol, 1, m)
        self.failure_tol = integer("failure_tol", failure_tol, 1, m)
        self.fit_maxiter = integer("fit_maxiter", fit_maxiter, 1, m)
        self.fit_ftol = optional_positive("fit_ftol", fit_ftol, m)
        self.beta = 0.0            # 0 = uniform Dirichlet (initial phase)
        self.n_success = 0
        self.n_failure = 0
        self._best = -math.inf     # incumbent value the streaks compare with
        self._hp: dict[str, Any] | None = None
        #: history of beta after each tell (diagnostics and tests; part of the state)
        self.beta_history: list[float] = []

    # ------------------------------------------------------------------ trust-region rule
    def _on_tell(self, archs: list[Arch], values: list[float]) -> None:
        for v in values:
            improved = math.isfinite(v) and v > self._best
            if improved:
                self._best = v
            if self.beta > 0.0:  # streaks count in the model phase only
                self.update_beta(improved)
        if self.beta == 0.0 and len(self.X) >= self.n_init:
            self.beta = self.beta0
            self.n_success = self.n_failure = 0
        self.beta_history.append(self.beta)

    def update_beta(self, improved: bool) -> None:
        """TuRBO-style: ``success_tol`` successes in a row halve ``beta``, ``failure_tol``
        failures in a row double it (counters reset on a change)."""
        if self.beta == 0.0:
            return
        if improved:
            self.n_success += 1
            self.n_failure = 0
        else:
            self.n_failure += 1
            self.n_success = 0
        if self.n_success >= self.success_tol:
            self.beta = max(self.beta_min, self.beta / 2.0)
            self.n_success = 0
        elif self.n_failure >= self.failure_tol:
            self.beta = min(self.beta_max, self.beta * 2.0)
            self.n_failure = 0

    # ------------------------------------------------------------------ proposals
    def _fit(self):
        import torch

        from ..surrogates.gp import (CandidatePosterior, build_gp, fit_gp,
                                     hyperparameters_to_json, quiet_warnings)

        y = np.asarray(self.y, dtype=np.float64)
        ok = np.isfinite(y)
        X = torch.as_tensor(opdist(self.space, [a for a, k in zip(self.X, ok) if k]))
        seed = int(self.rng.integers(2**31 - 1))
        gp = build_gp(X, torch.as_tensor(y[ok]))
        res = fit_gp(gp, init=self._hp, fallback=self._hp, maxiter=self.fit_maxiter,
                     ftol=self.fit_ftol, seed=seed)
        if res.ok:
            self._hp = hyperparameters_to_json(res.hp)
        with quiet_warnings():
            return CandidatePosterior(gp), float(y[ok].max())

    def encoding_pool(self) -> np.ndarray:
        """Distinct rounded encodings (counts ``[m, k]``) drawn from ``Dir(alpha)``."""
        alpha = self.concentration(self.beta)
        P = self.dirichlet(alpha, self.pool_size)
        counts = self.to_counts(P)
        _, first = np.unique(counts, axis=0, return_index=True)
        return counts[np.sort(first)]

    def _propose(self, n: int) -> list[Arch]:
        n_finite = int(np.isfinite(np.asarray(self.y, dtype=np.float64)).sum())
        n_random = max(0, self.n_init - len(self.X) - len(self.pending))
        if n_finite < 2:
            n_random = n
        out = self.sample_from(np.ones(self.space.n_ops), min(n, n_random)) if n_random else []
        if len(out) == n:
            return out
        import torch
        from botorch.acquisition.analytic import LogExpectedImprovement

        from ..surrogates.gp import quiet_warnings

        model, best_f = self._fit()
        counts = self.encoding_pool()
        with torch.no_grad(), quiet_warnings():
            acq = LogExpectedImprovement(model, best_f=incumbent(best_f))
            X = torch.as_tensor(counts / self.space.n_edges, dtype=torch.float64)
            vals = acq(X.unsqueeze(-2)).numpy()
        vals = np.where(np.isnan(vals), -np.inf, vals)
        order = np.lexsort((self.rng.random(len(vals)), -vals))
        taken = self.seen | set(out)
        for i in order:
            if len(out) == n:
                break
            a = self.arch_from_counts(counts[int(i)], taken)
            if a is None:
                continue
            out.append(a)
            taken.add(a)
        while len(out) < n:  # every arch of the pool's encodings is taken
            a = None
            if self.candidates is not None:
                a = self.nearest_counts_arch(counts[int(order[0])], taken)
            if a is None:
                a = self.sample_unseen(1, exclude=set(out))[0]
            out.append(a)
            taken.add(a)
        return out

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        return {"beta": self.beta, "n_success": self.n_success, "n_failure": self.n_failure,
                "best": self._best if math.isfinite(self._best) else None, "hp": self._hp,
                "beta_history": list(self.beta_history)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self.beta = float(state["beta"])
        self.n_success = int(state["n_success"])
        self.n_failure = int(state["n_failure"])
        self._best = -math.inf if state.get("best") is None else float(state["best"])
        self._hp = state.get("hp")
        self.beta_history = [float(b) for b in state.get("beta_history", [])]
