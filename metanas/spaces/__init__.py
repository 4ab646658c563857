"""Search spaces: ``get(name)`` returns a (cached) space instance."""

from __future__ import annotations

from functools import lru_cache

from .base import Arch, CellSpace, InvalidArchitecture
from .nb201 import NB201Space
from .transnas import TransNASMicroSpace

_SPACES = {"nb201": NB201Space, "transnas_micro": TransNASMicroSpace}
ALIASES = {"nasbench201": "nb201", "nb-201": "nb201", "transnas": "transnas_micro",
           "transnas-micro": "transnas_micro", "tnb101_micro": "transnas_micro"}


def names() -> list[str]:
    return sorted(_SPACES)


def get(name: str) -> CellSpace:
    """Space by registry id (``nb201``, ``transnas_micro``; a few aliases), one shared instance."""
    key = ALIASES.get(name.lower(), name.lower())
    if key not in _SPACES:
        raise KeyError(f"unknown search space {name!r}; choose one of {', '.join(names())}")
    return _instance(key)


@lru_cache(maxsize=None)
def _instance(key: str) -> CellSpace:
    return _SPACES[key]()


__all__ = ["Arch", "CellSpace", "InvalidArchitecture", "NB201Space", "TransNASMicroSpace",
           "get", "names"]
