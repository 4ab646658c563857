"""Fixed architecture encodings, batched over many archs.

All functions take a space and a sequence of archs (or an ``[n, n_edges]`` int array) and
return a float64 array ``[n, dim]``.

- ``onehot``: per-edge one-hot of the op, ``dim = n_edges * n_ops``.
- ``path``: BANANAS path encoding. One feature per (input->output path of the cell, sequence of
  ops along it) with no ``none`` op on it; 1 if the arch realises it.
  ``dim = sum over paths of (n_ops - 1) ** len(path)`` (100 for NB201, 48 for TransNAS micro).
- ``opdist``: ANASOD operation-distribution encoding, the share of edges carrying each op
  (a point on the simplex), ``dim = n_ops``. ``round_to_counts`` maps any point of the simplex
  back to integer op counts with the rounding rule of the ANASOD source.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np

from .base import NONE_OP, Arch, CellSpace


def as_array(space: CellSpace, archs: Sequence[Arch] | np.ndarray) -> np.ndarray:
    """``[n, n_edges]`` int64 array of op indices."""
    a = np.asarray(archs, dtype=np.int64)
    if a.ndim == 1:
        a = a.reshape(0, space.n_edges) if a.size == 0 else a[None, :]
    if a.ndim != 2 or a.shape[-1] != space.n_edges:
        raise ValueError(f"expected archs with {space.n_edges} edges, got shape {a.shape}")
    if a.size and (a.min() < 0 or a.max() >= space.n_ops):
        raise ValueError(f"op indices must be in 0..{space.n_ops - 1} for {space.name}, got "
                         f"{int(a.min())}..{int(a.max())}")
    return a


def onehot(space: CellSpace, archs) -> np.ndarray:
    a = as_array(space, archs)
    out = np.zeros((a.shape[0], space.n_edges, space.n_ops))
    np.put_along_axis(out, a[:, :, None], 1.0, axis=2)
    return out.reshape(a.shape[0], space.n_edges * space.n_ops)


@lru_cache(maxsize=None)
def cell_paths(space: CellSpace) -> tuple[tuple[int, ...], ...]:
    """Every input->output path of the cell as a tuple of edge indices, shortest first."""
    last = space.n_nodes - 1

    def walk(node: int) -> list[list[int]]:
        if node == last:
            return [[]]
        paths = []
        for e, (s, d) in enumerate(space.edges):
            if s == node:
                paths += [[e] + rest for rest in walk(d)]
        return paths

    return tuple(sorted((tuple(p) for p in walk(0)), key=lambda p: (len(p), p)))


def path_dim(space: CellSpace) -> int:
    k = space.n_ops - 1
    return sum(k ** len(p) for p in cell_paths(space))


def path(space: CellSpace, archs) -> np.ndarray:
    a = as_array(space, archs)
    none = space.ops.index(NONE_OP)
    k = space.n_ops - 1
    # op index without "none": ops above it shift down by one
    shifted = np.where(a > none, a - 1, a)
    out = np.zeros((a.shape[0], path_dim(space)))
    offset = 0
    for p in cell_paths(space):
        ops = a[:, list(p)]
        alive = (ops != none).all(axis=1)
        code = np.zeros(a.shape[0], dtype=np.int64)
        for e in p:
            code = code * k + shifted[:, e]
        rows = np.nonzero(alive)[0]
        out[rows, offset + code[rows]] = 1.0
        offset += k ** len(p)
    return out


def opdist(space: CellSpace, archs) -> np.ndarray:
    a = as_array(space, archs)
    counts = np.stack([(a == o).sum(axis=1) for o in range(space.n_ops)], axis=1)
    return counts / space.n_edges


def round_to_counts(p: np.ndarray, n_edges: int) -> np.ndarray:
    """Integer op counts summing to ``n_edges`` closest to ``p * n_edges`` (``p``: ``[..., n_ops]``
    on the simplex). Largest-remainder rounding: floor every entry, then give the remaining
    edges to the ops with the largest fractional parts (ties to the lower op index)."""
    p = np.asarray(p, dtype=np.float64)
    scaled = p / p.sum(axis=-1, keepdims=True) * n_edges
    base = np.floor(scaled).astype(np.int64)
    rest = n_edges - base.sum(axis=-1)
    frac = scaled - base
    order = np.argsort(-frac, axis=-1, kind="stable")
    ranks = np.argsort(order, axis=-1, kind="stable")
    return base + (ranks < rest[..., None]).astype(np.int64)


ENCODINGS = {"onehot": onehot, "path": path, "opdist": opdist}


def encode(space: CellSpace, archs, name: str = "onehot") -> np.ndarray:
    """Encoding ``name`` (``onehot``, ``path``, ``opdist``) of ``archs``: ``[n, dim]``."""
    try:
        fn = ENCODINGS[name]
    except KeyError:
        raise KeyError(f"unknown encoding {name!r}; choose one of {', '.join(ENCODINGS)}") from None
    return fn(space, archs)
