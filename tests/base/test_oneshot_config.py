"""``OneShotConfig`` and the one-shot search functions check their settings (a one-line
``ValueError`` naming the field) instead of failing inside torch later, and derive the cell
by the NB201 convention unless ``exclude_zero``."""

import math

import pytest
import torch

from metanas import spaces
from metanas.base.oneshot import (METHODS, USED_SETTINGS, OneShotConfig, darts_plus_search,
                                  darts_search, derive_logits, snas_search)


@pytest.mark.parametrize("field,value,rule", [
    ("batch_size", 0, "an integer >= 1"),
    ("batch_size", 2.5, "an integer >= 1"),
    ("C", 0, "an integer >= 1"),
    ("N", 1.5, "an integer >= 1"),
    ("init_seed", -1, "an integer >= 0"),
    ("lr", -1.0, "a finite number > 0"),
    ("lr", 0, "a finite number > 0"),
    ("arch_lr", math.nan, "a finite number > 0"),
    ("arch_lr", math.inf, "a finite number > 0"),
    ("tau", 0, "a finite number > 0"),
    ("patience", 0, "an integer >= 1"),
    ("max_skips", 0, "an integer >= 1"),
    ("steps", -1, "an integer >= 0"),
    ("derive_samples", -1, "an integer >= 0"),
    ("hard", "yes", "true or false"),
    ("exclude_zero", "no", "true or false"),
])
def test_bad_field_is_a_one_line_error_naming_it(field, value, rule):
    with pytest.raises(ValueError) as e:
        OneShotConfig(**{field: value})
    msg = str(e.value)
    assert msg.startswith(f"OneShotConfig: {field} must be {rule}, got") and "\n" not in msg


def test_tau_order_is_checked():
    with pytest.raises(ValueError, match="^OneShotConfig: tau_min must be <= tau"):
        OneShotConfig(tau=0.5, tau_min=0.6)


def test_values_are_stored_converted():
    cfg = OneShotConfig(steps=4.0, batch_size=32.0, C=4.0, N=1.0, init_seed=1.0, lr=1, hard=1)
    assert (cfg.steps, cfg.batch_size, cfg.C, cfg.N, cfg.init_seed) == (4, 32, 4, 1, 1)
    assert type(cfg.C) is int and type(cfg.lr) is float and cfg.hard is True
    assert OneShotConfig() == OneShotConfig(**{k: getattr(OneShotConfig(), k)
                                               for k in OneShotConfig.__dataclass_fields__})


def test_used_settings_cover_every_field():
    fields = set(OneShotConfig.__dataclass_fields__)
    assert set(USED_SETTINGS) == set(METHODS)
    assert set().union(*USED_SETTINGS.values()) == fields
    assert {"tau", "tau_min", "hard"} <= USED_SETTINGS["snas"] - USED_SETTINGS["darts"]
    assert {"patience", "max_skips"} <= USED_SETTINGS["darts+"] - USED_SETTINGS["snas"]


@pytest.mark.parametrize("fn,cfg,needle", [
    (darts_search, OneShotConfig(steps=1), "steps must be an even integer >= 2"),
    (darts_search, OneShotConfig(steps=5), "steps must be an even integer >= 2"),
    (darts_plus_search, OneShotConfig(steps=0), "steps must be an even integer >= 2"),
    (snas_search, OneShotConfig(steps=0), "steps must be an integer >= 1"),
    (darts_search, OneShotConfig(tau=2.0), "tau is not used by darts (only by snas)"),
    (darts_search, OneShotConfig(patience=5), "patience is not used by darts (only by darts+)"),
    (snas_search, OneShotConfig(max_skips=5), "max_skips is not used by snas"),
    (darts_plus_search, OneShotConfig(hard=True), "hard is not used by darts+"),
])
def test_search_functions_reject_what_they_would_not_do(fn, cfg, needle):
    with pytest.raises(ValueError) as e:
        fn(spaces.get("nb201"), None, cfg)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_derive_logits_masks_only_none_and_only_when_asked():
    sp = spaces.get("nb201")
    lg = torch.randn(sp.n_edges, sp.n_ops, generator=torch.Generator().manual_seed(0))
    lg[:, sp.ops.index("none")] = 10.0
    assert derive_logits(lg, sp, False) is lg
    m = derive_logits(lg, sp, True)
    zero = sp.ops.index("none")
    assert torch.isinf(m[:, zero]).all() and (m[:, zero] < 0).all()
    keep = [i for i in range(sp.n_ops) if i != zero]
    assert torch.equal(m[:, keep], lg[:, keep]) and lg[0, zero] == 10.0
