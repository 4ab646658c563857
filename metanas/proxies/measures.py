"""Zero-cost proxies of a network at initialisation, from one mini-batch.

Every proxy is ``score(net, inputs, targets, loss_fn=F.cross_entropy) -> float``, higher is
better (as in the papers' rank correlations), and follows the published definition and the
reference implementations (``SamsungLabs/zero-cost-nas`` / ``automl/NASLib``,
``predictors/utils/pruners/measures``):

============  ===============================================================================
``grad_norm`` ``sum_l ||dL/dW_l||_2`` over conv and linear weights ``W_l`` (Abdelfattah et
              al., ICLR 2021).
``snip``      ``sum_l sum |W_l * dL/dW_l|`` (connection sensitivity, Lee et al. 2019, as a NAS
              proxy in Abdelfattah et al. 2021).
``synflow``   ``sum_l sum |W_l * dR/dW_l|`` with ``R = sum(net(1))``: every parameter (and
              buffer) replaced by its absolute value, BatchNorm layers removed (the reference's
              ``bn=False``), float64, one all-ones input of the batch's shape (Tanaka et al.
              2020; Abdelfattah et al. 2021). Data-independent. ``log=True`` gives
              ``log(score)`` (0 for 0), the form NASLib's / NAS-Bench-Suite-Zero tables store.
``jacob_cov`` ``-sum_i [log(v_i + k) + 1 / (v_i + k)]``, ``k = 1e-5``, ``v`` the eigenvalues of
              the correlation matrix of the per-sample input gradients ``d sum(net(x)) / dx_n``
              (Mellor et al. 2020, v1 of "Neural architecture search without training").
``nwot``      ``log |det K|``, ``K = sum_relu [c c^T + (1-c)(1-c)^T]``, ``c`` the binary codes
              ``[pre-activation > 0]`` of every ``nn.ReLU`` input, flattened per sample
              (NASWOT, Mellor et al., ICML 2021).
============  ===============================================================================

Conventions shared by all proxies:

* the network runs in training mode (BatchNorm normalises with the batch statistics, as in the
  reference code) and is left as it was: its train/eval mode, parameters, ``.grad`` fields and
  BatchNorm running statistics are restored; ``synflow`` works on a copy;
* "layers" are the ``nn.Conv2d`` and ``nn.Linear`` modules (weights only, as the reference);
* degenerate cases stay finite where the definition allows: a weight that gets no gradient
  counts 0; ``jacob_cov`` treats a sample whose input gradient is constant (an input-independent
  network, e.g. a cell of ``none`` ops) as uncorrelated with everything *including itself*, so
  each such sample adds the maximal penalty ``log(k) + 1/k`` (about ``1e5``) instead of the
  reference's NaN (NASLib then stores ``-1e8``); ``nwot`` returns ``-inf`` when ``K`` is singular
  (two samples with identical activation codes, e.g. duplicated inputs), as the reference.
"""

from __future__ import annotations

import copy
import math
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: ``jacob_cov`` regulariser of the reference implementation
JACOB_COV_K = 1e-5


def _layers(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


@contextmanager
def _scoring(net: nn.Module) -> Iterator[nn.Module]:
    """Training mode for the duration; restore mode, BN buffers and ``.grad`` afterwards."""
    was_training = {m: m.training for m in net.modules()}
    buffers = {k: v.detach().clone() for k, v in net.named_buffers()}
    grads = {p: p.grad for p in net.parameters()}
    try:
        net.train()
        yield net
    finally:
        for m, t in was_training.items():
            m.training = t
        with torch.no_grad():
            for k, v in net.named_buffers():
                if k in buffers:
                    v.copy_(buffers[k])
        for p, g in grads.items():
            p.grad = g


def _weight_grads(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                  loss_fn: LossFn) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(W, dL/dW)`` for every conv / linear weight (zeros where no gradient flows)."""
    layers = _layers(net)
    weights = [m.weight for m in layers]
    need = [w for w in weights if w.requires_grad]
    loss = loss_fn(net(inputs), targets)
    got = torch.autograd.grad(loss, need, allow_unused=True) if need else ()
    by_id = {id(w): g for w, g in zip(need, got)}
    out = []
    for w in weights:
        g = by_id.get(id(w))
        out.append((w.detach(), torch.zeros_like(w) if g is None else g.detach()))
    return out


def grad_norm(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
              loss_fn: LossFn = F.cross_entropy) -> float:
    """Sum over conv / linear layers of the L2 norm of the loss gradient of the weight."""
    with _scoring(net):
        pairs = _weight_grads(net, inputs, targets, loss_fn)
        return float(sum(g.double().norm() for _, g in pairs)) if pairs else 0.0


def snip(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
         loss_fn: LossFn = F.cross_entropy) -> float:
    """SNIP saliency ``sum |W * dL/dW|`` over conv / linear weights (= ``|dL/dmask|`` at a
    mask of ones, the reference's formulation)."""
    with _scoring(net):
        pairs = _weight_grads(net, inputs, targets, loss_fn)
        return float(sum((w.double() * g.double()).abs().sum() for w, g in pairs)) if pairs else 0.0


def synflow(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
            loss_fn: LossFn | None = None, *, log: bool = False) -> float:
    """SynFlow ``sum |W * dR/dW|``, ``R = sum(f_|theta|(1))`` without BN, in float64.

    ``inputs`` only gives the input shape (``inputs[0]``); ``targets`` and ``loss_fn`` are
    unused. With ``log=True`` returns ``log(score)`` (``0.0`` for a zero score), NASLib's
    stored form.
    """
    work = copy.deepcopy(net)
    for name, m in list(work.named_modules()):
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            parent = work.get_submodule(name.rsplit(".", 1)[0]) if "." in name else work
            setattr(parent, name.rsplit(".", 1)[-1], nn.Identity())
    work = work.double().train()
    with torch.no_grad():
        for t in work.state_dict().values():
            if t.is_floating_point():
                t.abs_()
    for p in work.parameters():
        p.requires_grad_(True)
        p.grad = None
    x = torch.ones((1,) + tuple(inputs.shape[1:]), dtype=torch.float64, device=inputs.device)
    out = work(x).sum()
    layers = _layers(work)
    grads = torch.autograd.grad(out, [m.weight for m in layers], allow_unused=True)
    score = 0.0
    for m, g in zip(layers, grads):
        if g is not None:
            score += float((m.weight.detach() * g).abs().sum())
    if log:
        return math.log(score) if score > 0 else 0.0
    return score


def jacob_cov(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
              loss_fn: LossFn | None = None, *, k: float = JACOB_COV_K) -> float:
    """Score of the correlation of per-sample input Jacobians (Mellor et al. 2020, v1).

    ``J_n = d sum_{m,c} f(x)_{m,c} / d x_n`` (the reference's ``y.backward(ones_like(y))``),
    ``corr`` their correlation matrix over the batch, ``v`` its eigenvalues:
    ``-sum(log(v + k) + 1 / (v + k))``. At most ``-B`` (uncorrelated samples); see the module
    doc for constant Jacobians.
    """
    with _scoring(net):
        x = inputs.detach().clone().requires_grad_(True)
        y = net(x)
        (jac,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y), allow_unused=True)
    if jac is None:
        jac = torch.zeros_like(x)
    J = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    raw = np.linalg.norm(J, axis=1)
    J = J - J.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(J, axis=1)
    ok = norms > 1e-12 * raw  # a constant row leaves only rounding noise after centring
    U = np.zeros_like(J)
    U[ok] = J[ok] / norms[ok, None]
    corr = U @ U.T
    v = np.clip(np.linalg.eigvalsh(corr), 0.0, None)
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


def nwot(net: nn.Module, inputs: torch.Tensor, targets: torch.Tensor | None = None,
         loss_fn: LossFn | None = None) -> float:
    """NASWOT score ``log|det K|`` of the binary activation-code kernel (Mellor et al. 2021).

    ``K[a, b]`` = number of ReLU units on which samples ``a`` and ``b`` agree (both active or
    both inactive), summed over every ``nn.ReLU`` module (its input, flattened). ``-inf`` if
    ``K`` is singular.
    """
    B = inputs.shape[0]
    K = torch.zeros((B, B), dtype=torch.float64)

    def hook(module, inp, out) -> None:
        nonlocal K
        c = (inp[0].detach().reshape(B, -1) > 0)
        D = c.shape[1]
        # agreements = c c^T + (1-c)(1-c)^T = D - s_a - s_b + 2 (c c^T)_ab, s = active counts;
        # float32 products of 0/1 codes are exact while D < 2^24
        c = c.float() if D < 2 ** 24 else c.double()
        s = c.sum(1).double().cpu()
        cc = (c @ c.T).double().cpu()
        K = K + (D - s[:, None] - s[None, :] + 2.0 * cc)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    try:
        with _scoring(net), torch.no_grad():
            net(inputs)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = torch.linalg.slogdet(K)
    if float(sign) <= 0:
        return float("-inf")
    return float(logdet)


__all__ = ["grad_norm", "snip", "synflow", "jacob_cov", "nwot", "JACOB_COV_K"]
