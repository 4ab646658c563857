"""TNAS: Bayesian optimisation with a meta-learned deep-kernel GP (Shala et al., ICLR 2023).

Surrogate: ``metanas.surrogates.deep_kernel.DeepKernelGP`` (DAG-GNN arch encoder +
Set-Transformer dataset encoder + MLP + Matern GP), meta-trained with Reptile on the other
tasks of the space (``train_meta.py`` / ``metanas.meta.tnas_train``); by default the checkpoint
shipped for the space, ``<repo>/pretrained/tnas-<space>/``.

Each BO step:

1. **Test-time adaptation** (``adapt=True``): reset the surrogate to the meta-learned weights
   and fine-tune it on the (finite) observations so far with ``deep_kernel.fit`` - proximal
   anchor to the meta weights + honest hold-out early stopping (the guard), ``adapt_steps``
   Adam steps at most. The default guard ``"holdout"`` adapts only once a held-out check
   exists (8 observations); below that the meta-learned weights are only conditioned on the
   observations. Chosen with ``benchmarks/tnas_select.py`` (mean top fraction after 20
   evaluations, 3 seeds; 10 LOTO targets / 15 digits validation tasks): ``"holdout"`` 0.28% /
   0.98%, adapting from 3 observations under a leave-one-out check (``"auto"``, the earlier
   default) 0.32% / 0.98%. No adaptation at all did a little better still (0.25% / 0.89%);
   adaptation stays on, guarded, as TNAS specifies (``adapt=False`` switches it off).
   ``trainable="gp"`` (default) adapts the GP's hyper-parameters (noise, output scale,
   lengthscale, constant mean) with the deep-kernel features frozen; ``"head"`` also the MLP
   head (the earlier default); ``"all"`` everything (TNAS as published; slow on a
   CPU: every step re-encodes the observations). Why ``"gp"``: re-fitting the head at every
   step on a fresh held-out split makes the early-stopped step count (0-10) jump from one
   evaluation to the next, and under a prior from unlike tasks the proposals jump with it
   between good cells and cells ranked 1000-2500 (``benchmarks/tnas_unlike.py``: best@100
   below REA on 3 of 5 targets with the head adapted, 1 of 5 with ``"gp"``). On the
   leave-one-task-out targets (``tnas_loto.py``, 10 seeds) ``"gp"`` gives tf@20 0.25% vs
   0.29%, tf@100 0.06% vs 0.05%, best@100 >= REA on 10/10 either way; on the held-out digits
   tasks (``tnas_digits.py``) tf@20 1.07% vs 0.91% (the tables move in 0.44-point steps).
   From 20 observations on, a residual kernel on the architecture itself is added to the deep
   kernel and fitted (see "Residual kernel" below).
2. **Score every candidate** (the whole space or ``candidates``) minus observed / pending ones
   with an analytic acquisition (``"ucb"`` default, ``"logei"``, ``"pi"``, ``"ei"``) through
   the model's exact ``O(N n)`` candidate posterior, argmax (ties broken with ``self.rng``).

   Why UCB: the meta-learned kernel is confident (small noise, tight features), so once the
   initial design has found good cells the expected improvement of *every* candidate is
   astronomically small and log-EI's argmax is decided by the far tail of the predictive -
   the largest predictive variance, often a cell the prior ranks among the worst. UCB's
   ``mean + sqrt(beta) * sd`` keeps the trade-off on the same scale. Chosen with
   ``benchmarks/tnas_select.py``: the 10 leave-one-task-out targets (also the tasks
   ``tnas_loto.py`` reports, so its figures are not an independent test of this choice) and
   the 15 non-held-out digits tasks with the CIFAR-only prior; the 5 held-out digits tasks
   of ``tnas_digits.py`` were never used to choose anything.
   Thompson sampling (``acquisition="ts"``, an option): the argmax of one joint posterior
   sample over the plausible candidates (upper bound ``mean + 3 sd`` at least the best lower
   bound, at most ``TS_POOL`` = 1024 of them, exact ``M x M`` posterior covariance), its
   torch seed drawn from ``self.rng`` - so seeds differ after the (deterministic) top-k
   initial design. It lost to UCB on both validation groups of ``tnas_select.py`` (3 seeds;
   ``benchmarks/results/tnas_select_s8_ts_{loto,digits}.json``): LOTO tf@20 0.33% vs 0.28%,
   tf@100 0.07% vs 0.05%; digits tf@20 1.24% vs 0.98%, tf@50 0.49% vs 0.28%.
3. ``ask(q > 1)`` and pending archs: **Kriging believer** (as ``gp-bo``): each pending / already
   picked arch is added to the GP at its posterior mean with the adapted weights kept.

Speed (design choice): with frozen encoders the architecture embeddings of *every* cell of
the space are computed once per checkpoint and process (``_TableArchEncoder``: NB201's 15625
cells in ~2 s, shared by all runs of a harness process) and the model looks them up, so an
adaptation step costs one MLP + GP pass on the observations and scoring all candidates one MLP
pass + an ``N x n`` kernel. ``trainable="all"`` keeps the real encoder.

Initial design (the first ``n_init`` archs): ``"top-k"`` (default, the source's ablation
winner) takes the archs the meta-trained surrogate ranks highest before any target
observation: the meta-trained GP, with the target's dataset embedding, conditioned on the
checkpoint's ``prior_context.safetensors`` (archs + mean standardised value over the
meta-training tasks) - the posterior mean's top ``n_init`` unseen candidates. ``"random"``:
uniform. Without a prior context (from scratch, or a checkpoint without one) it is random.
``prior="tables"`` (an option, below) ranks by the training tasks' tables instead.

Prior from the tables (``prior="tables"``, an option; default ``"model"``): the initial
design (and the transfer mean) ranks the space by the meta-training tasks' own tables instead
of the meta-trained surrogate: each training task of the space whose table measures at least
``TABLE_PRIOR_COVERAGE`` of it (read from ``meta_dataset``, default the shipped ones)
contributes the normal scores of its ranking, and the prior is their mean. It does not depend
on the checkpoint's weights: on TransNAS the surrogate's prior is a smoothed version of the same
cross-task information (conditioned on a few hundred context archs), and its top cells moved
with the meta-training seed. Sparse tables (MetaD2A's subset tasks) are left out. Without any
such table (a checkpoint trained on a meta-dataset that is not given) it falls back to the
surrogate's prior with a warning. It won on the three validation groups and lost on the
held-out digits tasks after 20 evaluations (figures in the README), so it is an option.

Transfer mean (``transfer_mean=True``, off by default): the GP's prior mean becomes
``c + w * p(x)``, ``p`` the prior ranking's prediction for every cell of the space (the
meta-trained surrogate's, or with ``prior="tables"`` the tables')
(conditioned on the prior context; normal scores of its ranking) and ``(c, w)`` the
generalised-least-squares fit to the observations under the current kernel, ``w >= 0``
(``deep_kernel.TablePriorMean``). Where the target agrees with the prior, unexplored cells
keep the prior's ordering instead of reverting to the mean of the (selected, good)
observations; where it does not, ``w = 0`` and it is plain TNAS. It did not beat the default on
the validation tasks (``benchmarks/tnas_select.py``), so it is an option.

Residual kernel (``residual=True``, the default): the meta-learned features can be right
about the coarse ranking of a task and still unable to tell its best cells apart; then the
deep kernel's posterior is confident everywhere near the good cells and the search stalls (on
TransNAS's dense-prediction tasks every seed ended on the same cell, found by evaluation
24-73, while plain GP-BO kept improving). From ``residual_from`` finite observations on, each
step adds a kernel on the architecture itself, ``scale * exp(-sum_e w_e [x_e != x'_e])``
(``deep_kernel.HammingResidualKernel``), to the (adapted) deep kernel, with the scale, the
edge weights and the noise fitted by maximum a-posteriori on the observations
(``deep_kernel.fit_residual``, L-BFGS; kept only when it raises the marginal likelihood).
Where the target agrees with the features the fitted scale stays small and TNAS is
unchanged. It starts at 20 observations (``residual_from``): it has ``n_edges + 2``
hyper-parameters, and fitted from 5 or 10 observations it cost more in the first evaluations
than it gained on the validation tasks. Chosen with ``benchmarks/tnas_select.py`` (3 seeds x
100 evaluations on the 10 LOTO targets, 3 x 50 on the 15 digits validation tasks; figures in
the README): the best after 100 evaluations rose on 5 LOTO targets and fell on none; on the
small, noisy digits tables it was slightly worse at 50 (0.28% vs 0.24% top fraction).
``residual=False`` reproduces the earlier default exactly.

Output warping (``warp``, off by default): ``"copula"`` fits the model to the normal scores
of the observations' ranks, ``Phi^-1((rank - 0.5) / n)``, re-computed at every step (as
``gp-bo`` does by default); ``"power"`` a Yeo-Johnson transform fitted by maximum likelihood;
``"none"`` (default) the raw values. The idea: on tables with a heavy lower tail (cells that
fail to train) those few cells set the scale, the good cells' differences shrink to the noise
level and the search stalls (on a digits validation task every seed stayed on the
second-best value from evaluation 10 to 50; with the copula the residual kernel switched on
and found the optimum by evaluation 30). It won on the validation groups of
``benchmarks/tnas_select.py`` (digits tf@50 0.10% vs 0.28%) but not where it counts: on the 5
held-out digits tasks it was worse at 20 evaluations (2.20% vs 0.91%) and equal at 50 (0.73%
vs 0.77%), and on TransNAS's leave-one-task-out targets it ended below REA on
segmentsemantic and normal (figures in the README). So it is an option, not the default.

Exploring proposals (``explore_every=k``, off by default): from ``explore_from`` evaluations
on, every ``k``-th proposal comes from a prior-free GP-BO (``gp_bo.GPBO``: one-hot Matern-5/2
ARD, copula warp, log-EI; ``explorer=`` its keyword arguments) fitted to the same
observations, with TNAS's other proposals of the batch as pending; its generator is seeded
from ``self.rng`` on first use and saved with the state. The idea: where the meta-learned
features are wrong, the deep kernel keeps proposing near the prior's region, and an
occasional proposal that ignores them leaves it sooner. It did not help on the validation
groups of ``benchmarks/tnas_select.py`` nor under the prior from unlike tasks
(``benchmarks/tnas_unlike.py``; figures in the README), so it is an option.

Ensemble of checkpoints (``pretrained=[dir, dir, ...]``, an option): one single-checkpoint
``TNAS`` member per checkpoint (e.g. the same recipe meta-trained with several seeds), each
adapted and fitted to the observations as above (its own adaptation seeds and residual
kernel); candidates are scored under the members' mixture (``surrogates.mixture.MixtureGP``:
moment-matched, so where the members disagree the variance grows), with equal weights
(default) or the members' evidence (``ensemble_weights="evidence"``: Bayesian model averaging
by marginal likelihood), and the initial design takes the top of the members' mean prior
prediction. The Kriging believer conditions every member on the mixture mean. The idea: on
TransNAS's dense-prediction tasks the result after 20 evaluations depends on the particular
checkpoint (the meta-training seed moves it by 1-2 points of top fraction); a mixture does
not bet on one. Costs K times the meta-training and the search time. Figures in the README
(``benchmarks/tnas_select.py`` with ``"meta_seeds"``).

Dataset encoder: used with the task's dataset samples (``sample_features`` ``[C, S, F]``) when
they exist: ``dataset_samples=`` directly, or looked up from the meta-dataset for a task id
``task=`` (or a task object / dict carrying ``sample_features``), or for a live task
(``dataset:<spec>``) computed from its train images with the fixed featuriser
(``metanas.train.features``, the one the builder stores); otherwise the learned
"no data" embedding. ``use_dataset=False`` always uses the no-data embedding (ablation).

Ablations: ``pretrained=None`` (or ``"scratch"``): the same model, randomly initialised
(seeded from ``seed``), no meta-training; ``adapt=False``: no test-time adaptation (only
conditioning on the observations); ``use_dataset=False``: no dataset encoder.

State / resume: the adapted weights are a deterministic function of the meta weights, the
first ``m`` finite observations and a torch seed drawn from ``self.rng`` (the adaptation
always restarts from the meta weights); ``state_dict`` stores ``(m, seed)`` of the last
adaptation, and a resumed strategy redoes it, so the trajectory is reproduced exactly (same
torch thread count).
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import UserInputError
from ..spaces import Arch, CellSpace
from ._checks import at_least, flag, integer, one_of, positive
from .acquisition import check_acquisition, score_candidates
from .base import Strategy, register
from .gp_bo import WARPS, warp_values

logger = logging.getLogger(__name__)

INITIAL_DESIGNS = ("top-k", "top-k-diverse", "random")
#: ``"top-k-diverse"``: each design arch differs from every earlier one (and every observed
#: arch) in at least this many edges
DIVERSE_MIN_EDGES = 2
#: acquisitions beyond the shared analytic ones: ``"ts"`` = Thompson sampling
THOMPSON = "ts"
#: Thompson sampling draws jointly over the candidates whose upper bound ``mean + c sd``
#: reaches the best lower bound ``max(mean - c sd)``, ``c`` = this (the others' chance of
#: holding the sample's maximum is negligible)
TS_PRUNE_SD = 3.0
#: ... and at most this many of them, those with the highest upper bounds (the sample needs
#: an ``M x M`` covariance and its Cholesky factor)
TS_POOL = 1024
TRAINABLE = ("head", "gp", "all")
ADAPT_GUARDS = ("auto", "holdout", "loo", "none")
#: how an ensemble weights its members: equally, or by their evidence (marginal likelihood)
ENSEMBLE_WEIGHTS = ("equal", "evidence")
#: where the prior ranking over the space (the initial design, the transfer mean) comes from:
#: the meta-trained surrogate conditioned on its prior context (``"model"``, the default) or
#: the meta-training tasks' own tables (``"tables"``)
PRIORS = ("model", "tables")
#: a source table enters the ``"tables"`` prior when it measures at least this share of
#: the space (sparse tables such as MetaD2A's subset tasks carry no full ranking)
TABLE_PRIOR_COVERAGE = 0.5
#: (checkpoint, its training state's mtime, space, meta-dataset path) -> [S, n_space] source
#: normal scores or None
_TABLE_PRIOR_CACHE: dict[tuple, Any] = {}

#: (checkpoint key) -> dict(state=..., config=..., table=..., context=..., training_tasks=...)
_CACHE: dict[tuple, dict] = {}
#: task id -> sample features tensor or None
_SAMPLES_CACHE: dict[str, Any] = {}
#: (checkpoint, task) pairs already warned about (target task among the training tasks)
_LEAK_WARNED: set[tuple[str, str]] = set()
#: (checkpoint, samples shape) pairs already warned about (samples unfit for the encoder)
_SHAPE_WARNED: set[tuple[str, tuple]] = set()


def shipped_checkpoint(space: str) -> Path:
    """``<repo>/pretrained/tnas-<space>``: the checkpoint shipped for ``space``."""
    import metanas

    return Path(metanas.__file__).resolve().parents[1] / "pretrained" / f"tnas-{space}"


def _radix(space: CellSpace) -> np.ndarray:
    """``[n_edges]`` place values: ``ops @ _radix(space)`` is a cell's row in a whole-space
    table (``deep_kernel.TablePriorMean``'s index; first edge most significant)."""
    return space.n_ops ** np.arange(space.n_edges - 1, -1, -1)


def _table_encoder_cls():
    import torch
    from torch import nn

    class _TableArchEncoder(nn.Module):
        """Frozen arch encoder: looks the embeddings of every cell of the space up (radix
        index of the op tuple)."""

        def __init__(self, table: torch.Tensor, n_ops: int, n_edges: int) -> None:
            super().__init__()
            self.register_buffer("table", table, persistent=False)
            self.register_buffer("radix", n_ops ** torch.arange(n_edges - 1, -1, -1),
                                 persistent=False)
            self.embed_dim = int(table.shape[-1])

        def forward(self, ops: torch.Tensor) -> torch.Tensor:
            return self.table[ops.long() @ self.radix]

    return _TableArchEncoder


def _space_cells(space, chunk: int = 8192):
    """Every cell of ``space`` in radix order, as op-index tensors ``[<= chunk, n_edges]``."""
    import torch

    n = space.n_ops ** space.n_edges
    radix = space.n_ops ** torch.arange(space.n_edges - 1, -1, -1)
    for i in range(0, n, chunk):
        yield (torch.arange(i, min(i + chunk, n))[:, None] // radix) % space.n_ops


def _arch_table(model, space) -> "Any":
    """Embeddings ``[n_ops ** n_edges, A]`` of every cell in radix order."""
    import torch

    with torch.no_grad():
        return torch.cat([model.arch_encoder(ops) for ops in _space_cells(space)])


@register("tnas")
class TNAS(Strategy):
    """Transfer NAS with a meta-learned deep-kernel GP (see module docstring).

    Args:
        task: target task (meta-dataset id, used to find its dataset samples, and to warn
            when the checkpoint was meta-trained on it); the harness passes it.
        pretrained: checkpoint folder; ``"auto"`` (default) = ``pretrained/tnas-<space>/``
            (a fresh model with a warning when it does not exist); ``None`` / ``"scratch"`` =
            no meta-training (ablation); a list of two or more checkpoints (e.g. several
            meta-training seeds): an ensemble, one single-checkpoint ``TNAS`` member per
            checkpoint with these settings, each fitted to the observations, scored under
            their mixture (``surrogates.mixture.MixtureGP``; see module docstring).
        n_init: initial-design size (the BO loop needs >= 2 finite observations).
        initial_design: ``"top-k"``, ``"top-k-diverse"`` (the prior's best archs, each
            at least ``DIVERSE_MIN_EDGES`` edges from the earlier ones) or ``"random"``.
        acquisition: ``"ucb"`` (default), ``"logei"``, ``"ei"``, ``"pi"``, or ``"ts"``
            (Thompson sampling: the argmax of one joint posterior sample over the plausible
            candidates, ``TS_PRUNE_SD`` / ``TS_POOL``);
            ``ucb_beta``: UCB's beta (``mean + sqrt(beta) * sd``).
        adapt: test-time adaptation on; ``adapt_steps`` / ``adapt_lr`` / ``adapt_prox`` /
            ``adapt_patience``: ``deep_kernel.fit``'s steps, lr, prox, patience.
        adapt_guard: ``deep_kernel.fit``'s overfitting guard: ``"holdout"`` (default:
            held-out early stopping; no adaptation below 8 observations), ``"auto"`` (the
            same from 8 observations, closed-form LOO below), ``"loo"``, ``"none"``.
        adapt_every: re-adapt only once this many new observations arrived since the last
            adaptation (in between the adapted weights are kept and the GP is re-conditioned
            on all observations); ``1`` (default) adapts at every step as in TNAS.
        trainable: what test-time adaptation fits: ``"gp"`` (default: the GP's
            hyper-parameters), ``"head"`` (+ the MLP head) or ``"all"`` (+ the encoders).
        transfer_mean: the prior ranking (``prior``) as the GP's prior mean (see module
            docstring).
        prior: where the prior ranking (initial design, transfer mean) comes from:
            ``"model"`` (default: the meta-trained surrogate conditioned on the checkpoint's
            prior context) or ``"tables"`` (the mean normal score of the meta-training
            tasks' own tables in ``meta_dataset``; see module docstring).
        residual: add an edge-weighted Hamming kernel on the cell to the deep kernel, its
            scale, edge weights and the noise fitted at every step from ``residual_from``
            finite observations on (see module docstring).
        warp: output warping of the observations before the model sees them: ``"none"``
            (default), ``"copula"`` or ``"power"`` (``gp_bo.warp_values``; module docstring).
        explore_every: ``k > 0``: from ``explore_from`` evaluations on, every ``k``-th
            proposal comes from a prior-free GP-BO (``gp_bo.GPBO`` with ``explorer``'s
            keyword arguments) on the same observations (see module docstring); ``0``
            (default): off.
        ensemble_weights: an ensemble's mixture weights: ``"equal"`` (default) or
            ``"evidence"`` (each member's marginal likelihood of the observations, Bayesian
            model averaging over the members).
        use_dataset: use the dataset encoder when samples exist.
        dataset_samples: explicit ``[C, S, F]`` samples of the target dataset.
        meta_dataset: ``MetaDataset`` (or name/path) to look the task's samples, and for
            ``prior="tables"`` the training tasks' tables, up in (default: the shipped ones,
            loaded only when needed).
    """

    NEUTRAL_SETTINGS = {"explore_every": 0, "explore_from": 20, "explorer": None,
                        "ensemble_weights": "equal", "prior": "model"}

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, task: Any = None,
                 pretrained: str | Path | None = "auto", n_init: int = 5,
                 initial_design: str = "top-k", acquisition: str = "ucb",
                 ucb_beta: float = 2.0, adapt: bool = True, adapt_steps: int = 10,
                 adapt_lr: float = 5e-3, adapt_prox: float = 1.0, adapt_patience: int = 3,
                 adapt_every: int = 1, adapt_guard: str = "holdout",
                 trainable: str = "gp", use_dataset: bool = True,
                 transfer_mean: bool = False, prior: str = "model",
                 residual: bool = True, residual_from: int = 20,
                 warp: str = "none", explore_every: int = 0, explore_from: int = 20,
                 explorer: dict | None = None, ensemble_weights: str = "equal",
                 dataset_samples: Any = None, meta_dataset: Any = None,
                 chunk_size: int = 16384) -> None:
        # the settings an ensemble passes on to its members (see ``pretrained``)
        member_kw = {k: v for k, v in locals().items()
                     if k not in ("self", "space", "seed", "candidates", "pretrained",
                                  "explore_every", "explorer", "ensemble_weights", "__class__")}
        init_seed = seed if isinstance(seed, (int, np.integer)) else None
        super().__init__(space, seed=seed, candidates=candidates)
        m = self.name
        check_acquisition(acquisition, extra=(THOMPSON,))
        one_of("initial_design", initial_design, INITIAL_DESIGNS, m)
        one_of("trainable", trainable, TRAINABLE, m)
        self.task = task
        self.pretrained = pretrained
        self.n_init = integer("n_init", n_init, 1, m)
        self.initial_design = initial_design
        self.acquisition = acquisition
        self.ucb_beta = at_least("ucb_beta", ucb_beta, 0, m)
        self.adapt = flag("adapt", adapt, m)
        self.adapt_steps = integer("adapt_steps", adapt_steps, 0, m)  # 0: no adaptation
        self.adapt_lr = positive("adapt_lr", adapt_lr, m)
        self.adapt_prox = at_least("adapt_prox", adapt_prox, 0, m)  # 0: no proximal anchor
        self.adapt_patience = integer("adapt_patience", adapt_patience, 1, m)
        self.adapt_every = integer("adapt_every", adapt_every, 1, m)
        self.adapt_guard = one_of("adapt_guard", adapt_guard, ADAPT_GUARDS, m)
        #: (n finite observations, torch seed) of the last adaptation (state) and of the
        #: weights the model holds now (``None``: the meta weights)
        self._adapt_info: tuple[int, int] | None = None
        self._current: tuple[int, int] | None = None
        self.trainable = trainable
        self.use_dataset = flag("use_dataset", use_dataset, m)
        self.transfer_mean = flag("transfer_mean", transfer_mean, m)
        self.prior = one_of("prior", prior, PRIORS, m)
        self.residual = flag("residual", residual, m)
        # below 2 it acts as 2: the model is fitted from two finite observations on
        self.residual_from = max(2, integer("residual_from", residual_from, 0, m))
        self.warp = one_of("warp", warp, WARPS, m)
        self.explore_every = integer("explore_every", explore_every, 0, m)  # 0: off
        # below 2 it acts as 2 (the explorer's GP needs two observations)
        self.explore_from = max(2, integer("explore_from", explore_from, 0, m))
        self.explorer_kwargs = self._check_explorer(explorer, space)
        #: the prior-free strategy behind the exploring proposals (built on first use)
        self._explorer: Strategy | None = None
        self._explorer_state: dict | None = None
        self._space_prior = None
        #: ``prior="tables"``: (``[S, n_space]`` source normal scores or None,) once read
        self._sources: tuple | None = None
        self._explicit_samples = dataset_samples
        self.meta_dataset = meta_dataset
        self.chunk_size = integer("chunk_size", chunk_size, 1, m)
        self._init_seed = int(init_seed) if init_seed is not None else \
            int(self.rng.integers(2**31 - 1))
        self.ensemble_weights = one_of("ensemble_weights", ensemble_weights, ENSEMBLE_WEIGHTS,
                                       m)
        self._weights_warned = False
        #: an ensemble's members: one single-checkpoint TNAS per checkpoint of ``pretrained``
        #: (fitted to this strategy's observations; they never explore nor hold pending archs)
        self._members: list[TNAS] = []
        if isinstance(pretrained, (list, tuple)):
            if not pretrained:
                raise ValueError("pretrained=[] names no checkpoint; give one, or a list of "
                                 "two or more for an ensemble")
            if len(pretrained) == 1:
                self.pretrained = pretrained[0]
            elif acquisition == THOMPSON:
                raise ValueError("acquisition='ts' does not support an ensemble of checkpoints; "
                                 "use 'ucb', 'logei', 'ei' or 'pi'")
            else:
                self._members = [TNAS(space, seed=int(self.rng.integers(2**31 - 1)),
                                      candidates=candidates, pretrained=p, **member_kw)
                                 for p in pretrained]
        self._model = None
        self._base_noise = None
        self._meta_state: dict | None = None
        self._samples = None
        self._context = None
        self._prior_order: np.ndarray | None = None
        self._pool_X = None
        #: diagnostics of the last model step (not state)
        self.last_step: dict[str, Any] = {}
        self.checkpoint_dir: Path | None = None

    def _check_explorer(self, explorer: Any, space: CellSpace) -> dict:
        """``explorer`` (``None`` or a dict of ``gp_bo.GPBO`` settings) as a dict, each
        setting checked now by building a throwaway GP-BO (cheap: no model, nothing drawn
        from ``self.rng``), so a bad one fails here and not at the first exploring step."""
        from .gp_bo import GPBO

        if explorer is None:
            return {}
        if not isinstance(explorer, dict):
            raise UserInputError(f"{self.name}: explorer must be a dict of gp-bo settings or "
                                 f"null (None), got {explorer!r}")
        allowed = set(inspect.signature(GPBO).parameters) - {"space", "seed", "candidates"}
        for key in explorer:
            if key not in allowed:
                raise UserInputError(f"{self.name}: explorer: gp-bo has no setting {key!r}; "
                                     f"choose from {', '.join(sorted(allowed))}")
        try:
            GPBO(space, seed=0, **{"n_init": 2, **explorer})
        except (KeyError, TypeError, ValueError) as exc:
            msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise UserInputError(f"{self.name}: explorer: {msg}") from None
        return dict(explorer)

    # ------------------------------------------------------------------ model
    @classmethod
    def resolve_setting(cls, key: str, value: Any, space: str) -> Any:
        """``pretrained="auto"`` identifies a run by the shipped checkpoint folder (whose weights
        the harness fingerprints), not by the word."""
        if key == "pretrained" and isinstance(value, (list, tuple)):  # an ensemble
            if len(value) == 1:  # a list of one is that checkpoint (see ``pretrained``)
                return cls.resolve_setting(key, value[0], space)
            return [cls.resolve_setting(key, v, space) for v in value]
        if key == "pretrained" and isinstance(value, str) and value.lower() == "auto":
            return str(shipped_checkpoint(space))
        return value

    def _resolve_checkpoint(self) -> Path | None:
        p = self.pretrained
        if p is None or (isinstance(p, str) and p.lower() == "scratch"):
            return None
        if isinstance(p, str) and p.lower() == "auto":
            d = shipped_checkpoint(self.space.name)
            if not (d / "config.json").is_file():
                logger.warning("tnas: no shipped checkpoint %s; using a randomly initialised "
                               "surrogate (no meta-training)", d)
                return None
            return d
        from ..hub import resolve_pretrained  # a folder, or a Hub id (offline first)
        return resolve_pretrained(p, kind="tnas", space=self.space.name)

    def _task_samples(self):
        import torch

        if not self.use_dataset:
            return None
        s = self._explicit_samples
        if s is None and self.task is not None:
            t = self.task
            if isinstance(t, dict):
                s = t.get("sample_features")
            elif hasattr(t, "sample_features"):
                s = getattr(t, "sample_features")
            elif isinstance(t, str):
                if t not in _SAMPLES_CACHE:
                    _SAMPLES_CACHE[t] = self._lookup_samples(t)
                s = _SAMPLES_CACHE[t]
        if s is None:
            return None
        from ..meta.tnas_train import _samples_tensor

        return s if isinstance(s, torch.Tensor) else _samples_tensor(s)

    def _load_meta_dataset(self):
        """``meta_dataset`` as a ``MetaDataset`` (a name or path loaded, ``None``: the
        shipped ones)."""
        from ..meta_dataset import MetaDataset

        md = self.meta_dataset
        if md is None or isinstance(md, (str, Path)):
            return MetaDataset.load(md) if md is not None else MetaDataset.load()
        return md

    def _lookup_samples(self, task: str):
        from ..benchmarks.live import PREFIX

        if task.startswith(PREFIX):  # a live task: featurise its own train images
            from ..benchmarks.live import resolve_live
            from ..train.features import task_sample_features

            return task_sample_features(resolve_live(task).data)
        try:
            return self._load_meta_dataset().task(task).get("sample_features")
        except Exception as exc:  # unknown task (a user table, a toy): no samples
            logger.debug("tnas: no dataset samples for task %r (%s)", task, exc)
            return None

    def _build(self) -> None:
        import torch

        from ..surrogates.deep_kernel import DeepKernelConfig, DeepKernelGP

        if self._members:
            raise RuntimeError("an ensemble has one surrogate per checkpoint: see members")
        ckpt = self._resolve_checkpoint()
        self.checkpoint_dir = ckpt
        if ckpt is not None:
            cfg_path = ckpt / "config.json"
            prior = ckpt / "prior_context.safetensors"
            key = ("ckpt", str(ckpt.resolve()), cfg_path.stat().st_mtime_ns,
                   (ckpt / "model.safetensors").stat().st_mtime_ns,
                   prior.stat().st_mtime_ns if prior.exists() else None, self.space.name)
        else:
            key = ("scratch", self.space.name, self._init_seed)
        entry = _CACHE.get(key)
        if entry is None:
            # building a module draws its initial weights from torch's global generator: keep
            # the caller's stream as it was (the weights are loaded or seeded here anyway)
            with torch.random.fork_rng(devices=[]):
                if ckpt is not None:
                    model = DeepKernelGP.from_pretrained(ckpt, space=self.space.name)
                    context = self._read_context(ckpt)
                    tasks = self._read_training_tasks(ckpt)
                else:
                    torch.manual_seed(self._init_seed)
                    model = DeepKernelGP(DeepKernelConfig.for_space(self.space.name))
                    context, tasks = None, []
            table = None
            if self.space.n_ops ** self.space.n_edges <= 2_000_000:
                table = _arch_table(model, self.space)
            entry = {"state": {k: v.detach().clone() for k, v in model.state_dict().items()},
                     "config": model.config, "table": table, "context": context,
                     "training_tasks": tasks}
            if len(_CACHE) > 16:
                _CACHE.clear()
            _CACHE[key] = entry
        with torch.random.fork_rng(devices=[]):
            model = DeepKernelGP(entry["config"])
        model.load_state_dict(entry["state"])
        if self.trainable != "all" and entry["table"] is not None:
            model.arch_encoder = _table_encoder_cls()(entry["table"], self.space.n_ops,
                                                      self.space.n_edges)
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        self._model = model
        self._current = None
        self._meta_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self._base_noise = None
        self._context = entry["context"]
        self._samples = self._task_samples()
        if self._samples is not None:
            want = model.config.dataset_encoder.feat_dim
            if self._samples.dim() != 3 or self._samples.shape[-1] != want:
                shape = tuple(self._samples.shape)
                if (str(ckpt), shape) not in _SHAPE_WARNED:  # once per process, not per seed
                    _SHAPE_WARNED.add((str(ckpt), shape))
                    logger.warning("tnas: the task's dataset samples %s do not fit the dataset "
                                   "encoder of %s (feat_dim %d: it was not meta-trained on "
                                   "samples of this featuriser); using the learned no-data "
                                   "embedding", shape, ckpt, want)
                self._samples = None
        if ckpt is not None and isinstance(self.task, str):
            from ._leak import read_val_tasks, warn_if_seen

            # trained or validated on the target (an id, short name, live spec or user table
            # the same as one of its tasks); once per process, not once per seed
            warn_if_seen(logger, "tnas", ckpt, self.task, entry["training_tasks"],
                         read_val_tasks(ckpt), md_factory=self._load_meta_dataset,
                         warned=_LEAK_WARNED)

    @staticmethod
    def _read_context(ckpt: Path):
        from ..meta.tnas_train import PRIOR_CONTEXT

        p = ckpt / PRIOR_CONTEXT
        if not p.is_file():
            return None
        from safetensors.torch import load_file

        d = load_file(str(p))
        if d["X"].numel() == 0:
            return None
        return d["X"].to(dtype=d["y"].dtype), d["y"]

    @staticmethod
    def _read_training_tasks(ckpt: Path) -> list[str]:
        from ..meta.tnas_train import STATE_NAME

        try:
            return list(json.loads((ckpt / STATE_NAME).read_text()).get("training_tasks", []))
        except (OSError, ValueError):
            return []

    @property
    def model(self):
        """The surrogate (built on first use)."""
        if self._model is None:
            self._build()
        return self._model

    def _pool_inputs(self):
        import torch

        if self._pool_X is None:
            self._pool_X = torch.tensor(np.array(self.pool_array()), dtype=torch.float64)
        return self._pool_X

    def _reset(self) -> None:
        m = self.model
        m.load_state_dict(self._meta_state)
        self._keep_noise()

    def _keep_noise(self) -> None:
        """Remember the noise of the weights the model holds now (meta or adapted): the
        residual fit re-estimates the noise at every step starting from it."""
        self._base_noise = self.model.likelihood.raw_noise.detach().clone()

    @property
    def members(self) -> list["TNAS"]:
        """An ensemble's single-checkpoint members (empty for one checkpoint)."""
        return list(self._members)

    def prior_ranking(self) -> np.ndarray | None:
        """Pool rows ordered by the prior before any target observation (``_prior_mean``:
        the meta-trained surrogate conditioned on the prior context, or with
        ``prior="tables"`` the training tasks' tables; an ensemble: its members' mean);
        ``None`` without either."""
        if self._prior_order is None:
            mean = self._prior_mean()
            if mean is None:
                return None
            # stable: ties keep pool order
            self._prior_order = np.argsort(-mean, kind="stable")
        return self._prior_order

    def _prior_mean(self) -> np.ndarray | None:
        """The prior over the pool ``[pool]``: with ``prior="tables"`` (and a usable table)
        the tables prior (``_table_prior``, normal scores); otherwise the meta-trained
        surrogate's posterior mean (standardised units) conditioned on the prior context
        only. An ensemble: the mean over its members, each conditioned on its own
        checkpoint's context and standardised by it. ``None`` without a context or table."""
        import torch

        if self._members:
            means = [m._prior_mean() for m in self._members]
            return None if any(v is None for v in means) else np.mean(means, axis=0)
        model = self.model
        if self.prior == "tables":
            full = self._table_prior()
            if full is not None:
                self._space_prior = torch.as_tensor(full)
                return full[np.asarray(self.pool_array(), dtype=np.int64) @ _radix(self.space)]
        if self._context is None:
            return None
        self._reset()
        self._current = None
        Xc, yc = self._context
        saved, model.prior_mean = model.prior_mean, None
        saved_res, model.residual_kernel = model.residual_kernel, None
        n_space = self.space.n_ops ** self.space.n_edges
        with torch.no_grad():
            model.set_task(Xc, yc, self._samples)
            model.eval()
            mean, _ = model._marginals(self._pool_inputs())
            if self.transfer_mean and n_space <= 2_000_000:
                full = torch.cat([model._marginals(ops.to(torch.float64))[0]
                                  for ops in _space_cells(self.space)])
                # normal scores of the prior's ranking: the prediction's shape (often a
                # long lower tail with the good cells bunched up) does not matter
                rank = torch.empty(n_space, dtype=torch.float64)
                rank[torch.argsort(full, stable=True)] = torch.arange(
                    n_space, dtype=torch.float64)
                self._space_prior = torch.special.ndtri((rank + 0.5) / n_space)
        model.prior_mean = saved
        model.residual_kernel = saved_res
        return mean.numpy()

    def _source_scores(self) -> np.ndarray | None:
        """The checkpoint's training tasks in this space whose table measures at least
        ``TABLE_PRIOR_COVERAGE`` of it, as normal scores ``Phi^-1((rank - 0.5) / n)`` of each
        table: ``[S, n_space]`` (NaN where a table has no value); ``None`` (with a warning)
        when there is no such table."""
        from ..benchmarks.tabular import _str_to_arch

        if self._model is None:
            self._build()
        if self._sources is not None:
            return self._sources[0]
        ckpt = self.checkpoint_dir
        # cached per process for the shipped meta-dataset or one named by path; a
        # MetaDataset object is read once per strategy
        md = self.meta_dataset
        from ..meta.tnas_train import STATE_NAME

        state = ckpt / STATE_NAME if ckpt is not None else None
        stamp = state.stat().st_mtime_ns if state is not None and state.is_file() else None
        key = (str(ckpt), stamp, self.space.name, str(md)) if md is None or \
            isinstance(md, (str, Path)) else None
        if key is not None and key in _TABLE_PRIOR_CACHE:
            self._sources = (_TABLE_PRIOR_CACHE[key],)
            return self._sources[0]
        tasks = self._read_training_tasks(ckpt) if ckpt is not None else []
        n_space = self.space.n_ops ** self.space.n_edges
        radix = _radix(self.space)
        rows = []
        if tasks:
            md = self._load_meta_dataset()
            lookup = _str_to_arch(self.space.name)
            for t in tasks:
                try:
                    if md.task(t)["space"] != self.space.name:
                        continue
                    # a cheap bound first: NB201 checkpoints list ~3000 sparse tasks
                    if md.n_triples(t) < TABLE_PRIOR_COVERAGE * n_space:
                        continue
                    s = md.table(t, None, "valid")
                except Exception as exc:  # a task the meta-dataset does not hold
                    logger.debug("tnas: no table for training task %r (%s)", t, exc)
                    continue
                s = s[np.isfinite(s.to_numpy(dtype=np.float64))]  # unmeasured, not ranked
                if len(s) < TABLE_PRIOR_COVERAGE * n_space:
                    continue
                idx = np.array([lookup.get(str(a)) or self.space.from_str(str(a))
                                for a in s.index], dtype=np.int64) @ radix
                v = s.to_numpy(dtype=np.float64)
                z = np.full(n_space, np.nan)  # unmeasured: left out of the mean
                z[idx] = warp_values(v, "copula")  # normal scores of the ranks
                rows.append(z)
        if not rows:
            logger.warning("tnas: prior='tables': no table of %s's training tasks measures "
                           "%d%% or more of the space in the meta-dataset; using the "
                           "surrogate's prior (pass meta_dataset= the one it was trained on)",
                           ckpt, round(100 * TABLE_PRIOR_COVERAGE))
            out = None
        else:
            out = np.stack(rows)
        if key is not None:
            _TABLE_PRIOR_CACHE[key] = out
        self._sources = (out,)
        return out

    def _table_prior(self) -> np.ndarray | None:
        """The tables prior over the space ``[n_space]``: the sources' (``_source_scores``)
        mean normal score at each cell (over the sources that measured it; 0 where none
        did), as the normal scores of its ranking; ``None`` without a source table."""
        Z = self._source_scores()
        if Z is None:
            return None
        ok = np.isfinite(Z)
        mean = np.where(ok, Z, 0.0).sum(axis=0) / np.maximum(ok.sum(axis=0), 1)
        return warp_values(mean, "copula")

    def _set_transfer_mean(self) -> None:
        """Transfer mean: ``m(x) = c + w * p(x)``, ``p`` the prior (``_prior_mean``)
        (standardised over the space), ``(c, w)`` the generalised-least-squares fit to the
        conditioned observations under the current kernel, ``w >= 0`` (a prior the target
        contradicts gets ``w = 0``: the constant mean)."""
        import torch

        from ..surrogates.deep_kernel import TablePriorMean

        model = self.model
        if not self.transfer_mean:
            return
        if self._space_prior is None:
            self.prior_ranking()
        if self._space_prior is None:
            return
        if not isinstance(model.prior_mean, TablePriorMean):
            model.prior_mean = TablePriorMean(self._space_prior, self.space.n_ops,
                                              self.space.n_edges)
        pm = model.prior_mean
        X, y = model.train_inputs[0], model.train_targets
        with torch.no_grad():
            pm.weight.zero_()
            if X.size(0) < 3:
                return
            L = model.train_cholesky(model.features(X))
            H = torch.stack([torch.ones_like(y), pm.lookup(X).to(y)], dim=-1)
            KiH = torch.cholesky_solve(H, L)
            eye = torch.eye(2, dtype=H.dtype, device=H.device)
            beta = torch.linalg.solve(H.T @ KiH + 1e-6 * eye,
                                      KiH.T @ y.unsqueeze(-1)).squeeze(-1)
            w = float(beta[1].clamp_min(0.0))
            pm.weight.fill_(w)
            # the constant for that slope (GLS intercept given w)
            r = y - w * H[:, 1]
            ki1 = KiH[:, 0]
            model.mean_module.constant.fill_(float((ki1 @ r) / ki1.sum()))
            model.prediction_strategy = None

    def _obs(self, limit: int | None = None):
        """The first ``limit`` (default all) finite observations: ``X [m, n_edges]``, ``y [m]``
        (output-warped, ``warp``)."""
        import torch

        y = np.asarray(self.y, dtype=np.float64)
        ok = np.isfinite(y)
        X = np.asarray([a for a, k in zip(self.X, ok) if k], dtype=np.float64)
        X, y = X.reshape(-1, self.space.n_edges)[:limit], y[ok][:limit]
        if len(y):
            y = warp_values(y, self.warp)
        return torch.as_tensor(X), torch.as_tensor(y)

    def _adapt_on(self, X, Y, seed: int) -> dict:
        """Reset to the meta weights and adapt on ``(X, Y)`` with torch seed ``seed``."""
        import torch

        from ..surrogates.deep_kernel import fit

        model = self.model
        self._reset()
        model.set_task(X, Y, self._samples)
        self._set_transfer_mean()
        gen = torch.Generator().manual_seed(seed)
        for p in model.parameters():
            p.requires_grad_(True)
        try:
            res = fit(model, X, Y, self._samples, steps=self.adapt_steps, lr=self.adapt_lr,
                      prox=self.adapt_prox, patience=self.adapt_patience,
                      trainable=self.trainable, guard=self.adapt_guard, generator=gen)
            info = {"guard": res.guard, "best_step": res.best_step}
        except (RuntimeError, ValueError) as exc:  # non-PSD etc.: meta weights, no adapt
            logger.warning("tnas: adaptation failed (%s); using the meta-learned weights", exc)
            self._reset()
            info = {"guard": "failed", "best_step": 0}
        finally:
            for p in model.parameters():
                p.requires_grad_(False)
        self._keep_noise()
        self._current = (int(X.shape[0]), int(seed))
        return info

    def fit_model(self):
        """The surrogate for the next step: the meta weights adapted on the finite
        observations (re-adapted every ``adapt_every`` new ones), conditioned on all."""
        import torch

        if self._members:
            return self._fit_mixture()
        if self.ensemble_weights != "equal" and not self._weights_warned:
            self._weights_warned = True
            logger.warning("tnas: ensemble_weights=%r has no effect with one checkpoint; give "
                           "pretrained a list of two or more", self.ensemble_weights)
        model = self.model
        model.residual_kernel = None  # adaptation and the transfer mean see the deep kernel
        if self._base_noise is not None:  # undo the last residual fit's noise
            with torch.no_grad():
                model.likelihood.raw_noise.copy_(self._base_noise)
        X, Y = self._obs()
        n = int(X.shape[0])
        t0 = time.perf_counter()
        info: dict[str, Any] = {"guard": "none", "best_step": 0, "adapted": False}
        if self.adapt and self.adapt_steps > 0:
            if self._adapt_info is None or n - self._adapt_info[0] >= self.adapt_every \
                    or n < self._adapt_info[0]:
                self._adapt_info = (n, int(self.rng.integers(2**31 - 1)))
                info = {**self._adapt_on(X, Y, self._adapt_info[1]), "adapted": True}
            elif self._current != self._adapt_info:  # e.g. after a resume: redo it exactly
                m, seed = self._adapt_info
                info = {**self._adapt_on(*self._obs(m), seed), "adapted": True}
        elif self._current is not None:
            self._reset()
        model.set_task(X, Y, self._samples)
        self._set_transfer_mean()
        if self.residual:
            from ..surrogates.deep_kernel import fit_residual

            rf = fit_residual(model, min_points=self.residual_from)
            info.update(residual_scale=rf.scale, residual_weights=rf.weights,
                        residual_noise=rf.noise, residual_gain=rf.log_ml - rf.base_log_ml)
        model.eval()
        self._best_f = float(Y.max())
        self.last_step = {"fit_s": time.perf_counter() - t0, "n_obs": n, **info}
        return model

    def _fit_mixture(self):
        """An ensemble's surrogate: every member fitted to the observations
        (``fit_model``: its own adaptation and residual kernel), combined as a
        ``MixtureGP`` with equal or evidence weights (``ensemble_weights``)."""
        from ..surrogates.mixture import MixtureGP, evidence_weights

        t0 = time.perf_counter()
        models, steps = [], []
        for m in self._members:
            m.X, m.y = self.X, self.y  # the observations, read only
            models.append(m.fit_model())
            steps.append(m.last_step)
        w = evidence_weights(models) if self.ensemble_weights == "evidence" else None
        mix = MixtureGP(models, w)
        self._best_f = self._members[0]._best_f
        self.last_step = {"fit_s": time.perf_counter() - t0, "n_obs": steps[0]["n_obs"],
                          "weights": mix.weights.tolist(), "members": steps}
        return mix

    def score(self, model, X: "torch.Tensor", best_f: float) -> np.ndarray:
        """Acquisition value of every row of ``X`` ``[N, d]``."""
        if self.acquisition == THOMPSON:
            return self._thompson(model, X)
        return score_candidates(model, X, self.acquisition, best_f, ucb_beta=self.ucb_beta,
                                chunk_size=self.chunk_size)

    def _thompson(self, model, X: "torch.Tensor") -> np.ndarray:
        """One joint posterior sample ``[N]`` at the rows of ``X`` ``[N, d]`` (``-inf`` for
        candidates pruned as implausible, see ``TS_PRUNE_SD`` / ``TS_POOL``); its torch seed
        is drawn from ``self.rng``, so a resumed run draws the same sample."""
        import torch
        from linear_operator.utils.cholesky import psd_safe_cholesky

        from ..surrogates.gp import quiet_warnings

        seed = int(self.rng.integers(2**31 - 1))
        with torch.no_grad(), quiet_warnings():
            mean, var = model._marginals(X)
            sd = var.sqrt()
            upper = mean + TS_PRUNE_SD * sd
            keep = torch.nonzero(upper >= (mean - TS_PRUNE_SD * sd).max()).squeeze(-1)
            if keep.numel() > TS_POOL:
                keep = keep[torch.topk(upper[keep], TS_POOL).indices]
            m, C = model.joint_posterior(X[keep])
            L = psd_safe_cholesky(C)
            gen = torch.Generator().manual_seed(seed)
            f = m + L @ torch.randn(m.shape[0], generator=gen, dtype=m.dtype)
        out = np.full(X.shape[0], -np.inf)
        out[keep.numpy()] = f.numpy()
        return out

    def _believe(self, model, archs: list[Arch], best_f: float) -> float:
        """Kriging believer: add ``archs`` at their posterior mean (standardisation and
        weights kept)."""
        import torch

        Xb = torch.as_tensor(np.asarray(archs, dtype=np.float64).reshape(-1, self.space.n_edges))
        with torch.no_grad():
            mean, _ = model._marginals(Xb)  # standardised units
            Xtr = torch.cat([model.train_inputs[0], Xb])
            ytr = torch.cat([model.train_targets, mean.to(model.train_targets)])
            model.set_train_data(Xtr, ytr, strict=False)
        return max(best_f, float((mean * model.y_std + model.y_mean).max()))

    # ------------------------------------------------------------------ proposals
    def _initial(self, k: int, exclude: set[Arch]) -> list[Arch]:
        taken = self.seen | exclude
        order = self.prior_ranking() if self.initial_design != "random" else None
        if order is None:
            return self.sample_unseen(k, exclude=exclude)
        pool = self.pool()
        out: list[Arch] = []
        # "top-k-diverse": the archs to keep a distance from (observed, pending, picked)
        near = list(taken) if self.initial_design == "top-k-diverse" else None
        for i in order:
            a = pool[int(i)]
            if a in taken:
                continue
            if near and int((np.asarray(near) != np.asarray(a)).sum(axis=1).min()) \
                    < DIVERSE_MIN_EDGES:
                continue
            out.append(a)
            taken.add(a)
            if near is not None:
                near.append(a)
            if len(out) == k:
                break
        if len(out) < k:
            out += self.sample_unseen(k - len(out), exclude=exclude | set(out))
        return out

    def _n_explore(self, n: int, skip: int = 0) -> int:
        """How many of the ``n`` proposals after the next ``skip`` (evaluations
        ``t .. t + n - 1``, counted from 0) are exploring ones: those with
        ``t >= explore_from`` and ``(t - explore_from) % explore_every == explore_every - 1``."""
        if not self.explore_every:
            return 0
        t = len(self.X) + len(self.pending) + skip
        k, f = self.explore_every, self.explore_from
        return sum(1 for i in range(t, t + n) if i >= f and (i - f) % k == k - 1)

    def explorer_strategy(self) -> Strategy:
        """The prior-free GP-BO behind the exploring proposals; its random generator is
        seeded from ``self.rng`` when first built (never drawn from while exploring is off)."""
        if self._explorer is None:
            from .gp_bo import GPBO

            kw = {"n_init": 2, **self.explorer_kwargs}
            restore = self._explorer_state
            seed = 0 if restore is not None else int(self.rng.integers(2**31 - 1))
            self._explorer = GPBO(self.space, seed=seed, candidates=self.candidates, **kw)
            if restore is not None:  # resumed: its generator and hyper-parameters as saved
                self._explorer.load_state_dict(restore)
        return self._explorer

    def _explore(self, n: int, exclude: list[Arch]) -> list[Arch]:
        """``n`` proposals of the prior-free explorer given this strategy's observations,
        with its pending archs and ``exclude`` as pending."""
        ex = self.explorer_strategy()
        ex.X, ex.y = list(self.X), list(self.y)
        ex.pending = list(self.pending) + list(exclude)
        try:
            return ex.ask(n)
        finally:
            ex.X, ex.y, ex.pending = [], [], []  # state: its rng and hyper-parameters only

    def _propose(self, n: int) -> list[Arch]:
        k = self.initial_quota(n, self.n_init)
        out: list[Arch] = self._initial(k, set()) if k else []
        if len(out) == n:
            return out
        e = self._n_explore(n - len(out), skip=len(out))
        if e:
            if len(out) + e < n:
                out = self._propose_model(n - e, out)
            else:
                self.last_step = {}
            t0 = time.perf_counter()
            out = out + self._explore(e, out)
            self.last_step.update(explored=e, explore_s=time.perf_counter() - t0)
            return out
        return self._propose_model(n, out)

    def _propose_model(self, n: int, out: list[Arch]) -> list[Arch]:
        """Fill ``out`` up to ``n`` archs with the (adapted) surrogate's acquisition."""
        t0 = time.perf_counter()
        try:
            model = self.fit_model()
        except (RuntimeError, ValueError) as exc:
            logger.warning("tnas: no usable surrogate (%s); proposing random archs", exc)
            return out + self.sample_unseen(n - len(out), exclude=set(out))
        t_fit = time.perf_counter()
        best_f = self._best_f
        believed = list(self.pending) + out
        if believed:
            best_f = self._believe(model, believed, best_f)
        X = self._pool_inputs()
        cur = {"best_f": best_f}

        def believe(arch: Arch) -> None:
            cur["best_f"] = self._believe(model, [arch], cur["best_f"])

        out = self.pick_greedy(n, out, lambda rows: self.score(model, X[rows], cur["best_f"]),
                               believe)
        self.last_step.update(score_s=time.perf_counter() - t_fit,
                              step_s=time.perf_counter() - t0)
        return out

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        out = {"init_seed": self._init_seed,
               "adapt_info": list(self._adapt_info) if self._adapt_info else None}
        if self._explorer is not None:
            out["explorer"] = self._explorer.state_dict()
        elif self._explorer_state is not None:  # resumed, not used since: keep it as loaded
            out["explorer"] = self._explorer_state
        if self._members:  # their observations are this strategy's
            out["members"] = [{"rng": m.rng.bit_generator.state, "extra": m._extra_state()}
                              for m in self._members]
        return out

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._explorer, self._explorer_state = None, state.get("explorer")
        saved = state.get("members") or []
        if len(saved) != len(self._members):
            raise ValueError(f"state of an ensemble of {len(saved)} checkpoints cannot be "
                             f"loaded into one of {len(self._members)}; resume with the same "
                             "pretrained list")
        for m, st in zip(self._members, saved):
            m.rng.bit_generator.state = st["rng"]
            m._load_extra_state(st["extra"])
        ai = state.get("adapt_info")
        self._adapt_info = (int(ai[0]), int(ai[1])) if ai else None
        self._current = None if self._model is None else ("stale",)
        if "init_seed" in state and int(state["init_seed"]) != self._init_seed:
            self._init_seed = int(state["init_seed"])
            self._model = None
            self._prior_order = None
