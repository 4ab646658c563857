"""Gumbel-softmax statistics, KL terms, the ELBO and the supernet."""

import math

import pytest
import torch

from metanas import spaces
from metanas.base.bayes import (BayesConfig, BayesSuperNet, categorical_kl, gaussian_kl,
                                gumbel_softmax)
from metanas.base.elbo import ELBOConfig, elbo_loss
from metanas.base.supernet import SuperNet, SuperNetConfig, arch_onehot
from metanas.nn import CellNetwork, NetworkConfig

TINY = BayesConfig(C=2, N=1, num_classes=3)


def test_gumbel_softmax_argmax_frequencies_match_softmax():
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 3.0]])
    gen = torch.Generator().manual_seed(0)
    n = 20000
    samples = gumbel_softmax(logits.expand(n, 2, 5), tau=0.5, generator=gen)
    freq = torch.nn.functional.one_hot(samples.argmax(-1), 5).float().mean(0)
    p = torch.softmax(logits, -1)
    # argmax of a Gumbel-softmax sample is an exact Categorical(softmax(logits)) draw:
    # 4.5 standard errors of a binomial frequency
    assert torch.all((freq - p).abs() < 4.5 * torch.sqrt(p * (1 - p) / n) + 1e-3), (freq, p)
    # relaxed samples lie on the simplex
    assert torch.allclose(samples.sum(-1), torch.ones(n, 2))
    assert samples.min() >= 0


def test_gumbel_softmax_temperature_sharpens():
    logits = torch.zeros(4000, 5)
    g = torch.Generator().manual_seed(1)
    hot = gumbel_softmax(logits, tau=10.0, generator=g).max(-1).values.mean()
    cold = gumbel_softmax(logits, tau=0.1, generator=g).max(-1).values.mean()
    assert cold > 0.9 and hot < 0.3


def test_hard_samples_are_one_hot_with_straight_through_gradient():
    logits = torch.tensor([0.3, -0.2, 1.0, 0.0, 0.5], requires_grad=True)
    gen = torch.Generator().manual_seed(2)
    y = gumbel_softmax(logits, tau=1.0, hard=True, generator=gen)
    assert sorted(y.detach().tolist()) == [0.0, 0.0, 0.0, 0.0, 1.0]
    w = torch.arange(5.0)
    (y * w).sum().backward()
    # the gradient is the soft sample's (straight-through): non-zero, and equal to it
    gen2 = torch.Generator().manual_seed(2)
    l2 = logits.detach().clone().requires_grad_()
    (gumbel_softmax(l2, tau=1.0, hard=False, generator=gen2) * w).sum().backward()
    assert logits.grad.abs().sum() > 0
    assert torch.allclose(logits.grad, l2.grad)


def test_same_generator_same_sample_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = gumbel_softmax(torch.zeros(6, 5), generator=torch.Generator().manual_seed(3))
    b = gumbel_softmax(torch.zeros(6, 5), generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())


def test_kl_terms_zero_at_prior_and_positive_elsewhere():
    model = BayesSuperNet(TINY)
    assert float(model.kl_weights().detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(model.kl_arch().detach()) == pytest.approx(0.0, abs=1e-9)
    with torch.no_grad():
        model.arch_param[0, 1] += 0.3
        next(iter(model.net.parameters())).add_(0.01)
        model.log_sigma[1].add_(0.2)
    assert float(model.kl_arch().detach()) > 1e-4
    assert float(model.kl_weights().detach()) > 1e-3
    model.sync_prior()
    assert float(model.kl_weights().detach()) == pytest.approx(0.0, abs=1e-6)
    assert float(model.kl_arch().detach()) == pytest.approx(0.0, abs=1e-9)


def test_kl_closed_forms_match_torch_distributions():
    g = torch.Generator().manual_seed(4)
    q, p = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    ref = torch.distributions.kl_divergence(torch.distributions.Categorical(logits=q),
                                            torch.distributions.Categorical(logits=p)).sum()
    assert float(categorical_kl(q, p)) == pytest.approx(float(ref), rel=1e-5)
    mq, mp = torch.randn(7, generator=g), torch.randn(7, generator=g)
    sq, sp = 0.3 * torch.randn(7, generator=g), 0.3 * torch.randn(7, generator=g)
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mq, sq.exp()),
                                            torch.distributions.Normal(mp, sp.exp())).sum()
    assert float(gaussian_kl(mq, sq, mp, sp)) == pytest.approx(float(ref), rel=1e-5)


def test_elbo_is_nll_at_prior_and_differentiable_in_every_parameter():
    model = BayesSuperNet(TINY)
    x = torch.randn(8, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    parts = elbo_loss(model, x, y, 100, ELBOConfig(), torch.Generator().manual_seed(0))
    assert parts.kl_weights == pytest.approx(0.0, abs=1e-5) and parts.kl_arch == pytest.approx(0)
    assert float(parts.loss.detach()) == pytest.approx(parts.nll, abs=1e-6)
    parts.loss.backward()
    assert model.arch_param.grad.abs().sum() > 0
    assert all(ls.grad is not None for ls in model.log_sigma)
    assert all(p.grad is not None for p in model.net.parameters())


def test_supernet_with_one_hot_arch_is_the_cell_network_family():
    sp = spaces.get("nb201")
    arch = (3, 1, 2, 0, 4, 3)
    net = SuperNet(sp, SuperNetConfig(C=4, N=1, in_channels=1, num_classes=3))
    cell = CellNetwork(arch, sp, NetworkConfig(C=4, N=1, in_channels=1, num_classes=3,
                                               affine=False, track_running_stats=False))
    # same parameter shapes for the chosen ops: copy them over, outputs agree
    sup = dict(net.named_parameters())
    names = {}
    for n, p in cell.named_parameters():
        parts = n.split(".")
        if parts[0] == "cells" and parts[2] == "layers":  # cells.i.layers.e.rest
            e = int(parts[3])
            names[n] = ".".join(["cells", parts[1], "edge_ops", str(e), "ops", str(arch[e])]
                                + parts[4:])
        elif parts[0] == "lastact":
            continue
        else:
            names[n] = n
    with torch.no_grad():
        for n, target in names.items():
            dict(cell.named_parameters())[n].copy_(sup[target])
    x = torch.randn(6, 1, 8, 8, generator=torch.Generator().manual_seed(6))
    cell.train()
    out_cell = cell(x)
    out_sup = net(x, arch_onehot(sp, arch))
    assert torch.allclose(out_cell, out_sup, atol=1e-5)
