"""BASE (Bayesian meta-Architecture SEarch) and the one-shot NAS baselines on one supernet.

- ``supernet``: ``SuperNet`` (NB201 skeleton, ``MixedOp`` on every edge).
- ``bayes``: Gumbel-softmax, categorical / Gaussian KLs, ``BayesSuperNet`` (posterior + prior).
- ``elbo``: the per-task negative ELBO.
- ``meta``: BASE meta-training with Reptile (``train_meta.py --method base``), checkpoints.
- ``adapt``: quick adaptation of a prior to a new task, architecture derivation.
- ``oneshot``: DARTS (first order), SNAS / GDAS, DARTS+ early stopping.

The search strategies (``base``, ``base-prior``, ``darts``, ``snas``, ``darts+``) are in
``metanas.strategies.oneshot``.
"""

from .adapt import AdaptConfig, AdaptResult, adapt, argmax_arch, derive, model_for_task
from .bayes import (BayesConfig, BayesSuperNet, categorical_kl, gaussian_kl, gumbel_softmax)
from .elbo import ELBOConfig, elbo_loss
from .oneshot import OneShotConfig, SearchResult, search
from .supernet import SuperNet, SuperNetConfig

__all__ = ["AdaptConfig", "AdaptResult", "adapt", "argmax_arch", "derive", "model_for_task",
           "BayesConfig", "BayesSuperNet", "categorical_kl", "gaussian_kl", "gumbel_softmax",
           "ELBOConfig", "elbo_loss", "OneShotConfig", "SearchResult", "search", "SuperNet",
           "SuperNetConfig"]
