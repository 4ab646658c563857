"""One-shot strategies (base, base-prior, darts, snas, darts+) on a real (tiny) digits task,
through ``run_search`` and the harness, and their one-line errors."""

import json

import numpy as np
import pytest
import torch

from metanas import spaces, strategies
from metanas.base.bayes import BayesConfig, BayesSuperNet
from metanas.base.meta import BaseCheckpoint, save_base
from metanas.benchmarks import get_benchmark
from metanas.errors import UserInputError
from metanas.harness import HarnessConfig, run_harness
from metanas.search import run_search

TASK = "dataset:digits:classes=0,1,2:max_per_class=20:epochs=1:C=2"
ONESHOT = ["base", "base-prior", "darts", "snas", "darts+"]


@pytest.fixture(scope="module")
def prior_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("prior") / "base-tiny"
    model = BayesSuperNet(BayesConfig(C=2, N=1, num_classes=3))
    with torch.no_grad():  # a prior that strongly prefers nor_conv_3x3 everywhere
        model.arch_param[:, 3] = 1.0
    save_base(model, BaseCheckpoint(net=model.config, training_tasks=["digits:classes=3,4,5"]),
              d)
    return str(d)


def _kw(name, prior_dir):
    kw = {"steps": 6}
    if name in ("base", "base-prior"):
        kw["pretrained"] = prior_dir
    if name in ("darts", "snas", "darts+"):
        kw["config"] = {"C": 2, "batch_size": 16}
    return kw


@pytest.mark.parametrize("name", ONESHOT)
def test_search_then_propose_derived_first_then_unseen_samples(name, prior_dir, tmp_path):
    bench = get_benchmark(TASK, space="nb201")
    st = strategies.make(name, bench.space, seed=0, task=TASK, **_kw(name, prior_dir))
    ck = tmp_path / "run.json"
    run = run_search(st, bench, budget=3, seed=0, checkpoint=ck)
    archs = [bench.space.from_str(h["arch"]) for h in run.history]
    info = st.search_info
    assert info["searched"] and info["wall_s"] > 0
    assert archs[0] == tuple(info["arch"]) and len(set(archs)) == 3
    assert all(0 <= h["value"] <= 100 for h in run.history) and "test" in run.best["report"]
    if name == "base-prior":
        assert archs[0] == (3,) * 6 and info["steps"] == 0
    else:
        assert 0 < info["steps"] <= 6
    # the logits are state: a resumed run does not search again, and continues identically
    state = json.loads(ck.read_text())["strategy"]
    st2 = strategies.make(name, bench.space, seed=0, task=TASK, **_kw(name, prior_dir))
    st2.load_state_dict(state)
    assert st2.logits is not None and st2.search_info == json.loads(json.dumps(info))


def test_base_adaptation_moves_away_from_prior(prior_dir):
    sp = spaces.get("nb201")
    a = strategies.make("base", sp, seed=0, task=TASK, pretrained=prior_dir, steps=20)
    p = strategies.make("base-prior", sp, seed=0, task=TASK, pretrained=prior_dir)
    a.ask(1), p.ask(1)
    assert not np.allclose(a.logits, p.logits)
    # samples from a sharp distribution, without repeats: the nearest unseen cells first
    p.logits = p.logits * 20
    ops = np.array(p.ask(20))
    assert ((ops != 3).sum(axis=1) == 1).all()


def test_harness_runs_oneshot_methods(prior_dir, tmp_path):
    cfg = HarnessConfig(space="nb201", task=TASK, methods=["base", "darts"], seeds=[0],
                        budget=2, method_kwargs={m: _kw(m, prior_dir) for m in
                                                 ("base", "darts")})
    res = run_harness(cfg, tmp_path / "h.json")
    for m in ("base", "darts"):
        run = res["results"][m]["runs"][0]
        assert len(run["history"]) == 2 and "test" in run["best_report"]


def test_without_task_data_proposes_from_the_prior(prior_dir):
    sp = spaces.get("nb201")
    st = strategies.make("base-prior", sp, seed=0, pretrained=prior_dir)
    assert st.ask(1)[0] == (3,) * 6 and st.search_info["searched"] is False
    d = strategies.make("darts", sp, seed=0)  # uniform: random search
    assert len(set(d.ask(5))) == 5


def test_bad_inputs_are_one_line(prior_dir):
    sp = spaces.get("nb201")
    with pytest.raises(UserInputError, match="real images"):
        strategies.make("darts", sp, seed=0, task="nb201/cifar100")
    with pytest.raises(UserInputError, match="no BASE prior is shipped for space"):
        strategies.make("base", spaces.get("transnas_micro"), seed=0, task=TASK)
    with pytest.raises(UserInputError, match="config.tau_min must be <= config.tau"):
        strategies.make("snas", sp, seed=0, config={"tau_min": 5.0})
    with pytest.raises(Exception) as e:
        strategies.make("base", sp, seed=0, task=TASK, pretrained=str(prior_dir) + "-nope")
    assert "\n" not in str(e.value)


def test_cli_base_needs_dataset_and_pretrained_is_kind_aware(prior_dir, tmp_path, capsys):
    from metanas.cli import _pretrained_kwargs, adapt_main

    with pytest.raises(SystemExit) as e:
        adapt_main(["--method", "base", "--budget", "1", "--seeds", "1", "--output",
                    str(tmp_path / "x.json"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "--dataset" in err
    assert _pretrained_kwargs(prior_dir, ["base", "rs"]) == {"base": {"pretrained": prior_dir}}
    with pytest.raises(UserInputError, match="ambiguous"):
        _pretrained_kwargs(prior_dir, ["base", "tnas"])


def test_train_meta_base_bad_input_is_one_line(capsys, tmp_path):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "train_meta", Path(__file__).resolve().parents[2] / "train_meta.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    rc = mod.main(["--method", "base", "--space", "nb201", "--out", str(tmp_path / "o"),
                   "--exclude-task", "x"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "--n-heldout" in err
    rc = mod.main(["--method", "base", "--space", "nb201", "--out", str(tmp_path / "o"),
                   "--tasks", "digits:classes=0,1,2;digits:classes=3,4"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "\n" not in err and "classes" in err


# ---------------------------------------------------------------------- settings (audit fixes)
def test_whole_number_float_sizes_are_used_as_ints():
    """``config={"C": 4.0}`` passed the checks, then crashed mid-search (the float reached the
    supernet and ``sample_batch``): the checked, converted values are the ones used."""
    sp = spaces.get("nb201")
    st = strategies.make("darts", sp, seed=0, task=TASK, steps=2,
                         config={"C": 2.0, "N": 1.0, "batch_size": 16.0, "init_seed": 0.0})
    assert (st.config.C, st.config.N, st.config.batch_size) == (2, 1, 16)
    assert all(type(v) is int for v in (st.config.C, st.config.N, st.config.batch_size,
                                        st.config.init_seed))
    assert len(st.ask(1)) == 1 and st.search_info["searched"]


@pytest.mark.parametrize("method,config,needle", [
    ("darts", {"steps": 4}, "darts: give steps as --set darts.steps=..., not inside config"),
    ("snas", {"derive_samples": 2},
     "snas: give derive_samples as --set snas.derive_samples=..., not inside config"),
    ("darts+", {"exclude_zero": True}, "darts+: give exclude_zero as --set"),
    ("darts", {"tau": 0.5}, "darts: config.tau is not used by darts (only by snas)"),
    ("darts", {"hard": True}, "darts: config.hard is not used by darts (only by snas)"),
    ("darts+", {"tau_min": 0.1}, "darts+: config.tau_min is not used by darts+ (only by snas)"),
    ("snas", {"patience": 5}, "snas: config.patience is not used by snas (only by darts+)"),
    ("darts", {"max_skips": 3}, "darts: config.max_skips is not used by darts (only by darts+)"),
    ("darts", {"foo": 1}, "darts: config has no setting 'foo'"),
])
def test_config_settings_the_method_does_not_use_are_errors(method, config, needle):
    """``steps`` / ``derive_samples`` inside ``config`` were overwritten by the strategy's, and
    another method's setting (DARTS's ``tau``, SNAS's ``patience``) was silently ignored."""
    with pytest.raises(UserInputError) as e:
        strategies.make(method, spaces.get("nb201"), seed=0, config=config)
    assert str(e.value).startswith(needle) and "\n" not in str(e.value)


def test_config_settings_the_method_uses_are_accepted():
    sp = spaces.get("nb201")
    assert strategies.make("snas", sp, seed=0, config={"tau": 2.0, "tau_min": 0.5,
                                                       "hard": 1}).config.hard is True
    assert strategies.make("darts+", sp, seed=0,
                           config={"patience": 2, "max_skips": 3}).config.patience == 2
    assert strategies.make("darts", sp, seed=0, config={"lr": 1e-4, "arch_lr": 1e-3}
                           ).config.lr == 1e-4


@pytest.mark.parametrize("method,steps", [("darts", 1), ("darts", 3), ("darts", 0),
                                          ("darts+", 5), ("darts+", 0), ("darts", 2.5)])
def test_bilevel_steps_must_be_even_and_at_least_two(method, steps):
    """DARTS / DARTS+ spend ``steps // 2`` rounds of two passes: an odd step was silently
    dropped, ``steps=1`` searched nothing but was recorded as searched."""
    with pytest.raises(UserInputError, match=f"^{method.replace('+', '[+]')}: steps must be "
                       r"an even integer >= 2 \(each round is one weight step \+ one "
                       "architecture step\\), got"):
        strategies.make(method, spaces.get("nb201"), seed=0, steps=steps)


@pytest.mark.parametrize("method", ["snas", "base", "base-prior"])
def test_other_methods_need_at_least_one_step(method, prior_dir):
    kw = {"pretrained": prior_dir} if method.startswith("base") else {}
    with pytest.raises(UserInputError, match=f"^{method}: steps must be an integer >= 1, got 0"):
        strategies.make(method, spaces.get("nb201"), seed=0, steps=0, **kw)
    assert strategies.make(method, spaces.get("nb201"), seed=0, steps=1, **kw).steps == 1


def test_default_and_smallest_steps_are_valid():
    sp = spaces.get("nb201")
    for m in ("darts", "darts+", "snas"):
        assert strategies.make(m, sp, seed=0).steps == 100
    assert strategies.make("darts", sp, seed=0, steps=2.0).steps == 2
    st = strategies.make("darts", sp, seed=0, task=TASK, steps=2, config={"C": 2})
    st.ask(1)
    assert st.search_info["steps"] == 2


@pytest.mark.parametrize("method", ["darts", "snas", "darts+"])
def test_exclude_zero_derives_without_none_and_changes_nothing_else(method):
    """Opt-in ``exclude_zero``: the derived cell (and DARTS+'s per-epoch argmax) never holds
    ``none``; the search itself is the same; off (default) is the NB201 convention, plain
    argmax, and leaves run names unchanged (a neutral setting)."""
    from metanas.base.adapt import argmax_arch

    sp = spaces.get("nb201")
    zero = sp.ops.index("none")
    kw = dict(task=TASK, steps=12, config={"C": 2, "batch_size": 16})
    off = strategies.make(method, sp, seed=0, **kw)
    on = strategies.make(method, sp, seed=0, exclude_zero=True, **kw)
    a_off, a_on = off.ask(1)[0], on.ask(1)[0]
    np.testing.assert_array_equal(off.logits, on.logits)
    assert a_off == argmax_arch(off.logits)
    masked = off.logits.copy()
    masked[:, zero] = -np.inf
    assert a_on == argmax_arch(masked) and zero not in a_on
    if method == "darts+":
        assert on.search_info["arch"] == list(a_on)
    assert "exclude_zero" not in strategies.run_settings(method, "nb201", {"exclude_zero": False})
    assert strategies.run_settings(method, "nb201", {"exclude_zero": True})["exclude_zero"]
    with pytest.raises(UserInputError, match=f"^{method.replace('+', '[+]')}: exclude_zero "
                       "must be true or false"):
        strategies.make(method, sp, seed=0, exclude_zero="yes")


def test_base_does_not_take_exclude_zero(prior_dir):
    with pytest.raises(TypeError):
        strategies.make("base", spaces.get("nb201"), seed=0, pretrained=prior_dir,
                        exclude_zero=True)


@pytest.mark.parametrize("method", ["base", "base-prior"])
def test_base_auto_prior_names_the_run_by_the_shipped_folder(method, tmp_path, monkeypatch):
    """``pretrained="auto"`` used to name the run by the word, so re-trained shipped weights
    silently reused old runs: it resolves to the shipped folder, whose weights the harness
    fingerprints (as ``tnas`` does)."""
    from safetensors.torch import save_file

    from metanas.harness import _checkpoint_fingerprints, _kwargs_tag, _run_settings
    from metanas.io import weights_fingerprint
    from metanas.strategies import oneshot

    real = _run_settings(method, "nb201", None)["pretrained"]
    assert real == str(oneshot.shipped_prior("nb201"))
    folder = tmp_path / "base-nb201"
    folder.mkdir()
    monkeypatch.setattr(oneshot, "shipped_prior", lambda space: folder)
    save_file({"w": torch.zeros(3)}, str(folder / "model.safetensors"))
    settings = _run_settings(method, "nb201", None)
    assert settings["pretrained"] == str(folder)
    assert _run_settings(method, "nb201", {"pretrained": "AUTO"})["pretrained"] == str(folder)
    assert _checkpoint_fingerprints(settings) == {"pretrained": weights_fingerprint(folder)}
    first = _kwargs_tag(settings)
    save_file({"w": torch.ones(3)}, str(folder / "model.safetensors"))  # re-trained
    assert _kwargs_tag(_run_settings(method, "nb201", None)) != first
    # other values are kept as given
    assert _run_settings(method, "nb201", {"pretrained": None})["pretrained"] is None
    assert _run_settings(method, "nb201", {"pretrained": "scratch"})["pretrained"] == "scratch"


def test_untrained_prior_first_cell_is_a_random_draw_not_all_none():
    """``base-prior`` with an untrained (uniform) prior: every op ties on every edge, and the
    first cell used to be op 0 everywhere (all ``none``: a constant network) for every seed."""
    from metanas.base.adapt import argmax_arch

    space = spaces.get("nb201")
    firsts = {strategies.make("base-prior", space, seed=s, task=TASK, pretrained="scratch")
              .ask(1)[0] for s in range(4)}
    assert (0,) * space.n_edges not in firsts and len(firsts) > 1
    peaked = np.zeros((space.n_edges, space.n_ops))
    peaked[:, 3] = 1.0  # no ties: the generator is not used and the argmax is unchanged
    assert argmax_arch(peaked, torch.Generator().manual_seed(0)) == (3,) * space.n_edges
