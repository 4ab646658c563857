"""The ask/tell interface every search method speaks.

A strategy proposes architectures (``ask``) and is told their values (``tell``); it never
evaluates anything itself. The one search loop (``metanas.search.run_search``) and the
benchmark harness treat every method alike through this interface.

Randomness comes only from the ``numpy.random.Generator`` built from ``seed`` (and, for torch
models, a ``torch.Generator`` seeded from it), so a strategy is reproducible per seed and its
whole state (RNG state + observations + method extras) round-trips through ``state_dict``.
"""

from __future__ import annotations

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

    Attributes:
        space: the search space.
        rng: ``numpy.random.Generator``.
        X: observed archs, in the order told. y: their values (higher is better).
        pending: archs asked but not yet told.
    """

    name = "base"

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0) -> None:
        self.space = space
        self.rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        self.X: list[Arch] = []
        self.y: list[float] = []
        self.pending: list[Arch] = []

    # ------------------------------------------------------------------ interface
    def ask(self, n: int = 1) -> list[Arch]:
        """``n`` architectures to evaluate next (marked pending until told)."""
        if n < 1:
            raise ValueError(f"ask(n) needs n >= 1, got {n}")
        archs = [tuple(int(v) for v in a) for a in self._propose(n)]
        if len(archs) != n:
            raise RuntimeError(f"{self.name} proposed {len(archs)} archs, asked for {n}")
        self.pending.extend(archs)
        return archs

    def tell(self, archs: Sequence[Arch], values: Sequence[float]) -> None:
        """Record the values of ``archs`` (higher is better)."""
        if len(archs) != len(values):
            raise ValueError(f"tell got {len(archs)} archs and {len(values)} values")
        archs = [tuple(int(v) for v in a) for a in archs]
        for a in archs:
            if a in self.pending:
                self.pending.remove(a)
        self.X.extend(archs)
        self.y.extend(float(v) for v in values)
        self._on_tell(archs, [float(v) for v in values])

    # ------------------------------------------------------------------ helpers
    @property
    def seen(self) -> set[Arch]:
        """Observed or pending archs."""
        return set(self.X) | set(self.pending)

    @property
    def incumbent(self) -> tuple[Arch, float] | None:
        if not self.y:
            return None
        i = int(np.argmax(self.y))
        return self.X[i], self.y[i]

    def sample_unseen(self, n: int, exclude: set[Arch] | None = None,
                      max_tries: int = 1000) -> list[Arch]:
        """``n`` distinct uniform archs not in ``seen`` (nor ``exclude``)."""
        taken = self.seen | (exclude or set())
        out: list[Arch] = []
        tries = 0
        while len(out) < n:
            a = self.space.sample(self.rng, 1)[0]
            tries += 1
            if a not in taken or tries > max_tries * n:
                out.append(a)
                taken.add(a)
        return out

    def _propose(self, n: int) -> list[Arch]:  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} must implement _propose")

    def _on_tell(self, archs: list[Arch], values: list[float]) -> None:
        pass

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass

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
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("name") != self.name:
            raise ValueError(f"state of {state.get('name')!r} cannot be loaded into {self.name!r}")
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


def make(name: str, space: CellSpace, seed: int | np.random.Generator = 0, **kwargs) -> Strategy:
    """Strategy ``name`` on ``space``; ``kwargs`` go to its constructor (its config)."""
    if name not in _REGISTRY:
        raise KeyError(f"unknown method {name!r}; choose from {', '.join(available())}")
    return _REGISTRY[name](space, seed=seed, **kwargs)
