"""Cell search spaces.

An architecture is an immutable tuple of op indices, one per edge of a small DAG cell
(``Arch = tuple[int, ...]``): hashable, cheap, and the same object every module speaks.

The protocol every space implements (``CellSpace`` is the implementation shared by the
NAS-Bench-201 and TransNAS-Bench-101-micro cells):

=================  ==================================================================
``name``            registry id, e.g. ``"nb201"``
``ops``             op names, index = op id
``edges``           ``[(src, dst), ...]`` in the order of the arch tuple
``to_str/from_str`` the benchmark's own string form (round trip)
``index/from_index`` the benchmark's official index (finite spaces)
``size``            number of architectures
``enumerate()``     every architecture, in index order
``sample(rng, n)``  ``n`` uniform archs from a ``numpy.random.Generator``
``mutate(arch, rng)`` one random edge changed to another op
``neighbours(arch)`` every arch at Hamming distance 1
``canonical(arch)`` representative of the isomorphism class (same computed function)
``iso_key(arch)``   string identifying the isomorphism class
``to_graph(arch)``  ``torch_geometric.data.Data`` for a DAG encoder (op nodes)
=================  ==================================================================
"""

from __future__ import annotations

from functools import cached_property
from itertools import product
from typing import Iterable, Sequence

import numpy as np

Arch = tuple[int, ...]

#: op names whose semantics matter for isomorphism
NONE_OP = "none"
SKIP_OP = "skip_connect"


class InvalidArchitecture(ValueError):
    """Raised for an architecture string / tuple that is not in the space."""


def _op_index(x) -> int:
    """``x`` as an ``int`` when it is an integer (an ``int``, a numpy / torch integer, an
    integral float or a digit string); ``TypeError`` / ``ValueError`` otherwise."""
    import operator

    if isinstance(x, (bool, np.bool_)):
        raise TypeError(f"{x!r} is a bool")
    try:
        return operator.index(x)
    except TypeError:
        pass
    if isinstance(x, str):
        return int(x)
    f = float(x)
    if not f.is_integer():
        raise ValueError(f"{x!r} is not an integer")
    return int(f)


def _check_rng(rng) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                        f"got {type(rng).__name__}")


class CellSpace:
    """A cell of ``n_nodes`` nodes where every edge ``i -> j`` (``i < j``) carries one op.

    Node 0 is the cell input, node ``n_nodes - 1`` the output; every intermediate node sums
    its incoming edges. Edge order is fixed per space (``edges``) and defines the arch tuple.

    Args:
        name: registry id.
        ops: op names; ``"none"`` (zero) and ``"skip_connect"`` (identity) are understood
            by ``canonical``.
        edges: ``(src, dst)`` pairs in arch-tuple order; must be topologically sorted by dst.
        index_table: optional ``[size, n_edges]`` int array giving the official index order;
            without it the index is the base-``len(ops)`` enumeration.
    """

    def __init__(
        self,
        name: str,
        ops: Sequence[str],
        edges: Sequence[tuple[int, int]],
        index_table: np.ndarray | None = None,
    ) -> None:
        self.name = name
        self.ops = tuple(ops)
        self.edges = tuple((int(s), int(d)) for s, d in edges)
        if any(s >= d for s, d in self.edges) or list(self.edges) != sorted(
                self.edges, key=lambda e: e[1]):
            raise ValueError(f"edges of {name} must go from a lower to a higher node and be "
                             f"sorted by destination: {self.edges}")
        self.n_nodes = 1 + max(d for _, d in self.edges)
        self.n_edges = len(self.edges)
        self.n_ops = len(self.ops)
        self._index_table = None if index_table is None else np.asarray(index_table, dtype=np.int64)
        if self._index_table is not None and self._index_table.shape != (self.size, self.n_edges):
            raise ValueError(f"index table of {name} has shape {self._index_table.shape}, "
                             f"expected {(self.size, self.n_edges)}")

    # ------------------------------------------------------------------ basics
    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.size} archs)"

    @property
    def size(self) -> int:
        return self.n_ops ** self.n_edges

    def validate(self, arch: Iterable[int]) -> Arch:
        """Return ``arch`` as a tuple of ints or raise ``InvalidArchitecture`` (also for a
        non-integral value such as ``1.5``, which would otherwise be truncated)."""
        try:
            a = tuple(_op_index(x) for x in arch)
        except (TypeError, ValueError) as exc:
            raise InvalidArchitecture(f"{arch!r} is not a tuple of op indices") from exc
        if len(a) != self.n_edges or any(x < 0 or x >= self.n_ops for x in a):
            raise InvalidArchitecture(
                f"{arch!r} is not a {self.name} architecture: need {self.n_edges} op indices in "
                f"0..{self.n_ops - 1}")
        return a

    # ------------------------------------------------------------------ strings
    def to_str(self, arch: Arch) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def from_str(self, text: str) -> Arch:  # pragma: no cover - overridden
        raise NotImplementedError

    def _tuple_from_str(self, text: str) -> Arch | None:
        t = text.strip()
        if t.startswith("(") and t.endswith(")"):
            try:
                return self.validate(int(x) for x in t[1:-1].split(","))
            except (ValueError, InvalidArchitecture):
                return None
        return None

    # ------------------------------------------------------------------ index
    @cached_property
    def _all(self) -> np.ndarray:
        if self._index_table is not None:
            return self._index_table
        return np.array(list(product(range(self.n_ops), repeat=self.n_edges)), dtype=np.int64)

    @cached_property
    def _index_of(self) -> dict[Arch, int]:
        return {tuple(int(v) for v in row): i for i, row in enumerate(self._all)}

    def index(self, arch: Arch) -> int:
        """Official index of ``arch``."""
        return self._index_of[self.validate(arch)]

    def from_index(self, idx: int) -> Arch:
        try:
            i = _op_index(idx)
        except (TypeError, ValueError):
            i = -1
        if not 0 <= i < self.size:
            raise InvalidArchitecture(f"index {idx!r} is not an integer in 0..{self.size - 1} of "
                                      f"{self.name}")
        return tuple(int(v) for v in self._all[i])

    def enumerate(self) -> list[Arch]:
        """Every architecture in official index order."""
        return [tuple(int(v) for v in row) for row in self._all]

    def all_array(self) -> np.ndarray:
        """``[size, n_edges]`` int64 array of every architecture in index order (read-only)."""
        arr = self._all.view()
        arr.flags.writeable = False
        return arr

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: np.random.Generator, n: int = 1) -> list[Arch]:
        """``n`` architectures drawn uniformly (with replacement)."""
        _check_rng(rng)
        ops = rng.integers(0, self.n_ops, size=(n, self.n_edges))
        return [tuple(int(v) for v in row) for row in ops]

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        """Change one uniformly chosen edge to a different, uniformly chosen op."""
        _check_rng(rng)
        a = list(self.validate(arch))
        e = int(rng.integers(self.n_edges))
        new = int(rng.integers(self.n_ops - 1))
        a[e] = new if new < a[e] else new + 1
        return tuple(a)

    def neighbours(self, arch: Arch) -> list[Arch]:
        """Every architecture differing from ``arch`` on exactly one edge (fixed order)."""
        arch = self.validate(arch)
        out = []
        for e in range(self.n_edges):
            for o in range(self.n_ops):
                if o != arch[e]:
                    out.append(arch[:e] + (o,) + arch[e + 1:])
        return out

    # ------------------------------------------------------------------ isomorphism
    def iso_key(self, arch: Arch) -> str:
        """String identifying the isomorphism class of ``arch``.

        NAS-Bench-201's rule (``to_unique_str(consider_zero=True)`` of its API): node 0 is
        ``"0"``; every later node is the sorted ``+``-join of its incoming terms, where an edge
        carrying ``none`` or leaving a zero node (``"#"``) gives ``"#"``, ``skip_connect``
        passes its source expression through and any other op gives ``"(src)@op"``. The key is
        the output node's expression. It gives the 6466 classes of NAS-Bench-201 usually
        quoted (1236 for TransNAS-Bench-101 micro).
        """
        arch = self.validate(arch)
        nodes = ["0"]
        for j in range(1, self.n_nodes):
            terms = []
            for e, (s, d) in enumerate(self.edges):
                if d != j:
                    continue
                op, src = self.ops[arch[e]], nodes[s]
                if op == NONE_OP or src == "#":
                    terms.append("#")
                elif op == SKIP_OP:
                    terms.append(src)
                else:
                    terms.append(f"({src})@{op}")
            nodes.append("+".join(sorted(terms)))
        return nodes[-1]

    def computes_zero(self, arch: Arch) -> bool:
        """Whether the cell's output is identically zero: no path of non-``none`` ops leads
        from the input node to the output node (such a network's prediction does not depend
        on its input; NB201 has 341 such cells, TransNAS micro 169)."""
        arch = self.validate(arch)
        live = [True] + [False] * (self.n_nodes - 1)
        for j in range(1, self.n_nodes):
            live[j] = any(live[s] and self.ops[arch[e]] != NONE_OP
                          for e, (s, d) in enumerate(self.edges) if d == j)
        return not live[-1]

    @cached_property
    def _canonical_map(self) -> dict[str, Arch]:
        best: dict[str, Arch] = {}
        for a in self.enumerate():
            k = self.iso_key(a)
            if k not in best or a < best[k]:
                best[k] = a
        return best

    def canonical(self, arch: Arch) -> Arch:
        """Smallest arch tuple computing the same function as ``arch``."""
        return self._canonical_map[self.iso_key(arch)]

    def n_unique(self) -> int:
        """Number of isomorphism classes."""
        return len(self._canonical_map)

    # ------------------------------------------------------------------ graphs
    @cached_property
    def _graph_edges(self) -> np.ndarray:
        """``[2, E]`` edge index of the op-node DAG (shared by every arch of the space).

        Nodes: 0 = input, ``1..n_edges`` = the op on each cell edge (arch-tuple order, which is
        topological), ``n_edges + 1`` = output. Op node of cell edge ``i -> j`` reads the input
        node if ``i == 0`` else every op node ending in ``i``; it feeds the output if ``j`` is
        the last cell node.
        """
        src, dst = [], []
        out_node = self.n_edges + 1
        for e, (s, d) in enumerate(self.edges):
            if s == 0:
                src.append(0); dst.append(e + 1)
            else:
                for f, (_, d2) in enumerate(self.edges):
                    if d2 == s:
                        src.append(f + 1); dst.append(e + 1)
            if d == self.n_nodes - 1:
                src.append(e + 1); dst.append(out_node)
        return np.array([src, dst], dtype=np.int64)

    @property
    def node_types(self) -> tuple[str, ...]:
        """Node-type vocabulary of ``to_graph``: ``("input", "output", *ops)``."""
        return ("input", "output") + self.ops

    def to_graph(self, arch: Arch):
        """Op-node DAG of ``arch`` as ``torch_geometric.data.Data``.

        ``x``: ``[n_edges + 2, 2 + n_ops]`` one-hot node types (``node_types``), nodes in
        topological order; ``edge_index``: ``[2, E]``; ``node_type``: ``[n_edges + 2]`` ints.
        """
        import torch
        from torch_geometric.data import Data

        types = [0] + [2 + o for o in self.validate(arch)] + [1]
        t = torch.tensor(types, dtype=torch.long)
        x = torch.nn.functional.one_hot(t, num_classes=2 + self.n_ops).float()
        return Data(x=x, edge_index=torch.from_numpy(self._graph_edges.copy()), node_type=t)
