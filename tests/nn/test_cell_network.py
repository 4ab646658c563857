"""CellNetwork: construction for every op and odd input sizes, counters, determinism."""

import math

import pytest
import torch
import torch.nn.functional as F

from metanas.nn import (OPS, AvgPool3x3, CellNetwork, NetworkConfig, count_flops, count_params,
                        make_op)
from metanas.spaces import InvalidArchitecture, get



TINY = NetworkConfig(C=4, N=1)
NB201 = get("nb201")
TRANSNAS = get("transnas_micro")


@pytest.mark.parametrize("op", range(5))
def test_every_op_forward_backward(op):
    arch = (op,) * 6
    net = CellNetwork(arch, NB201, TINY, seed=0)
    assert net.op_names == (NB201.ops[op],) * 6
    x = torch.randn(4, 3, 8, 8)
    y = net(x)
    assert y.shape == (4, 10)
    assert torch.isfinite(y).all()
    F.cross_entropy(y, torch.arange(4)).backward()
    assert net.classifier.weight.grad is not None
    assert torch.isfinite(net.classifier.weight.grad).all()


def test_mixed_arch_all_ops_and_transnas():
    net = CellNetwork((0, 1, 2, 3, 4, 3), "nb201", TINY)
    assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)
    for arch in [(3, 1, 3, 1, 2, 3), (0, 0, 0, 2, 1, 3)]:
        net = CellNetwork(arch, TRANSNAS, TINY)
        assert net.space_name == "transnas_micro"
        assert net(torch.randn(2, 3, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("hw", [(7, 7), (8, 8), (13, 13), (1, 1), (5, 12)])
@pytest.mark.parametrize("channels", [1, 3])
def test_odd_input_sizes_and_channels(hw, channels):
    cfg = NetworkConfig(C=4, N=1, in_channels=channels, num_classes=7)
    net = CellNetwork((1, 3, 4, 2, 0, 3), NB201, cfg, seed=3)
    x = torch.randn(3, channels, *hw, requires_grad=True)
    y = net(x)
    assert y.shape == (3, 7)
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert net.forward_features(x).shape == (3, 16)


def test_none_only_cells_still_give_logits():
    net = CellNetwork((0,) * 6, NB201, TINY, seed=0)
    x = torch.randn(5, 3, 8, 8)
    y = net(x)
    assert y.shape == (5, 10) and torch.isfinite(y).all()
    # features are exactly zero, so the logits are the classifier bias for every sample
    torch.testing.assert_close(y, net.classifier.bias.detach().expand(5, -1))
    F.cross_entropy(y, torch.arange(5)).backward()
    assert torch.count_nonzero(net.stem[0].weight.grad) == 0


def test_cells_whose_output_node_only_gets_none():
    # edges into node 3 are (0,3), (1,3), (2,3) = positions 3, 4, 5
    net = CellNetwork((3, 3, 3, 0, 0, 0), NB201, TINY, seed=0)
    y = net(torch.randn(2, 3, 8, 8))
    torch.testing.assert_close(y, net.classifier.bias.detach().expand(2, -1))


def _hand_params(C, N, cell_params_per_C):
    """Hand count: stem, 2 residual reductions, lastact BN, classifier (10 classes), cells."""
    stem = 3 * C * 9 + 2 * C
    red = lambda a, b: a * b * 9 + 2 * b + b * b * 9 + 2 * b + a * b  # noqa: E731
    head = 2 * 4 * C + 4 * C * 10 + 10
    cells = N * sum(cell_params_per_C(c) for c in (C, 2 * C, 4 * C))
    return stem + red(C, 2 * C) + red(2 * C, 4 * C) + head + cells


def test_count_params_hand_computed():
    # C=2, N=0: 54 + 4 (stem) + 240 + 928 (reductions) + 16 (BN) + 90 (linear) = 1332
    assert count_params(CellNetwork((0,) * 6, NB201, NetworkConfig(C=2, N=0))) == 1332
    cfg = NetworkConfig(C=2, N=1)
    # one conv1x1 per cell: C*C + 2C (BN) -> (4+4) + (16+8) + (64+16) = 112
    assert count_params(CellNetwork((2, 0, 0, 0, 0, 0), NB201, cfg)) == 1332 + 112
    # one conv3x3 per cell: 9C*C + 2C -> 40 + 152 + 592 = 784
    assert count_params(CellNetwork((3, 1, 4, 0, 0, 0), NB201, cfg)) == 1332 + 784
    assert _hand_params(2, 1, lambda c: c * c + 2 * c) == 1332 + 112
    # generic: two conv3x3 and one conv1x1 per cell
    cfg = NetworkConfig(C=3, N=2)
    per = lambda c: 2 * (9 * c * c + 2 * c) + (c * c + 2 * c)  # noqa: E731
    assert count_params(CellNetwork((3, 3, 2, 1, 0, 4), NB201, cfg)) == _hand_params(3, 2, per)


def test_count_params_matches_nb201_table():
    # NB201 (C=16, N=5) published parameter counts (MB): NAS-Bench-Suite-Zero / NB201 API
    assert count_params(CellNetwork((1, 3, 3, 2, 2, 0))) == 615386
    assert count_params(CellNetwork((1, 0, 0, 2, 0, 0))) == 101306
    assert count_params(CellNetwork((0, 1, 3, 3, 3, 0))) == 802426


def test_count_flops_hand_computed():
    cfg = NetworkConfig(C=2, N=0)
    net = CellNetwork((0,) * 6, NB201, cfg)
    # 8x8: stem 8*8*2*3*9 = 3456; reduction 1 (4x4x4): 1152 + 2304 + 128 = 3584;
    # reduction 2 (2x2x8): 1152 + 2304 + 128 = 3584; linear 8*10 = 80
    assert count_flops(net, (3, 8, 8)) == 3456 + 3584 + 3584 + 80
    # 7x7: stem 7*7*54 = 2646, then 4x4 and 2x2 as before (ceil-mode shortcut)
    assert count_flops(net, (1, 3, 7, 7)) == 2646 + 3584 + 3584 + 80
    # one conv3x3 per cell at C=2, N=1, 8x8: 8*8*2*2*9 + 4*4*4*4*9 + 2*2*8*8*9 = 2304*3
    net = CellNetwork((3, 0, 0, 0, 0, 0), NB201, NetworkConfig(C=2, N=1))
    assert count_flops(net, (3, 8, 8)) == 10704 + 3 * 2304
    # pooling, skip and none cost no MACs
    net = CellNetwork((4, 1, 4, 0, 1, 4), NB201, NetworkConfig(C=2, N=1))
    assert count_flops(net, (3, 8, 8)) == 10704


def test_count_flops_restores_mode():
    net = CellNetwork((3,) * 6, NB201, TINY).train()
    count_flops(net, (3, 8, 8))
    assert net.training
    net.eval()
    count_flops(net, (3, 8, 8))
    assert not net.training


def test_deterministic_from_seed_and_global_rng_untouched():
    state = torch.get_rng_state()
    a = CellNetwork((3, 2, 4, 1, 3, 2), NB201, TINY, seed=7).state_dict()
    assert torch.equal(state, torch.get_rng_state())
    b = CellNetwork((3, 2, 4, 1, 3, 2), NB201, TINY, seed=7).state_dict()
    c = CellNetwork((3, 2, 4, 1, 3, 2), NB201, TINY, seed=8).state_dict()
    g = CellNetwork((3, 2, 4, 1, 3, 2), NB201, TINY,
                    generator=torch.Generator().manual_seed(7)).state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) and torch.equal(a[k], g[k]) for k in a)
    assert not torch.equal(a["stem.0.weight"], c["stem.0.weight"])
    x = torch.randn(2, 3, 8, 8)
    n1 = CellNetwork((3, 2, 4, 1, 3, 2), NB201, TINY, seed=7)
    n2 = CellNetwork((3, 2, 4, 1, 3, 2), NB201, TINY, seed=7)
    assert torch.equal(n1(x), n2(x))


def test_default_init_statistics():
    # PyTorch default: kaiming_uniform(a=sqrt(5)) -> U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    net = CellNetwork((3,) * 6, NB201, NetworkConfig(C=16, N=1), seed=0)
    w = net.cells[0].layers[0].op[1].weight
    bound = 1 / math.sqrt(16 * 9)
    assert w.abs().max() <= bound + 1e-7 and w.abs().max() > 0.9 * bound
    bn = net.cells[0].layers[0].op[2]
    assert torch.equal(bn.weight, torch.ones(16)) and torch.equal(bn.bias, torch.zeros(16))


def test_avg_pool_matches_reference():
    pool = AvgPool3x3(3, 3)
    for shape in [(2, 3, 7, 7), (1, 3, 1, 1), (2, 3, 2, 9)]:
        x = torch.randn(shape, dtype=torch.float64)
        ref = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        torch.testing.assert_close(pool(x), ref)
    # channel change: ReLU-conv1x1-BN first
    assert AvgPool3x3(3, 5)(torch.randn(2, 3, 4, 4)).shape == (2, 5, 4, 4)


def test_make_op_and_errors():
    assert set(OPS) == set(NB201.ops)
    assert make_op("none", 3, 3)(torch.ones(1, 3, 4, 4)).abs().sum() == 0
    assert make_op("none", 3, 5, 2)(torch.ones(1, 3, 4, 4)).shape == (1, 5, 2, 2)
    with pytest.raises(ValueError):
        make_op("conv_5x5", 3, 3)
    with pytest.raises(InvalidArchitecture):
        CellNetwork((5, 0, 0, 0, 0, 0), NB201, TINY)
    with pytest.raises(InvalidArchitecture):
        CellNetwork((4, 0, 0, 0, 0, 0), TRANSNAS, TINY)
    with pytest.raises(ValueError):
        NetworkConfig(C=0)
    with pytest.raises(ValueError):
        CellNetwork((1,) * 6, NB201, TINY, seed=0, generator=torch.Generator())
    assert NetworkConfig() == NetworkConfig(C=16, N=5, in_channels=3, num_classes=10)
    assert NetworkConfig.small().C == 8 and NetworkConfig.small().N == 1
