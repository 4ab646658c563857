"""The ``tnas`` strategy: meta-learned deep-kernel GP BO (``metanas.strategies.tnas``)."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from metanas import spaces, strategies
from metanas.meta.tnas_train import TrainConfig, train
from metanas.meta_dataset import MetaDataset
from metanas.search import run_search
from metanas.strategies.tnas import shipped_checkpoint
from strategy_toys import LinearToy, toy_meta_dataset

SPACE = spaces.get("transnas_micro")
FEAT = 8
FAST = dict(n_init=4, adapt_steps=3, adapt_patience=2)


def _tiny_checkpoint(out, seed: int = 0) -> str:
    """A checkpoint meta-trained for 3 iterations (meta-training seed ``seed``) on 3
    synthetic tasks (with samples)."""
    md = toy_meta_dataset(SPACE.name, feat=FEAT)
    cfg = TrainConfig(space=SPACE.name, iters=3, inner_steps=2, batch_size=20, val_every=3,
                      val_k=8, val_m=10, val_draws=1, context_top=4, context_random=20,
                      model={"mlp_hidden": [16], "feat_dim": 4}, seed=seed)
    train(cfg, out, progress=False, md=md)
    return str(out)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("tnas_ckpt"))


@pytest.fixture(scope="module")
def tiny_ckpt2(tmp_path_factory):
    """``tiny_ckpt``'s recipe with another meta-training seed."""
    return _tiny_checkpoint(tmp_path_factory.mktemp("tnas_ckpt2"), seed=1)


def make(seed=0, **kw):
    return strategies.make("tnas", SPACE, seed=seed, **{**FAST, **kw})


def archs_of(run):
    return [h["arch"] for h in run.history]


def test_shipped_checkpoint_location():
    import metanas

    assert shipped_checkpoint("nb201") == \
        Path(metanas.__file__).resolve().parents[1] / "pretrained" / "tnas-nb201"


def test_end_to_end_on_tiny_table_adapts(tiny_ckpt):
    ev = LinearToy()
    cands = [SPACE.from_index(int(i)) for i in np.random.default_rng(1).choice(SPACE.size, 40,
                                                                            replace=False)]
    st = make(pretrained=tiny_ckpt, candidates=cands)
    run = run_search(st, ev, budget=12, seed=0)
    archs = [SPACE.from_str(a) for a in archs_of(run)]
    assert len(set(archs)) == 12 and set(archs) <= set(cands)
    assert st.last_step["adapted"] and st.last_step["guard"] in ("holdout", "loo")
    assert st.checkpoint_dir == Path(tiny_ckpt)


def test_reproducible_per_seed(tiny_ckpt):
    a = archs_of(run_search(make(0, pretrained=tiny_ckpt), LinearToy(), budget=10, seed=0))
    b = archs_of(run_search(make(0, pretrained=tiny_ckpt), LinearToy(), budget=10, seed=0))
    c = archs_of(run_search(make(1, pretrained=tiny_ckpt, initial_design="random"), LinearToy(),
                            budget=10, seed=1))
    assert a == b and a != c


@pytest.mark.parametrize("every,residual,warp,acq", [
    (1, False, "none", "ucb"), (3, False, "none", "ucb"), (3, True, "none", "ucb"),
    (3, True, "copula", "ucb"), (1, True, "none", "ts"), (1, True, "none", "explore")])
def test_resume_identical(tiny_ckpt, tmp_path, every, residual, warp, acq):
    kw = dict(pretrained=tiny_ckpt, adapt_every=every, residual=residual, residual_from=6,
              warp=warp, acquisition=acq)
    if acq == "explore":  # exploring proposals (GP-BO, its own generator) before and after
        kw.update(acquisition="ucb", explore_every=2, explore_from=5)
    full = archs_of(run_search(make(0, **kw), LinearToy(), budget=12, seed=0))
    ck = tmp_path / "ck.json"
    run_search(make(0, **kw), LinearToy(), budget=8, seed=0, checkpoint=ck)
    json.loads(ck.read_text())
    resumed = run_search(make(0, **kw), LinearToy(), budget=12, seed=0, checkpoint=ck)
    assert archs_of(resumed) == full


def test_explorer_state_survives_two_resumes(tiny_ckpt, tmp_path):
    """Resumed twice, the second time before the explorer was used again: the archs, the
    strategy's generator and its extra state (explorer included) are the uninterrupted run's."""
    kw = dict(pretrained=tiny_ckpt, explore_every=3, explore_from=6)
    full_st = make(0, **kw)
    full = archs_of(run_search(full_st, LinearToy(), budget=16, seed=0))
    ck = tmp_path / "ck.json"
    for budget in (10, 11):
        run_search(make(0, **kw), LinearToy(), budget=budget, seed=0, checkpoint=ck)
    st = make(0, **kw)
    resumed = run_search(st, LinearToy(), budget=16, seed=0, checkpoint=ck)
    assert archs_of(resumed) == full
    assert st.rng.bit_generator.state == full_st.rng.bit_generator.state
    a, b = st._extra_state(), full_st._extra_state()
    assert a.keys() == b.keys() and "explorer" in a
    assert json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True,
                                                                    default=str)


def test_exploring_proposals_come_from_prior_free_gp_bo(tiny_ckpt, monkeypatch):
    """``explore_every=k``: from ``explore_from`` on every k-th proposal is GP-BO's, on the
    same observations (pending ones included); the others are the surrogate's. Off (``0``,
    the default) changes nothing, and its run settings are the ones recorded before the
    option existed."""
    from metanas.strategies.gp_bo import GPBO

    calls = []
    real = GPBO._propose

    def spy(self, n):
        calls.append((len(self.X), len(self.pending), n))
        return real(self, n)

    monkeypatch.setattr(GPBO, "_propose", spy)
    st = make(pretrained=tiny_ckpt, explore_every=3, explore_from=6)
    run = run_search(st, LinearToy(), budget=16, seed=0)
    # evaluations 0..15; exploring ones: 8, 11, 14 (t >= 6, (t - 6) % 3 == 2)
    assert [c[0] for c in calls] == [8, 11, 14] and all(c[2] == 1 for c in calls)
    assert len(set(archs_of(run))) == 16
    # batch: of evaluations 8..11, two are exploring (8 and 11), asked with the others pending
    st = make(pretrained=tiny_ckpt, explore_every=3, explore_from=6)
    run_search(st, LinearToy(), budget=8, seed=0)
    calls.clear()
    batch = st.ask(4)
    assert len(set(batch)) == 4 and calls == [(8, 2, 2)]
    # a batch that starts in the initial design counts its evaluations from there:
    # n_init=4, 2 observed, ask(4) = evaluations 2..5, 2 and 3 initial, 4 exploring
    st = make(pretrained=tiny_ckpt, n_init=4, explore_every=3, explore_from=2)
    run_search(st, LinearToy(), budget=2, seed=0)
    calls.clear()
    assert len(set(st.ask(4))) == 4 and calls == [(2, 3, 1)]
    off = archs_of(run_search(make(pretrained=tiny_ckpt), LinearToy(), budget=12, seed=0))
    assert off == archs_of(run_search(make(pretrained=tiny_ckpt, explore_every=0),
                                      LinearToy(), budget=12, seed=0))
    assert "explore_every" not in strategies.run_settings("tnas", SPACE.name)
    assert strategies.run_settings("tnas", SPACE.name, {"explore_every": 4})["explore_every"] == 4
    with pytest.raises(ValueError, match="explore_every"):
        make(explore_every=-1)


def test_residual_kernel_fitted_from_residual_from(tiny_ckpt):
    """``residual=True``: no residual below ``residual_from`` observations, fitted (and
    reported) from there on; the adaptation and the prior ranking never see it."""
    st = make(0, pretrained=tiny_ckpt, residual=True, residual_from=8)
    ev = LinearToy()
    run_search(st, ev, budget=7, seed=0)
    st.fit_model()
    assert st.last_step["residual_scale"] == 0.0
    run_search(st, ev, budget=7, seed=0)  # 7 more
    st.fit_model()
    assert st.last_step["n_obs"] == 14 and "residual_gain" in st.last_step
    assert st.last_step["residual_gain"] >= 0.0
    scale = st.last_step["residual_scale"]
    assert scale == float(st.model.residual_kernel.scale)
    plain = make(0, pretrained=tiny_ckpt)
    assert np.array_equal(plain.prior_ranking(), st.prior_ranking())


def test_thompson_sampling(tiny_ckpt):
    """``acquisition="ts"``: the joint posterior's diagonal is the exact marginals; a step
    scores every plausible candidate with one joint sample (the rest ``-inf``), drawn from
    ``self.rng`` (same seed, same pick; other seeds spread over several cells)."""
    import torch

    from metanas.strategies import tnas

    archs = [SPACE.from_index(i) for i in range(0, 60, 6)]
    vals = [float(i % 7) for i in range(len(archs))]

    def fitted(seed):
        st = make(seed, pretrained=tiny_ckpt, acquisition="ts")
        st.tell(archs, vals)
        return st, st.fit_model()

    st, model = fitted(0)
    X = st._pool_inputs()[:200]
    with torch.no_grad():
        mean, var = model._marginals(X)
        jm, cov = model.joint_posterior(X)
    assert torch.allclose(jm, mean, atol=1e-8)
    assert torch.allclose(torch.diagonal(cov), var, atol=1e-8)
    scores = st._thompson(model, X)
    plausible = (mean + tnas.TS_PRUNE_SD * var.sqrt()
                 >= (mean - tnas.TS_PRUNE_SD * var.sqrt()).max()).numpy()
    assert np.isfinite(scores).sum() == min(plausible.sum(), tnas.TS_POOL)
    assert np.all(np.isneginf(scores[~plausible]))
    state = st.rng.bit_generator.state
    picks = [int(np.argmax(st._thompson(model, X))) for _ in range(20)]
    st.rng.bit_generator.state = state
    assert int(np.argmax(st._thompson(model, X))) == picks[0]
    assert len(set(picks)) > 1
    with pytest.raises(KeyError, match="unknown acquisition"):
        make(0, pretrained=tiny_ckpt, acquisition="thompson")


def test_copula_warp_of_the_observations(tiny_ckpt):
    """``warp="copula"``: the model sees the normal scores of the observations' ranks (a
    heavy lower tail of failed cells does not squash the top); ``"none"`` the raw values;
    the first ``limit`` observations are warped among themselves (exact resume)."""
    from scipy.special import ndtri

    vals = [1.0, 50.0, 52.0, 90.0, float("nan"), 91.0]
    archs = [SPACE.from_index(i) for i in range(len(vals))]
    st = make(0, pretrained=tiny_ckpt, warp="copula")
    st.tell(archs, vals)
    X, y = st._obs()
    ranks = np.array([1, 2, 3, 4, 5])
    assert X.shape == (5, SPACE.n_edges)
    assert np.allclose(y.numpy(), ndtri((ranks - 0.5) / 5))
    _, y3 = st._obs(3)
    assert np.allclose(y3.numpy(), ndtri((np.array([1, 2, 3]) - 0.5) / 3))
    raw = make(0, pretrained=tiny_ckpt, warp="none")
    raw.tell(archs, vals)
    assert np.allclose(raw._obs()[1].numpy(), [1.0, 50.0, 52.0, 90.0, 91.0])
    st.fit_model()  # conditioned on the warped values (standardised internally)
    assert float(st.model.y_mean) == pytest.approx(float(y.mean()))
    assert float(st.model.y_std) == pytest.approx(float(y.std()))
    with pytest.raises(ValueError, match="warp must be one of"):
        make(0, pretrained=tiny_ckpt, warp="log")


def test_batch_ask_distinct(tiny_ckpt):
    ev = LinearToy()
    st = make(2, pretrained=tiny_ckpt)
    run_search(st, ev, budget=6, seed=2)
    b1 = st.ask(4)
    b2 = st.ask(3)  # b1 pending: Kriging believer
    assert len(set(b1)) == 4 and len(set(b2)) == 3
    assert not (set(b1) | set(b2)) & set(st.X) and not set(b1) & set(b2)


def test_top_k_initial_design_uses_surrogate_ranking(tiny_ckpt):
    st = make(0, pretrained=tiny_ckpt)
    first = st.ask(4)
    model = st.model
    ctx_X, ctx_y = st._context
    model.load_state_dict(st._meta_state)
    model.set_task(ctx_X, ctx_y, st._samples)
    mean, _ = model.predict(torch.tensor(np.array(SPACE.all_array())))
    top = [st.pool()[int(i)] for i in np.argsort(-mean.numpy(), kind="stable")[:4]]
    assert first == top
    rnd = make(0, pretrained=tiny_ckpt, initial_design="random").ask(4)
    assert rnd != first


def test_diverse_top_k_design_keeps_the_prior_order_and_spreads(tiny_ckpt):
    from metanas.strategies.tnas import DIVERSE_MIN_EDGES

    st = make(0, pretrained=tiny_ckpt, initial_design="top-k-diverse")
    design = st.ask(4)
    order = [st.pool()[int(i)] for i in st.prior_ranking()]
    ranks = [order.index(a) for a in design]
    assert ranks[0] == 0 and ranks == sorted(ranks)  # the prior's best first, in its order
    assert ranks[-1] > len(design) - 1  # some of the plain top-k were too close
    for i, a in enumerate(design):
        for b in design[:i]:
            assert sum(x != y for x, y in zip(a, b)) >= DIVERSE_MIN_EDGES
    # every skipped arch is too close to an earlier pick
    for a in order[:ranks[-1]]:
        if a not in design:
            assert any(sum(x != y for x, y in zip(a, b)) < DIVERSE_MIN_EDGES for b in design)


def test_defaults():
    st = strategies.make("tnas", SPACE, seed=0)
    assert st.acquisition == "ucb" and st.adapt_guard == "holdout" and st.trainable == "gp"
    assert st.residual and st.residual_from == 20 and st.warp == "none"


@pytest.mark.parametrize("trainable", ["gp", "head"])
def test_adaptation_moves_only_what_trainable_names(tiny_ckpt, trainable):
    """The default adapts the GP's hyper-parameters and leaves the deep-kernel head at its
    meta-learned weights; ``"head"`` moves the head too. The encoders never move."""
    # no guard: all 10 steps are taken, whatever the holdout score does (with the guard, a
    # step that does not help on the held-out points is rightly undone, and whether one does
    # depends on the tiny checkpoint's numerics, e.g. torch's thread count)
    st = make(0, pretrained=tiny_ckpt, trainable=trainable, adapt_steps=10, adapt_guard="none",
              residual=False)
    run_search(st, LinearToy(), budget=12, seed=0)
    assert st.last_step["adapted"] and st.last_step["best_step"] == 10
    now = st.model.state_dict()
    moved = {k for k, v in st._meta_state.items() if k in now and v.dtype.is_floating_point
             and not torch.equal(v, now[k])}
    gp = {k for k in moved if k.startswith(("likelihood.", "mean_module.", "covar_module."))}
    head = {k for k in moved if k.startswith("feature_extractor.")}
    assert gp and moved <= gp | head
    assert bool(head) == (trainable == "head")


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_transfer_mean_follows_agreement_with_the_prior(tiny_ckpt, sign):
    """The transfer mean's weight is positive when the target agrees with the meta-trained
    prediction and exactly 0 (a constant mean: plain TNAS) when the target contradicts it."""
    import torch

    st = make(0, pretrained=tiny_ckpt, transfer_mean=True, adapt=False)
    st.prior_ranking()
    prior = st._space_prior
    assert prior is not None and prior.numel() == SPACE.size
    assert abs(float(prior.mean())) < 1e-6 and abs(float(prior.std()) - 1) < 1e-2
    rng = np.random.default_rng(0)
    rows = rng.choice(SPACE.size, 12, replace=False)
    archs = [SPACE.from_index(int(i)) for i in rows]
    radix = SPACE.n_ops ** np.arange(SPACE.n_edges - 1, -1, -1)
    vals = [sign * float(prior[int(np.asarray(a) @ radix)]) + 0.01 * rng.normal()
            for a in archs]
    st.tell(archs, vals)
    model = st.fit_model()
    w = float(model.prior_mean.weight)
    assert (w > 0) if sign > 0 else (w == 0.0)
    off = make(0, pretrained=tiny_ckpt, adapt=False)
    off.tell(archs, vals)
    assert off.fit_model().prior_mean is None
    # the prior ranking itself is computed without the transfer mean
    assert np.array_equal(off.prior_ranking(), st.prior_ranking())
    assert torch.is_tensor(prior)


def test_ablation_flags(tiny_ckpt):
    meta = make(0, pretrained=tiny_ckpt)
    scratch = make(0, pretrained=None)
    assert scratch.model is not None and scratch.checkpoint_dir is None
    assert scratch.prior_ranking() is None  # no meta-knowledge: random initial design
    w_meta = meta.model.feature_extractor[0].weight
    assert not torch.equal(w_meta, scratch.model.feature_extractor[0].weight.to(w_meta))
    ev = LinearToy()
    st = make(0, pretrained=tiny_ckpt, adapt=False)
    run_search(st, ev, budget=7, seed=0)
    assert st.last_step["adapted"] is False and st.last_step["guard"] == "none"
    # the held-out guard: no adaptation below 8 observations, held-out early stopping from 8
    hold = make(0, pretrained=tiny_ckpt, adapt_guard="holdout")
    seen = []
    fit_model = hold.fit_model

    def recording():
        out = fit_model()
        seen.append((hold.last_step["n_obs"], hold.last_step["guard"]))
        return out

    hold.fit_model = recording
    run_search(hold, LinearToy(), budget=10, seed=0)
    assert seen and all((g == "none") == (n < 8) for n, g in seen), seen
    assert any(n >= 8 for n, _ in seen), seen
    with pytest.raises(ValueError, match="adapt_guard"):
        make(0, pretrained=tiny_ckpt, adapt_guard="cv")
    samples = torch.randn(2, 3, FEAT)
    assert make(0, pretrained=tiny_ckpt, dataset_samples=samples)._samples is None  # lazy
    with_data = make(0, pretrained=tiny_ckpt, dataset_samples=samples)
    with_data.model
    assert with_data._samples is not None
    no_data = make(0, pretrained=tiny_ckpt, dataset_samples=samples, use_dataset=False)
    no_data.model
    assert no_data._samples is None
    wrong = make(0, pretrained=tiny_ckpt, dataset_samples=torch.randn(2, 3, FEAT + 1))
    wrong.model
    assert wrong._samples is None  # does not fit the encoder: no-data embedding
    with pytest.raises(FileNotFoundError):
        make(0, pretrained=str(Path(tiny_ckpt) / "nope")).model
    with pytest.raises(ValueError):
        make(0, trainable="encoder")


def test_live_task_samples_come_from_the_featuriser():
    """For a live task id the strategy featurises the task's own train images, exactly what
    the meta-dataset builder stores for that task."""
    from metanas.benchmarks.live import resolve_live
    from metanas.train.features import FEAT_DIM, task_sample_features

    tid = "dataset:digits:classes=0,1,2:max_per_class=12"
    st = strategies.make("tnas", spaces.get("nb201"), seed=0, task=tid)
    got = st._task_samples()
    assert tuple(got.shape) == (3, 20, FEAT_DIM)
    want = task_sample_features(resolve_live(tid).data)
    assert torch.equal(got, torch.as_tensor(want, dtype=got.dtype))
    other = strategies.make("tnas", spaces.get("nb201"), seed=0,
                            task="dataset:digits:classes=0,1,3:max_per_class=12")
    assert not torch.equal(other._task_samples(), got)  # a different task, other features


def test_ensemble_of_one_checkpoint_twice_is_that_checkpoint(tiny_ckpt):
    # without adaptation the members are deterministic: the mixture of two equal posteriors
    # is the posterior, and the search the single checkpoint's, arch for arch
    kw = dict(adapt=False, residual_from=6)
    single = archs_of(run_search(make(0, pretrained=tiny_ckpt, **kw), LinearToy(), budget=10,
                                 seed=0))
    st = make(0, pretrained=[tiny_ckpt, tiny_ckpt], **kw)
    twice = archs_of(run_search(st, LinearToy(), budget=10, seed=0))
    assert twice == single
    assert len(st.members) == 2 and st.last_step["weights"] == [0.5, 0.5]
    assert make(0, pretrained=[tiny_ckpt]).members == []  # a list of one: that checkpoint


def test_ensemble_mixes_its_members(tiny_ckpt, tiny_ckpt2):
    from metanas.strategies import run_settings
    from metanas.surrogates.mixture import MixtureGP, evidence_weights

    st = make(0, pretrained=[tiny_ckpt, tiny_ckpt2])
    a, b = st.members
    assert a.pretrained == tiny_ckpt and b.pretrained == tiny_ckpt2
    # the initial design: the top of the members' mean prior prediction
    prior = (a._prior_mean() + b._prior_mean()) / 2
    first = st.ask(4)
    assert first == [st.pool()[int(i)] for i in np.argsort(-prior, kind="stable")[:4]]
    st = make(0, pretrained=[tiny_ckpt, tiny_ckpt2])
    run_search(st, LinearToy(), budget=10, seed=0)
    model = st.fit_model()
    assert isinstance(model, MixtureGP) and len(st.last_step["members"]) == 2
    ev = make(0, pretrained=[tiny_ckpt, tiny_ckpt2], ensemble_weights="evidence")
    run_search(ev, LinearToy(), budget=10, seed=0)
    mix = ev.fit_model()
    w = ev.last_step["weights"]
    # the members' posterior probabilities given the observations, not equal weights
    expected = evidence_weights(mix.models).tolist()
    assert np.allclose(w, expected) and abs(sum(w) - 1) < 1e-9
    assert abs(w[0] - w[1]) > 1e-3
    with pytest.raises(RuntimeError, match="ensemble"):
        st.model
    with pytest.raises(ValueError, match="names no checkpoint"):
        make(0, pretrained=[])
    with pytest.raises(ValueError, match="ensemble"):
        make(0, pretrained=[tiny_ckpt, tiny_ckpt2], acquisition="ts")
    with pytest.raises(ValueError, match="ensemble_weights"):
        make(0, pretrained=[tiny_ckpt, tiny_ckpt2], ensemble_weights="bma")
    # run names: the default omits the neutral weighting; a list of checkpoints is resolved
    assert "ensemble_weights" not in run_settings("tnas", SPACE.name)
    rs = run_settings("tnas", SPACE.name, {"pretrained": ["auto", tiny_ckpt]})
    assert rs["pretrained"] == [str(shipped_checkpoint(SPACE.name)), tiny_ckpt]
    # a list of one is that checkpoint: the same run name as the plain folder
    assert run_settings("tnas", SPACE.name, {"pretrained": [tiny_ckpt]}) == \
        run_settings("tnas", SPACE.name, {"pretrained": tiny_ckpt})


def test_ensemble_resume_identical(tiny_ckpt, tiny_ckpt2, tmp_path):
    kw = dict(pretrained=[tiny_ckpt, tiny_ckpt2], residual_from=6, ensemble_weights="evidence")
    full = archs_of(run_search(make(0, **kw), LinearToy(), budget=12, seed=0))
    ck = tmp_path / "ck.json"
    run_search(make(0, **kw), LinearToy(), budget=9, seed=0, checkpoint=ck)
    assert len(json.loads(ck.read_text())["strategy"]["extra"]["members"]) == 2
    resumed = run_search(make(0, **kw), LinearToy(), budget=12, seed=0, checkpoint=ck)
    assert archs_of(resumed) == full
    with pytest.raises(ValueError, match="same pretrained list"):
        run_search(make(0, pretrained=[tiny_ckpt, tiny_ckpt2, tiny_ckpt]), LinearToy(),
                   budget=12, seed=0, checkpoint=ck)


def _tables_md(values: dict[str, np.ndarray]) -> MetaDataset:
    """A meta-dataset whose tasks ``{id: [n] values}`` measure the first ``n`` cells of the
    space (all of them for ``n = SPACE.size``)."""
    allx = SPACE.all_array()
    tasks = [dict(task=t, space=SPACE.name, description="synthetic", n_classes=2,
                  class_ids=[0, 1], default_metric="acc", sample_features=None,
                  report_metric=None, source="test", licence="CC0") for t in values]
    triples = [dict(task=t, space=SPACE.name, arch=SPACE.to_str(tuple(int(v) for v in allx[i])),
                    metric="acc", value=float(x), fidelity=0, split="valid", source="test")
               for t, vals in values.items() for i, x in enumerate(vals)]
    return MetaDataset(pd.DataFrame(tasks), pd.DataFrame(triples), name="tables")


def test_tables_prior_ranks_by_the_training_tasks_tables(tiny_ckpt, caplog):
    """``prior="tables"``: the initial design is the top of the training tasks' own tables,
    the mean of each table's normal scores over the tables that measured a cell (so a
    monotone transform of a table changes nothing); a table that measures less than half of
    the space is left out, and without any table it falls back to the meta-trained prior
    with a warning."""
    from scipy.stats import norm, rankdata

    tasks = json.loads((Path(tiny_ckpt) / "training_state.json").read_text())["training_tasks"]
    assert len(tasks) == 3
    rng = np.random.default_rng(5)
    a, b, part = rng.normal(size=SPACE.size), rng.normal(size=SPACE.size), rng.normal(size=3000)
    values = {tasks[0]: a, tasks[1]: np.exp(b), tasks[2]: part}  # part: 3000 of 4096 cells
    Z = np.full((3, SPACE.size), np.nan)
    for i, v in enumerate((a, b, part)):
        Z[i, :len(v)] = norm.ppf((rankdata(v) - 0.5) / len(v))
    order = np.argsort(-np.nanmean(Z, axis=0), kind="stable")
    sparse = rng.normal(size=100)  # 100 of 4096 cells: left out
    st = make(0, pretrained=tiny_ckpt, prior="tables", meta_dataset=_tables_md(values))
    design = st.ask(4)
    assert design == [SPACE.from_index(int(i)) for i in order[:4]]
    assert st._source_scores().shape == (3, SPACE.size)
    alone = make(0, pretrained=tiny_ckpt, prior="tables",  # with the sparse one left out
                 meta_dataset=_tables_md({tasks[0]: a, tasks[1]: b, tasks[2]: sparse}))
    assert alone.ask(4) == [SPACE.from_index(int(i))
                            for i in np.argsort(-(Z[0] + Z[1]), kind="stable")[:4]]
    # the transfer mean takes the same prior (normal scores of its ranking)
    tm = make(0, pretrained=tiny_ckpt, prior="tables", transfer_mean=True,
              meta_dataset=_tables_md(values))
    assert tm.ask(4) == design
    radix = SPACE.n_ops ** np.arange(SPACE.n_edges - 1, -1, -1)  # the prior's cell index
    prior = tm._space_prior.numpy()[SPACE.all_array() @ radix]
    assert np.array_equal(np.argsort(-prior, kind="stable")[:50], order[:50])
    # no usable table: the meta-trained prior, with a warning
    none = make(0, pretrained=tiny_ckpt, prior="tables",
                meta_dataset=_tables_md({t: sparse for t in tasks}))
    with caplog.at_level(logging.WARNING, logger="metanas.strategies.tnas"):
        assert none.ask(4) == make(0, pretrained=tiny_ckpt).ask(4)
    assert "prior='tables': no table" in caplog.text
    with pytest.raises(ValueError, match="prior must be one of"):
        make(0, pretrained=tiny_ckpt, prior="table")


def test_transfer_mean_fit_makes_its_identity_on_the_data_device(tiny_ckpt):
    """The transfer mean's GLS solve creates its identity on the device of the data."""
    from torch.overrides import TorchFunctionMode

    class Eyes(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func is torch.eye:
                self.calls.append("device" in kwargs)
            return func(*args, **kwargs)

    st = make(0, pretrained=tiny_ckpt, transfer_mean=True, adapt=False)
    rng = np.random.default_rng(0)
    archs = [SPACE.from_index(int(i)) for i in rng.choice(SPACE.size, 8, replace=False)]
    st.tell(archs, [float(v) for v in rng.normal(size=8)])
    st.prior_ranking()
    with Eyes() as mode:
        st.fit_model()
    assert mode.calls and all(mode.calls)
