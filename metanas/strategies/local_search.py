"""Local search (White, Nolen, Savani & Abdelfattah, "Local search is state of the art for
neural architecture search benchmarks", 2020; the NASLib ``LocalSearch`` optimiser).

1. evaluate ``n_init`` uniform random archs; the best becomes the centre;
2. evaluate every neighbour of the centre (Hamming distance 1: one edge changed to another
   op) in random order;
3. if the best neighbour beats the centre (strictly), it becomes the centre: go to 2;
4. otherwise the centre is a local optimum: restart from ``n_restart`` new random archs (the
   best becomes the centre) and go to 2.

This is the best-improvement variant of the paper; neighbours observed before (e.g. by an
earlier climb) are not re-evaluated: their known values count, which costs no budget.
A non-finite value (a failed evaluation: NaN, or +-inf) counts as ``-inf``, the worst: it
never becomes the centre nor beats one.
Defaults (``n_init=10``, ``n_restart=1``) are NASLib's: ten random archs give a fair start,
and a single random arch per restart spends the budget on climbing.

With ``candidates`` the neighbours of an arch are the allowed archs at Hamming distance 1, or,
if there is none, the allowed archs at the smallest distance there is (so a sparse table still
has a neighbourhood).

Batches (``ask(n)``) pop several neighbours at once; when a decision (best start arch, best
neighbour) waits on pending evaluations, the remaining slots are filled with random unseen
archs (added to the start set during a (re)start, plain exploration during a climb).

State (phase, start set, centre, queue of neighbours still to evaluate) is in
``_extra_state``; the RNG and observations in the base state.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..spaces import Arch, CellSpace
from ._checks import integer
from .base import Strategy, register


@register("ls")
class LocalSearch(Strategy):
    """Best-improvement local search with random restarts.

    Args:
        n_init: random archs evaluated before the first climb.
        n_restart: random archs evaluated at each restart (the best starts the climb).
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, n_init: int = 10,
                 n_restart: int = 1) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        self.n_init = integer("n_init", n_init, 1, self.name)
        self.n_restart = integer("n_restart", n_restart, 1, self.name)
        self._phase = "start"          # "start" (random starting archs) | "climb"
        self._to_start = self.n_init   # random starting archs still to propose
        self._start: list[Arch] = []   # starting archs of the current (re)start
        self._center: Arch | None = None
        self._queue: list[Arch] = []   # unevaluated neighbours of the centre, in visit order
        self.n_restarts = 0

    # ------------------------------------------------------------------ neighbourhood
    def neighbours(self, arch: Arch) -> list[Arch]:
        """Neighbourhood of ``arch`` (fixed order; see module doc for ``candidates``)."""
        nb = self.space.neighbours(arch)
        if self.candidates is None:
            return nb
        nb = [a for a in nb if self.allowed(a)]
        if nb:
            return nb
        arr = self.pool_array()
        dist = (arr != np.asarray(arch, dtype=np.int64)).sum(axis=1)
        dist[dist == 0] = self.space.n_edges + 1
        d = int(dist.min())
        if d > self.space.n_edges:
            return []
        pool = self.pool()
        return [pool[int(i)] for i in np.nonzero(dist == d)[0]]

    # ------------------------------------------------------------------ state machine
    def _values(self) -> dict[Arch, float]:
        vals: dict[Arch, float] = {}
        for a, v in zip(self.X, self.y):
            v = float(v) if np.isfinite(v) else -np.inf  # a failed evaluation is the worst
            vals[a] = max(v, vals.get(a, -np.inf))
        return vals

    def _set_center(self, arch: Arch, taken: set[Arch]) -> None:
        self._center = arch
        self._phase = "climb"
        todo = [a for a in self.neighbours(arch) if a not in taken]
        self._queue = [todo[int(i)] for i in self.rng.permutation(len(todo))]

    def _next_action(self, vals: dict[Arch, float], taken: set[Arch]) -> str:
        """Advance the search as far as the known values allow; returns ``"start"``
        (propose a random starting arch), ``"pop"`` (propose the next neighbour) or
        ``"wait"`` (a decision needs pending values)."""
        while True:
            if self._phase == "start":
                if self._to_start > 0:
                    return "start"
                if any(a not in vals for a in self._start):
                    return "wait"
                self._set_center(max(self._start, key=lambda a: vals[a]), taken)
                continue
            self._queue = [a for a in self._queue if a not in taken]
            if self._queue:
                return "pop"
            nb = self.neighbours(self._center)
            if any(a not in vals for a in nb if a in taken):
                return "wait"  # a neighbour is still pending
            known = [a for a in nb if a in vals]
            best = max(known, key=lambda a: vals[a]) if known else None
            if best is not None and vals[best] > vals[self._center]:
                self._set_center(best, taken)
                continue
            # local optimum: restart
            self._phase, self._start, self._to_start = "start", [], self.n_restart
            self._center, self._queue = None, []
            self.n_restarts += 1

    def _propose(self, n: int) -> list[Arch]:
        vals = self._values()
        out: list[Arch] = []
        while len(out) < n:
            taken = self.seen | set(out)
            act = self._next_action(vals, taken)
            if act == "pop":
                a = self._queue.pop(0)
            else:
                a = self.sample_unseen(1, exclude=set(out))[0]
                if act == "start":
                    self._to_start -= 1
                    self._start.append(a)
                elif self._phase == "start":
                    self._start.append(a)  # filler while start values are pending
            out.append(a)
        return out

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        return {"phase": self._phase, "to_start": self._to_start,
                "start": [list(a) for a in self._start],
                "center": None if self._center is None else list(self._center),
                "queue": [list(a) for a in self._queue], "n_restarts": self.n_restarts}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        if not state:
            return
        self._phase = state["phase"]
        self._to_start = int(state["to_start"])
        self._start = [tuple(a) for a in state["start"]]
        self._center = None if state["center"] is None else tuple(state["center"])
        self._queue = [tuple(a) for a in state["queue"]]
        self.n_restarts = int(state.get("n_restarts", 0))
