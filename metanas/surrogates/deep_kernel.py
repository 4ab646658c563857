"""Deep-kernel GP surrogate of TNAS (Shala et al., ICLR 2023), as a BoTorch model.

    k((x, D), (x', D')) = k_Matern( xi([psi(x), phi(D)]), xi([psi(x'), phi(D')]) )

``psi``: DAG encoder of the architecture (``metanas.encoders.CellArchEncoder``), ``phi``:
two-level Set-Transformer encoding of the dataset (``metanas.encoders.DatasetEncoder``, a
learned embedding when the task has no samples), ``xi``: an MLP to ``feat_dim`` features, then
an exact GP with ``ScaleKernel(Matern-5/2 | RBF)`` (optionally ARD), a constant mean and a
Gaussian likelihood with learned noise. Everything is trained end to end on the GP marginal
likelihood: meta-trained with Reptile across tasks (``metanas.meta.reptile``), then adapted at
test time on the target task's observations (``fit``).

How architectures enter a BoTorch model (whose inputs are tensors)
------------------------------------------------------------------
``X`` is the architecture tuple itself, as floats: ``X[..., i]`` is the op index on cell edge
``i`` (``float(arch[i])``), so ``X`` is ``[..., n_edges]`` (``[..., 6]`` for NB201 /
TransNAS micro) and ``torch.tensor(archs, dtype=torch.float64)`` is all a strategy writes.
Every architecture of a cell space shares one op-node topology, so the model rebuilds the
one-hot node types of ``space.to_graph`` from ``X`` and runs the GNN on them (dense,
shared-topology path), end to end differentiable in the GNN weights. ``X`` stays tiny, works
for any cell space (no enumeration or index table needed), and BoTorch's shape conventions
(``batch x q x d``) apply unchanged. Inside ``forward`` the architectures are de-duplicated
before encoding (BoTorch repeats the training inputs for every t-batch).

Which task: the dataset samples are model state, set with ``set_task(X, y, samples)`` (or
``set_dataset``); one model instance = the GP conditioned on one task.

Targets: ``y`` is given in original units (higher is better); the GP is fit on
``(y - mean) / std`` of the task (stored as ``y_mean`` / ``y_std``), and ``posterior`` /
``predict`` return **original units** (so ``best_f = y.max()`` for ``LogExpectedImprovement``).
``predict(..., standardized=True)`` gives the GP's own units.

Scoring a whole space: ``model.posterior(X[:, None, :])`` with ``X`` all ``[15625, 6]`` NB201
cells (t-batch of ``q = 1``, what analytic acquisitions use) takes a fast path: exact
marginals from one feature pass over train + candidates and one Cholesky of the ``n x n``
training covariance, ``O(N n)`` (no ``N x N`` matrix, no per-t-batch copy of the training
set), returned as a batch of independent one-point posteriors for
``LogExpectedImprovement`` / ``UpperConfidenceBound`` / ``ProbabilityOfImprovement``. Other
shapes (``q > 1``, or a batched model such as a fantasy model) go through GPyTorch's standard
prediction, which also serves the MC and look-ahead acquisitions: ``fantasize`` (BoTorch's
``FantasizeMixin``) and ``condition_on_observations`` give batched fantasy models, so e.g.
``qKnowledgeGradient`` / ``qLogNoisyExpectedImprovement`` work on the model as is.

Inputs are discrete: ``X`` holds op indices as floats and every value is rounded to the
nearest op index (there is no gradient with respect to ``X``), so continuous acquisition
optimisation (``optimize_acqf``) does not apply - score a candidate set instead
(``optimize_acqf_discrete``, or the acquisition over all / sampled cells).

Precision: encoders and MLP in ``config.encoder_dtype`` (float32, pinned against BoTorch's
``acqf.to(X)``), GP part in float64.

Test-time adaptation: ``fit`` (proximal anchor to the meta-learned weights + early stopping
on held-out observations). Optional parts that depend on the architecture itself rather than
on the learned features, set per task and never part of a checkpoint: ``prior_mean`` (e.g.
``TablePriorMean``) and ``residual_kernel`` (``HammingResidualKernel``, added to the deep
kernel; ``fit_residual`` fits it by maximum a-posteriori on the task's observations).
Checkpoints: ``save_pretrained`` / ``from_pretrained`` (``model.safetensors`` + validated
``config.json``, see ``metanas.meta.checkpoint``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import torch
from botorch.models.gpytorch import GPyTorchModel
from botorch.models.model import FantasizeMixin
from botorch.posteriors.gpytorch import GPyTorchPosterior
from gpytorch.constraints import GreaterThan
from gpytorch.distributions import MultivariateNormal
from gpytorch.kernels import MaternKernel, RBFKernel, ScaleKernel
from gpytorch.likelihoods import GaussianLikelihood
from gpytorch.means import ConstantMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.models import ExactGP
from gpytorch.priors import LogNormalPrior
from linear_operator import to_dense
from linear_operator.operators import DenseLinearOperator, DiagLinearOperator
from linear_operator.utils.cholesky import psd_safe_cholesky
from torch import Tensor, nn

from .. import __version__
from ..encoders import (CellArchEncoder, DAGEncoder, DAGEncoderConfig, DatasetEncoder,
                        DatasetEncoderConfig)
from ..meta.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = ["DeepKernelConfig", "DeepKernelGP", "GPTask", "TablePriorMean",
           "HammingResidualKernel", "FitResult", "ResidualFit", "neg_mll", "gp_task_loss", "fit",
           "fit_residual", "loo_log_predictive", "holdout_log_predictive", "CheckpointError"]

MIN_NOISE = 1e-4
CHECKPOINT_KIND = "DeepKernelGP"


@dataclass
class DeepKernelConfig:
    """Configuration of ``DeepKernelGP`` (what ``config.json`` holds).

    Attributes:
        space: search-space id (``metanas.spaces.get``); fixes ``n_edges`` and ``n_ops``.
        arch_encoder: the DAG encoder; ``n_node_types`` must be ``2 + n_ops`` of the space
            (``for_space`` sets it).
        dataset_encoder: the Set-Transformer dataset encoder (``feat_dim`` = sample features).
        mlp_hidden: hidden widths of the feature MLP ``xi``.
        feat_dim: GP input dimension (output of ``xi``).
        kernel: ``"matern"`` or ``"rbf"``; ``nu``: Matern smoothness (0.5, 1.5, 2.5).
        ard: one lengthscale per feature.
        encoder_dtype: ``"float32"`` (default, ~2.5x faster encoding) or ``"float64"``: dtype
            of the encoders and the MLP; the GP part is float64. It is pinned: ``model.to(X)``
            (which BoTorch acquisition functions call with float64 ``X``) moves devices and
            the GP part but leaves the encoders in this dtype.
        metanas_version: version that wrote the config (informational).
    """

    space: str = "nb201"
    arch_encoder: DAGEncoderConfig = field(default_factory=lambda: DAGEncoderConfig(7))
    dataset_encoder: DatasetEncoderConfig = field(default_factory=DatasetEncoderConfig)
    mlp_hidden: tuple[int, ...] = (64,)
    feat_dim: int = 16
    kernel: str = "matern"
    nu: float = 2.5
    ard: bool = False
    encoder_dtype: str = "float32"
    metanas_version: str = __version__

    def __post_init__(self) -> None:
        from .. import spaces

        sp = spaces.get(self.space)
        self.space = sp.name
        self.mlp_hidden = tuple(int(h) for h in self.mlp_hidden)
        if self.arch_encoder.n_node_types != 2 + sp.n_ops:
            raise ValueError(f"arch_encoder.n_node_types={self.arch_encoder.n_node_types} does not "
                             f"fit space {sp.name} ({2 + sp.n_ops} node types)")
        if self.kernel not in ("matern", "rbf"):
            raise ValueError(f"kernel must be 'matern' or 'rbf', got {self.kernel!r}")
        if self.kernel == "matern" and self.nu not in (0.5, 1.5, 2.5):
            raise ValueError(f"Matern nu must be 0.5, 1.5 or 2.5, got {self.nu}")
        if self.encoder_dtype not in ("float32", "float64"):
            raise ValueError(f"encoder_dtype must be 'float32' or 'float64', got "
                             f"{self.encoder_dtype!r}")
        if self.feat_dim < 1 or any(h < 1 for h in self.mlp_hidden):
            raise ValueError("feat_dim and mlp_hidden widths must be >= 1")

    @classmethod
    def for_space(cls, space: str, **kwargs: Any) -> "DeepKernelConfig":
        """Default config for ``space`` (sets ``arch_encoder.n_node_types``)."""
        from .. import spaces

        sp = spaces.get(space)
        arch = kwargs.pop("arch_encoder", None) or DAGEncoderConfig()
        arch = DAGEncoderConfig(**{**arch.__dict__, "n_node_types": 2 + sp.n_ops})
        return cls(space=sp.name, arch_encoder=arch, **kwargs)


class GPTask(NamedTuple):
    """One task's data for ``neg_mll`` / Reptile: ``X [n, n_edges]`` arch floats, ``y [n]``
    values (original units), optional ``samples [C, S, F]`` (+ ``mask [C, S]``)."""

    X: Tensor
    y: Tensor
    samples: Tensor | None = None
    mask: Tensor | None = None


class TablePriorMean(nn.Module):
    """Architecture-indexed prior mean ``m(x) = weight * values[index(x)]`` over a whole cell
    space (``index``: radix index of the op tuple, ``n_ops ** n_edges`` entries).

    TNAS uses it as the *transfer mean*: ``values`` are its prior for every cell (the
    meta-trained surrogate's predictions, or the training tables' mean normal scores, as normal
    scores over the space) and ``weight`` is re-estimated
    on the target's observations at every step, so the prior keeps shaping the posterior
    away from the observations as far as the target agrees with it (``weight -> 0``: a
    constant mean again). ``values`` and ``weight`` are non-persistent buffers.
    """

    def __init__(self, values: Tensor, n_ops: int, n_edges: int, weight: float = 0.0) -> None:
        super().__init__()
        values = torch.as_tensor(values, dtype=torch.float64).reshape(-1)
        if values.numel() != n_ops ** n_edges:
            raise ValueError(f"values must have n_ops ** n_edges = {n_ops ** n_edges} "
                             f"entries, got {values.numel()}")
        self.register_buffer("values", values, persistent=False)
        self.register_buffer("radix", n_ops ** torch.arange(n_edges - 1, -1, -1),
                             persistent=False)
        self.register_buffer("weight", torch.tensor(float(weight), dtype=torch.float64),
                             persistent=False)

    def lookup(self, X: Tensor) -> Tensor:
        """``values`` at ``X [..., n_edges]`` -> ``[...]``."""
        return self.values[X.round().long() @ self.radix]

    def forward(self, X: Tensor) -> Tensor:
        return self.weight * self.lookup(X)


class HammingResidualKernel(nn.Module):
    """Additive kernel on the architecture itself, not on the learned features:

        k_r(x, x') = scale * exp( -sum_e weight_e * [x_e != x'_e] )

    (an exponentiated, edge-weighted Hamming kernel: ``weight_e`` is the relevance of cell edge
    ``e``; equal weights give ``exp(-w * hamming)``). ``DeepKernelGP(residual_kernel=...)``
    adds it to the deep kernel: where the meta-learned features cannot tell the target's good
    cells apart (a prior that is wrong in the last steps), the residual models the target's
    own structure around its observations. ``scale = 0`` is the plain deep kernel. ``scale``
    and ``weights`` are non-persistent float64 buffers (never part of a checkpoint), fitted per
    task at test time by ``fit_residual``.
    """

    def __init__(self, n_edges: int, n_ops: int, scale: float = 0.0, weight: float = 1.0) -> None:
        super().__init__()
        self.n_ops = int(n_ops)
        self.register_buffer("scale", torch.tensor(float(scale), dtype=torch.float64),
                             persistent=False)
        self.register_buffer("weights", torch.full((n_edges,), float(weight),
                                                   dtype=torch.float64), persistent=False)

    @staticmethod
    def mismatch(X1: Tensor, X2: Tensor | None = None) -> Tensor:
        """``[n1, n2, n_edges]`` float 0/1: edge ``e`` differs between ``X1 [n1, n_edges]`` and
        ``X2 [n2, n_edges]`` (default ``X1``)."""
        X2 = X1 if X2 is None else X2
        a, b = X1.round().long(), X2.round().long()
        return (a.unsqueeze(-2) != b.unsqueeze(-3)).to(torch.float64)

    def _onehot(self, X: Tensor) -> Tensor:
        return nn.functional.one_hot(X.round().long(), self.n_ops).to(torch.float64)

    def forward(self, X1: Tensor, X2: Tensor | None = None, diag: bool = False) -> Tensor:
        """``[n1, n2]`` (``[n1]`` with ``diag``); through the one-hot encodings,
        ``sum_e w_e [a_e != b_e] = sum_e w_e - <w * onehot(a), onehot(b)>``, so no
        ``n1 x n2 x n_edges`` tensor is formed (whole-space scoring)."""
        if diag:
            return self.scale.expand(X1.shape[:-1]).clone()
        A = self._onehot(X1) * self.weights[:, None]
        B = self._onehot(X1 if X2 is None else X2)
        same = A.flatten(-2) @ B.flatten(-2).transpose(-1, -2)
        return self.scale * torch.exp(same - self.weights.sum())


def _check_finite(y: Tensor, where: str) -> None:
    """One-line ``ValueError`` when ``y`` holds NaN / inf (drop failed evaluations first)."""
    bad = int((~torch.isfinite(y)).sum())
    if bad:
        raise ValueError(f"{where} got {bad} non-finite target value(s) of {y.numel()} (NaN / "
                         f"inf); drop failed evaluations before conditioning the GP")


def _mlp(d_in: int, hidden: Sequence[int], d_out: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(d_in, h), nn.ReLU()]
        d_in = h
    layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)


def default_covar_module(config: DeepKernelConfig) -> ScaleKernel:
    """``ScaleKernel(Matern(nu) | RBF)`` on ``feat_dim`` features. Lengthscale: the
    dimension-scaled LogNormal prior of Hvarfner et al. (2024) (BoTorch's default), >= 0.025;
    outputscale: LogNormal(0, 1) (targets are standardised), >= 1e-4."""
    d = config.feat_dim
    ls_prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(d), scale=math.sqrt(3))
    ls_kw = dict(ard_num_dims=d if config.ard else None, lengthscale_prior=ls_prior,
                 lengthscale_constraint=GreaterThan(2.5e-2, initial_value=ls_prior.mode))
    base = (MaternKernel(nu=config.nu, **ls_kw) if config.kernel == "matern"
            else RBFKernel(**ls_kw))
    return ScaleKernel(base, outputscale_prior=LogNormalPrior(0.0, 1.0),
                       outputscale_constraint=GreaterThan(1e-4, initial_value=1.0))


def default_likelihood() -> GaussianLikelihood:
    """Gaussian likelihood, LogNormal(-4, 1) noise prior (BoTorch's default, standardised
    units), noise >= 1e-4 through a softplus constraint (safe with Adam)."""
    prior = LogNormalPrior(loc=-4.0, scale=1.0)
    return GaussianLikelihood(noise_prior=prior,
                              noise_constraint=GreaterThan(MIN_NOISE, initial_value=prior.mode))


class DeepKernelGP(ExactGP, GPyTorchModel, FantasizeMixin):
    """TNAS deep-kernel GP; a BoTorch model over architecture tuples.

    Args:
        config: ``DeepKernelConfig`` (default: NB201).
        arch_encoder: ``ops [B, n_edges] -> [B, A]`` module with ``embed_dim`` (default
            ``CellArchEncoder(space, DAGEncoder(config.arch_encoder))``).
        dataset_encoder: ``(samples | None, mask) -> [Dd]`` with ``embed_dim`` (default
            ``DatasetEncoder(config.dataset_encoder)``).
        feature_extractor: ``[B, A + Dd] -> [B, feat_dim]`` (default MLP ``mlp_hidden``).
        mean_module, covar_module, likelihood: GP parts (defaults: constant mean,
            ``default_covar_module``, ``default_likelihood``), kept in float64.
        prior_mean: optional module ``X [..., n_edges] -> [...]`` (standardised units) added
            to ``mean_module`` - a mean that depends on the architecture itself rather than
            on the learned features, e.g. ``TablePriorMean`` (TNAS's transfer mean). Not
            part of the checkpoint (its tensors are non-persistent buffers).
        residual_kernel: optional module ``(X1 [n1, n_edges], X2 [n2, n_edges] | None,
            diag) -> [n1, n2]`` (or ``[n1]``) added to the deep kernel - a covariance on the
            architecture itself, e.g. ``HammingResidualKernel`` (fitted per task by
            ``fit_residual``). Not part of the checkpoint.
        train_X, train_Y, samples, mask: optional task to condition on (``set_task``).

    Shapes: ``X`` is ``[..., n, n_edges]`` op indices as floats (see module docstring);
    ``posterior(X)`` follows BoTorch (``batch x q x n_edges`` -> ``batch x q x 1``).

    ``X`` is discrete: non-integer values are rounded to the nearest op index, so the model
    has no gradient with respect to ``X`` and BoTorch's continuous ``optimize_acqf`` does
    not apply; optimise acquisitions over a candidate set with ``optimize_acqf_discrete``
    (or score all / sampled cells). Look-ahead acquisitions (``qKnowledgeGradient``...)
    work through ``fantasize``.
    """

    _num_outputs = 1
    #: sub-modules whose dtype is pinned to ``config.encoder_dtype`` (see ``_apply``)
    _ENCODERS = ("arch_encoder", "dataset_encoder", "feature_extractor")

    def __init__(self, config: DeepKernelConfig | None = None, *,
                 arch_encoder: nn.Module | None = None,
                 dataset_encoder: nn.Module | None = None,
                 feature_extractor: nn.Module | None = None,
                 mean_module: nn.Module | None = None,
                 covar_module: nn.Module | None = None,
                 likelihood: GaussianLikelihood | None = None,
                 prior_mean: nn.Module | None = None,
                 residual_kernel: nn.Module | None = None,
                 train_X: Tensor | None = None, train_Y: Tensor | None = None,
                 samples: Tensor | None = None, mask: Tensor | None = None) -> None:
        from .. import spaces

        config = config or DeepKernelConfig()
        super().__init__(None, None, (likelihood or default_likelihood()).double())
        self.config = config
        self.space = spaces.get(config.space)
        self.arch_encoder = arch_encoder or CellArchEncoder(self.space,
                                                            DAGEncoder(config.arch_encoder))
        self.dataset_encoder = dataset_encoder or DatasetEncoder(config.dataset_encoder)
        self.feature_extractor = feature_extractor or _mlp(
            self.arch_encoder.embed_dim + self.dataset_encoder.embed_dim, config.mlp_hidden,
            config.feat_dim)
        enc_dtype = getattr(torch, config.encoder_dtype)
        for name in self._ENCODERS:
            getattr(self, name).to(enc_dtype)
        self.mean_module = (mean_module or ConstantMean()).double()
        self.covar_module = (covar_module or default_covar_module(config)).double()
        self.prior_mean = prior_mean
        self.residual_kernel = residual_kernel
        self.register_buffer("y_mean", torch.zeros((), dtype=torch.float64), persistent=False)
        self.register_buffer("y_std", torch.ones((), dtype=torch.float64), persistent=False)
        self._samples: Tensor | None = None
        self._mask: Tensor | None = None
        if train_X is not None:
            if train_Y is None:
                raise ValueError("train_X given without train_Y")
            self.set_task(train_X, train_Y, samples, mask)
        elif samples is not None:
            self.set_dataset(samples, mask)

    # ------------------------------------------------------------------ data
    @property
    def n_edges(self) -> int:
        return self.space.n_edges

    def as_inputs(self, archs: Sequence[Sequence[int]] | Tensor) -> Tensor:
        """Architectures (tuples or an int array) -> model inputs ``[n, n_edges]`` float64."""
        X = torch.as_tensor(archs if not isinstance(archs, Tensor) else archs)
        X = X.to(device=self._device(), dtype=torch.float64)
        if X.dim() == 1:
            X = X[None]
        self._check_inputs(X)
        return X

    def _device(self) -> torch.device:
        """Device of the model's parameters (where inputs built from tuples go)."""
        p = next(self.parameters(), None)
        return p.device if p is not None else self.y_mean.device

    def _check_inputs(self, X: Tensor) -> None:
        if not isinstance(X, Tensor):
            raise ValueError(f"inputs must be a torch.Tensor [..., {self.n_edges}] of op indices "
                             f"(as floats), got {type(X).__name__}")
        if X.dim() < 1 or X.size(-1) != self.n_edges:
            raise ValueError(f"inputs must be [..., {self.n_edges}] op indices for "
                             f"{self.space.name}, got shape {tuple(X.shape)}")

    def set_dataset(self, samples: Tensor | None, mask: Tensor | None = None) -> None:
        """Set the task's dataset samples (``[C, S, F]`` + optional bool ``mask [C, S]``;
        ``None`` = no data, the learned no-data embedding)."""
        if samples is not None:
            samples = torch.as_tensor(samples, device=self._device())
            want = getattr(getattr(self.dataset_encoder, "config", None), "feat_dim", None)
            if samples.dim() != 3 or (want is not None and samples.size(-1) != want):
                raise ValueError(f"dataset samples must be [n_classes, n_samples, "
                                 f"{want if want is not None else 'feat_dim'}], got "
                                 f"{tuple(samples.shape)}")
            if mask is not None and tuple(mask.shape) != tuple(samples.shape[:-1]):
                raise ValueError(f"dataset mask must be {tuple(samples.shape[:-1])} (samples' "
                                 f"[n_classes, n_samples]), got {tuple(mask.shape)}")
            if mask is not None:
                mask = torch.as_tensor(mask, device=samples.device)
        self._samples = samples
        self._mask = mask
        self.prediction_strategy = None

    def set_task(self, X: Tensor | Sequence, y: Tensor | Sequence, samples: Tensor | None = None,
                 mask: Tensor | None = None) -> None:
        """Condition on a task: observations ``X [n, n_edges]`` (or arch tuples), ``y [n]`` /
        ``[n, 1]`` in original units (standardised internally), and its dataset samples."""
        X = self.as_inputs(X)
        y = torch.as_tensor(y, dtype=torch.float64, device=X.device).reshape(-1)
        if y.numel() != X.size(0):
            raise ValueError(f"set_task got {X.size(0)} archs and {y.numel()} values")
        _check_finite(y, "set_task")
        mean = y.mean() if y.numel() else y.new_zeros(())
        std = y.std() if y.numel() > 1 else y.new_ones(())
        if not torch.isfinite(std) or std < 1e-8:
            std = y.new_ones(())
        self.y_mean, self.y_std = mean.detach(), std.detach()
        self.set_train_data(X, ((y - mean) / std).detach(), strict=False)
        self.set_dataset(samples, mask)

    @property
    def batch_shape(self) -> torch.Size:
        if self.train_inputs is None:
            return torch.Size()
        return self.train_inputs[0].shape[:-2]

    # ------------------------------------------------------------------ model
    def dataset_embedding(self) -> Tensor:
        """``[Dd]`` embedding of the current task's dataset (no-data embedding if none)."""
        return self.dataset_encoder(self._samples, self._mask)

    def _gp_dtype(self) -> torch.dtype:
        return self.mean_module.constant.dtype if hasattr(self.mean_module, "constant") \
            else torch.float64

    def features(self, X: Tensor) -> Tensor:
        """GP inputs ``xi([psi(x), phi(D)])``: ``[..., n_edges] -> [..., feat_dim]`` (float64).

        Unique architectures are encoded once.
        """
        self._check_inputs(X)
        lead = X.shape[:-1]
        ops = X.reshape(-1, self.n_edges).round().long()
        n_ops = self.space.n_ops
        if ops.numel() and (ops.min() < 0 or ops.max() >= n_ops):
            raise ValueError(f"op indices must lie in 0..{n_ops - 1} for {self.space.name}")
        if n_ops ** self.n_edges < 2 ** 62:
            radix = n_ops ** torch.arange(self.n_edges - 1, -1, -1, device=ops.device)
            keys, inv = torch.unique(ops @ radix, return_inverse=True)
            uniq = (keys[:, None] // radix) % n_ops
        else:
            uniq, inv = torch.unique(ops, dim=0, return_inverse=True)
        a = self.arch_encoder(uniq)
        d = self.dataset_embedding().to(a.dtype)
        h = self.feature_extractor(torch.cat([a, d.expand(a.size(0), -1)], dim=-1))
        return h.to(self._gp_dtype())[inv].reshape(*lead, -1)

    def mean(self, X: Tensor, z: Tensor) -> Tensor:
        """Prior mean at inputs ``X [..., n_edges]`` with features ``z [..., feat_dim]``."""
        m = self.mean_module(z)
        if self.prior_mean is not None:
            m = m + self.prior_mean(X).to(m)
        return m

    def kernel(self, X1: Tensor, z1: Tensor, X2: Tensor | None = None, z2: Tensor | None = None,
               diag: bool = False):
        """Covariance between inputs ``X1 [n1, n_edges]`` (features ``z1 [n1, feat_dim]``) and
        ``X2`` / ``z2`` (default: the same): the deep kernel on the features plus the
        residual kernel on the architectures, if any. A linear operator ``[n1, n2]`` (a
        ``[n1]`` tensor with ``diag``); with a residual kernel a ``DenseLinearOperator`` of the
        summed matrix, so GPyTorch keeps its lazy (jittered) path, as without the residual."""
        K = self.covar_module(z1, z2, diag=diag)
        if self.residual_kernel is None:
            return K
        R = self.residual_kernel(X1, X2, diag=diag).to(z1.dtype)
        if diag:
            return K + R
        return DenseLinearOperator(K.to_dense() + R)

    def forward(self, X: Tensor) -> MultivariateNormal:
        z = self.features(X)
        if self.residual_kernel is not None and X.dim() > 2:  # t-batches: one at a time
            K = torch.stack([to_dense(self.kernel(x, zz)) for x, zz in
                             zip(X.reshape(-1, *X.shape[-2:]), z.reshape(-1, *z.shape[-2:]))])
            # a linear operator, not a dense tensor: a dense covariance makes the
            # MultivariateNormal factorise it eagerly, which fails on repeated points
            K = DenseLinearOperator(K.reshape(*X.shape[:-1], X.size(-2)))
            return MultivariateNormal(self.mean(X, z), K)
        return MultivariateNormal(self.mean(X, z), self.kernel(X, z))

    def _apply(self, fn, *args, **kwargs):
        """``nn.Module._apply`` that keeps the encoders' dtype (device moves still apply), so
        BoTorch's ``acqf.to(X)`` with float64 ``X`` does not turn the float32 encoders into
        slow float64 ones. Use ``config.encoder_dtype`` to choose their dtype.

        When a tensor actually changes (dtype or device), GPyTorch's prediction cache (built
        for the old dtype / device) is dropped, and the dataset samples follow the device."""
        keep: dict[int, torch.dtype] = {}
        for name in self._ENCODERS:
            mod = self._modules.get(name)
            if mod is None:
                continue
            for t in list(mod.parameters()) + list(mod.buffers()):
                keep[id(t)] = t.dtype
                if t.grad is not None:
                    keep[id(t.grad)] = t.grad.dtype

        changed = [False]

        def pinned(t):
            out = fn(t)
            want = keep.get(id(t))
            if want is not None and isinstance(out, Tensor) and out.is_floating_point() \
                    and out.dtype != want:
                out = out.to(want)
                if out.dtype == t.dtype and out.device == t.device:
                    out = t  # pinned and not moved: the same tensor, nothing changed
            if out is not t:
                changed[0] = True
            return out

        res = super()._apply(pinned, *args, **kwargs)
        if changed[0]:
            self.prediction_strategy = None
            dev = self._device()
            for name in ("_samples", "_mask"):
                t = self.__dict__.get(name)
                if isinstance(t, Tensor):
                    self.__dict__[name] = t.to(dev)
        return res

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Plain ``nn.Module`` loading (returns missing / unexpected keys); clears the
        prediction cache. (BoTorch's override re-transforms training targets, which this
        model standardises itself.)"""
        res = nn.Module.load_state_dict(self, state_dict, strict=strict, assign=assign)
        self.prediction_strategy = None
        return res

    # ------------------------------------------------------------------ posterior
    def _untransform(self, mvn: MultivariateNormal) -> MultivariateNormal:
        s, m = self.y_std.to(mvn.mean.dtype), self.y_mean.to(mvn.mean.dtype)
        return MultivariateNormal(mvn.mean * s + m, mvn.lazy_covariance_matrix * s.pow(2))

    def posterior(self, X: Tensor, observation_noise: bool | Tensor = False,
                  posterior_transform=None, **kwargs: Any) -> GPyTorchPosterior:
        """BoTorch posterior in original units. ``X``: ``batch x q x n_edges``.

        With ``q == 1`` and a batch (``X`` ``[N, 1, n_edges]``, acquisition over ``N``
        candidates) on a model with unbatched training data, the exact marginals come from
        ``_marginals`` (``O(N n)``); otherwise (``q > 1``, a batched / fantasy model) the
        standard GPyTorch path (joint over the ``q`` points of each t-batch).
        """
        self._check_inputs(X)
        if X.dim() < 2:
            raise ValueError(f"posterior expects X of shape [..., q, {self.n_edges}] (e.g. "
                             f"[N, 1, {self.n_edges}] for N one-point t-batches), got "
                             f"{tuple(X.shape)}")
        if X.dim() >= 3 and X.size(-2) == 1 and not isinstance(observation_noise, Tensor) \
                and self.train_inputs is not None and self.train_inputs[0].dim() == 2:
            self.eval()
            mean, var = self._marginals(X.reshape(-1, self.n_edges))
            if observation_noise:
                var = var + self.likelihood.noise.reshape(-1)[0]
            mvn = MultivariateNormal(mean.reshape(*X.shape[:-1]),
                                     DiagLinearOperator(var.reshape(*X.shape[:-1])))
            post = GPyTorchPosterior(self._untransform(mvn))
        else:
            post = super().posterior(X, observation_noise=observation_noise)
            post = GPyTorchPosterior(self._untransform(post.distribution))
        if posterior_transform is not None:
            return posterior_transform(post)
        return post

    def train_cholesky(self, ztr: Tensor, Xtr: Tensor | None = None) -> Tensor:
        """Lower Cholesky factor ``[n, n]`` of ``K + s2 I`` for training features
        ``ztr [n, feat_dim]`` of the inputs ``Xtr [n, n_edges]`` (default: the training
        inputs; needed by the residual kernel)."""
        if Xtr is None:
            Xtr = self.train_inputs[0]
        K = to_dense(self.kernel(Xtr, ztr))
        K = K + self.likelihood.noise.reshape(-1)[0] * torch.eye(ztr.size(-2), dtype=K.dtype,
                                                                  device=K.device)
        return psd_safe_cholesky(K)

    def _cross(self, Xc: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """What the posterior at ``Xc [N, n_edges]`` needs from the training data: ``Xc`` in
        the training dtype, its features ``zc [N, feat_dim]``, the posterior mean ``[N]``
        (standardised units) and ``v = L^-1 K_xz`` ``[n, N]``; one feature pass for train +
        test, ``O(N n)`` memory."""
        Xtr = self.train_inputs[0]
        self._check_inputs(Xc)
        if Xtr.dim() != 2 or Xc.dim() != 2:
            raise ValueError(f"exact marginals need an unbatched model and Xc [N, "
                             f"{self.n_edges}], got train {tuple(Xtr.shape)}, Xc "
                             f"{tuple(Xc.shape)} (use posterior for batched models)")
        n = Xtr.size(-2)
        Xc = Xc.to(Xtr.dtype)
        z = self.features(torch.cat([Xtr, Xc], dim=0))
        ztr, zc = z[:n], z[n:]
        L = self.train_cholesky(ztr, Xtr)
        r = (self.train_targets - self.mean(Xtr, ztr)).unsqueeze(-1)
        alpha = torch.cholesky_solve(r, L)
        Kcx = to_dense(self.kernel(Xc, zc, Xtr, ztr))  # [N, n]
        mean = self.mean(Xc, zc) + (Kcx @ alpha).squeeze(-1)
        v = torch.linalg.solve_triangular(L, Kcx.transpose(-1, -2), upper=False)  # [n, N]
        return Xc, zc, mean, v

    def _marginals(self, Xc: Tensor) -> tuple[Tensor, Tensor]:
        """Exact posterior marginals (standardised units) at ``Xc [N, n_edges]``:
        ``mean = m(z) + K_zx (K + s2 I)^-1 (y - m(x))``, ``var = k(z, z) - ||L^-1 K_xz||^2``;
        ``O(N n)`` memory (never an ``N x N`` matrix)."""
        Xc, zc, mean, v = self._cross(Xc)
        var = self.kernel(Xc, zc, diag=True) - v.pow(2).sum(0)
        return mean, var.clamp_min(1e-12)

    def joint_posterior(self, Xc: Tensor) -> tuple[Tensor, Tensor]:
        """Exact joint posterior (standardised units) at ``Xc [M, n_edges]``: mean ``[M]`` and
        covariance ``[M, M]`` (``K_zz - K_zx (K + s2 I)^-1 K_xz``), e.g. for a Thompson
        sample over ``M`` candidates. ``O(M^2)`` memory: keep ``M`` to a few thousand."""
        Xc, zc, mean, v = self._cross(Xc)
        cov = to_dense(self.kernel(Xc, zc)) - v.transpose(-1, -2) @ v
        return mean, (cov + cov.transpose(-1, -2)) / 2

    def condition_on_observations(self, X: Tensor, Y: Tensor, noise: Tensor | None = None,
                                  **kwargs: Any):
        """BoTorch fantasy conditioning (``fantasize``, look-ahead acquisitions); ``Y`` in
        original units, standardised with the *stored* task statistics (unlike ``set_task``,
        which re-standardises)."""
        if self.prediction_strategy is None:  # GPyTorch needs its test-independent caches
            self.eval()
            with torch.no_grad():
                GPyTorchModel.posterior(self, self.train_inputs[0][:1])
        Y = (Y - self.y_mean.to(Y)) / self.y_std.to(Y)
        if noise is not None:
            noise = noise / self.y_std.to(noise).pow(2)
        return super().condition_on_observations(X, Y, noise=noise, **kwargs)

    @torch.no_grad()
    def predict(self, X: Tensor | Sequence, *, observation_noise: bool = False,
                standardized: bool = False, chunk: int = 50_000) -> tuple[Tensor, Tensor]:
        """Marginal predictive ``(mean [n], var [n])`` at ``X [n, n_edges]`` (or arch tuples),
        in original units (``standardized=True``: the GP's units)."""
        X = self.as_inputs(X)
        means, vars_ = [], []
        for i in range(0, X.size(0), chunk):
            post = self.posterior(X[i:i + chunk, None, :], observation_noise=observation_noise)
            means.append(post.mean.reshape(-1))
            vars_.append(post.variance.reshape(-1))
        mean, var = torch.cat(means), torch.cat(vars_)
        if standardized:
            mean = (mean - self.y_mean) / self.y_std
            var = var / self.y_std.pow(2)
        return mean, var

    # ------------------------------------------------------------------ checkpoints
    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (meta-learned weights; the conditioned
        task data is not part of a checkpoint). Injected custom sub-modules are saved too, but
        ``from_pretrained`` rebuilds from the config, so pass the same modules to it again."""
        return save_checkpoint(self, self.config, directory, kind=CHECKPOINT_KIND)

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | Path, *, revision: str | None = None,
                        space: str | None = None, **modules: nn.Module) -> "DeepKernelGP":
        """Load a checkpoint written by ``save_pretrained``: a local folder or a Hub id,
        resolved offline-first by ``metanas.hub.resolve_pretrained`` (local folder, Hub cache,
        shipped copy for the default ids, then a bounded download unless ``HF_HUB_OFFLINE``).
        ``space`` (optional) is checked against the checkpoint's; ``modules`` (e.g.
        ``arch_encoder=...``) replace the default sub-modules built from the config (needed
        when custom ones were saved). Raises ``CheckpointError`` (one line) on any mismatch."""
        from ..hub import resolve_pretrained

        text = str(path_or_repo_id)
        is_repo_id = (text.count("/") == 1 and not text.startswith((".", "/", "~"))
                      and not Path(text).expanduser().exists())
        directory = (resolve_pretrained(text, kind="tnas", space=space, revision=revision)
                     if is_repo_id else Path(text).expanduser())
        from .. import spaces

        expect = None if space is None else {"space": spaces.get(space).name}
        # building the modules draws default initial weights (overwritten by the checkpoint)
        # from torch's global generator: leave the caller's random stream untouched
        with torch.random.fork_rng(devices=[]):
            model, _ = load_checkpoint(directory, DeepKernelConfig,
                                       lambda cfg: cls(cfg, **modules), kind=CHECKPOINT_KIND,
                                       expect=expect)
        model.eval()
        from ..hub import carry_files  # the prior context and training record travel along

        return carry_files(model, directory)

    def push_to_hub(self, repo_id: str, *, private: bool = False, revision: str | None = None,
                    token: str | None = None, card: Any = None) -> str:
        """Upload to the Hub (safetensors + config + model card) via ``metanas.hub.push_to_hub``;
        returns the commit URL."""
        from ..hub import push_to_hub

        return push_to_hub(self, repo_id, private=private, revision=revision, token=token,
                           card=card, kind="tnas")


# ---------------------------------------------------------------------- losses
def neg_mll(model: DeepKernelGP, X: Tensor, y: Tensor, dataset_samples: Tensor | None = None,
            dataset_mask: Tensor | None = None) -> Tensor:
    """Negative exact marginal log-likelihood per data point (GPyTorch's normalisation, priors
    of the GP hyper-parameters included) of the task ``(X, y, dataset_samples)``; conditions
    ``model`` on it and leaves it in train mode. Differentiable in every parameter."""
    model.set_task(X, y, dataset_samples, dataset_mask)
    model.train()
    out = model(model.train_inputs[0])
    return -ExactMarginalLogLikelihood(model.likelihood, model)(out, model.train_targets)


def gp_task_loss(model: DeepKernelGP, task: GPTask, generator: torch.Generator | None = None,
                 batch_size: int | None = None) -> Tensor:
    """Reptile loss for TNAS: ``neg_mll`` on ``task`` (or a random mini-batch of
    ``batch_size`` of its points drawn with ``generator``)."""
    X, y = task.X, task.y
    if batch_size is not None and X.size(0) > batch_size:
        idx = torch.randperm(X.size(0), generator=generator)[:batch_size]
        X, y = X[idx], y[idx]
    return neg_mll(model, X, y, task.samples, task.mask)


@torch.no_grad()
def loo_log_predictive(model: DeepKernelGP, output: MultivariateNormal | None = None) -> float:
    """Mean leave-one-out log predictive density of the training targets (standardised
    units), closed form for an exact GP (Rasmussen & Williams eq. 5.10-5.12):
    ``mu_i = y_i - [K^-1 r]_i / [K^-1]_ii``, ``s2_i = 1 / [K^-1]_ii`` with
    ``K = K_f + noise I``, ``r = y - m``. ``output``: the prior at the training inputs if
    already computed (train mode)."""
    if output is None:
        was = model.training
        model.train()
        output = model(model.train_inputs[0])
        model.train(was)
    mvn = model.likelihood(MultivariateNormal(output.mean.detach(),
                                              output.lazy_covariance_matrix.detach()))
    K = mvn.covariance_matrix
    r = model.train_targets - mvn.mean
    L, info = torch.linalg.cholesky_ex(K)
    if int(info) != 0:
        return -math.inf
    Kinv = torch.cholesky_inverse(L)
    d = Kinv.diagonal()
    alpha = Kinv @ r
    s2 = 1.0 / d
    err = alpha / d
    lp = -0.5 * torch.log(2 * math.pi * s2) - 0.5 * err.pow(2) / s2
    return float(lp.mean())


# ---------------------------------------------------------------------- test-time adaptation
@torch.no_grad()
def holdout_log_predictive(model: DeepKernelGP, X_val: Tensor, y_val: Tensor) -> float:
    """Mean log predictive density of held-out ``(X_val, y_val)`` (original units in, scored
    in the model's standardised units, observation noise included) under ``model``
    conditioned on its current training data."""
    was = model.training
    mean, var = model._marginals(model.as_inputs(X_val))
    model.train(was)
    var = var + model.likelihood.noise.reshape(-1)[0]
    z = (torch.as_tensor(y_val, dtype=mean.dtype, device=mean.device).reshape(-1)
         - model.y_mean) / model.y_std
    lp = -0.5 * torch.log(2 * math.pi * var) - 0.5 * (z - mean).pow(2) / var
    return float(lp.mean())


@dataclass
class FitResult:
    """What ``fit`` did.

    ``guard``: ``"holdout"``, ``"loo"`` or ``"none"`` (too few points: only conditioned);
    ``scores``: validation score of the parameters *before* each step of the selection run
    (hold-out or LOO log predictive density; higher is better); ``best_step``: the selected
    number of steps (0 = the weights ``fit`` started from); ``losses``: objective of each step
    of the final run; ``steps``: steps taken by the final run; ``stopped_early``: the
    selection run hit ``patience``."""

    guard: str
    scores: list[float]
    best_step: int
    losses: list[float]
    steps: int
    stopped_early: bool


def _trainable(model: DeepKernelGP, which: str) -> list[nn.Parameter]:
    gp = ("likelihood.", "mean_module.", "covar_module.")
    head = gp + ("feature_extractor.",)
    sel = {"all": None, "head": head, "gp": gp}
    if which not in sel:
        raise ValueError(f"trainable must be one of {', '.join(sel)}, got {which!r}")
    prefixes = sel[which]
    return [p for n, p in model.named_parameters()
            if p.requires_grad and (prefixes is None or n.startswith(prefixes))]


def _run(model: DeepKernelGP, params: list[nn.Parameter], anchor: list[Tensor], *, steps: int,
         lr: float, prox: float, score=None, patience: int = 0, tol: float = 0.0):
    """Adam on ``neg_mll + prox/2 ||w - anchor||^2`` from the current weights. With ``score``
    (``(model, output) -> float``) track it before each step, stop after ``patience`` steps
    without improvement and return ``(scores, best_step, stopped, losses)``; the weights are
    left at the *last* step (callers restore what they need)."""
    opt = torch.optim.Adam(params, lr=lr)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    model.train()
    scores: list[float] = []
    losses: list[float] = []
    best, best_step, since, stopped = -math.inf, 0, 0, False
    for step in range(steps + 1):
        out = model(model.train_inputs[0])
        if score is not None:
            sc = score(model, out)
            scores.append(sc)
            if step == 0 or sc > best + tol:
                best, best_step, since = sc, step, 0
            else:
                since += 1
                if since >= patience:
                    stopped = True
                    break
        if step == steps:
            break
        loss = -mll(out, model.train_targets)
        if prox > 0:
            loss = loss + 0.5 * prox * sum((p - a).pow(2).sum() for p, a in zip(params, anchor))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return scores, best_step, stopped, losses


def fit(model: DeepKernelGP, X: Tensor | Sequence, y: Tensor | Sequence,
        dataset_samples: Tensor | None = None, dataset_mask: Tensor | None = None, *,
        steps: int = 50, lr: float = 1e-3, prox: float = 1.0, patience: int = 10,
        trainable: str = "all", guard: str = "auto", holdout: float = 0.25,
        min_holdout_points: int = 8, min_points: int = 3, tol: float = 1e-4,
        generator: torch.Generator | None = None) -> FitResult:
    """Test-time adaptation of a (meta-learned) deep-kernel GP to the target task's
    observations; leaves the model conditioned on all of them, in eval mode.

    Overfitting guard. With a handful of points, maximising the marginal likelihood of a deep
    kernel bends the features around the observations and shrinks the noise: the ranking
    barely changes but the predictive variances collapse (over-confident, a poor BO model).

    1. **Proximal anchor**: the objective is ``neg_mll + prox / 2 * ||w - w_meta||^2`` over
       the adapted parameters (a Gaussian prior centred at the meta-learned weights); small
       ``lr``, few ``steps`` by default.
    2. **Honest early stopping** (``guard="holdout"``, the default from
       ``min_holdout_points`` observations on): a random ``holdout`` fraction of the
       observations (drawn with ``generator``; default seed 0) is left out, the model is
       adapted on the rest while the held-out log predictive density is tracked, and the best
       number of steps ``k`` is chosen (``k = 0``, i.e. the meta-learned weights, included;
       ``patience`` stops the run). Then the weights are reset to ``w_meta`` and adapted on
       *all* observations for ``k`` steps. The held-out points never influence the features
       they are scored with, unlike the marginal likelihood or a LOO score.
       Asked for explicitly (``guard="holdout"``), below ``min_holdout_points`` observations
       nothing is adapted (there is no honest check yet).
    3. ``guard="loo"`` (``"auto"``'s fallback below ``min_holdout_points``): keep the step with the
       best closed-form leave-one-out log predictive density on all observations (cheap,
       catches noise collapse of the GP hyper-parameters, but optimistic about the feature
       learning, since every point shaped the features it is scored with). ``"none"``: just
       ``steps`` steps.
    4. Fewer than ``min_points`` observations: nothing is adapted, only conditioned.

    ``trainable``: ``"all"`` (TNAS), ``"head"`` (MLP + GP hyper-parameters, encoders frozen)
    or ``"gp"`` (GP hyper-parameters only).
    """
    X = model.as_inputs(X)
    y = torch.as_tensor(y, dtype=torch.float64, device=X.device).reshape(-1)
    n = X.size(0)
    if y.numel() != n:
        raise ValueError(f"fit got {n} archs and {y.numel()} values")
    _check_finite(y, "fit")
    if guard not in ("auto", "holdout", "loo", "none"):
        raise ValueError(f"guard must be 'auto', 'holdout', 'loo' or 'none', got {guard!r}")
    params = _trainable(model, trainable)
    if n < min_points or steps <= 0:
        model.set_task(X, y, dataset_samples, dataset_mask)
        model.eval()
        return FitResult("none", [], 0, [], 0, False)
    if guard == "auto":
        guard = "holdout" if n >= min_holdout_points else "loo"
    if guard == "holdout" and n < min_holdout_points:  # no honest check yet: do not adapt
        model.set_task(X, y, dataset_samples, dataset_mask)
        model.eval()
        return FitResult("none", [], 0, [], 0, False)
    anchor = [p.detach().clone() for p in params]
    scores: list[float] = []
    stopped = False
    if guard == "holdout":
        n_val = min(n - min_points, max(1, int(round(holdout * n))))
        if n_val < 1:
            raise ValueError(f"holdout guard needs more than {min_points} observations")
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        perm = torch.randperm(n, generator=gen)
        val, tr = perm[:n_val], perm[n_val:]
        model.set_task(X[tr], y[tr], dataset_samples, dataset_mask)
        scores, k, stopped, _ = _run(
            model, params, anchor, steps=steps, lr=lr, prox=prox, patience=patience, tol=tol,
            score=lambda m, out: holdout_log_predictive(m, X[val], y[val]))
        with torch.no_grad():
            for p, a in zip(params, anchor):
                p.copy_(a)
        model.set_task(X, y, dataset_samples, dataset_mask)
        _, _, _, losses = _run(model, params, anchor, steps=k, lr=lr, prox=prox)
        final_steps = k
    elif guard == "loo":
        model.set_task(X, y, dataset_samples, dataset_mask)
        best: dict[str, Any] = {"score": -math.inf, "state": anchor}

        def track(m, out):  # same selection rule as _run: remember the best step's weights
            sc = loo_log_predictive(m, out)
            if best["score"] == -math.inf or sc > best["score"] + tol:
                best.update(score=sc, state=[p.detach().clone() for p in params])
            return sc

        scores, k, stopped, losses = _run(model, params, anchor, steps=steps, lr=lr,
                                          prox=prox, score=track, patience=patience, tol=tol)
        with torch.no_grad():
            for p, b in zip(params, best["state"]):
                p.copy_(b)
        final_steps = k
    else:
        model.set_task(X, y, dataset_samples, dataset_mask)
        _, _, _, losses = _run(model, params, anchor, steps=steps, lr=lr, prox=prox)
        k = final_steps = steps
    model.eval()
    return FitResult(guard, scores, k, losses, final_steps, stopped)


# ---------------------------------------------------------------------- residual kernel
@dataclass
class ResidualFit:
    """What ``fit_residual`` chose: the residual kernel's ``scale`` and edge ``weights``, the
    noise, and the log marginal likelihood per observation with them (``log_ml``) and with
    the plain deep kernel (``base_log_ml``)."""

    scale: float
    weights: list[float]
    noise: float
    log_ml: float
    base_log_ml: float


def _log_ml(K: Tensor, r: Tensor) -> Tensor:
    L = torch.linalg.cholesky(K)
    a = torch.linalg.solve_triangular(L, r.unsqueeze(-1), upper=False).squeeze(-1)
    n = r.numel()
    return (-0.5 * a.pow(2).sum() - L.diagonal().log().sum()
            - 0.5 * n * math.log(2 * math.pi)) / n


def fit_residual(model: DeepKernelGP, *, min_points: int = 5, max_iter: int = 50,
                 init_scale: float = 0.1, init_weight: float = 0.5,
                 scale_prior: tuple[float, float] = (math.log(0.1), 1.5),
                 weight_prior: tuple[float, float] = (math.log(0.5), 1.5)) -> ResidualFit:
    """Type-II maximum a-posteriori fit of a ``HammingResidualKernel`` added to ``model``'s
    (fixed, possibly adapted) deep kernel on its training data: L-BFGS over the log scale,
    the log edge weights and the log noise, with LogNormal priors (``(loc, scale)`` of the
    log) on the residual scale and weights (the noise keeps the likelihood's prior). The deep
    kernel's features, scale and the mean stay fixed. Installs the kernel as
    ``model.residual_kernel`` and the noise in ``model.likelihood``; below ``min_points``
    observations the residual scale is 0 and nothing else changes.

    Cost: one feature pass and ~``max_iter`` Choleskys of ``n x n``.
    """
    n_edges = model.n_edges
    if not isinstance(model.residual_kernel, HammingResidualKernel):
        model.residual_kernel = HammingResidualKernel(n_edges, model.space.n_ops).to(
            model._device())
    res = model.residual_kernel
    X, y = model.train_inputs[0], model.train_targets
    n = X.size(-2)
    was = model.training
    model.eval()
    lik = model.likelihood
    with torch.no_grad():
        z = model.features(X)
        Kd = model.covar_module(z).to_dense()
        r = y - model.mean(X, z)
        noise0 = float(lik.noise.reshape(-1)[0])
        eye = torch.eye(n, dtype=Kd.dtype, device=Kd.device)
        base = float(_log_ml(Kd + noise0 * eye, r))
    res.scale.fill_(0.0)
    if n < min_points:
        model.prediction_strategy = None
        model.train(was)
        return ResidualFit(0.0, res.weights.tolist(), noise0, base, base)
    M = HammingResidualKernel.mismatch(X)
    dev = Kd.device
    log_s = torch.tensor(math.log(init_scale), dtype=torch.float64, device=dev,
                         requires_grad=True)
    log_w = torch.full((n_edges,), math.log(init_weight), dtype=torch.float64, device=dev,
                       requires_grad=True)
    log_nz = torch.tensor(math.log(noise0), dtype=torch.float64, device=dev, requires_grad=True)
    nz_prior = lik.noise_covar.noise_prior if hasattr(lik, "noise_covar") else None
    floor = MIN_NOISE

    def objective():
        K = Kd + log_s.exp() * torch.exp(-(M @ log_w.exp())) \
            + (floor + log_nz.exp()) * eye
        lp = _log_ml(K, r)
        lp = lp - 0.5 * ((log_s - scale_prior[0]) / scale_prior[1]).pow(2) / n
        lp = lp - 0.5 * ((log_w - weight_prior[0]) / weight_prior[1]).pow(2).sum() / n
        if nz_prior is not None:
            lp = lp + nz_prior.log_prob(floor + log_nz.exp()).sum() / n
        return -lp

    opt = torch.optim.LBFGS([log_s, log_w, log_nz], lr=0.5, max_iter=max_iter,
                            line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = objective()
        loss.backward()
        return loss

    try:
        with torch.enable_grad():
            opt.step(closure)
        ok = all(torch.isfinite(t).all() for t in (log_s, log_w, log_nz))
    except RuntimeError:  # non-PSD during the line search
        ok = False
    with torch.no_grad():
        if ok:
            scale, weights, noise = float(log_s.exp()), log_w.exp(), floor + float(log_nz.exp())
            lml = float(_log_ml(Kd + scale * torch.exp(-(M @ weights)) + noise * eye, r))
        if not ok or lml < base:  # the residual must explain the data better than without it
            scale, weights, noise, lml = 0.0, res.weights, noise0, base
        res.scale.fill_(scale)
        res.weights.copy_(weights)
        lik.noise = torch.as_tensor(noise, dtype=torch.float64, device=dev)
    model.prediction_strategy = None
    model.train(was)
    return ResidualFit(scale, [float(w) for w in weights], noise, lml, base)
