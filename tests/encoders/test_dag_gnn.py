"""DAG encoder: shapes, batched == per-graph, dense shared-topology path == PyG batch path,
general DAGs, relabelling invariance."""

import numpy as np
import pytest
import torch
from torch_geometric.data import Batch, Data

from metanas import spaces
from metanas.encoders import (CellArchEncoder, DAGEncoder, DAGEncoderConfig, cell_node_onehots,
                              topological_levels)


def _random_dag(gen: torch.Generator, n: int, n_types: int, p: float = 0.4) -> Data:
    """Random DAG, nodes in topological order, node 0 reaches everything, all reach n-1."""
    src, dst = [], []
    for j in range(1, n):
        preds = [i for i in range(j) if torch.rand((), generator=gen) < p] or \
            [int(torch.randint(j, (), generator=gen))]
        for i in preds:
            src.append(i)
            dst.append(j)
    for i in range(1, n - 1):  # every node feeds something later
        if i not in src:
            src.append(i)
            dst.append(n - 1)
    types = torch.randint(2, n_types, (n,), generator=gen)
    types[0], types[-1] = 0, 1
    x = torch.nn.functional.one_hot(types, n_types).float()
    return Data(x=x, edge_index=torch.tensor([src, dst]), num_nodes=n)


@pytest.fixture(scope="module")
def nb201():
    return spaces.get("nb201")


@pytest.mark.parametrize("bidirectional", [True, False])
def test_shapes(nb201, bidirectional):
    torch.manual_seed(0)
    enc = DAGEncoder(DAGEncoderConfig(n_node_types=7, hidden_dim=12, embed_dim=5,
                                      bidirectional=bidirectional))
    archs = nb201.sample(np.random.default_rng(0), 4)
    batch = Batch.from_data_list([nb201.to_graph(a) for a in archs])
    assert enc(batch).shape == (4, 5)
    assert enc(nb201.to_graph(archs[0])).shape == (1, 5)
    cell = CellArchEncoder(nb201, enc)
    assert cell(torch.tensor(archs)).shape == (4, 5)


@pytest.mark.parametrize("name", ["nb201", "transnas_micro"])
def test_batched_equals_per_graph_and_dense(name):
    space = spaces.get(name)
    torch.manual_seed(0)
    enc = CellArchEncoder(space, DAGEncoder(DAGEncoderConfig(2 + space.n_ops, 16, 8))).double()
    ops = torch.from_numpy(space.all_array()[::37].copy())
    graphs = [space.to_graph(tuple(a.tolist())) for a in ops]
    dense = enc(ops)
    batched = enc.dag(Batch.from_data_list(graphs))
    torch.testing.assert_close(dense, batched, rtol=1e-10, atol=1e-10)
    single = torch.cat([enc.dag(g) for g in graphs[::8]])
    torch.testing.assert_close(batched[::8], single, rtol=1e-10, atol=1e-10)
    # float op indices (the surrogate's X) give the same embedding
    torch.testing.assert_close(enc(ops.double()), dense)


def test_cell_onehots_match_to_graph(nb201):
    ops = torch.from_numpy(nb201.all_array()[:50].copy())
    x = cell_node_onehots(ops, nb201.n_ops)
    ref = torch.stack([nb201.to_graph(tuple(a.tolist())).x for a in ops])
    assert torch.equal(x, ref)


def test_general_dags_batched_equals_single():
    gen = torch.Generator().manual_seed(3)
    enc = DAGEncoder(DAGEncoderConfig(n_node_types=6, hidden_dim=10, embed_dim=4)).double()
    graphs = [_random_dag(gen, int(n), 6) for n in torch.randint(3, 12, (12,), generator=gen)]
    for g in graphs:
        g.x = g.x.double()
    batched = enc(Batch.from_data_list(graphs))
    single = torch.cat([enc(g) for g in graphs])
    torch.testing.assert_close(batched, single, rtol=1e-10, atol=1e-10)


def test_relabelling_nodes_keeps_embedding():
    """Another topological numbering of the same DAG gives the same embedding."""
    gen = torch.Generator().manual_seed(5)
    enc = DAGEncoder(DAGEncoderConfig(n_node_types=5, hidden_dim=8, embed_dim=3)).double()
    g = _random_dag(gen, 9, 5)
    g.x = g.x.double()
    n = g.num_nodes
    level = topological_levels(g.edge_index, n)
    # new order: by level, ties in reverse id order (still topological, input first, output last)
    key = level * (n + 1) + (n - torch.arange(n))
    key[-1] = key.max() + 1
    order = torch.argsort(key)
    new_id = torch.empty_like(order)
    new_id[order] = torch.arange(n)
    h = Data(x=g.x[order], edge_index=new_id[g.edge_index], num_nodes=n)
    torch.testing.assert_close(enc(g), enc(h), rtol=1e-10, atol=1e-10)


def test_levels_and_cycle():
    ei = torch.tensor([[0, 0, 1, 2], [1, 2, 2, 3]])
    assert topological_levels(ei, 4).tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="cycle"):
        topological_levels(torch.tensor([[0, 1, 2], [1, 2, 1]]), 3)


def test_gradients_reach_every_parameter(nb201):
    torch.manual_seed(0)
    enc = CellArchEncoder(nb201, DAGEncoder(DAGEncoderConfig(7, 8, 4)))
    enc(torch.from_numpy(nb201.all_array()[:64].copy())).pow(2).sum().backward()
    for name, p in enc.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_whole_nb201_space_in_one_call(nb201):
    enc = CellArchEncoder(nb201)
    with torch.no_grad():
        z = enc(torch.from_numpy(nb201.all_array().copy()))
    assert z.shape == (15625, enc.embed_dim) and torch.isfinite(z).all()
    # isomorphic-but-different tuples are different graphs: embeddings differ in general
    assert torch.unique(z.round(decimals=5), dim=0).shape[0] > 10000


def test_input_validation(nb201):
    enc = CellArchEncoder(nb201)
    with pytest.raises(ValueError, match="op indices"):
        enc(torch.tensor([[0, 1, 2, 3, 4, 5]]))
    with pytest.raises(ValueError, match=r"\[B, 6\]"):
        enc(torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="n_node_types"):
        CellArchEncoder(spaces.get("transnas_micro"), DAGEncoder(DAGEncoderConfig(7)))
