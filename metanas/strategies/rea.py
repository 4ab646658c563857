"""Regularised evolution (aging evolution; Real et al., AAAI 2019).

A population of the ``population_size`` most recently evaluated archs. The first
``population_size`` proposals are uniform random; afterwards every proposal samples
``tournament_size`` members without replacement, mutates the best (``space.mutate``: one
random edge to another op) and, once evaluated, the child joins the population while the
oldest member leaves ("aging": the population is simply the last ``population_size``
observations).

Defaults (``population_size=20``, ``tournament_size=5``) are picked for budgets of 50-200
evaluations on NAS-Bench-201-sized cells (15625 / 4096 archs): the 10+ random archs of a
small population keep the initial phase short (NASLib and the NAS-Bench-201 paper use
populations of 10-100 for budgets of ~100-1000), and a tournament of a quarter of the
population is the selection pressure of the original paper (P=100, S=25), which is also what
regularised evolution is reported to be robust to.

Batches (``ask(n)``): every child comes from its own tournament over the current population
(pending archs are not members yet), as with asynchronous workers in the paper.

Mutations never repeat an observed or pending arch: ``space.mutate`` is retried (rejection
keeps the child uniform over the parent's unseen neighbours); if every neighbour is taken, or
with ``candidates``, the child is drawn uniformly from the allowed unseen archs nearest to the
parent in Hamming distance (equal in distribution to rejection-sampled mutation when any
neighbour is free).

State: the population is derived from the observations and the RNG is in the base state, so
no extra state is needed for an exact resume.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from ..spaces import Arch, CellSpace
from ._checks import integer
from .base import Strategy, register


@register("rea")
class RegularizedEvolution(Strategy):
    """Regularised (aging) evolution.

    Args:
        population_size: archs kept in the population (the most recent observations); the
            first ``population_size`` proposals are random.
        tournament_size: members sampled (without replacement) per tournament; the best of
            them is mutated. Clipped to the current population size.
        max_mutation_tries: ``space.mutate`` draws before falling back to the nearest
            unseen arch.
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, population_size: int = 20,
                 tournament_size: int = 5, max_mutation_tries: int = 50) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        self.population_size = integer("population_size", population_size, 1, self.name)
        self.tournament_size = integer("tournament_size", tournament_size, 1, self.name)
        #: 0: every child is drawn from the unseen archs nearest to its parent
        self.max_mutation_tries = integer("max_mutation_tries", max_mutation_tries, 0,
                                          self.name)

    def population(self) -> tuple[list[Arch], list[float]]:
        """Current population: the last ``population_size`` observations (oldest first)."""
        p = self.population_size
        return self.X[-p:], self.y[-p:]

    def _propose(self, n: int) -> list[Arch]:
        out: list[Arch] = []
        for _ in range(n):
            n_asked = len(self.X) + len(self.pending) + len(out)
            if n_asked < self.population_size or not self.X:
                a = self.sample_unseen(1, exclude=set(out))[0]
            else:
                a = self._child(self._tournament(), set(out))
            out.append(a)
        return out

    def _tournament(self) -> Arch:
        pop, vals = self.population()
        k = min(self.tournament_size, len(pop))
        idx = self.rng.choice(len(pop), size=k, replace=False)
        # first of equals in draw order; a failed (NaN / inf) member never wins over a
        # finite one (a NaN compares False both ways, so max kept it whenever drawn first)
        best = max(idx, key=lambda i: vals[int(i)] if math.isfinite(vals[int(i)])
                   else -math.inf)
        return pop[int(best)]

    def _child(self, parent: Arch, exclude: set[Arch]) -> Arch:
        taken = self.seen | exclude
        if self.candidates is None:
            for _ in range(self.max_mutation_tries):
                c = self.space.mutate(parent, self.rng)
                if c not in taken:
                    return c
        near = self.nearest_unseen(parent, exclude)
        if near:
            return near[int(self.rng.integers(len(near)))]
        return self.sample_unseen(1, exclude=exclude)[0]  # exhausted: a repeat
