"""Surrogates: posteriors over candidate architectures (botorch-compatible models).

``gp``: exact GP (botorch ``SingleTaskGP``, Matern-5/2 ARD) on a fixed encoding, with a fast
exact posterior over many candidates (``CandidatePosterior``).
"""

from .gp import (CandidatePosterior, FitResult, build_gp, fit_candidate_posterior, fit_gp,
                 make_kernel)

__all__ = ["CandidatePosterior", "FitResult", "build_gp", "fit_candidate_posterior", "fit_gp",
           "make_kernel"]
