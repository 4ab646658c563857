"""One-shot strategies on the supernet of ``metanas.base``: BASE (meta-learned Bayesian prior +
quick adaptation), BASE's prior without adaptation, DARTS (first order), SNAS / GDAS and DARTS+.

Each is an ask/tell ``Strategy``. On the first ``ask`` it runs its supernet search on the
task's real images, once, and from then on proposes from the learned architecture
distribution ``Cat(softmax(logits))`` per edge:

1. the first proposal is the derived architecture (most probable op per edge; with
   ``candidates``, the most probable allowed one);
2. later proposals are samples from the learned distribution restricted to allowed, unseen
   architectures (exact: Gumbel-top-k over the log-probabilities of the free pool rows, noise
   from ``self.rng``).

The task's data: ``task="dataset:<task id>[:<TrainConfig option>...]"`` (what the harness passes
for a live task: the options are ignored, the search uses the task's train / valid splits)
or ``data=`` a ``metanas.train.TaskData``. Without either (``task=None``, e.g. a synthetic
evaluator) there is nothing to search on: the strategy samples from its prior (BASE's
meta-learned prior when one exists for the space, else uniform: random search) and records
``searched=False``; a task that is not a ``dataset:`` task is a one-line ``UserInputError``.

Compute: ``steps`` supernet forward + backward passes (default 100 for every method: equal
compute; see ``metanas.base.oneshot``): at least 1, and for DARTS / DARTS+ an even number >= 2
(one weight step + one architecture step per round). The search wall time is ``self.search_info["wall_s"]``
(also in ``state_dict``); the architecture logits are part of the state, so a resumed run
never searches again.

``base`` / ``base-prior``: ``pretrained="auto"`` (the shipped prior of the space,
``pretrained/base-<space>``), a folder or Hub id, or ``None`` / ``"scratch"`` (an untrained
``BayesSuperNet``: the ablation without meta-learning). For a space without a shipped prior
and real data, ``"auto"`` is a one-line error saying how to meta-train one. A run is named by
the resolved folder (``resolve_setting``), so the harness fingerprints the prior's weights.

``darts`` / ``snas`` / ``darts+``: ``config`` holds the ``metanas.base.oneshot.OneShotConfig``
settings the method uses (``USED_SETTINGS``; another method's setting, e.g. ``tau`` for DARTS,
is a one-line error, not ignored); ``steps``, ``derive_samples`` and ``exclude_zero`` are
settings of the strategy (``--set darts.steps=...``), not of ``config``. ``exclude_zero=True``
derives the cell without the zero op ``none`` (the DARTS paper's convention; default False:
NAS-Bench-201's, ``none`` included; see ``metanas.base.oneshot``).
"""

from __future__ import annotations

import logging
from dataclasses import fields
from typing import Any, Sequence

import numpy as np

from ..errors import UserInputError
from ..spaces import Arch, CellSpace
from ._checks import flag, integer
from .base import Strategy, register

logger = logging.getLogger(__name__)

#: folder -> (state_dict, BaseCheckpoint), shared by every run of a process
_PRIOR_CACHE: dict[str, tuple] = {}


def task_data(task: str | None, data=None):
    """The ``TaskData`` of a harness task id ``dataset:<spec>[:options]`` (``None`` without a
    task); ``data`` (a ``TaskData``) is returned as is."""
    if data is not None:
        return data
    if task is None:
        return None
    from ..benchmarks.live import PREFIX
    from ..train import TaskSpec, TrainConfig, build_task

    text = str(task)
    if not text.startswith(PREFIX):
        raise UserInputError(f"one-shot methods (base, base-prior, darts, snas, darts+) search a "
                             f"supernet on real images: give a live task (adapt.py --dataset "
                             f"..., harness task 'dataset:<id>'), not {text!r}")
    spec, _ = TaskSpec.parse_with_extras(text[len(PREFIX):],
                                         allowed_extra=[f.name for f in fields(TrainConfig)])
    return build_task(spec)


def shipped_prior(space: str):
    """``<repo>/pretrained/base-<space>``."""
    from pathlib import Path

    import metanas

    return Path(metanas.__file__).resolve().parents[1] / "pretrained" / f"base-{space}"


def load_prior(pretrained, space: CellSpace, need: bool):
    """``(BayesSuperNet, BaseCheckpoint | None)`` for ``pretrained`` (see module doc), or
    ``None`` when ``"auto"`` finds no shipped prior and ``need`` is false."""
    from ..base.bayes import BayesConfig, BayesSuperNet
    from ..base.meta import load_base

    if pretrained is None or str(pretrained).lower() == "scratch":
        return BayesSuperNet(BayesConfig(space=space.name)), None
    if str(pretrained).lower() == "auto":
        folder = shipped_prior(space.name)
        if not (folder / "config.json").is_file():
            if need:
                raise UserInputError(
                    f"no BASE prior is shipped for space {space.name!r} (only nb201): "
                    f"meta-train one with `python train_meta.py --method base --space "
                    f"{space.name} --out DIR` and pass --pretrained DIR")
            return None
    else:
        from ..hub import resolve_pretrained

        folder = resolve_pretrained(str(pretrained), kind="base")
    key = str(folder)
    if key not in _PRIOR_CACHE:
        from ..hub import check_config
        from ..meta.checkpoint import CheckpointError

        try:
            check_config(folder, kind="base", space=space.name)
            model, ckpt = load_base(folder, space=space.name)
        except CheckpointError as exc:
            raise UserInputError(str(exc)) from None
        _PRIOR_CACHE[key] = ({k: v.clone() for k, v in model.state_dict().items()}, ckpt)
    sd, ckpt = _PRIOR_CACHE[key]
    model = BayesSuperNet(ckpt.net)
    model.load_state_dict(sd)
    return model, ckpt


class OneShotStrategy(Strategy):
    """Shared logic (module doc). Subclasses implement ``_search(data, gen) -> (logits [E, K]
    numpy, info dict)`` and ``_prior_logits()`` (the no-data fallback)."""

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, task: str | None = None,
                 data=None, steps: int = 100, derive_samples: int = 0) -> None:
        super().__init__(space, seed, candidates)
        from ..base.supernet import supported_space

        try:
            supported_space(space)
        except ValueError as exc:
            raise UserInputError(str(exc)) from None
        self.task, self._data = task, data
        self.steps = self._check_steps(steps)
        self.derive_samples = integer("derive_samples", derive_samples, 0, self.name)
        if data is None and task is not None:
            task_data(task)  # validate the task id now (one line), data cached per process
        self.logits: np.ndarray | None = None
        #: ``{"searched", "wall_s", "steps", "arch", "reason"}`` of the search
        self.search_info: dict[str, Any] = {}

    # ------------------------------------------------------------------ search
    def _ensure_search(self) -> None:
        if self.logits is not None:
            return
        import time

        import torch

        data = task_data(self.task, self._data)
        if data is None:
            self.logits = np.asarray(self._prior_logits(), dtype=np.float64)
            self.search_info = {"searched": False, "wall_s": 0.0, "steps": 0,
                                "arch": list(self._first_arch()), "reason": "no task data"}
            logger.info("%s: no task data, proposing from the prior", self.name)
            return
        gen = torch.Generator().manual_seed(int(self.rng.integers(2**31 - 1)))
        t0 = time.perf_counter()
        logits, info = self._search(data, gen)
        self.logits = np.asarray(logits, dtype=np.float64)
        self.search_info = {"searched": True, "wall_s": time.perf_counter() - t0, **info}

    def _check_steps(self, steps) -> int:
        return integer("steps", steps, 1, self.name)

    def _search(self, data, gen) -> tuple[np.ndarray, dict]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _prior_logits(self) -> np.ndarray:
        return np.zeros((self.space.n_edges, self.space.n_ops))

    # ------------------------------------------------------------------ proposals
    def _log_probs(self, rows: np.ndarray) -> np.ndarray:
        lg = self.logits - self.logits.max(axis=1, keepdims=True)
        logp = lg - np.log(np.exp(lg).sum(axis=1, keepdims=True))
        arr = self.pool_array()[rows]
        return logp[np.arange(self.space.n_edges)[None, :], arr].sum(axis=1)

    def _first_arch(self) -> Arch:
        arr = self.pool_array()
        lp = self._log_probs(np.arange(len(arr)))
        top = np.flatnonzero(lp >= lp.max() - 1e-12)
        return self.pool()[int(top[int(self.rng.integers(top.size))]) if top.size > 1
                           else int(top[0])]

    def _propose(self, n: int) -> list[Arch]:
        self._ensure_search()
        out: list[Arch] = []
        derived = tuple(self.search_info.get("arch") or ())
        if derived and derived not in self.seen and self.allowed(derived):
            out.append(derived)
        free = np.ones(len(self.pool()), dtype=bool)
        for a in self.seen | set(out):
            i = self.pool_index(a)
            if i is not None:
                free[i] = False
        rows = np.flatnonzero(free)
        if not out and not self.X and not self.pending and rows.size:
            # the derived cell is not allowed (candidates): the most probable allowed one
            best = rows[int(np.argmax(self._log_probs(rows)))]
            out.append(self.pool()[int(best)])
            free[best] = False
            rows = np.flatnonzero(free)
        k = min(n - len(out), rows.size)
        if k > 0:
            score = self._log_probs(rows) + self.rng.gumbel(size=rows.size)
            pick = rows[np.argsort(-score, kind="stable")[:k]]
            out += [self.pool()[int(i)] for i in pick]
        if len(out) < n:  # every allowed arch taken: repeats
            out += self.sample_unseen(n - len(out), exclude=set(out))
        return out

    # ------------------------------------------------------------------ state
    def _extra_state(self) -> dict[str, Any]:
        return {"logits": None if self.logits is None else self.logits.tolist(),
                "search": self.search_info}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        lg = state.get("logits")
        self.logits = None if lg is None else np.asarray(lg, dtype=np.float64)
        self.search_info = dict(state.get("search") or {})


# ---------------------------------------------------------------------- BASE
class _BaseFamily(OneShotStrategy):
    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, task: str | None = None,
                 data=None, pretrained: str | None = "auto", steps: int = 100,
                 derive_samples: int = 0) -> None:
        super().__init__(space, seed, candidates, task=task, data=data, steps=steps,
                         derive_samples=derive_samples)
        self.pretrained = pretrained
        has_data = data is not None or task is not None
        self._prior = load_prior(pretrained, space, need=has_data)
        ckpt = self._prior[1] if self._prior is not None else None
        if ckpt is not None and isinstance(task, str):
            from ._leak import warn_if_seen

            folder = (shipped_prior(space.name) if str(pretrained).lower() == "auto"
                      else pretrained)
            # its meta-training tasks are TaskSpec ids (``digits:classes=...``): compared
            # with the target's normalised TaskSpec
            warn_if_seen(logger, self.name, folder, task, ckpt.training_tasks,
                         ckpt.val_tasks)

    @classmethod
    def resolve_setting(cls, key: str, value: Any, space: str) -> Any:
        """``pretrained="auto"`` identifies a run by the shipped prior's folder (whose weights
        the harness fingerprints), not by the word."""
        if key == "pretrained" and isinstance(value, str) and value.lower() == "auto":
            return str(shipped_prior(space))
        return value

    def _prior_logits(self) -> np.ndarray:
        if self._prior is None:
            return np.zeros((self.space.n_edges, self.space.n_ops))
        return self._prior[0].logits.detach().double().numpy()


@register("base")
class BASE(_BaseFamily):
    """BASE: quick adaptation (``steps`` ELBO steps, meta-training's inner optimiser) of the
    meta-learned prior to the task, then proposals from the posterior (module doc)."""

    def _search(self, data, gen):
        from ..base.adapt import AdaptConfig, adapt

        model, ckpt = self._prior
        cfg = (ckpt.adapt_config(self.steps, self.derive_samples) if ckpt is not None
               else AdaptConfig(steps=self.steps, derive_samples=self.derive_samples))
        res = adapt(model, data, cfg, gen)
        return res.logits.double().numpy(), {"steps": res.steps, "arch": list(res.arch),
                                             "reason": "budget"}


@register("base-prior")
class BASEPrior(_BaseFamily):
    """BASE's meta-learned prior without adaptation: the prior's most probable cell, then
    samples from the prior (``steps`` is ignored; no data is used)."""

    def _search(self, data, gen):
        from ..base.adapt import argmax_arch

        logits = self._prior_logits()
        return logits, {"steps": 0, "arch": list(argmax_arch(logits, gen)), "reason": "prior"}


# ---------------------------------------------------------------------- DARTS family
#: settings of the DARTS-family strategies themselves, not of their ``config``
_OWN_SETTINGS = ("steps", "derive_samples", "exclude_zero")


class _OneShotSearch(OneShotStrategy):
    method = "darts"
    #: ``exclude_zero`` came after recorded runs: off, it leaves their names unchanged
    NEUTRAL_SETTINGS = {"exclude_zero": False}

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, task: str | None = None,
                 data=None, steps: int = 100, derive_samples: int = 0,
                 exclude_zero: bool = False, config: dict | None = None) -> None:
        super().__init__(space, seed, candidates, task=task, data=data, steps=steps,
                         derive_samples=derive_samples)
        from ..base.oneshot import OneShotConfig, check_settings, check_used

        if config is not None and not isinstance(config, dict):
            raise UserInputError(f"{self.name}: config must be a dict of OneShotConfig "
                                 f"settings or null (None), got {config!r}")
        config = dict(config or {})
        for key in _OWN_SETTINGS:
            if key in config:
                raise UserInputError(f"{self.name}: give {key} as --set {self.name}.{key}=..., "
                                     f"not inside config")
        known = [f.name for f in fields(OneShotConfig) if f.name not in _OWN_SETTINGS]
        for key in config:
            if key not in known:
                raise UserInputError(f"{self.name}: config has no setting {key!r}; choose from "
                                     f"{', '.join(known)}")
        check_used(self.method, config, self.name, "config.")
        self.exclude_zero = flag("exclude_zero", exclude_zero, self.name)
        self.config = OneShotConfig(**check_settings(config, self.name, "config."),
                                    steps=self.steps, derive_samples=self.derive_samples,
                                    exclude_zero=self.exclude_zero)

    def _check_steps(self, steps) -> int:
        from ..base.oneshot import check_steps

        return check_steps(self.method, steps, self.name)

    def _search(self, data, gen):
        from ..base.oneshot import search

        res = search(self.method, self.space, data, self.config, gen)
        return res.logits.double().numpy(), {"steps": res.steps, "arch": list(res.arch),
                                             "reason": res.reason}


@register("darts")
class DARTS(_OneShotSearch):
    """DARTS, first-order bilevel search (``metanas.base.oneshot``)."""

    method = "darts"


@register("snas")
class SNAS(_OneShotSearch):
    """SNAS: single-level Gumbel-softmax search without a prior (``config={"hard": True}``:
    GDAS-style)."""

    method = "snas"


@register("darts+")
class DARTSPlus(_OneShotSearch):
    """DARTS with DARTS+'s early stopping (>= 2 skip-connects, or a stable argmax)."""

    method = "darts+"


__all__ = ["OneShotStrategy", "BASE", "BASEPrior", "DARTS", "SNAS", "DARTSPlus", "task_data",
           "load_prior", "shipped_prior"]
