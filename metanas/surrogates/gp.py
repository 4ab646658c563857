"""Exact Gaussian-process surrogate on a fixed architecture encoding (botorch ``SingleTaskGP``).

Three pieces, each usable on its own:

``build_gp(train_X, train_Y, ...)``
    a botorch ``SingleTaskGP``: Matern-5/2 ARD kernel by default (``kernel="matern52"``, with
    the dimension-scaled log-normal lengthscale prior of Hvarfner et al. 2024 that botorch uses
    for its own default RBF kernel, which stays well posed on 30-100 dim one-hot / path
    encodings), Gaussian likelihood with inferred noise, constant mean, outcomes standardised
    by botorch's ``Standardize`` transform. Kernel and likelihood are injectable.

``fit_gp(model, init=..., maxiter=...)``
    type-II maximum likelihood with ``botorch.fit.fit_gpytorch_mll`` (L-BFGS-B), optionally
    warm-started from earlier hyperparameters, with a fallback chain that never raises:
    warm start -> cold start (botorch's own restarts from prior samples) -> the ``fallback``
    hyperparameters -> the initial ones. Warnings from botorch / gpytorch / linear_operator
    raised while fitting (input scaling, optimizer status, jitter) are logged at DEBUG level,
    not re-emitted.

``CandidatePosterior(model)``
    a botorch ``Model`` giving the same exact posterior as the fitted ``SingleTaskGP``, but
    computed with explicit Cholesky algebra and per-point variances only. gpytorch's own
    prediction path builds the joint prior over train + test points, which for all 15625
    NAS-Bench-201 cells means a 15625 x 15625 kernel (tens of seconds); this one costs
    O(n^2) per candidate (milliseconds for the whole space). Any botorch analytic acquisition
    (``LogExpectedImprovement``, ``UpperConfidenceBound``, ``ProbabilityOfImprovement``...)
    takes it as its model. ``condition_on_observations`` (same hyperparameters, no refit) is
    what the Kriging believer of ``GPBO`` uses for pending points.

Everything is float64 (botorch's recommendation for exact GPs).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import math
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import Tensor

with warnings.catch_warnings():  # torch.jit deprecation notices of linear_operator at import
    warnings.simplefilter("ignore", DeprecationWarning)
    from botorch.exceptions.errors import ModelFittingError
    from botorch.fit import fit_gpytorch_mll
    from botorch.models import SingleTaskGP
    from botorch.models.model import Model
    from botorch.models.transforms.outcome import Standardize
    from botorch.models.utils.gpytorch_modules import (
        get_covar_module_with_dim_scaled_prior,
        get_matern_kernel_with_gamma_prior,
    )
    from botorch.posteriors.gpytorch import GPyTorchPosterior
    from gpytorch.distributions import MultivariateNormal
    from gpytorch.kernels import Kernel, ScaleKernel
    from gpytorch.likelihoods import Likelihood
    from gpytorch.mlls import ExactMarginalLogLikelihood

logger = logging.getLogger(__name__)

DTYPE = torch.float64

#: ``kernel`` names understood by ``build_gp``
KERNELS = ("matern52", "rbf", "matern52-gamma")
#: the ``KERNELS`` without an output scale (unit prior variance: for standardised outcomes)
UNSCALED_KERNELS = ("matern52", "rbf")

KernelSpec = str | Kernel | Callable[[int], Kernel]
LikelihoodSpec = Likelihood | Callable[[], Likelihood] | None


def make_kernel(kernel: KernelSpec, dim: int) -> Kernel:
    """Kernel module for ``dim`` input features.

    ``kernel``: ``"matern52"`` (ARD Matern-5/2, dimension-scaled log-normal lengthscale
    prior, no output scale since outcomes are standardised: ``build_gp`` adds one when they
    are not), ``"rbf"`` (botorch's default
    SingleTaskGP kernel: the same with an RBF), ``"matern52-gamma"`` (the classic
    ``ScaleKernel(Matern-5/2 ARD)`` with Gamma priors of Snoek et al. / older botorch), a
    ``gpytorch`` ``Kernel`` instance (deep-copied, so every fit starts from it) or a
    callable ``dim -> Kernel``.
    """
    if isinstance(kernel, Kernel):
        return copy.deepcopy(kernel)
    if callable(kernel):
        return kernel(dim)
    if kernel == "matern52":
        return get_covar_module_with_dim_scaled_prior(ard_num_dims=dim, use_rbf_kernel=False)
    if kernel == "rbf":
        return get_covar_module_with_dim_scaled_prior(ard_num_dims=dim, use_rbf_kernel=True)
    if kernel == "matern52-gamma":
        return get_matern_kernel_with_gamma_prior(ard_num_dims=dim)
    raise KeyError(f"unknown GP kernel {kernel!r}; choose one of {', '.join(KERNELS)}, "
                   f"a gpytorch Kernel or a callable dim -> Kernel")


def build_gp(
    train_X: Tensor,
    train_Y: Tensor,
    *,
    kernel: KernelSpec = "matern52",
    likelihood: LikelihoodSpec = None,
    standardize: bool = True,
) -> SingleTaskGP:
    """Exact GP ``SingleTaskGP`` on ``train_X`` ``[n, d]`` and ``train_Y`` ``[n]`` or ``[n, 1]``.

    Args:
        kernel: see ``make_kernel``.
        likelihood: ``None`` (botorch's Gaussian likelihood, inferred homoscedastic noise),
            a ``Likelihood`` instance (deep-copied) or a zero-argument factory.
        standardize: outcome transform ``Standardize(m=1)`` (zero mean, unit variance), so
            hyperparameter priors see the same scale on every task. ``"matern52"`` and
            ``"rbf"`` have no output scale (unit prior variance, right for standardised
            outcomes); without ``standardize`` they are wrapped in a ``ScaleKernel`` (a
            fitted output scale), else on raw values (e.g. accuracies with variance ~80) the
            inferred noise has to absorb the whole signal; their fit then starts from the data's
            mean (the constant mean) and variance (the output scale). Other kernels (and the
            mean) are used as given, with botorch's initial values.
    """
    X = torch.as_tensor(train_X, dtype=DTYPE)
    Y = torch.as_tensor(train_Y, dtype=DTYPE, device=X.device)
    if Y.ndim == 1:
        Y = Y.unsqueeze(-1)
    if X.ndim < 2 or Y.ndim < 2 or X.shape[-2] != Y.shape[-2]:
        raise ValueError(f"build_gp needs train_X [n, d] and train_Y [n] / [n, 1] with the same "
                         f"n, got {tuple(X.shape)} and {tuple(torch.as_tensor(train_Y).shape)}")
    if isinstance(likelihood, Likelihood):
        lik = copy.deepcopy(likelihood)
    elif likelihood is not None:
        lik = likelihood()
    else:
        lik = None
    covar = make_kernel(kernel, X.shape[-1])
    scaled = not standardize and isinstance(kernel, str) and kernel in UNSCALED_KERNELS
    if scaled:
        covar = ScaleKernel(covar)
    with quiet_warnings():
        gp = SingleTaskGP(
            X, Y, likelihood=lik, covar_module=covar,
            outcome_transform=Standardize(m=1) if standardize else None)
    if scaled and Y.shape[-2] > 1:
        # raw outcomes: start the fit at their scale (mean, and variance as the output scale)
        # instead of 0 and 1, which L-BFGS-B leaves only slowly
        with torch.no_grad():
            gp.mean_module.constant.fill_(float(Y.mean()))
            if float(Y.var()) > 0:
                covar.outputscale = float(Y.var())
    return gp


# ---------------------------------------------------------------------- warnings
_QUIET_MODULES = ("botorch", "gpytorch", "linear_operator")
_QUIET_FILES = _QUIET_MODULES + ("scipy",)


@contextlib.contextmanager
def quiet_warnings() -> Iterator[list]:
    """Record warnings raised inside; those from botorch / gpytorch / linear_operator (input
    scaling checks, optimizer status, added jitter...) are logged at DEBUG level, any other
    warning is re-emitted unchanged."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield caught
    for w in caught:
        mod = w.category.__module__.split(".")[0]
        if mod in _QUIET_MODULES or any(f"/{m}/" in str(w.filename) for m in _QUIET_FILES):
            logger.debug("%s: %s", w.category.__name__, w.message)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


# ---------------------------------------------------------------------- hyperparameters
def hyperparameters(model: torch.nn.Module) -> dict[str, Tensor]:
    """Raw trainable parameters of ``model`` (detached copies), by name. Data-dependent
    buffers (outcome-transform statistics, training data) are not included."""
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def load_hyperparameters(model: torch.nn.Module, hp: dict[str, Any]) -> bool:
    """Copy raw parameter values from ``hp`` (tensors or nested lists) into ``model``.
    Returns ``False`` (and changes nothing) when names or shapes do not match."""
    params = dict(model.named_parameters())
    vals = {}
    for k, v in hp.items():
        if k not in params:
            return False
        t = torch.as_tensor(v, dtype=params[k].dtype, device=params[k].device)
        if t.shape != params[k].shape:
            return False
        vals[k] = t
    if set(vals) != set(params):
        return False
    with torch.no_grad():
        for k, t in vals.items():
            params[k].copy_(t)
    return True


def hyperparameters_to_json(hp: dict[str, Tensor]) -> dict[str, Any]:
    """Exact JSON form (Python floats round-trip float64 exactly)."""
    return {k: v.tolist() for k, v in hp.items()}


# ---------------------------------------------------------------------- fitting
@dataclass
class FitResult:
    """How ``fit_gp`` ended: ``status`` is ``"warm"``, ``"cold"``, ``"fallback"`` or
    ``"initial"`` (every attempt failed and no fallback was given); ``hp`` the
    hyperparameters now in the model."""

    status: str
    hp: dict[str, Tensor]

    @property
    def ok(self) -> bool:
        return self.status in ("warm", "cold")


def exact_mll_closure(mll: ExactMarginalLogLikelihood):
    """Loss-and-gradient closure for ``fit_gpytorch_mll`` computing the same objective as
    gpytorch's ``ExactMarginalLogLikelihood`` (log marginal likelihood + log priors, over
    ``n``) with plain dense torch algebra: a few times cheaper per L-BFGS step than the
    generic path on the small (n < ~1000) training sets of NAS. Returns ``None`` (use the
    generic closure) unless the model is a non-batched single-output exact GP with a
    homoscedastic ``GaussianLikelihood`` and no input transform."""
    from botorch.optim.closures.core import ForwardBackwardClosure
    from botorch.optim.utils import get_parameters
    from gpytorch.likelihoods import FixedNoiseGaussianLikelihood, GaussianLikelihood
    from linear_operator.utils.cholesky import psd_safe_cholesky

    model, lik = mll.model, mll.likelihood
    if (type(lik) is not GaussianLikelihood or isinstance(lik, FixedNoiseGaussianLikelihood)
            or getattr(model, "input_transform", None) is not None
            or len(model.train_inputs) != 1 or model.train_inputs[0].ndim != 2
            or model.train_targets.ndim != 1 or list(model.added_loss_terms())):
        return None
    X, y = model.train_inputs[0], model.train_targets
    n = y.shape[0]
    const = 0.5 * n * math.log(2 * math.pi)
    priors = list(model.named_priors())

    def forward() -> Tensor:
        K = model.covar_module(X).to_dense()
        noise = lik.noise.reshape(-1)
        if noise.numel() != 1:
            raise ValueError("heteroscedastic noise")
        K = K + noise * torch.eye(n, dtype=K.dtype, device=K.device)
        L = psd_safe_cholesky(K)  # jitter, then NotPSDError: botorch retries the fit
        r = (y - model.mean_module(X)).unsqueeze(-1)
        a = torch.cholesky_solve(r, L)
        ll = -0.5 * (r * a).sum() - L.diagonal().log().sum() - const
        for _, module, prior, closure, _ in priors:
            ll = ll + prior.log_prob(closure(module)).sum()
        return -ll / n

    return ForwardBackwardClosure(forward=forward,
                                  parameters=get_parameters(mll, requires_grad=True))


def _finite(model: torch.nn.Module) -> bool:
    return all(bool(torch.isfinite(p).all()) for p in model.parameters())


def fit_gp(
    model: SingleTaskGP,
    *,
    init: dict[str, Any] | None = None,
    fallback: dict[str, Any] | None = None,
    maxiter: int | None = 100,
    ftol: float | None = None,
    max_attempts: int = 3,
    seed: int | None = None,
    fast: bool = True,
) -> FitResult:
    """Maximise the exact marginal likelihood of ``model`` in place; never raises.

    Args:
        init: hyperparameters to start from (warm start); the model's own initial values
            otherwise. A warm start that fails falls back to a cold start.
        fallback: hyperparameters to use when every fit fails (e.g. the previous step's).
        maxiter: L-BFGS-B iteration cap (``None``: scipy's default, ~15000). The likelihood
            surface of ARD kernels on binary encodings is flat, so a cold fit can take
            hundreds of iterations for a negligible gain; warm starts converge in tens.
        ftol: L-BFGS-B relative-reduction stopping tolerance (``None``: scipy's ~2e-9).
        max_attempts: attempts of the cold start (botorch re-samples hyperparameters from
            their priors between attempts).
        seed: torch seed for those re-samples (the global torch RNG is forked, not touched).
        fast: use ``exact_mll_closure`` (same objective, dense algebra) when it applies.

    Returns:
        ``FitResult``; the model is left in eval mode.
    """
    initial = hyperparameters(model)
    options: dict[str, Any] = {}
    if maxiter:
        options["maxiter"] = int(maxiter)
    if ftol is not None:
        options["ftol"] = float(ftol)
    opt_kwargs = {"options": options} if options else {}
    rng_ctx = torch.random.fork_rng(devices=[]) if seed is not None else contextlib.nullcontext()
    status = None
    with rng_ctx, quiet_warnings():
        if seed is not None:
            torch.manual_seed(int(seed))
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        mll.train()
        closure = exact_mll_closure(mll) if fast else None
        attempts = []
        if init is not None and load_hyperparameters(model, init):
            attempts.append(("warm", 1))
        attempts.append(("cold", max(1, int(max_attempts))))
        for name, n_att in attempts:
            if name == "cold":
                load_hyperparameters(model, initial)
            try:
                fit_gpytorch_mll(mll, closure=closure, optimizer_kwargs=opt_kwargs,
                                 max_attempts=n_att)
            except (ModelFittingError, RuntimeError, ValueError) as exc:  # NotPSD, NaN...
                logger.debug("GP fit (%s start) failed: %s", name, exc)
                continue
            if not mll.training and _finite(model):
                status = name
                break
        if status is None:
            if fallback is not None and load_hyperparameters(model, fallback):
                status = "fallback"
            else:
                load_hyperparameters(model, initial)
                status = "initial"
            logger.info("GP fit failed; using %s hyperparameters", status)
    model.eval()
    return FitResult(status=status, hp=hyperparameters(model))


# ---------------------------------------------------------------------- fast posterior
class CandidatePosterior(Model):
    """Exact posterior of a fitted exact GP, fast for many candidate points.

    Computes ``mean(x) = m(x) + k(x, X) (K + N)^-1 (y - m(X))`` and
    ``cov(x, x') = k(x, x') - k(x, X) (K + N)^-1 k(X, x')`` from the GP's own mean, kernel and
    likelihood modules, in the model's transformed (standardised) output space, then
    untransforms the posterior with the model's outcome transform. Only the covariance
    within each q-batch is formed (per-point variance for ``q = 1``), in chunks of
    ``chunk_size`` points. Latent-function posterior (``observation_noise`` is ignored).

    Args:
        gp: a fitted ``SingleTaskGP`` (or any single-output botorch ``ExactGP`` model with a
            Gaussian likelihood), put in eval mode.
    """

    def __init__(self, gp: SingleTaskGP, chunk_size: int = 16384,
                 _train: tuple[Tensor, Tensor, Tensor] | None = None) -> None:
        super().__init__()
        gp.eval()
        self.gp = gp
        self.chunk_size = int(chunk_size)
        if _train is None:
            X = gp.train_inputs[0]
            y = gp.train_targets
            noise = self._noise_diag(X)
        else:
            X, y, noise = _train
        if X.ndim != 2 or y.ndim != 1:
            raise ValueError("CandidatePosterior needs a single-output, non-batched GP")
        self._X, self._y, self._noise = X, y, noise
        with torch.no_grad():
            K = gp.covar_module(X).to_dense() + torch.diag_embed(noise)
            self._L = self._cholesky(K)
            resid = (y - gp.mean_module(X)).unsqueeze(-1)
            self._alpha = torch.cholesky_solve(resid, self._L).squeeze(-1)

    # ------------------------------------------------------------------ internals
    def _noise_diag(self, X: Tensor) -> Tensor:
        """Observation-noise variances at ``X`` (transformed output space)."""
        lik = self.gp.likelihood
        noise = getattr(lik, "noise", None)
        if noise is None:
            raise ValueError("CandidatePosterior needs a Gaussian likelihood with a `noise`")
        noise = noise.detach().reshape(-1)
        if noise.numel() == 1:
            return noise.expand(X.shape[0]).clone()
        if noise.numel() == X.shape[0]:
            return noise.clone()
        return noise.mean().expand(X.shape[0]).clone()

    @staticmethod
    def _cholesky(K: Tensor) -> Tensor:
        jitter = 0.0
        eye = torch.eye(K.shape[-1], dtype=K.dtype, device=K.device)
        scale = float(K.diagonal().mean().abs()) or 1.0
        for _ in range(8):
            L, info = torch.linalg.cholesky_ex(K + jitter * eye)
            if int(info) == 0:
                return L
            jitter = scale * 1e-8 if jitter == 0.0 else jitter * 10.0
        raise RuntimeError("training covariance is not positive definite even with jitter")

    def _check_dim(self, X: Tensor) -> None:
        d = self._X.shape[-1]
        if X.ndim < 1 or X.shape[-1] != d:
            raise ValueError(f"CandidatePosterior expects X [..., q, {d}] (the GP's input "
                             f"dimension), got {tuple(X.shape)}")

    # ------------------------------------------------------------------ botorch Model API
    @property
    def num_outputs(self) -> int:
        return 1

    @property
    def batch_shape(self) -> torch.Size:
        return torch.Size([])

    @property
    def train_size(self) -> int:
        return int(self._X.shape[0])

    def _latent(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Mean ``[..., q]`` and covariance ``[..., q, q]`` in the transformed output space."""
        gp = self.gp
        *batch, q, d = X.shape
        Xf = gp.transform_inputs(X.reshape(-1, d))
        n_pts = Xf.shape[0]
        means, covs = [], []
        step = max(q, (self.chunk_size // q) * q)
        for s in range(0, n_pts, step):
            xc = Xf[s:s + step]
            b = xc.shape[0] // q
            Kxn = gp.covar_module(xc, self._X).to_dense()                 # [m, n]
            mean = gp.mean_module(xc) + Kxn @ self._alpha                   # [m]
            V = torch.linalg.solve_triangular(self._L, Kxn.T, upper=False)  # [n, m]
            if q == 1:
                prior_var = gp.covar_module(xc, diag=True)
                cov = (prior_var - (V * V).sum(0)).clamp_min(0.0).reshape(b, 1, 1)
            else:
                xb = xc.reshape(b, q, d)
                prior = gp.covar_module(xb).to_dense()                      # [b, q, q]
                Vb = V.T.reshape(b, q, -1)                                  # [b, q, n]
                cov = prior - Vb @ Vb.transpose(-1, -2)
            means.append(mean.reshape(b, q))
            covs.append(cov)
        mean = torch.cat(means).reshape(*batch, q)
        cov = torch.cat(covs).reshape(*batch, q, q)
        return mean, cov

    def posterior(self, X: Tensor, output_indices=None, observation_noise: bool = False,
                  posterior_transform=None, **kwargs: Any) -> GPyTorchPosterior:
        X = torch.as_tensor(X, dtype=DTYPE, device=self._X.device)
        if X.ndim == 1:
            X = X.unsqueeze(0)
        self._check_dim(X)
        mean, cov = self._latent(X)
        q = X.shape[-2]
        if q > 1:
            cov = cov + 1e-10 * torch.eye(q, dtype=cov.dtype, device=cov.device)
        post = GPyTorchPosterior(MultivariateNormal(mean, cov))
        ot = getattr(self.gp, "outcome_transform", None)
        if ot is not None:
            post = ot.untransform_posterior(post)
        if posterior_transform is not None:
            post = posterior_transform(post)
        return post

    def mean_and_variance(self, X: Tensor) -> tuple[Tensor, Tensor]:
        """Posterior mean and variance ``[N]`` of each row of ``X`` ``[N, d]`` (original
        output scale)."""
        X = torch.as_tensor(X, dtype=DTYPE, device=self._X.device)
        post = self.posterior(X.unsqueeze(-2))
        return post.mean.reshape(-1), post.variance.reshape(-1)

    def condition_on_observations(self, X: Tensor, Y: Tensor, **kwargs: Any
                                  ) -> "CandidatePosterior":
        """A new ``CandidatePosterior`` that also observed ``Y`` (original output scale,
        ``[k]`` or ``[k, 1]``) at ``X`` ``[k, d]``, with the same hyperparameters and outcome
        transform (no refit). New points get the likelihood's (mean) noise level."""
        X = torch.as_tensor(X, dtype=DTYPE, device=self._X.device)
        self._check_dim(X)
        X = X.reshape(-1, self._X.shape[-1])
        Y = torch.as_tensor(Y, dtype=DTYPE, device=X.device).reshape(-1, 1)
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"condition_on_observations got {X.shape[0]} points and "
                             f"{Y.shape[0]} values")
        gp = self.gp
        Xt = gp.transform_inputs(X)
        ot = getattr(gp, "outcome_transform", None)
        if ot is not None:
            ot.eval()
            Yt, _ = ot(Y, X=Xt)
        else:
            Yt = Y
        noise_new = self._noise.mean().expand(Xt.shape[0])
        return CandidatePosterior(
            gp, chunk_size=self.chunk_size,
            _train=(torch.cat([self._X, Xt]), torch.cat([self._y, Yt.reshape(-1)]),
                    torch.cat([self._noise, noise_new])))


def fit_candidate_posterior(
    train_X: Tensor,
    train_Y: Tensor,
    *,
    kernel: KernelSpec = "matern52",
    likelihood: LikelihoodSpec = None,
    standardize: bool = True,
    init: dict[str, Any] | None = None,
    fallback: dict[str, Any] | None = None,
    maxiter: int | None = 100,
    ftol: float | None = None,
    seed: int | None = None,
) -> tuple[CandidatePosterior, FitResult]:
    """``build_gp`` + ``fit_gp`` + ``CandidatePosterior`` in one call."""
    gp = build_gp(train_X, train_Y, kernel=kernel, likelihood=likelihood,
                  standardize=standardize)
    res = fit_gp(gp, init=init, fallback=fallback, maxiter=maxiter, ftol=ftol, seed=seed)
    with quiet_warnings():
        return CandidatePosterior(gp), res


__all__ = ["CandidatePosterior", "FitResult", "KERNELS", "build_gp", "fit_candidate_posterior",
           "fit_gp", "hyperparameters", "hyperparameters_to_json", "load_hyperparameters",
           "make_kernel", "quiet_warnings"]
