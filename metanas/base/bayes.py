"""Distributions of BASE: Gumbel-softmax architecture samples, mean-field Gaussian weights
and their KL divergences to the (meta-learned) priors.

Architecture: per edge ``z_e ~ Categorical(softmax(phi_e))``, relaxed with the Gumbel-softmax
(Concrete) distribution ``y_e = softmax((phi_e + g_e) / tau)``, ``g_e`` i.i.d. Gumbel(0, 1)
(Jang et al. 2017; Maddison et al. 2017); ``hard=True`` returns the one-hot ``argmax`` in the
forward pass with the relaxed sample's gradient (straight-through, as GDAS).

KL of the architecture (documented choice): ``KL(Cat(softmax(phi)) || Cat(softmax(alpha)))``
summed over edges, the KL between the *un-relaxed* categorical posterior and prior. The KL
between two Concrete densities has no closed form (a Monte-Carlo estimate would add noise);
the categorical KL is the standard surrogate (e.g. SNAS' and BASE's ELBOs are written over
the discrete ``z``) and is exactly 0 when ``phi == alpha``.

Weights: ``theta ~ N(mu, sigma^2)`` element-wise, ``sigma = exp(log_sigma)``, sampled by
reparameterisation ``theta = mu + sigma * eps`` (``eps`` from a ``torch.Generator``);
``KL(N(mu_q, s_q^2) || N(mu_p, s_p^2)) = log(s_p / s_q) + (s_q^2 + (mu_q - mu_p)^2) /
(2 s_p^2) - 1/2`` per element, summed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from .supernet import SuperNet, SuperNetConfig

__all__ = ["gumbel_softmax", "categorical_kl", "gaussian_kl", "BayesConfig", "BayesSuperNet"]


def gumbel_softmax(logits: torch.Tensor, tau: float = 1.0, hard: bool = False,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Gumbel-softmax sample of ``logits [..., K]`` (last dim = categories), same shape.

    ``hard``: one-hot of the argmax in the forward pass, gradient of the soft sample
    (straight-through). Noise from ``generator`` (the global RNG is not used when given).
    """
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype)
    g = -torch.log((-torch.log(u.clamp_min(1e-20))).clamp_min(1e-20))
    soft = F.softmax((logits + g) / tau, dim=-1)
    if not hard:
        return soft
    idx = soft.argmax(dim=-1, keepdim=True)
    onehot = torch.zeros_like(soft).scatter_(-1, idx, 1.0)
    return onehot - soft.detach() + soft


def categorical_kl(q_logits: torch.Tensor, p_logits: torch.Tensor) -> torch.Tensor:
    """``sum KL(Cat(softmax(q)) || Cat(softmax(p)))`` over every leading dim; scalar."""
    log_q = F.log_softmax(q_logits, dim=-1)
    log_p = F.log_softmax(p_logits, dim=-1)
    return (log_q.exp() * (log_q - log_p)).sum()


def gaussian_kl(mu_q: torch.Tensor, log_sigma_q: torch.Tensor, mu_p: torch.Tensor,
                log_sigma_p: torch.Tensor) -> torch.Tensor:
    """``sum KL(N(mu_q, s_q^2) || N(mu_p, s_p^2))`` element-wise (same shapes); scalar."""
    var_ratio = torch.exp(2.0 * (log_sigma_q - log_sigma_p))
    mean_term = (mu_q - mu_p).pow(2) * torch.exp(-2.0 * log_sigma_p)
    return (log_sigma_p - log_sigma_q + 0.5 * (var_ratio + mean_term) - 0.5).sum()


@dataclass(frozen=True)
class BayesConfig:
    """The BASE model: supernet size plus the distribution parameterisation.

    Attributes:
        space: cell space id (``"nb201"``).
        C, N, in_channels, num_classes: the supernet (``SuperNetConfig``).
        sigma_init: initial weight standard deviation (prior and posterior), ``exp(log_sigma)``.
        arch_scale: the architecture logits are ``arch_scale * arch_param``: one optimiser
            learning rate for weights and logits (Reptile's inner loop has one) moves the
            logits ``arch_scale`` times faster than a weight.
        init_seed: seed of the initial means (PyTorch-default init, ``SuperNet``).
    """

    space: str = "nb201"
    C: int = 8
    N: int = 1
    in_channels: int = 1
    num_classes: int = 5
    sigma_init: float = 0.01
    arch_scale: float = 10.0
    init_seed: int = 0

    def __post_init__(self) -> None:
        if not self.sigma_init > 0:
            raise ValueError(f"sigma_init must be > 0, got {self.sigma_init}")
        if not self.arch_scale > 0:
            raise ValueError(f"arch_scale must be > 0, got {self.arch_scale}")

    def supernet(self) -> SuperNetConfig:
        return SuperNetConfig(C=self.C, N=self.N, in_channels=self.in_channels,
                              num_classes=self.num_classes)

    def replace(self, **changes) -> "BayesConfig":
        return replace(self, **changes)


class BayesSuperNet(nn.Module):
    """BASE's variational model on a supernet: posterior parameters ``(phi, psi)`` and the
    prior ``W = (alpha, mu, sigma)`` they are compared with.

    Parameters (what Reptile meta-learns and adaptation fine-tunes):
        ``arch_param [n_edges, n_ops]`` (logits ``phi = arch_scale * arch_param``);
        ``net.*``: the weight means ``mu_q`` (the supernet's own parameters);
        ``log_sigma.<i>``: one ``log sigma_q`` tensor per supernet parameter (same shape).

    Prior: non-persistent buffers ``prior_logits``, ``prior_mu.<i>``, ``prior_log_sigma.<i>``,
    a snapshot of the parameters taken by ``sync_prior()`` (called at construction and on
    every load): in BASE the prior is the meta-parameters ``W`` and adaptation starts from it,
    ``(phi^0, psi^0) = W``. A checkpoint therefore stores only ``W``.

    Args:
        config: ``BayesConfig``.
        generator: initial means from it (default ``manual_seed(config.init_seed)``).
    """

    def __init__(self, config: BayesConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config = config or BayesConfig()
        gen = generator or torch.Generator().manual_seed(int(config.init_seed))
        self.net = SuperNet(config.space, config.supernet(), generator=gen)
        self.space = self.net.space
        self.arch_param = nn.Parameter(torch.zeros(self.space.n_edges, self.space.n_ops))
        self._names = [n for n, _ in self.net.named_parameters()]
        self.log_sigma = nn.ParameterList(
            nn.Parameter(torch.full_like(p, math.log(config.sigma_init)))
            for _, p in self.net.named_parameters())
        self.register_buffer("prior_logits", torch.zeros_like(self.arch_param), persistent=False)
        for i, (_, p) in enumerate(self.net.named_parameters()):
            self.register_buffer(f"prior_mu_{i}", torch.zeros_like(p), persistent=False)
            self.register_buffer(f"prior_log_sigma_{i}", torch.zeros_like(p), persistent=False)
        self.sync_prior()

    # ------------------------------------------------------------------ prior
    @torch.no_grad()
    def sync_prior(self) -> None:
        """Prior := current parameters (``W``)."""
        self.prior_logits.copy_(self.logits)
        for i, (p, ls) in enumerate(zip(self.net.parameters(), self.log_sigma)):
            getattr(self, f"prior_mu_{i}").copy_(p)
            getattr(self, f"prior_log_sigma_{i}").copy_(ls)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        out = super().load_state_dict(state_dict, strict=strict, assign=assign)
        self.sync_prior()
        return out

    # ------------------------------------------------------------------ distributions
    @property
    def logits(self) -> torch.Tensor:
        """Posterior architecture logits ``phi`` ``[n_edges, n_ops]``."""
        return self.arch_param * self.config.arch_scale

    def arch_probs(self) -> torch.Tensor:
        """``softmax(phi)`` per edge, ``[n_edges, n_ops]`` (no gradient)."""
        return F.softmax(self.logits.detach(), dim=-1)

    def sample_weights(self, generator: torch.Generator | None = None,
                       mean: bool = False) -> dict[str, torch.Tensor]:
        """``{name: theta}`` for every supernet parameter: ``mu + sigma * eps`` (or ``mu``
        with ``mean=True``), differentiable in ``mu`` and ``log_sigma``."""
        out = {}
        for name, p, ls in zip(self._names, self.net.parameters(), self.log_sigma):
            if mean:
                out[name] = p
            else:
                eps = torch.randn(p.shape, generator=generator, dtype=p.dtype)
                out[name] = p + ls.exp() * eps
        return out

    def kl_weights(self) -> torch.Tensor:
        """``KL(q(theta) || p(theta))`` summed over every weight; scalar."""
        total = self.arch_param.new_zeros(())
        for i, (p, ls) in enumerate(zip(self.net.parameters(), self.log_sigma)):
            total = total + gaussian_kl(p, ls, getattr(self, f"prior_mu_{i}"),
                                        getattr(self, f"prior_log_sigma_{i}"))
        return total

    def kl_arch(self) -> torch.Tensor:
        """``KL(q(z) || p(z))`` (categorical, summed over edges); scalar."""
        return categorical_kl(self.logits, self.prior_logits)

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, arch_weights: torch.Tensor,
                weights: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """Logits ``[B, num_classes]`` of ``x [B, C, H, W]`` with ``arch_weights [n_edges,
        n_ops]`` and sampled supernet weights (``None``: the means)."""
        if weights is None:
            return self.net(x, arch_weights)
        return functional_call(self.net, weights, (x, arch_weights))

    def n_weights(self) -> int:
        return int(sum(p.numel() for p in self.net.parameters()))
