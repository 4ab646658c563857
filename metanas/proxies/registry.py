"""Proxy registry: score architectures of a cell space by name.

``compute(name, arch, space, batch, config, seed)`` builds ``CellNetwork(arch, space, config,
seed=seed)`` and returns the proxy on ``batch``; ``compute_many(names, archs, ...)`` does it
for many proxies and architectures, building each network once (every proxy of an arch sees the
same initial weights) and sharing the one loss gradient that ``snip`` and ``grad_norm`` both
need.

Names (``names()``): ``grad_norm``, ``snip``, ``synflow`` (raw sum), ``synflow_log``
(``log`` of it, the form of NASLib's tables), ``jacob_cov``, ``nwot``; aliases ``jacov``
(NASLib), ``naswot``, ``logsynflow``. All are "higher is better".
"""

from __future__ import annotations

import time
from functools import partial
from typing import Callable, Iterable, Sequence

import numpy as np
import torch.nn.functional as F

from ..nn.cell_network import CellNetwork, NetworkConfig
from ..spaces import Arch, CellSpace
from ..spaces import get as get_space
from . import measures
from .data import ProxyBatch, digits_batch

ProxyFn = Callable[..., float]

PROXIES: dict[str, ProxyFn] = {
    "grad_norm": measures.grad_norm,
    "snip": measures.snip,
    "synflow": measures.synflow,
    "synflow_log": partial(measures.synflow, log=True),
    "jacob_cov": measures.jacob_cov,
    "nwot": measures.nwot,
}
ALIASES = {"jacov": "jacob_cov", "jacobcov": "jacob_cov", "naswot": "nwot",
           "logsynflow": "synflow_log", "log_synflow": "synflow_log", "gradnorm": "grad_norm"}
#: proxies that use the labels / loss (the others ignore ``targets``)
USES_LOSS = frozenset({"grad_norm", "snip"})


def names() -> list[str]:
    """Registered proxy names (aliases excluded)."""
    return list(PROXIES)


def canonical_name(name: str) -> str:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in PROXIES:
        raise KeyError(f"unknown proxy {name!r}; choose one of {', '.join(PROXIES)}")
    return key


def get(name: str) -> ProxyFn:
    """The function ``score(net, inputs, targets, loss_fn=...) -> float`` of ``name``."""
    return PROXIES[canonical_name(name)]


def _as_batch(batch, config: NetworkConfig | None) -> tuple[ProxyBatch, NetworkConfig]:
    if batch is None:
        batch = digits_batch()
    if not isinstance(batch, ProxyBatch):
        inputs, targets = batch[0], batch[1]
        n_cls = (int(batch[2]) if len(batch) > 2 else
                 config.num_classes if config is not None else int(targets.max()) + 1)
        batch = ProxyBatch(inputs, targets, n_cls)
    if batch.inputs.dim() != 4:
        raise ValueError(f"inputs must be [B, C, H, W], got shape {tuple(batch.inputs.shape)}")
    c_in = int(batch.inputs.shape[1])
    if config is None:
        config = NetworkConfig(in_channels=c_in, num_classes=batch.num_classes)
    else:
        if config.in_channels != c_in:
            raise ValueError(f"config.in_channels={config.in_channels} but the batch has {c_in} "
                             f"channels")
        if batch.targets.numel() and int(batch.targets.max()) >= config.num_classes:
            raise ValueError(f"targets go up to {int(batch.targets.max())} but "
                             f"config.num_classes={config.num_classes}")
    return batch, config


def _space(space: CellSpace | str) -> CellSpace:
    return get_space(space) if isinstance(space, str) else space


def compute(name: str, arch: Arch, space: CellSpace | str = "nb201",
            batch: ProxyBatch | tuple | None = None, config: NetworkConfig | None = None,
            seed: int = 0, loss_fn=F.cross_entropy) -> float:
    """Proxy ``name`` of ``arch`` at initialisation ``seed`` on ``batch``.

    Args:
        name: a proxy name or alias (``names()``).
        arch: op-index tuple of ``space``.
        space: ``CellSpace`` or its name.
        batch: ``ProxyBatch`` or ``(inputs, targets[, num_classes])``; default
            ``digits_batch()`` (64 digits, 32x32, 3 channels).
        config: network configuration; default NB201's (C=16, N=5) with the batch's channel
            and class counts. A given config must agree with the batch.
        seed: parameter initialisation seed of the network.
    """
    fn = get(name)
    batch, config = _as_batch(batch, config)
    net = CellNetwork(arch, _space(space), config, seed=seed)
    return float(fn(net, batch.inputs, batch.targets, loss_fn=loss_fn))


def compute_many(names: Iterable[str], archs: Sequence[Arch], space: CellSpace | str = "nb201",
                 batch: ProxyBatch | tuple | None = None, config: NetworkConfig | None = None,
                 seed: int = 0, loss_fn=F.cross_entropy, return_times: bool = False):
    """Every proxy of ``names`` for every arch (same arguments as ``compute``).

    Returns ``{name: float64 array [len(archs)]}`` keyed by the names as given; with
    ``return_times=True`` also ``{name: array of seconds}``, the cost of each proxy computed
    alone (network construction excluded; the loss gradient shared by ``snip`` and
    ``grad_norm`` counts in full for both) and ``"build"`` (network construction).
    """
    names = list(names)
    keys = [canonical_name(n) for n in names]
    space = _space(space)
    batch, config = _as_batch(batch, config)
    x, y = batch.inputs, batch.targets
    scores = {n: np.full(len(archs), np.nan) for n in names}
    times = {n: np.zeros(len(archs)) for n in names + ["build"]}
    shared = {"snip", "grad_norm"} <= set(keys)
    for i, arch in enumerate(archs):
        t0 = time.perf_counter()
        net = CellNetwork(arch, space, config, seed=seed)
        times["build"][i] = time.perf_counter() - t0
        done: dict[str, tuple[float, float]] = {}
        if shared:
            t0 = time.perf_counter()
            with measures._scoring(net):
                pairs = measures._weight_grads(net, x, y, loss_fn)
            t_grad = time.perf_counter() - t0
            t0 = time.perf_counter()
            gn = float(sum(g.double().norm() for _, g in pairs)) if pairs else 0.0
            t_gn = time.perf_counter() - t0
            t0 = time.perf_counter()
            sn = (float(sum((w.double() * g.double()).abs().sum() for w, g in pairs))
                  if pairs else 0.0)
            t_sn = time.perf_counter() - t0
            done["grad_norm"] = (gn, t_grad + t_gn)
            done["snip"] = (sn, t_grad + t_sn)
            del pairs
        for n, k in zip(names, keys):
            if k not in done:
                t0 = time.perf_counter()
                v = float(PROXIES[k](net, x, y, loss_fn=loss_fn))
                done[k] = (v, time.perf_counter() - t0)
            scores[n][i], times[n][i] = done[k]
    return (scores, times) if return_times else scores


__all__ = ["PROXIES", "ALIASES", "USES_LOSS", "names", "canonical_name", "get", "compute",
           "compute_many"]
