"""DAG encoder in the D-VAE style (Zhang et al., NeurIPS 2019), as used by TNAS / MetaD2A.

Asynchronous message passing over a DAG in topological order: a node's hidden state is
computed only once all its predecessors are done,

    m_v = sum_{u in pred(v)} sigmoid(W_g h_u + b_g) * (W_m h_u)        (gated sum)
    h_v = GRU(x_v, m_v)                                                  (m_v = 0 for sources)

forward (input -> output) and, when ``bidirectional``, backward on the reversed edges with its
own gate / mapper / GRU. The graph embedding is ``Linear([h_fwd(output node), h_bwd(input
node)]) -> embed_dim``.

Nodes are processed *level by level* (level = longest path from a source; every predecessor
of a level-``l`` node lies on a level < ``l``), for the whole batch at once, which is exactly
D-VAE's node-by-node order up to the order of independent nodes. Two entry points share one
implementation (one ``MessagePassing`` module with ``node_dim=-2``):

- ``DAGEncoder.forward(batch)``: any DAGs as a torch-geometric ``Data`` / ``Batch`` whose
  nodes are in topological order per graph (first node = input, last node = output).
- ``DAGEncoder.forward_dense(x, edge_index)``: ``B`` graphs sharing one topology (every cell
  of a cell space): ``x`` is ``[B, N, n_node_types]``, ``edge_index`` the ``[2, E]`` template
  over the ``N`` nodes. Levels come from the template, so a level is one GRU call on
  ``[B * n_level, .]``. Encodes all 15625 NAS-Bench-201 cells in a fraction of a second.

``CellArchEncoder`` wraps a ``DAGEncoder`` for a cell space: it maps op-index tuples
``[B, n_edges]`` (the ``Arch`` tuples of ``metanas.spaces``) straight to the dense one-hot
node tensor of ``space.to_graph`` and encodes them, without building ``Data`` objects.

Isomorphic cells (the same function, e.g. an op on an edge whose output is discarded) get
*different* embeddings: the encoder sees the op-node DAG as given, as in TNAS and MetaD2A.
Encode ``space.canonical(arch)`` to give each isomorphism class one embedding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch_geometric.data import Batch, Data
from torch_geometric.nn import MessagePassing

__all__ = ["DAGEncoderConfig", "DAGEncoder", "GatedSumAggregation", "CellArchEncoder",
           "topological_levels", "cell_template", "cell_node_onehots"]


@dataclass
class DAGEncoderConfig:
    """Hyper-parameters of ``DAGEncoder``.

    Attributes:
        n_node_types: size of the one-hot node-type input (``len(space.node_types)``,
            i.e. ``2 + n_ops`` for the cell spaces).
        hidden_dim: GRU hidden size.
        embed_dim: size of the graph embedding.
        bidirectional: add the backward pass (reversed edges) and read out the input node.
    """

    n_node_types: int = 7
    hidden_dim: int = 64
    embed_dim: int = 32
    bidirectional: bool = True

    def __post_init__(self) -> None:
        for k in ("n_node_types", "hidden_dim", "embed_dim"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"DAGEncoderConfig.{k} must be >= 1, got {getattr(self, k)}")


# ---------------------------------------------------------------------- graph helpers
def topological_levels(edge_index: Tensor, num_nodes: int) -> Tensor:
    """Level of every node of a DAG: 0 for sources, else 1 + max level of its predecessors.

    Vectorised longest-path relaxation (``depth + 1`` scatter passes). Raises ``ValueError``
    on a cycle.
    """
    level = torch.zeros(num_nodes, dtype=torch.long, device=edge_index.device)
    if edge_index.numel() == 0:
        return level
    src, dst = edge_index[0], edge_index[1]
    for _ in range(num_nodes + 1):
        new = level.scatter_reduce(0, dst, level[src] + 1, reduce="amax", include_self=True)
        if torch.equal(new, level):
            return level
        level = new
    raise ValueError("edge_index contains a cycle; the DAG encoder needs a DAG")


def cell_template(space) -> tuple[Tensor, Tensor, int]:
    """``(edge_index [2, E], op_node_ids [n_edges], n_nodes)`` of the op-node DAG shared by
    every architecture of a ``CellSpace`` (see ``CellSpace.to_graph``)."""
    g = space.to_graph(tuple([0] * space.n_edges))
    n = int(g.num_nodes)
    return g.edge_index.clone(), torch.arange(1, n - 1), n


def cell_node_onehots(ops: Tensor, n_ops: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot node types ``[B, n_edges + 2, 2 + n_ops]`` of ``space.to_graph`` for op indices
    ``ops`` ``[B, n_edges]`` (node 0 = input (type 0), op nodes ``2 + op``, last = output
    (type 1))."""
    ops = ops.long()
    b = ops.shape[0]
    types = torch.cat([torch.zeros(b, 1, dtype=torch.long, device=ops.device), ops + 2,
                       torch.ones(b, 1, dtype=torch.long, device=ops.device)], dim=1)
    return nn.functional.one_hot(types, num_classes=2 + n_ops).to(dtype)


# ---------------------------------------------------------------------- modules
class GatedSumAggregation(MessagePassing):
    """D-VAE aggregation ``m_v = sum_{u -> v} sigmoid(gate(h_u)) * mapper(h_u)``.

    The gated message depends only on the source node, so it is computed once per node
    (``node_message(h)``, gate and mapper fused in one matmul) rather than once per edge, and
    ``forward(msg, edge_index, n_dst)`` sums the messages of the sources of ``edge_index``
    into ``n_dst`` targets (bipartite: ``edge_index[1]`` indexes the targets) ->
    ``[..., n_dst, H]``. ``node_dim=-2``, so the same module serves ``[N, H]`` (a PyG batch)
    and ``[B, N, H]`` (graphs sharing a topology).
    """

    def __init__(self, hidden_dim: int) -> None:
        super().__init__(aggr="add", node_dim=-2)
        self.gate = nn.Linear(hidden_dim, hidden_dim)
        self.mapper = nn.Linear(hidden_dim, hidden_dim, bias=False)

    def node_message(self, h: Tensor) -> Tensor:
        """``sigmoid(gate(h)) * mapper(h)`` with one fused matmul."""
        w = torch.cat([self.gate.weight, self.mapper.weight], dim=0)
        b = torch.cat([self.gate.bias, torch.zeros_like(self.gate.bias)])
        g, m = nn.functional.linear(h, w, b).chunk(2, dim=-1)
        return torch.sigmoid(g) * m

    def forward(self, msg: Tensor, edge_index: Tensor, n_dst: int) -> Tensor:
        return self.propagate(edge_index, msg=msg, size=(msg.size(-2), n_dst))

    def message(self, msg_j: Tensor) -> Tensor:
        return msg_j


class _Schedule:
    """Level-by-level plan of one direction of a DAG: per level the node ids, the incoming
    edges as ``(source id, position of the target within the level)``, and the level's nodes
    that have out-edges (whose messages later levels read)."""

    def __init__(self, edge_index: Tensor, num_nodes: int) -> None:
        level = topological_levels(edge_index, num_nodes)
        dev = edge_index.device
        self.num_nodes = num_nodes
        self.nodes: list[Tensor] = []
        self.edges: list[Tensor] = []
        self.emit: list[Tensor | None] = []  # positions within the level (None = all)
        pos = torch.empty(num_nodes, dtype=torch.long, device=dev)
        has_out = torch.zeros(num_nodes, dtype=torch.bool, device=dev)
        if edge_index.numel():
            has_out[edge_index[0]] = True
        order = torch.argsort(level, stable=True)
        counts = torch.bincount(level, minlength=1).tolist()
        edge_level = level[edge_index[1]]
        start = 0
        for lvl, c in enumerate(counts):
            nodes = order[start:start + c]
            start += c
            pos[nodes] = torch.arange(c, device=dev)
            e = edge_index[:, edge_level == lvl]
            self.nodes.append(nodes)
            self.edges.append(torch.stack([e[0], pos[e[1]]]))
            out = has_out[nodes]
            self.emit.append(None if bool(out.all()) else out.nonzero().flatten())


def _gru_from_zero(gru: nn.GRUCell, x: Tensor) -> Tensor:
    """``gru(x, 0)`` without the (zero) hidden-to-hidden matmul."""
    i_r, i_z, i_n = nn.functional.linear(x, gru.weight_ih, gru.bias_ih).chunk(3, dim=-1)
    if gru.bias_hh is not None:
        b_r, b_z, b_n = gru.bias_hh.chunk(3)
        i_r, i_z = i_r + b_r, i_z + b_z
        n = torch.tanh(i_n + torch.sigmoid(i_r) * b_n)
    else:
        n = torch.tanh(i_n)
    return (1 - torch.sigmoid(i_z)) * n


class DAGEncoder(nn.Module):
    """D-VAE style asynchronous GRU message passing encoder (see module docstring).

    Shapes:
        ``forward(data)``: ``Data`` / ``Batch`` with ``x [N_total, n_node_types]``,
        ``edge_index [2, E_total]`` (nodes of each graph in topological order; the first node
        of a graph is its input, the last its output) -> ``[num_graphs, embed_dim]``.
        ``forward_dense(x, edge_index)``: ``x [B, N, n_node_types]``, ``edge_index [2, E]``
        shared by all ``B`` graphs (node 0 input, node ``N - 1`` output) -> ``[B, embed_dim]``.
    """

    def __init__(self, config: DAGEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = config = config or DAGEncoderConfig()
        h = config.hidden_dim
        self.agg_fwd = GatedSumAggregation(h)
        self.gru_fwd = nn.GRUCell(config.n_node_types, h)
        if config.bidirectional:
            self.agg_bwd = GatedSumAggregation(h)
            self.gru_bwd = nn.GRUCell(config.n_node_types, h)
        self.readout = nn.Linear(h * (2 if config.bidirectional else 1), config.embed_dim)
        self._template_cache: dict = {}

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    # ------------------------------------------------------------------ core
    def _propagate(self, x: Tensor, sched: _Schedule, agg: GatedSumAggregation,
                   gru: nn.GRUCell) -> Tensor:
        """Hidden states ``[..., N, H]`` of every node, computed level by level.

        ``hid`` / ``msg`` are written in place, one level's rows at a time: autograd-safe
        because no recorded op saves them (``index_select`` / scatter keep only indices).
        """
        lead = x.shape[:-2]
        n, hdim, f = x.size(-2), self.config.hidden_dim, x.size(-1)
        hid = x.new_zeros(*lead, n, hdim)
        msg = x.new_zeros(*lead, n, hdim)
        for nodes, edges, emit in zip(sched.nodes, sched.edges, sched.emit):
            n_l = nodes.numel()
            x_l = x.index_select(-2, nodes).reshape(-1, f)
            if edges.size(1) > 0:
                m = agg(msg, edges, n_l).reshape(-1, hdim)
                h_l = gru(x_l, m)
            else:  # sources only (level 0)
                h_l = _gru_from_zero(gru, x_l)
            h_l = h_l.reshape(*lead, n_l, hdim)
            hid.index_copy_(-2, nodes, h_l)
            if emit is None:
                msg.index_copy_(-2, nodes, agg.node_message(h_l))
            elif emit.numel():
                msg.index_copy_(-2, nodes[emit], agg.node_message(h_l.index_select(-2, emit)))
        return hid

    def _encode(self, x: Tensor, fwd: _Schedule, bwd: _Schedule | None, out_idx: Tensor,
                in_idx: Tensor) -> Tensor:
        hf = self._propagate(x, fwd, self.agg_fwd, self.gru_fwd).index_select(-2, out_idx)
        parts = [hf]
        if self.config.bidirectional:
            hb = self._propagate(x, bwd, self.agg_bwd, self.gru_bwd).index_select(-2, in_idx)
            parts.append(hb)
        return self.readout(torch.cat(parts, dim=-1))

    def _check_x(self, x: Tensor) -> None:
        if x.size(-1) != self.config.n_node_types:
            raise ValueError(f"node features have {x.size(-1)} types, the encoder was built for "
                             f"n_node_types={self.config.n_node_types}")

    # ------------------------------------------------------------------ entry points
    def forward(self, data: Data | Batch) -> Tensor:
        """Embed every graph of a PyG ``Data`` / ``Batch``: ``[num_graphs, embed_dim]``."""
        x = data.x.to(self.readout.weight.dtype)
        self._check_x(x)
        n = x.size(0)
        ei = data.edge_index
        fwd = _Schedule(ei, n)
        bwd = _Schedule(ei.flip(0), n) if self.config.bidirectional else None
        ptr = getattr(data, "ptr", None)
        if ptr is None:
            ptr = torch.tensor([0, n], device=x.device)
        return self._encode(x, fwd, bwd, ptr[1:] - 1, ptr[:-1])

    def forward_dense(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Embed ``B`` graphs sharing the topology ``edge_index`` ``[2, E]`` over ``N`` nodes:
        ``x [B, N, n_node_types]`` -> ``[B, embed_dim]``."""
        x = x.to(self.readout.weight.dtype)
        self._check_x(x)
        n = x.size(-2)
        key = (n, edge_index.device, tuple(edge_index.flatten().tolist()))
        if key not in self._template_cache:
            self._template_cache.clear()
            fwd = _Schedule(edge_index, n)
            bwd = _Schedule(edge_index.flip(0), n) if self.config.bidirectional else None
            self._template_cache[key] = (fwd, bwd)
        fwd, bwd = self._template_cache[key]
        idx = torch.tensor([n - 1], device=x.device), torch.tensor([0], device=x.device)
        return self._encode(x, fwd, bwd, *idx).squeeze(-2)


class CellArchEncoder(nn.Module):
    """Encodes architectures of a cell space given as op indices.

    ``forward(ops)``: ``ops`` ``[B, n_edges]`` (int, or float holding integers — the arch
    tuples of ``metanas.spaces``) -> ``[B, embed_dim]``. Equal to
    ``dag(Batch.from_data_list([space.to_graph(a) for a in archs]))``, computed with the dense
    shared-topology path.

    Args:
        space: a ``CellSpace`` (only its topology and ``n_ops`` are kept).
        dag: the ``DAGEncoder`` (default: ``DAGEncoderConfig(n_node_types=2 + n_ops)``).
    """

    def __init__(self, space, dag: DAGEncoder | None = None) -> None:
        super().__init__()
        self.space_name = space.name
        self.n_ops = space.n_ops
        self.n_edges = space.n_edges
        self.dag = dag or DAGEncoder(DAGEncoderConfig(n_node_types=2 + space.n_ops))
        if self.dag.config.n_node_types != 2 + space.n_ops:
            raise ValueError(f"DAG encoder has n_node_types={self.dag.config.n_node_types}, "
                             f"space {space.name} needs {2 + space.n_ops}")
        edge_index, _, _ = cell_template(space)
        self.register_buffer("edge_index", edge_index, persistent=False)

    @property
    def embed_dim(self) -> int:
        return self.dag.embed_dim

    def forward(self, ops: Tensor) -> Tensor:
        ops = torch.as_tensor(ops)
        if ops.dim() != 2 or ops.size(-1) != self.n_edges:
            raise ValueError(f"expected op indices [B, {self.n_edges}], got {tuple(ops.shape)}")
        if ops.is_floating_point():
            ops = ops.round()
        ops = ops.long()
        if ops.numel() and (ops.min() < 0 or ops.max() >= self.n_ops):
            raise ValueError(f"op indices must be in 0..{self.n_ops - 1} for {self.space_name}")
        x = cell_node_onehots(ops, self.n_ops, self.dag.readout.weight.dtype)
        return self.dag.forward_dense(x, self.edge_index)
