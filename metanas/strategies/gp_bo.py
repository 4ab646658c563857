"""GP-BO: Bayesian optimisation with an exact GP on a fixed encoding, over a finite space.

Each step (after ``n_init`` random archs):

1. fit a botorch ``SingleTaskGP`` (``metanas.surrogates.gp``: Matern-5/2 ARD by default,
   ``Standardize`` outcome transform) to the observations on the chosen encoding
   (``metanas.spaces.encodings``: ``"onehot"`` by default, ``"path"``...) by type-II ML with
   ``botorch.fit.fit_gpytorch_mll``, warm-started from the previous step's hyperparameters;
2. score every candidate (the whole space, e.g. all 15625 NAS-Bench-201 cells, or the
   ``candidates`` list) minus the observed and pending archs with a botorch analytic
   acquisition (``LogExpectedImprovement`` by default) in batched calls through the exact,
   fast ``CandidatePosterior``;
3. propose the argmax (exact ties broken uniformly at random with ``self.rng``).

Pending evaluations and ``ask(q > 1)`` use the **Kriging believer** (Ginsbourger et al.
2010): every pending arch (asked but not told, and each arch already picked in this batch) is
added to the GP as if observed at its posterior mean, with the fitted hyperparameters kept
(``CandidatePosterior.condition_on_observations``); the posterior mean is unchanged but the
variance near the believed points collapses, so the next pick goes elsewhere. The incumbent
``best_f`` of EI / PI includes the believed values. We use the believer rather than
Monte-Carlo fantasies (``model.fantasize``) because it is deterministic, costs one rescoring
per pick and the analytic acquisitions keep their exact form.

Robustness: non-finite values (failed evaluations) stay in the history but are not fitted; a
failed fit (non-PSD, NaN, optimizer error) is retried from the default
initialisation (botorch's own restarts from prior samples, on a torch RNG seeded from
``self.rng``), then falls back to the last good hyperparameters; botorch / gpytorch warnings
(input-scaling checks, optimizer status) are logged at DEBUG level, never printed.

State: the hyperparameters of the last fit are in ``_extra_state`` (they warm-start the next
fit and are the fallback), so a resumed run refits exactly as the uninterrupted one (the same
torch thread count gives bit-identical fits).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..spaces import Arch, CellSpace
from ..spaces.encodings import ENCODINGS, encode
from ._checks import (GP_KERNELS, at_least, flag, integer, name_or_callable,
                      optional_positive)
from .acquisition import ACQUISITIONS, check_acquisition, score_candidates  # noqa: F401 (re-exported)
from .base import Strategy, register

if TYPE_CHECKING:  # torch / botorch are imported on first use (importing strategies stays cheap)
    import torch

    from ..surrogates.gp import CandidatePosterior

logger = logging.getLogger(__name__)



WARPS = ("none", "copula", "power")
#: bounds of the Yeo-Johnson exponent of ``warp="power"`` (a handful of observations can
#: otherwise drive the maximum-likelihood exponent to overflow)
POWER_BOUNDS = (-2.0, 4.0)


def warp_values(y: np.ndarray, warp: str) -> np.ndarray:
    """Output warping ``[n] -> [n]`` of finite values: ``"none"``; ``"copula"``, the normal
    scores of the ranks ``Phi^-1((rank - 0.5) / n)`` (ties averaged); ``"power"``, the
    Yeo-Johnson transform of the standardised values with its exponent fitted by maximum
    likelihood within ``POWER_BOUNDS`` (close to the identity on roughly normal values,
    strong on a heavy tail; HEBO's choice)."""
    y = np.asarray(y, dtype=np.float64)
    if warp == "none":
        return y
    if warp == "power":
        from scipy.optimize import minimize_scalar
        from scipy.stats import yeojohnson, yeojohnson_llf

        sd = y.std()
        if len(y) < 3 or not sd > 0:
            return y
        z = (y - y.mean()) / sd
        lam = minimize_scalar(lambda lm: -yeojohnson_llf(lm, z), bounds=POWER_BOUNDS,
                              method="bounded").x
        return yeojohnson(z, lmbda=float(lam))
    from scipy.special import ndtri
    from scipy.stats import rankdata

    n = len(y)
    return ndtri((rankdata(y) - 0.5) / n)


@register("gp-bo")
class GPBO(Strategy):
    """Exact-GP Bayesian optimisation over a finite candidate set.

    Args:
        n_init: random archs before the first GP step (at least 2 observations are needed).
        encoding: fixed encoding of ``metanas.spaces.encodings`` (``"onehot"``, ``"path"``,
            ``"opdist"``) or a callable ``(space, archs) -> [n, d] array``.
        acquisition: ``"logei"`` (default, ``LogExpectedImprovement``), ``"ei"``, ``"ucb"``
            (``UpperConfidenceBound``), ``"pi"`` (``ProbabilityOfImprovement``), ``"logpi"``.
        ucb_beta: ``beta`` of UCB (mean + sqrt(beta) * std).
        kernel: ``"matern52"`` (default), ``"rbf"``, ``"matern52-gamma"``, a gpytorch
            ``Kernel`` or a callable ``dim -> Kernel`` (see ``surrogates.gp.make_kernel``).
        likelihood: a gpytorch Gaussian ``Likelihood`` or zero-argument factory; ``None``:
            botorch's default (inferred homoscedastic noise).
        standardize: ``Standardize`` outcome transform (default). Off, the (warped) values
            are fitted on their own scale: ``"matern52"`` / ``"rbf"``, which have no output
            scale of their own, are then wrapped in a ``ScaleKernel`` and the fit starts at
            the values' mean and variance (``surrogates.gp.build_gp``); on raw accuracies
            (variance ~80) the unit-variance kernel would otherwise leave the whole signal
            to the noise.
        warp: ``"copula"`` maps the observed values to standard-normal quantiles of their
            ranks before the fit (``Phi^-1((rank - 0.5) / n)``, ties averaged), so a few
            failed or degenerate architectures (NB201 / TransNAS cells whose output is zero
            score ~1-10 while the rest sit near 50-90) do not squash the GP's view of the top;
            ``"none"`` fits the raw values; ``"power"``: a Yeo-Johnson transform fitted by
            maximum likelihood (``warp_values``). Acquisitions then compare in warped units.
            Default ``"copula"``: chosen on tasks other than the ones we report on
            (``benchmarks/gpbo_warp_study.py``: mean top-fraction at 50 evaluations over
            NB201 CIFAR-10 / ImageNet16-120 and TransNAS class_object / jigsaw / room_layout,
            10 seeds, 0.39% with copula vs 0.52% without; better on 3 of the 5 tasks).
        fit_maxiter: L-BFGS-B iteration cap per fit.
        fit_ftol: L-BFGS-B relative-reduction tolerance (``None``: scipy's default ~2e-9).
            ``1e-6`` stops once the marginal likelihood per observation moves by less than
            about a millionth: with warm starts most fits then end after tens of iterations
            instead of the 100-iteration cap, at a change of the optimum that does not
            matter for ranking candidates.
        warm_start: start each fit from the previous step's hyperparameters.
        chunk_size: candidates scored per batched posterior call.
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, n_init: int = 10,
                 encoding: str | Callable = "onehot", acquisition: str = "logei",
                 ucb_beta: float = 2.0, kernel: Any = "matern52",
                 likelihood: Any = None, standardize: bool = True, warp: str = "copula",
                 fit_maxiter: int = 100, fit_ftol: float | None = 1e-6,
                 warm_start: bool = True,
                 chunk_size: int = 16384) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        m = self.name
        check_acquisition(acquisition)
        self.n_init = integer("n_init", n_init, 1, m)
        self.encoding = name_or_callable("encoding", encoding, ENCODINGS, m,
                                         "a callable (space, archs) -> array")
        self.acquisition = acquisition
        self.ucb_beta = at_least("ucb_beta", ucb_beta, 0, m)
        # a gpytorch Kernel is a module, hence callable
        self.kernel = name_or_callable("kernel", kernel, GP_KERNELS, m,
                                       "a gpytorch Kernel or a callable dim -> Kernel")
        self.likelihood = likelihood
        self.standardize = flag("standardize", standardize, m)
        if warp not in WARPS:
            raise KeyError(f"unknown warp {warp!r}; choose one of {', '.join(WARPS)}")
        self.warp = warp
        self.fit_maxiter = integer("fit_maxiter", fit_maxiter, 1, m)
        self.fit_ftol = optional_positive("fit_ftol", fit_ftol, m)
        self.warm_start = flag("warm_start", warm_start, m)
        self.chunk_size = integer("chunk_size", chunk_size, 1, m)
        self._hp: dict[str, Any] | None = None   # last good hyperparameters (JSON form)
        self._pool_enc: torch.Tensor | None = None
        self.n_fit_failures = 0
        #: timings / status of the last model step (diagnostics, not state)
        self.last_step: dict[str, Any] = {}

    # ------------------------------------------------------------------ encoding
    def encode(self, archs: Sequence[Arch]) -> "torch.Tensor":
        import torch

        from ..surrogates.gp import DTYPE

        if callable(self.encoding):
            arr = self.encoding(self.space, archs)
        else:
            arr = encode(self.space, archs, self.encoding)
        return torch.as_tensor(np.asarray(arr, dtype=np.float64), dtype=DTYPE)

    def _pool_encoding(self) -> "torch.Tensor":
        if self._pool_enc is None:
            self._pool_enc = self.encode(self.pool_array())
        return self._pool_enc

    # ------------------------------------------------------------------ model
    def fit_model(self) -> "CandidatePosterior":
        """Fit the GP to the (finite) observations; returns its fast candidate posterior."""
        import torch

        from ..surrogates.gp import (DTYPE, CandidatePosterior, build_gp, fit_gp,
                                     hyperparameters_to_json, quiet_warnings)

        t0 = time.perf_counter()
        y = np.asarray(self.y, dtype=np.float64)
        ok = np.isfinite(y)  # a failed evaluation (NaN / inf) is not a data point
        X = self.encode([a for a, k in zip(self.X, ok) if k])
        yw = warp_values(y[ok], self.warp)
        self._best_f = float(yw.max())
        Y = torch.as_tensor(yw, dtype=DTYPE)
        seed = int(self.rng.integers(2**31 - 1))
        gp = build_gp(X, Y, kernel=self.kernel, likelihood=self.likelihood,
                      standardize=self.standardize)
        res = fit_gp(gp, init=self._hp if self.warm_start else None, fallback=self._hp,
                     maxiter=self.fit_maxiter, ftol=self.fit_ftol, seed=seed)
        if res.ok:
            self._hp = hyperparameters_to_json(res.hp)
        else:
            self.n_fit_failures += 1
        with quiet_warnings():
            model = CandidatePosterior(gp, chunk_size=self.chunk_size)
        self.last_step = {"fit_s": time.perf_counter() - t0, "fit_status": res.status,
                          "n_obs": int(ok.sum())}
        return model

    def score(self, model, X: "torch.Tensor", best_f: float) -> np.ndarray:
        """Acquisition value of every row of ``X`` ``[N, d]``."""
        return score_candidates(model, X, self.acquisition, best_f, ucb_beta=self.ucb_beta,
                                chunk_size=self.chunk_size)

    # ------------------------------------------------------------------ proposals
    def _propose(self, n: int) -> list[Arch]:
        k = self.initial_quota(n, self.n_init)
        out: list[Arch] = self.sample_unseen(k) if k else []
        if len(out) == n:
            return out
        t0 = time.perf_counter()
        try:
            model = self.fit_model()
        except (RuntimeError, ValueError) as exc:  # e.g. no PD covariance even with jitter
            logger.warning("GP-BO: no usable GP (%s); proposing random archs this step", exc)
            self.n_fit_failures += 1
            return out + self.sample_unseen(n - len(out), exclude=set(out))
        t_fit = time.perf_counter()
        believed = list(self.pending) + out
        best_f = self._best_f
        if believed:
            model, best_f = self._believe(model, believed, best_f)
        pool_enc = self._pool_encoding()
        cur = {"model": model, "best_f": best_f}

        def believe(arch: Arch) -> None:
            cur["model"], cur["best_f"] = self._believe(cur["model"], [arch], cur["best_f"])

        n_free = len(self.pool()) - sum(self.pool_index(a) is not None
                                        for a in self.seen | set(out))
        out = self.pick_greedy(
            n, out, lambda rows: self.score(cur["model"], pool_enc[rows], cur["best_f"]), believe)
        self.last_step.update(score_s=time.perf_counter() - t_fit,
                              step_s=time.perf_counter() - t0, n_candidates=n_free)
        return out

    def _believe(self, model: "CandidatePosterior", archs: list[Arch], best_f: float
                 ) -> tuple["CandidatePosterior", float]:
        """Kriging believer: condition on the posterior mean at ``archs``."""
        import torch

        from ..surrogates.gp import quiet_warnings

        Xb = self.encode(archs)
        with torch.no_grad(), quiet_warnings():
            mean = model.posterior(Xb.unsqueeze(-2)).mean.reshape(-1)
            model = model.condition_on_observations(Xb, mean)
        return model, max(best_f, float(mean.max()))

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        return {"hp": self._hp, "n_fit_failures": self.n_fit_failures}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._hp = state.get("hp")
        self.n_fit_failures = int(state.get("n_fit_failures", 0))
