"""Mixture of GP posteriors (``metanas.surrogates.mixture``): moments, units, weights."""

import math

import pytest
import torch
from botorch.acquisition import UpperConfidenceBound

from metanas import spaces
from metanas.surrogates.deep_kernel import DeepKernelConfig, DeepKernelGP, fit
from metanas.surrogates.mixture import MixtureGP, evidence_weights, log_marginal_likelihood

SPACE = "transnas_micro"


def value(X):
    w = torch.tensor([-1.0, 0.2, 0.6, 1.0], dtype=torch.float64)
    return w[X.long()].sum(-1)


@pytest.fixture(scope="module")
def data():
    allx = torch.from_numpy(spaces.get(SPACE).all_array().copy()).double()
    idx = torch.randperm(allx.size(0), generator=torch.Generator().manual_seed(0))
    X = allx[idx[:30]]
    return X, value(X) * 3.0 + 10.0, allx[idx[100:400]]


def member(seed, X, y, steps=0):
    torch.manual_seed(seed)
    m = DeepKernelGP(DeepKernelConfig.for_space(SPACE, mlp_hidden=(16,), feat_dim=4))
    if steps:
        fit(m, X, y, steps=steps, lr=1e-2, prox=0.0, patience=steps)
    m.set_task(X, y)
    m.eval()
    return m


def test_moment_matched_marginals_and_original_units(data):
    X, y, Xc = data
    a, b = member(0, X, y), member(1, X, y)
    mix = MixtureGP([a, b], [3.0, 1.0])
    assert torch.allclose(mix.weights, torch.tensor([0.75, 0.25], dtype=torch.float64))
    (ma, va), (mb, vb) = a._marginals(Xc), b._marginals(Xc)
    mean, var = mix._marginals(Xc)
    assert torch.allclose(mean, 0.75 * ma + 0.25 * mb)
    assert torch.allclose(var, 0.75 * va + 0.25 * vb + 0.75 * 0.25 * (ma - mb) ** 2)
    assert (var >= torch.minimum(va, vb) - 1e-12).all()  # disagreement only adds variance
    post = mix.posterior(Xc.unsqueeze(-2))
    assert post.mean.shape == (Xc.size(0), 1, 1)
    assert torch.allclose(post.mean.reshape(-1), mean * a.y_std + a.y_mean)
    assert torch.allclose(post.variance.reshape(-1), var * a.y_std ** 2)
    # a one-member mixture is that member, and botorch acquisitions apply
    one = MixtureGP([a])
    ucb = UpperConfidenceBound(one, beta=2.0)(Xc.unsqueeze(-2))
    ref = UpperConfidenceBound(a, beta=2.0)(Xc.unsqueeze(-2))
    assert torch.allclose(ucb, ref)


def test_believed_points_condition_every_member(data):
    X, y, Xc = data
    a, b = member(0, X, y), member(1, X, y)
    mix = MixtureGP([a, b])
    m0, _ = mix._marginals(Xc[:1])
    mix.set_train_data(torch.cat([mix.train_inputs[0], Xc[:1]]),
                       torch.cat([mix.train_targets, m0]), strict=False)
    assert a.train_inputs[0].size(0) == b.train_inputs[0].size(0) == X.size(0) + 1
    with torch.no_grad():
        _, v = mix._marginals(Xc[:1])
    assert float(v) < 1e-2  # believed at the mixture mean: little uncertainty left there


def test_members_must_share_the_task_and_weights_must_be_valid(data):
    X, y, _ = data
    a, b = member(0, X, y), member(1, X[:20], y[:20])
    with pytest.raises(ValueError, match="same observations"):
        MixtureGP([a, b])
    with pytest.raises(ValueError, match="weights"):
        MixtureGP([a, member(1, X, y)], [1.0, -1.0])
    with pytest.raises(ValueError, match="at least one"):
        MixtureGP([])
    with pytest.raises(NotImplementedError):
        MixtureGP([a]).posterior(X[:3].unsqueeze(0))  # a joint q = 3 batch


def test_evidence_weights_favour_the_member_that_explains_the_data(data):
    X, y, _ = data
    fitted, untrained = member(0, X, y, steps=40), member(0, X, y)
    lml = [log_marginal_likelihood(m) for m in (fitted, untrained)]
    assert lml[0] > lml[1]
    w = evidence_weights([fitted, untrained])
    assert math.isclose(float(w.sum()), 1.0) and w[0] > w[1]
    assert torch.allclose(w, torch.softmax(torch.tensor(lml, dtype=torch.float64), 0))
    # the exact log marginal likelihood of a plain GP: gpytorch's, without the priors
    fitted.train()
    with torch.no_grad():
        out = fitted(fitted.train_inputs[0])
        ref = fitted.likelihood(out).log_prob(fitted.train_targets)
    fitted.eval()
    assert math.isclose(lml[0], float(ref), rel_tol=1e-6)
