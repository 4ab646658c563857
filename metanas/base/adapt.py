"""BASE quick adaptation: start from the meta-learned prior ``W``, take ``T`` stochastic
gradient steps of the negative ELBO on the new task (BASE Algorithm, lines 6-9, with the
optimiser of meta-training's inner loop), then derive an architecture.

``adapt(prior, data, config, generator)``:

1. ``model_for_task``: a ``BayesSuperNet`` for the task's channel / class counts whose
   parameters are the prior's (``(phi^0, psi^0) = W``); tensors whose shape differs (the stem
   for another channel count, the head for another class count) start from a fresh
   initialisation with ``sigma_init`` and are their own prior.
2. ``steps`` optimiser steps (``"adam"`` default, or ``"sgd"``) of ``elbo_loss`` on
   mini-batches of the task's *train* split.
3. The posterior ``q(z | D) = Cat(softmax(phi^T))``; ``derive`` picks the most probable op per
   edge, or (``derive_samples = k > 0``) also samples ``k`` architectures from it and keeps the
   one with the best validation accuracy of the supernet at the posterior-mean weights (ties:
   the more probable one).

Everything random comes from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..spaces import Arch, CellSpace
from .bayes import BayesConfig, BayesSuperNet
from .elbo import ELBOConfig, elbo_loss, sample_batch
from .supernet import arch_onehot

__all__ = ["AdaptConfig", "AdaptResult", "adapt", "model_for_task", "derive", "argmax_arch",
           "sample_archs", "supernet_accuracy", "make_optimizer"]


@dataclass(frozen=True)
class AdaptConfig:
    """Quick-adaptation settings.

    Attributes:
        steps: gradient steps ``T`` on the task (default 100: ~7 s on one CPU core for a 5-way
            digits task with the C=8, N=1 supernet).
        lr: optimiser learning rate (default 1e-3, meta-training's inner rate).
        optimizer: ``"adam"`` (default, as meta-training's inner loop) or ``"sgd"``.
        elbo: the objective (``ELBOConfig``).
        derive_samples: ``k`` sampled candidates ranked on the validation split (0 = argmax
            only).
    """

    steps: int = 100
    lr: float = 1e-3
    optimizer: str = "adam"
    elbo: ELBOConfig = field(default_factory=ELBOConfig)
    derive_samples: int = 0

    def __post_init__(self) -> None:
        if int(self.steps) < 0:
            raise ValueError(f"AdaptConfig.steps must be >= 0, got {self.steps}")
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"AdaptConfig.optimizer must be 'adam' or 'sgd', got "
                             f"{self.optimizer!r}")

    def replace(self, **changes) -> "AdaptConfig":
        return replace(self, **changes)


@dataclass
class AdaptResult:
    """``logits [n_edges, n_ops]`` of the posterior, the derived ``arch``, ``steps`` taken,
    ``wall_s`` (adaptation + derivation), ``history`` (per-step loss parts every 10 steps) and
    the adapted ``model``."""

    logits: torch.Tensor
    arch: Arch
    steps: int
    wall_s: float
    history: list[dict]
    model: BayesSuperNet | None = None


def make_optimizer(name: str, params, lr: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr)
    raise ValueError(f"optimizer must be 'adam' or 'sgd', got {name!r}")


def model_for_task(prior: BayesSuperNet, in_channels: int, num_classes: int,
                   generator: torch.Generator | None = None) -> BayesSuperNet:
    """A copy of ``prior`` for a task with ``in_channels`` / ``num_classes`` (module doc,
    step 1); its prior buffers are synced to its parameters."""
    cfg = prior.config
    if (cfg.in_channels, cfg.num_classes) == (int(in_channels), int(num_classes)):
        model = copy.deepcopy(prior)
        model.sync_prior()
        return model
    new_cfg = cfg.replace(in_channels=int(in_channels), num_classes=int(num_classes))
    model = BayesSuperNet(new_cfg, generator=generator or torch.Generator().manual_seed(0))
    src = prior.state_dict()
    own = model.state_dict()
    keep = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    own.update(keep)
    model.load_state_dict(own)  # syncs the prior
    return model


def argmax_arch(logits: torch.Tensor | np.ndarray,
                generator: torch.Generator | None = None) -> Arch:
    """Most probable op per edge of ``logits [n_edges, n_ops]``. Ties go to the lowest index,
    or, with ``generator``, to a uniform draw among the tied ops (drawn only on an edge with a
    tie, so untied logits give the same cell either way): an untrained uniform prior would
    otherwise always give op 0 on every edge, NAS-Bench-201's all-``none`` cell."""
    arr = np.asarray(torch.as_tensor(logits).detach().cpu(), dtype=np.float64)
    arch = [int(i) for i in arr.argmax(axis=1)]
    if generator is not None:
        for e, row in enumerate(arr):
            tied = np.flatnonzero(row == row[arch[e]])
            if tied.size > 1:
                arch[e] = int(tied[int(torch.randint(tied.size, (1,), generator=generator))])
    return tuple(arch)


def sample_archs(logits: torch.Tensor, k: int, generator: torch.Generator | None) -> list[Arch]:
    """``k`` architectures drawn from ``Cat(softmax(logits))`` per edge (with replacement)."""
    probs = torch.softmax(torch.as_tensor(logits).detach().float(), dim=-1)
    out = []
    for _ in range(int(k)):
        idx = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        out.append(tuple(int(i) for i in idx))
    return out


@torch.no_grad()
def supernet_accuracy(net, space: CellSpace, arch: Arch, x: torch.Tensor, y: torch.Tensor,
                      batch_size: int = 512) -> float:
    """Accuracy (%) of sub-network ``arch`` of a supernet (``SuperNet`` or ``BayesSuperNet``
    at its mean weights) on ``x [n, C, H, W]``, ``y [n]`` (batch-statistics BN)."""
    w = arch_onehot(space, arch)
    correct = 0
    for i in range(0, len(y), batch_size):
        correct += int((net(x[i:i + batch_size], w).argmax(1) == y[i:i + batch_size]).sum())
    return 100.0 * correct / max(1, len(y))


def derive(net, space: CellSpace, logits: torch.Tensor, data=None, k: int = 0,
           generator: torch.Generator | None = None) -> Arch:
    """The argmax architecture of ``logits``; with ``k > 0`` and ``data`` also ``k`` samples,
    ranked by ``supernet_accuracy`` on ``data``'s validation split (ties: most probable)."""
    best = argmax_arch(logits)
    if k <= 0 or data is None:
        return best
    logp = torch.log_softmax(torch.as_tensor(logits).detach().float(), dim=-1)
    cands = list(dict.fromkeys([best] + sample_archs(logits, k, generator)))

    def key(a):
        acc = supernet_accuracy(net, space, a, data.x_valid, data.y_valid)
        return (acc, float(logp[torch.arange(len(a)), torch.tensor(a)].sum()))

    return max(cands, key=key)


def adapt(prior: BayesSuperNet, data, config: AdaptConfig | None = None,
          generator: torch.Generator | None = None) -> AdaptResult:
    """Quick adaptation of ``prior`` to ``data`` (a ``metanas.train.TaskData``); see the
    module doc. ``prior`` is not modified."""
    config = config or AdaptConfig()
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    model = model_for_task(prior, data.in_channels, data.n_classes, gen)
    model.train()
    opt = make_optimizer(config.optimizer, [p for p in model.parameters() if p.requires_grad],
                         config.lr)
    n = int(data.y_train.shape[0])
    history = []
    for step in range(int(config.steps)):
        xb, yb = sample_batch(data.x_train, data.y_train, config.elbo.batch_size, gen)
        parts = elbo_loss(model, xb, yb, n, config.elbo, gen)
        opt.zero_grad(set_to_none=True)
        parts.loss.backward()
        opt.step()
        if step % 10 == 0 or step == config.steps - 1:
            history.append({"step": step, "loss": float(parts.loss.detach()), "nll": parts.nll,
                            "kl_weights": parts.kl_weights, "kl_arch": parts.kl_arch})
    logits = model.logits.detach().clone()
    arch = derive(model, model.space, logits, data, config.derive_samples, gen)
    return AdaptResult(logits, arch, int(config.steps), time.perf_counter() - t0, history, model)
