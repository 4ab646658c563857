"""A mixture of GP posteriors over one task: an ensemble of surrogates as one BoTorch model.

TNAS with several meta-trained checkpoints (``tnas``'s ``pretrained=[dir, dir, ...]``, e.g.
several meta-training seeds) fits each member to the same observations and scores candidates
under the mixture ``p(f | D) = sum_k w_k p_k(f | D)``. The acquisition sees the mixture's
first two moments (moment matching)::

    mean = sum_k w_k m_k
    var  = sum_k w_k (v_k + m_k^2) - mean^2

so where the members disagree the variance grows and UCB explores there. Weights: equal
(a deep ensemble) or ``evidence_weights`` (Bayesian model averaging over the members: a
uniform prior times each member's marginal likelihood of the observations).

Every member must be conditioned on the same observations in the same standardised units
(``DeepKernelGP.set_task`` standardises by the observations' mean and standard deviation, so
members given the same ``(X, y)`` agree); ``MixtureGP`` checks it.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from botorch.models.model import Model
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.distributions import MultivariateNormal
from linear_operator.operators import DiagLinearOperator
from torch import Tensor, nn

__all__ = ["MixtureGP", "evidence_weights", "log_marginal_likelihood"]


@torch.no_grad()
def log_marginal_likelihood(model) -> float:
    """Exact log marginal likelihood (nats, standardised units, hyper-parameter priors not
    included) of ``model``'s training targets under its kernel (residual kernel included) and
    noise: ``-1/2 r' (K + s2 I)^-1 r - 1/2 log|K + s2 I| - n/2 log 2 pi``, ``r = y - m(X)``."""
    X, y = model.train_inputs[0], model.train_targets
    z = model.features(X)
    L = model.train_cholesky(z, X)
    r = (y - model.mean(X, z)).unsqueeze(-1)
    a = torch.linalg.solve_triangular(L, r, upper=False)
    return float(-0.5 * a.pow(2).sum() - L.diagonal().log().sum()
                 - 0.5 * y.numel() * math.log(2 * math.pi))


def evidence_weights(models: Sequence[Any]) -> Tensor:
    """Posterior model probabilities ``[K]`` under a uniform prior over the members:
    ``softmax_k log p(y | X, member k)`` (``log_marginal_likelihood``)."""
    lml = torch.tensor([log_marginal_likelihood(m) for m in models], dtype=torch.float64)
    return torch.softmax(lml, dim=0)


class MixtureGP(Model):
    """Weighted mixture of GP posteriors conditioned on the same task (see module docstring).

    Args:
        models: ``K`` members with ``_marginals(X [N, d]) -> (mean [N], var [N])`` in
            standardised units, ``y_mean`` / ``y_std``, ``train_inputs`` / ``train_targets``
            and ``set_train_data`` (e.g. ``DeepKernelGP``), conditioned on the same data.
        weights: ``[K]`` non-negative mixture weights (normalised here); default equal.

    ``posterior(X)`` (``X`` ``[N, 1, d]``: one point per t-batch, as analytic acquisitions
    score candidates) is the moment-matched mixture in original units.

    The members are sub-modules (an ``nn.ModuleList``): ``.to()`` (and BoTorch's
    ``acqf.to(X)``), ``.eval()`` / ``.train()`` and ``.parameters()`` reach them. ``weights``
    is a (non-persistent) buffer.
    """

    _num_outputs = 1

    def __init__(self, models: Sequence[Any], weights: Tensor | Sequence[float] | None = None):
        super().__init__()
        if not models:
            raise ValueError("MixtureGP needs at least one model")
        self.models = nn.ModuleList(models)
        k = len(self.models)
        w = torch.full((k,), 1.0 / k, dtype=torch.float64) if weights is None \
            else torch.as_tensor(weights, dtype=torch.float64).reshape(-1)
        if w.numel() != k or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError(f"MixtureGP needs {k} non-negative finite weights, got {w.tolist()}")
        self.register_buffer("weights", w / w.sum(), persistent=False)
        ref = self.models[0]
        for m in self.models[1:]:
            same = len(m.train_inputs) == len(ref.train_inputs) and all(
                torch.equal(a, b) for a, b in zip(m.train_inputs, ref.train_inputs)) and \
                torch.equal(m.train_targets, ref.train_targets) and \
                torch.allclose(m.y_mean, ref.y_mean) and torch.allclose(m.y_std, ref.y_std)
            if not same:
                raise ValueError("MixtureGP members must be conditioned on the same "
                                 "observations (same inputs and standardised targets)")

    # the task, as the members hold it (identical by construction)
    @property
    def train_inputs(self):
        return self.models[0].train_inputs

    @property
    def train_targets(self) -> Tensor:
        return self.models[0].train_targets

    @property
    def y_mean(self) -> Tensor:
        return self.models[0].y_mean

    @property
    def y_std(self) -> Tensor:
        return self.models[0].y_std

    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size()

    def set_train_data(self, inputs: Tensor, targets: Tensor, strict: bool = False) -> None:
        """Condition every member on ``(inputs [n, d], targets [n])`` (standardised units)."""
        for m in self.models:
            m.set_train_data(inputs, targets, strict=strict)

    def _marginals(self, Xc: Tensor) -> tuple[Tensor, Tensor]:
        """Mixture mean and variance ``[N]`` (standardised units) at ``Xc [N, d]``."""
        means, variances = zip(*(m._marginals(Xc) for m in self.models))
        M, V = torch.stack(means), torch.stack(variances)  # [K, N]
        w = self.weights.to(M).unsqueeze(-1)
        mean = (w * M).sum(0)
        var = (w * (V + M.pow(2))).sum(0) - mean.pow(2)
        return mean, var.clamp_min(1e-12)

    def posterior(self, X: Tensor, output_indices=None, observation_noise: bool = False,
                  posterior_transform=None, **kwargs: Any) -> GPyTorchPosterior:
        """Moment-matched mixture posterior (original units) for ``X`` ``[..., 1, d]``."""
        if not isinstance(X, Tensor):
            raise ValueError(f"MixtureGP.posterior expects a torch.Tensor X [..., 1, d], got "
                             f"{type(X).__name__}")
        d = self.train_inputs[0].size(-1)
        if X.dim() < 2 or X.size(-1) != d:
            raise ValueError(f"MixtureGP.posterior expects X [..., 1, {d}] (one point per "
                             f"t-batch), got {tuple(X.shape)}")
        if X.size(-2) != 1:
            raise NotImplementedError("MixtureGP.posterior scores one point per t-batch "
                                      "(X [..., 1, d]); joint q-batch posteriors are not "
                                      "implemented")
        for m in self.models:
            m.eval()
        mean, var = self._marginals(X.reshape(-1, X.size(-1)))
        if isinstance(observation_noise, Tensor):
            raise NotImplementedError("MixtureGP.posterior takes observation_noise=True/False, "
                                      "not a tensor of noise levels")
        if observation_noise:
            noise = torch.stack([m.likelihood.noise.reshape(-1)[0] for m in self.models])
            var = var + (self.weights.to(noise) * noise).sum()
        s, mu = self.y_std.to(mean.dtype), self.y_mean.to(mean.dtype)
        shape = X.shape[:-1]
        mvn = MultivariateNormal(mean.reshape(shape) * s + mu,
                                 DiagLinearOperator(var.reshape(shape) * s.pow(2)))
        post = GPyTorchPosterior(mvn)
        return posterior_transform(post) if posterior_transform is not None else post
