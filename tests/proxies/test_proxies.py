"""Zero-cost proxies: hand-computed values, signs, invariances, determinism, registry."""

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from metanas.nn import CellNetwork, NetworkConfig
from metanas.proxies import (ProxyBatch, compute, compute_many, digits_batch, get, grad_norm,
                             jacob_cov, names, nwot, snip, synflow)
from metanas.proxies.measures import JACOB_COV_K



CFG = NetworkConfig(C=4, N=1)
ARCHS = [(3, 3, 3, 3, 3, 3), (1, 3, 3, 2, 2, 0), (4, 1, 2, 3, 4, 1), (2, 4, 1, 4, 3, 3)]
PROXY_FNS = [grad_norm, snip, synflow, jacob_cov, nwot]


@pytest.fixture(scope="module")
def batch():
    return digits_batch(n=16, size=8, seed=0)


def _net(arch, seed=0, cfg=CFG):
    return CellNetwork(arch, "nb201", cfg, seed=seed)


# ----------------------------------------------------------------------------- data
def test_digits_batch():
    b = digits_batch(n=20, size=13, seed=1, channels=3)
    assert isinstance(b, ProxyBatch) and b.num_classes == 10
    assert b.inputs.shape == (20, 3, 13, 13) and b.inputs.dtype == torch.float32
    assert b.targets.shape == (20,) and b.targets.dtype == torch.int64
    assert torch.equal(b.inputs[:, 0], b.inputs[:, 2])
    b2 = digits_batch(n=20, size=13, seed=1, channels=3)
    assert torch.equal(b.inputs, b2.inputs) and torch.equal(b.targets, b2.targets)
    assert not torch.equal(digits_batch(n=20, size=13, seed=2).inputs, b.inputs)
    g = digits_batch(n=1797, size=8, seed=0, channels=1)  # every digit, original size
    assert g.inputs.shape == (1797, 1, 8, 8)
    assert abs(float(g.inputs.mean())) < 1e-4 and abs(float(g.inputs.std()) - 1) < 1e-3
    assert len(set(map(tuple, g.inputs.reshape(1797, -1).tolist()))) > 1700  # no duplicates
    with pytest.raises(ValueError):
        digits_batch(n=0)


# ----------------------------------------------------------------------------- hand cases
def test_synflow_linear_chain_hand_computed():
    # f(x) = W2 W1 x without bias or BN: with |W|, R = 1^T |W2||W1| 1 and every layer's
    # sum |W * dR/dW| equals R, so synflow = (#layers) * R
    net = nn.Sequential(nn.Linear(3, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]]))
        net[1].weight.copy_(torch.tensor([[-1.5, 2.0]]))
    R = float(torch.tensor([[1.5, 2.0]]) @ torch.tensor([[1.0, 2.0, 0.5], [0.0, 3.0, 1.0]])
              @ torch.ones(3, 1))
    x = torch.randn(5, 3)
    assert synflow(net, x) == pytest.approx(2 * R)
    assert synflow(net, x, log=True) == pytest.approx(math.log(2 * R))
    assert net[0].weight[0, 1] == -2.0  # signs restored (works on a copy)


def test_snip_grad_norm_single_layer_hand_computed():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -3.0]]))
    x = torch.tensor([[1.0, 2.0], [3.0, -1.0]])
    loss = lambda out, t: out.sum()  # noqa: E731  dL/dW = sum_n x_n = [4, 1]
    t = torch.zeros(2)
    assert grad_norm(lin, x, t, loss_fn=loss) == pytest.approx(math.sqrt(17))
    assert snip(lin, x, t, loss_fn=loss) == pytest.approx(2 * 4 + 3 * 1)


def test_jacob_cov_identical_jacobians_hand_computed():
    # a linear map has the same input gradient for every sample: corr = all ones,
    # eigenvalues (B, 0, ..., 0)
    B, k = 6, JACOB_COV_K
    lin = nn.Linear(4, 3)
    expect = -(math.log(B + k) + 1 / (B + k)) - (B - 1) * (math.log(k) + 1 / k)
    assert jacob_cov(lin, torch.randn(B, 4)) == pytest.approx(expect, rel=1e-6)


def test_nwot_hand_computed():
    # codes [1,0], [0,1], [1,1]: agreements K = [[2,0,1],[0,2,1],[1,1,2]], det = 4
    net = nn.Sequential(nn.ReLU())
    x = torch.tensor([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0]])
    assert nwot(net, x) == pytest.approx(math.log(4.0))
    # two ReLU modules see the codes twice: K doubles, log det + B log 2
    net2 = nn.Sequential(nn.ReLU(), nn.ReLU())
    assert nwot(net2, x) == pytest.approx(math.log(4.0) + 3 * math.log(2.0))
    # duplicated samples: singular kernel -> -inf (as the reference)
    assert nwot(net, torch.tensor([[1.0, -1.0], [1.0, -1.0]])) == float("-inf")


# ----------------------------------------------------------------------------- on CellNetwork
@pytest.mark.parametrize("arch", ARCHS)
def test_finite_and_signs(arch, batch):
    net = _net(arch)
    x, y = batch.inputs, batch.targets
    vals = {f.__name__: f(net, x, y) for f in PROXY_FNS}
    assert all(math.isfinite(v) for v in vals.values()), vals
    assert vals["grad_norm"] > 0 and vals["snip"] > 0 and vals["synflow"] > 0
    B = x.shape[0]
    assert vals["jacob_cov"] <= -B + 1e-9  # log(v)+1/v >= 1
    n_units = sum(m_out.numel() // B for m_out in _relu_inputs(net, x))
    assert vals["nwot"] <= B * math.log(n_units) + 1e-9  # Hadamard: det K <= prod diag


def _relu_inputs(net, x):
    seen = []
    hs = [m.register_forward_hook(lambda m, i, o: seen.append(i[0]))
          for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net.train()(x)
    for h in hs:
        h.remove()
    return seen


@pytest.mark.parametrize("arch", [(0,) * 6, (3, 3, 3, 0, 0, 0), (2, 4, 0, 0, 0, 0)])
def test_disconnected_cells(arch, batch):
    # every path through the cell is cut by `none`: the logits do not depend on the input and
    # no conv / linear weight gets a gradient
    net = _net(arch)
    x, y = batch.inputs, batch.targets
    assert snip(net, x, y) == 0.0
    assert grad_norm(net, x, y) == 0.0
    assert synflow(net, x) == 0.0 and synflow(net, x, log=True) == 0.0
    jc = jacob_cov(net, x)
    B, k = x.shape[0], JACOB_COV_K
    assert jc == pytest.approx(-B * (math.log(k) + 1 / k))  # finite, the worst possible
    assert math.isfinite(jc)


def test_synflow_ignores_batch_content(batch):
    net = _net(ARCHS[1])
    other = digits_batch(n=16, size=8, seed=5)
    a = synflow(net, batch.inputs)
    assert a == synflow(net, other.inputs) == synflow(net, torch.randn(3, 3, 8, 8))
    assert a == synflow(net, batch.inputs, batch.targets)


@pytest.mark.parametrize("fn", [nwot, jacob_cov, snip, grad_norm])
def test_invariant_to_batch_order(fn, batch):
    net = _net(ARCHS[2])
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    a = fn(net, batch.inputs, batch.targets)
    b = fn(net, batch.inputs[perm], batch.targets[perm])
    assert b == pytest.approx(a, rel=1e-5, abs=1e-6)


def test_proxies_leave_network_unchanged(batch):
    net = _net(ARCHS[0]).eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    for f in PROXY_FNS:
        f(net, batch.inputs, batch.targets)
    assert not net.training and not any(m.training for m in net.modules())
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())
    assert all(p.dtype == torch.float32 for p in net.parameters())


def test_deterministic_for_a_seed(batch):
    for f in PROXY_FNS:
        a = f(_net(ARCHS[3], seed=4), batch.inputs, batch.targets)
        b = f(_net(ARCHS[3], seed=4), batch.inputs, batch.targets)
        assert a == b, f.__name__
    assert snip(_net(ARCHS[3], seed=4), batch.inputs, batch.targets) != \
        snip(_net(ARCHS[3], seed=5), batch.inputs, batch.targets)


def test_more_convs_more_synflow(batch):
    # synflow grows with the number of parameterised paths
    s = [synflow(_net(a), batch.inputs) for a in [(1, 1, 1, 1, 1, 1), (3, 1, 1, 1, 1, 1),
                                                  (3, 3, 3, 3, 3, 3)]]
    assert s[0] < s[1] < s[2]


# ----------------------------------------------------------------------------- registry
def test_registry_compute_matches_functions(batch):
    assert {"grad_norm", "snip", "synflow", "synflow_log", "jacob_cov", "nwot"} <= set(names())
    assert get("jacov") is jacob_cov and get("naswot") is nwot
    arch = ARCHS[1]
    for name, f in [("snip", snip), ("grad_norm", grad_norm), ("jacov", jacob_cov),
                    ("nwot", nwot), ("synflow", synflow)]:
        v = compute(name, arch, "nb201", batch, CFG, seed=2)
        assert v == f(_net(arch, seed=2), batch.inputs, batch.targets)
    assert compute("synflow_log", arch, "nb201", batch, CFG, seed=2) == pytest.approx(
        math.log(compute("synflow", arch, "nb201", batch, CFG, seed=2)))
    with pytest.raises(KeyError):
        compute("zen", arch, "nb201", batch, CFG)


def test_compute_many_matches_compute(batch):
    archs = [ARCHS[0], ARCHS[2], (0,) * 6]
    pnames = ["snip", "grad_norm", "synflow_log", "jacov", "nwot"]
    scores, times = compute_many(pnames, archs, "nb201", batch, CFG, seed=1, return_times=True)
    assert set(scores) == set(pnames) and set(times) == set(pnames) | {"build"}
    for n in pnames:
        assert scores[n].shape == (3,)
        assert (times[n] >= 0).all()
        for i, a in enumerate(archs[:2]):
            assert scores[n][i] == pytest.approx(compute(n, a, "nb201", batch, CFG, seed=1),
                                                 rel=1e-12), n
    assert scores["snip"][2] == 0.0 and scores["nwot"][2] == float("-inf")


def test_registry_config_from_batch_and_transnas():
    gray = digits_batch(n=8, size=7, seed=0, channels=1)
    v = compute("snip", (3, 1, 3, 1, 2, 3), "transnas_micro", gray,
                NetworkConfig(C=4, N=1, in_channels=1))
    assert v > 0 and math.isfinite(v)
    # plain (inputs, targets) tuple with a config derived from the batch
    assert compute("nwot", (3, 1, 3, 1, 2, 3), "transnas_micro",
                   (gray.inputs, gray.targets), NetworkConfig(C=4, N=1, in_channels=1)) > 0
    with pytest.raises(ValueError):
        compute("snip", (3, 1, 3, 1, 2, 3), "transnas_micro", gray, CFG)  # 3 vs 1 channel
    with pytest.raises(ValueError):
        compute("snip", (3,) * 6, "nb201", gray, NetworkConfig(C=4, N=1, in_channels=1,
                                                               num_classes=5))


# ----------------------------------------------------------------------------- references
# Straightforward re-implementations of the reference code (zero-cost-nas / NASLib measures)
# on a real cell network, to pin our formulations to theirs.
def _ref_snip(net, x, y):
    import copy
    import types

    import torch.nn.functional as F

    net = copy.deepcopy(net).train()
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            m.weight_mask = nn.Parameter(torch.ones_like(m.weight))
            m.weight.requires_grad = False
            if isinstance(m, nn.Conv2d):
                m.forward = types.MethodType(
                    lambda s, z: F.conv2d(z, s.weight * s.weight_mask, s.bias, s.stride,
                                          s.padding, s.dilation, s.groups), m)
            else:
                m.forward = types.MethodType(
                    lambda s, z: F.linear(z, s.weight * s.weight_mask, s.bias), m)
    F.cross_entropy(net(x), y).backward()
    return sum(float(m.weight_mask.grad.abs().sum()) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)))


def _ref_synflow(net, x):
    import copy
    import types

    net = copy.deepcopy(net)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.forward = types.MethodType(lambda s, z: z, m)
    net = net.double()
    with torch.no_grad():
        for p in net.state_dict().values():
            p.abs_()
    net.zero_grad()
    net(torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64)).sum().backward()
    return sum(float((m.weight * m.weight.grad).detach().abs().sum()) for m in net.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear)) and m.weight.grad is not None)


def _ref_jacob_cov(net, x):
    net = net.train()
    x = x.clone().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    J = x.grad.reshape(x.shape[0], -1).numpy()
    v, _ = np.linalg.eig(np.corrcoef(J))
    k = 1e-5
    return float(np.real(-np.sum(np.log(v + k) + 1.0 / (v + k))))


def _ref_nwot(net, x):
    B = x.shape[0]
    K = np.zeros((B, B))

    def hook(m, inp, out):
        nonlocal K
        c = (inp[0].reshape(B, -1) > 0).float()
        K = K + (c @ c.t()).numpy() + ((1.0 - c) @ (1.0 - c.t())).numpy()

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net.train()(x)
    for h in hs:
        h.remove()
    return float(np.linalg.slogdet(K)[1])


@pytest.mark.parametrize("arch", ARCHS[:3])
def test_match_reference_formulations(arch, batch):
    x, y = batch.inputs, batch.targets
    net = _net(arch, seed=3)
    assert snip(net, x, y) == pytest.approx(_ref_snip(net, x, y), rel=1e-4)
    assert synflow(net, x) == pytest.approx(_ref_synflow(net, x), rel=1e-9)
    assert jacob_cov(net, x) == pytest.approx(_ref_jacob_cov(_net(arch, seed=3), x), rel=1e-6)
    assert nwot(net, x) == pytest.approx(_ref_nwot(_net(arch, seed=3), x), rel=1e-9)
