"""``train_meta.py``: per-method defaults of the shared options (a typed value is never replaced
by the other method's default), ``--batch-size`` reaches BASE's ELBO, and BASE's task-count
errors name the options the user typed."""

import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from metanas.base import meta as base_meta
from metanas.base.elbo import ELBOConfig
from metanas.base.meta import BaseMetaConfig
from metanas.meta import tnas_train
from metanas.meta.tnas_train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def train_meta():
    sys.path.insert(0, str(ROOT))
    try:
        import train_meta
    finally:
        sys.path.remove(str(ROOT))
    return train_meta


def _tnas_cfg(train_meta, monkeypatch, tmp_path, extra):
    seen = {}

    def fake_train(cfg, out, **kw):
        seen["cfg"], seen["command"] = cfg, kw.get("command")
        return {"iter": 0, "best_iter": 0, "best_metrics": {}, "wall_s": 0.0}

    monkeypatch.setattr(tnas_train, "train", fake_train)
    rc = train_meta.main(["--space", "nb201", "--out", str(tmp_path / "t"), "--no-progress"]
                         + extra)
    assert rc == 0
    return seen["cfg"], seen["command"]


def _base_cfg(train_meta, monkeypatch, tmp_path, extra):
    seen = {}

    def fake_train(cfg, out, **kw):
        seen["cfg"] = cfg
        return {"iter": 0, "best_iter": 0, "best_val": None, "wall_s": 0.0}

    monkeypatch.setattr(base_meta, "meta_train_base", fake_train)
    rc = train_meta.main(["--space", "nb201", "--method", "base", "--out", str(tmp_path / "b"),
                          "--no-progress"] + extra)
    assert rc == 0
    return seen["cfg"]


def test_tnas_config_with_default_flags_is_unchanged(train_meta, monkeypatch, tmp_path):
    """No flags: exactly ``TrainConfig(space=...)`` (the checkpoint's config / tag are those
    of before); typed values (defaults or not) land unchanged, and the card's command is what
    was typed."""
    cfg, cmd = _tnas_cfg(train_meta, monkeypatch, tmp_path, [])
    assert asdict(cfg) == asdict(TrainConfig(space="nb201"))
    assert cmd.endswith(f"train_meta.py --space nb201 --out {tmp_path / 't'} --no-progress")
    typed = ["--iters", "600", "--inner-steps", "5", "--inner-lr", "0.01", "--outer-lr", "0.5",
             "--outer-lr-final", "0.1", "--batch-size", "100", "--val-every", "50",
             "--patience", "5", "--target-transform", "standardise", "--top-share", "0.0",
             "--top-quantile", "0.05"]
    cfg, cmd = _tnas_cfg(train_meta, monkeypatch, tmp_path, typed)
    assert asdict(cfg) == asdict(TrainConfig(space="nb201"))
    assert " ".join(typed) in cmd
    cfg, _ = _tnas_cfg(train_meta, monkeypatch, tmp_path,
                       ["--iters", "7", "--inner-steps", "2", "--inner-lr", "0.3",
                        "--outer-lr", "0.4", "--outer-lr-final", "0.2", "--batch-size", "9",
                        "--val-every", "3", "--patience", "0", "--target-transform", "copula",
                        "--top-share", "0.5", "--top-quantile", "0.1",
                        "--inner-optimizer", "sgd"])
    assert asdict(cfg) == asdict(TrainConfig(
        space="nb201", iters=7, inner_steps=2, inner_lr=0.3, outer_lr=0.4, outer_lr_final=0.2,
        batch_size=9, val_every=3, patience=0, target_transform="copula", top_share=0.5,
        top_quantile=0.1, inner_optimizer="sgd"))


def test_base_keeps_typed_values_equal_to_tnas_defaults(train_meta, monkeypatch, tmp_path):
    """``--method base --iters 600 ...`` (TNAS's defaults typed): BASE trains with them, not
    with its own defaults; no flags: ``BaseMetaConfig``'s defaults; ``--batch-size`` is the
    ELBO's mini-batch."""
    cfg = _base_cfg(train_meta, monkeypatch, tmp_path, [])
    assert asdict(cfg) == asdict(BaseMetaConfig(space="nb201"))
    cfg = _base_cfg(train_meta, monkeypatch, tmp_path,
                    ["--iters", "600", "--inner-steps", "5", "--inner-lr", "0.01",
                     "--val-every", "50", "--patience", "5", "--batch-size", "100"])
    assert (cfg.iters, cfg.inner_steps, cfg.inner_lr, cfg.val_every, cfg.patience) == \
        (600, 5, 0.01, 50, 5)
    assert cfg.elbo == {"batch_size": 100}


@pytest.mark.parametrize("extra, msg", [
    (["--batch-size", "0"], "batch_size must be an integer >= 1, got 0"),
    (["--target-transform", "standardise"], "--target-transform is an option of --method tnas"),
    (["--top-share", "0"], "--top-share is an option of --method tnas"),
    (["--inner-optimizer", "sgd"], "--inner-optimizer is an option of --method tnas"),
])
def test_base_bad_or_tnas_only_options_are_one_line(train_meta, capsys, tmp_path, extra, msg):
    tiny = ["--iters", "1", "--inner-steps", "1", "--n-tasks", "2", "--n-val", "0",
            "--n-heldout", "0"]  # were the option ignored: a short run, not an error
    rc = train_meta.main(["--space", "nb201", "--method", "base", "--out", str(tmp_path / "b"),
                          "--no-progress"] + tiny + extra)
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in cap.err
    assert msg in err, err
    assert not (tmp_path / "b" / "training_state.json").exists()


@pytest.mark.parametrize("extra, msg", [
    (["--n-tasks", "300"], "--n-tasks 300 + --n-heldout 5 + --n-val 3 = 308 > 252 distinct "
                           "5-class subsets of 10 classes; lower one of them"),
    (["--n-tasks", "2", "--n-val", "0", "--n-heldout", "0", "--tasks-per-iter", "100",
      "--iters", "1", "--inner-steps", "1"],
     "--tasks-per-iter 100 exceeds the 2 training tasks; lower it or add tasks"),
])
def test_base_task_counts_are_one_line(train_meta, capsys, tmp_path, extra, msg):
    rc = train_meta.main(["--space", "nb201", "--method", "base", "--out", str(tmp_path / "b"),
                          "--no-progress"] + extra)
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in cap.err
    assert err == f"train_meta.py: error: {msg}", err
    assert not (tmp_path / "b" / "training_state.json").exists()


def test_help_states_both_methods_defaults(train_meta, capsys):
    with pytest.raises(SystemExit):
        train_meta.main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    t, b = TrainConfig(), BaseMetaConfig()  # the help's numbers are the configs' defaults
    for tn, bn in [(t.iters, b.iters), (t.inner_steps, b.inner_steps),
                   (t.inner_lr, b.inner_lr), (t.val_every, b.val_every),
                   (t.patience, b.patience)]:
        assert f"default tnas {tn:g}, base {bn:g}" in out
    assert f"default {t.outer_lr:g} for both" in out and t.outer_lr == b.outer_lr
    assert f"default {t.outer_lr_final:g} for both" in out and \
        t.outer_lr_final == b.outer_lr_final
    assert f"(default {t.batch_size})" in out and f"(default {ELBOConfig().batch_size})" in out
