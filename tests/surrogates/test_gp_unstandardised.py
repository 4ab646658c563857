"""``build_gp(standardize=False)``: the output-scale-free default kernels get a fitted output
scale, so a GP on raw values (e.g. accuracies) is not left to explain the signal by noise."""

import numpy as np
import torch
from gpytorch.kernels import ScaleKernel

from metanas.surrogates.gp import build_gp, fit_gp


def _data(n=50, d=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, d)).astype(np.float64)
    w = rng.normal(size=d)
    y = 70.0 + 9.0 * (X @ w) / np.sqrt(d) + 0.3 * rng.normal(size=n)  # variance ~80
    return torch.as_tensor(X), torch.as_tensor(y)


def test_raw_outcomes_get_an_output_scale_and_a_small_noise():
    X, y = _data()
    gp = build_gp(X, y, standardize=False)
    assert isinstance(gp.covar_module, ScaleKernel)
    fit_gp(gp, maxiter=100, seed=0)
    noise = float(gp.likelihood.noise.detach())
    # without the output scale the unit-variance kernel left ~all of the variance to the noise
    assert noise < 0.1 * float(y.var())
    assert float(gp.covar_module.outputscale.detach()) > 0.3 * float(y.var())
    gp.eval()
    with torch.no_grad():
        m = gp.posterior(X).mean.squeeze(-1)
    assert float(torch.corrcoef(torch.stack([m, y]))[0, 1]) > 0.95


def test_standardised_default_is_unchanged():
    """The default (standardised outcomes) keeps botorch's kernel as it was: no output scale,
    and the same fit."""
    X, y = _data()
    gp = build_gp(X, y)
    assert not isinstance(gp.covar_module, ScaleKernel)
    assert float(gp.mean_module.constant.detach()) == 0.0
    for kernel in ("matern52-gamma",):  # already scaled: never wrapped twice
        k = build_gp(X, y, kernel=kernel, standardize=False).covar_module
        assert isinstance(k, ScaleKernel) and not isinstance(k.base_kernel, ScaleKernel)


def test_other_kernels_start_as_given_without_standardize():
    """Only the unscaled named kernels start at the data's mean and variance; ``matern52-gamma``
    and a user kernel keep botorch's initial values (as the docstring says)."""
    from gpytorch.kernels import MaternKernel

    X, y = _data()
    gp = build_gp(X, y, standardize=False)
    assert float(gp.mean_module.constant.detach()) == float(y.mean())
    assert torch.isclose(gp.covar_module.outputscale.detach(), y.var())
    user = ScaleKernel(MaternKernel(nu=2.5))
    for kernel in ("matern52-gamma", user):
        ref = build_gp(X, y, kernel=kernel)  # standardised: nothing re-initialised
        gp = build_gp(X, y, kernel=kernel, standardize=False)
        assert float(gp.mean_module.constant.detach()) == 0.0
        assert float(gp.covar_module.outputscale.detach()) == float(
            ref.covar_module.outputscale.detach())
