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
    with pytest.raises(UserInputError, match="bad config"):
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
