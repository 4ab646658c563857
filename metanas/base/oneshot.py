"""One-shot NAS baselines on the same supernet (``SuperNet``): DARTS (first order), SNAS /
GDAS (Gumbel relaxation, single level, no meta prior) and DARTS+ (DARTS with early stopping).

Compute budget: ``steps`` counts supernet forward + backward passes, the unit of BASE's
adaptation (one pass per step), so ``steps`` equal to BASE's ``AdaptConfig.steps`` is "equal
compute". DARTS and DARTS+ spend two passes per round (an architecture step on a validation
batch, then a weight step on a training batch), i.e. ``steps / 2`` rounds, so their ``steps``
must be even and >= 2 (``check_steps``); SNAS one pass per step (weights and architecture on
the same training batch), ``steps >= 1``.

Shared settings (so the comparison isolates the algorithms): weights with Adam at ``lr``
(1e-3, BASE's rate), architecture logits with Adam at ``arch_lr`` (1e-2 = BASE's effective
logit rate ``arch_scale * lr``), mini-batches of 64, logits initialised as DARTS does
(``1e-3 * N(0, 1)``), the supernet's initial weights from the same ``init_seed`` convention. A method uses only its
own settings (``USED_SETTINGS``): ``search`` rejects a config that changes another method's
setting (e.g. ``tau`` for DARTS), rather than ignoring it.

Derivation (the returned ``arch``, and DARTS+'s per-epoch argmax): the most probable op per
edge *including* the zero op ``none``, the convention of NAS-Bench-201's reference code (its
DARTS / GDAS / SETN baselines take the plain argmax over all five ops), which the recorded
results use. The DARTS paper (Liu et al., 2019, Sec. 2.4) and its derivation of the discrete
cell exclude the zero op ("the strongest non-zero operation"); ``exclude_zero=True`` follows
that convention (the ``none`` column is masked before the argmax, and before drawing the
``derive_samples`` candidates), for all three methods. Default ``False``: the NB201 convention.

- **DARTS** (Liu et al., ICLR 2019), first-order approximation: alternate
  ``alpha <- alpha - arch_lr * grad_alpha L_val(w, softmax(alpha))`` and
  ``w <- w - lr * grad_w L_train(w, softmax(alpha))``; derive the argmax op per edge
  (``none`` included unless ``exclude_zero``: see Derivation above).
- **SNAS** (Xie et al., ICLR 2019): ``L_train(w, z)``, ``z`` a Gumbel-softmax sample of
  ``alpha`` with the temperature annealed exponentially from ``tau`` to ``tau_min``; weights
  and logits updated together on the training batch (single level). ``hard=True`` is the
  GDAS-style straight-through one-hot sample (Dong & Yang, CVPR 2019).
- **DARTS+** (Liang et al., 2019): DARTS, checked once per epoch (a pass over the train split
  in rounds); stop when the derived cell has ``>= max_skips`` skip-connects (criterion 1) or
  when the argmax architecture has been unchanged for ``patience`` epochs (criterion 1*: the
  ranking of alpha is stable); the architecture at the stop is kept. Both criteria read the
  derived cell, so with ``exclude_zero`` its argmax without ``none``. The source's patience
  (10 epochs of a 50+-epoch search) is scaled down to ``patience=3`` for these few-epoch
  budgets. ``steps`` is the maximum.

Randomness only from the ``torch.Generator`` passed in.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from ..spaces import Arch, CellSpace
from .adapt import argmax_arch, derive
from .bayes import gumbel_softmax
from .elbo import sample_batch
from .supernet import SuperNet, SuperNetConfig

__all__ = ["OneShotConfig", "SearchResult", "METHODS", "BILEVEL", "USED_SETTINGS", "search",
           "darts_search", "snas_search", "darts_plus_search", "check_settings", "check_steps",
           "check_used", "derive_logits"]

METHODS = ("darts", "snas", "darts+")
#: methods with DARTS's bilevel rounds (one architecture + one weight pass each)
BILEVEL = ("darts", "darts+")
_SHARED = ("steps", "lr", "arch_lr", "batch_size", "C", "N", "init_seed", "derive_samples",
           "exclude_zero")
#: the ``OneShotConfig`` fields each method reads (the others it would silently ignore)
USED_SETTINGS: dict[str, frozenset] = {
    "darts": frozenset(_SHARED),
    "snas": frozenset(_SHARED + ("tau", "tau_min", "hard")),
    "darts+": frozenset(_SHARED + ("patience", "max_skips")),
}


@dataclass(frozen=True)
class OneShotConfig:
    """Settings of the one-shot searches (module doc).

    Attributes:
        steps: supernet forward + backward passes (default 100 = BASE's adaptation steps).
        lr: weight learning rate (Adam, default 1e-3).
        arch_lr: architecture-logit learning rate (Adam, default 1e-2).
        batch_size: mini-batch size (default 64).
        C, N: supernet size (default 8, 1: ``TrainConfig``'s network).
        init_seed: supernet initial weights (default 0).
        tau, tau_min: SNAS temperature schedule (default 1.0 -> 0.3, exponential).
        hard: SNAS with straight-through one-hot samples (GDAS-style; default False).
        patience: DARTS+ epochs with an unchanged argmax before stopping (default 3).
        max_skips: DARTS+ stops when the cell has this many skip-connects (default 2).
        derive_samples: ``k`` sampled architectures ranked on validation besides the argmax
            (0 = argmax only, default).
        exclude_zero: derive without the zero op ``none`` (the DARTS paper's convention;
            default False: NAS-Bench-201's, ``none`` included; module doc, Derivation).

    Every field is checked here (``check_settings``: a one-line ``ValueError`` naming it) and
    stored converted (e.g. ``C=4.0`` -> ``4``). Which fields a method uses:
    ``USED_SETTINGS``; its ``steps`` rule: ``check_steps``.
    """

    steps: int = 100
    lr: float = 1e-3
    arch_lr: float = 1e-2
    batch_size: int = 64
    C: int = 8
    N: int = 1
    init_seed: int = 0
    tau: float = 1.0
    tau_min: float = 0.3
    hard: bool = False
    patience: int = 3
    max_skips: int = 2
    derive_samples: int = 0
    exclude_zero: bool = False

    def __post_init__(self) -> None:
        values = check_settings({f.name: getattr(self, f.name) for f in fields(self)})
        for k, v in values.items():
            object.__setattr__(self, k, v)

    def replace(self, **changes) -> "OneShotConfig":
        return replace(self, **changes)


@dataclass
class SearchResult:
    """``logits [n_edges, n_ops]`` at the end, the derived ``arch``, supernet passes used
    (``steps``), ``wall_s``, why it stopped (``reason``: ``"budget"``, ``"skip-connects"``,
    ``"stable"``) and the argmax after each epoch (``history``)."""

    logits: torch.Tensor
    arch: Arch
    steps: int
    wall_s: float
    reason: str = "budget"
    history: list = field(default_factory=list)


def check_settings(values: Mapping[str, Any], owner: str = "OneShotConfig",
                   prefix: str = "") -> dict[str, Any]:
    """``values`` (some ``OneShotConfig`` fields) checked and converted as ``OneShotConfig``
    stores them (``int`` / ``float`` / ``bool``); a bad one is a one-line ``UserInputError``
    (a ``ValueError``) ``"<owner>: <prefix><field> must be ..., got ..."``, the style of
    ``metanas.strategies._checks``. ``tau_min <= tau`` is checked against the default of the
    one not given."""
    from ..strategies._checks import flag, integer, positive

    out = dict(values)
    for key in ("lr", "arch_lr", "tau", "tau_min"):
        if key in out:
            out[key] = positive(prefix + key, out[key], owner)
    for key, lo in (("steps", 0), ("batch_size", 1), ("C", 1), ("N", 1), ("init_seed", 0),
                    ("patience", 1), ("max_skips", 1), ("derive_samples", 0)):
        if key in out:
            out[key] = integer(prefix + key, out[key], lo, owner)
    for key in ("hard", "exclude_zero"):
        if key in out:
            out[key] = flag(prefix + key, out[key], owner)
    if "tau" in out or "tau_min" in out:
        tau = out.get("tau", OneShotConfig.tau)
        tau_min = out.get("tau_min", OneShotConfig.tau_min)
        if tau_min > tau:
            from ..errors import UserInputError

            given = "" if "tau_min" in out else " (the default)"
            raise UserInputError(f"{owner}: {prefix}tau_min must be <= {prefix}tau ({tau:g}), "
                                 f"got {tau_min!r}{given}")
    return out


def check_steps(method: str, steps: Any, owner: str | None = None) -> int:
    """``steps`` as an ``int`` when ``method`` can spend it: DARTS / DARTS+ (``BILEVEL``) an
    even number >= 2 (one weight pass + one architecture pass per round: an odd pass would be
    silently dropped, ``steps=1`` would search nothing), SNAS >= 1; else a one-line
    ``UserInputError`` (owner: ``method``)."""
    from ..errors import UserInputError
    from ..strategies._checks import _is_int, integer

    owner = owner or method
    if method in BILEVEL and not (_is_int(steps) and int(steps) >= 2 and int(steps) % 2 == 0):
        raise UserInputError(f"{owner}: steps must be an even integer >= 2 (each round is one "
                             f"weight step + one architecture step), got {steps!r}")
    return integer("steps", steps, 1, owner)


def check_used(method: str, keys, owner: str | None = None, prefix: str = "") -> None:
    """A one-line ``UserInputError`` for the first of ``keys`` (``OneShotConfig`` fields) that
    ``method`` does not use (``USED_SETTINGS``), naming the methods that do."""
    from ..errors import UserInputError

    for key in keys:
        if key not in USED_SETTINGS[method]:
            users = [m for m in METHODS if key in USED_SETTINGS[m]]
            raise UserInputError(f"{owner or method}: {prefix}{key} is not used by {method} "
                                 f"(only by {', '.join(users)}); remove it")


def _changed(cfg: OneShotConfig) -> list[str]:
    """The fields of ``cfg`` that differ from the defaults."""
    return [f.name for f in fields(cfg) if getattr(cfg, f.name) != f.default]


def derive_logits(logits: torch.Tensor, space: CellSpace, exclude_zero: bool) -> torch.Tensor:
    """``logits`` for derivation: as is, or with the ``none`` column at ``-inf``
    (``exclude_zero``; module doc, Derivation)."""
    if not exclude_zero or "none" not in space.ops:
        return logits
    out = logits.detach().clone()
    out[:, space.ops.index("none")] = -math.inf
    return out


def _setup(space: CellSpace, data, cfg: OneShotConfig, gen: torch.Generator):
    net = SuperNet(space, SuperNetConfig(C=cfg.C, N=cfg.N, in_channels=data.in_channels,
                                         num_classes=data.n_classes),
                   generator=torch.Generator().manual_seed(int(cfg.init_seed)))
    alpha = (1e-3 * torch.randn(space.n_edges, space.n_ops, generator=gen)).requires_grad_()
    w_opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    a_opt = torch.optim.Adam([alpha], lr=cfg.arch_lr)
    return net, alpha, w_opt, a_opt


def _epoch_rounds(n_train: int, batch_size: int) -> int:
    return max(1, math.ceil(n_train / batch_size))


def _darts(space: CellSpace, data, cfg: OneShotConfig, gen: torch.Generator,
           early_stop: bool) -> SearchResult:
    t0 = time.perf_counter()
    net, alpha, w_opt, a_opt = _setup(space, data, cfg, gen)
    rounds = int(cfg.steps) // 2
    per_epoch = _epoch_rounds(int(data.y_train.shape[0]), cfg.batch_size)
    skip = space.ops.index("skip_connect") if "skip_connect" in space.ops else None
    history: list = []
    reason, stable, done = "budget", 0, 0
    for r in range(rounds):
        xv, yv = sample_batch(data.x_valid, data.y_valid, cfg.batch_size, gen)
        a_opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xv, F.softmax(alpha, dim=-1)), yv).backward()
        a_opt.step()
        xt, yt = sample_batch(data.x_train, data.y_train, cfg.batch_size, gen)
        w_opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xt, F.softmax(alpha.detach(), dim=-1)), yt).backward()
        w_opt.step()
        done = r + 1
        if done % per_epoch == 0:
            arch = argmax_arch(derive_logits(alpha.detach(), space, cfg.exclude_zero))
            stable = stable + 1 if history and tuple(history[-1]) == arch else 0
            history.append(list(arch))
            if early_stop:
                if skip is not None and sum(a == skip for a in arch) >= cfg.max_skips:
                    reason = "skip-connects"
                    break
                if stable >= cfg.patience:
                    reason = "stable"
                    break
    logits = alpha.detach().clone()
    arch = derive(net, space, derive_logits(logits, space, cfg.exclude_zero), data,
                  cfg.derive_samples, gen)
    return SearchResult(logits, arch, 2 * done, time.perf_counter() - t0, reason, history)


def _checked(method: str, cfg: OneShotConfig | None) -> OneShotConfig:
    """``cfg`` (default ``OneShotConfig()``) when ``method`` can run it: its ``steps`` rule
    (``check_steps``) and no changed setting it would ignore (``check_used``)."""
    cfg = cfg or OneShotConfig()
    check_steps(method, cfg.steps, f"{method} (OneShotConfig)")
    check_used(method, _changed(cfg), f"{method} (OneShotConfig)")
    return cfg


def darts_search(space: CellSpace, data, cfg: OneShotConfig | None = None,
                 generator: torch.Generator | None = None) -> SearchResult:
    """First-order DARTS on ``data`` (a ``TaskData``); see the module doc."""
    cfg = _checked("darts", cfg)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return _darts(space, data, cfg, gen, early_stop=False)


def darts_plus_search(space: CellSpace, data, cfg: OneShotConfig | None = None,
                      generator: torch.Generator | None = None) -> SearchResult:
    """DARTS with DARTS+'s early-stopping criteria; see the module doc."""
    cfg = _checked("darts+", cfg)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    return _darts(space, data, cfg, gen, early_stop=True)


def snas_search(space: CellSpace, data, cfg: OneShotConfig | None = None,
                generator: torch.Generator | None = None) -> SearchResult:
    """SNAS (GDAS with ``hard=True``): single-level Gumbel-softmax search; see the module
    doc."""
    cfg = _checked("snas", cfg)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    t0 = time.perf_counter()
    net, alpha, w_opt, a_opt = _setup(space, data, cfg, gen)
    steps = int(cfg.steps)
    per_epoch = _epoch_rounds(int(data.y_train.shape[0]), cfg.batch_size)
    history: list = []
    for s in range(steps):
        tau = cfg.tau * (cfg.tau_min / cfg.tau) ** (s / max(1, steps - 1))
        xt, yt = sample_batch(data.x_train, data.y_train, cfg.batch_size, gen)
        z = gumbel_softmax(alpha, tau, cfg.hard, gen)
        w_opt.zero_grad(set_to_none=True)
        a_opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(xt, z), yt).backward()
        w_opt.step()
        a_opt.step()
        if (s + 1) % per_epoch == 0:
            history.append(list(argmax_arch(derive_logits(alpha.detach(), space,
                                                          cfg.exclude_zero))))
    logits = alpha.detach().clone()
    arch = derive(net, space, derive_logits(logits, space, cfg.exclude_zero), data,
                  cfg.derive_samples, gen)
    return SearchResult(logits, arch, steps, time.perf_counter() - t0, "budget", history)


def search(method: str, space: CellSpace, data, cfg: OneShotConfig | None = None,
           generator: torch.Generator | None = None) -> SearchResult:
    """Run one-shot ``method`` (``"darts"``, ``"snas"``, ``"darts+"``)."""
    fn = {"darts": darts_search, "snas": snas_search, "darts+": darts_plus_search}.get(method)
    if fn is None:
        raise ValueError(f"unknown one-shot method {method!r}; choose one of {', '.join(METHODS)}")
    return fn(space, data, cfg, generator)
