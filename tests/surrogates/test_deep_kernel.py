"""Deep-kernel GP (TNAS surrogate): fits a synthetic table, BoTorch acquisitions over the
whole space, fast marginal path == GPyTorch path, test-time adaptation guard, checkpoints."""

import json
import math

import pytest
import torch
from botorch.acquisition import (LogExpectedImprovement, ProbabilityOfImprovement,
                                 UpperConfidenceBound)

from metanas import spaces
from metanas.encoders import DAGEncoderConfig, DatasetEncoderConfig
from metanas.meta import reptile_step
from metanas.surrogates.deep_kernel import (CheckpointError, DeepKernelConfig, DeepKernelGP,
                                            GPTask, HammingResidualKernel, TablePriorMean, fit,
                                            fit_residual, gp_task_loss, loo_log_predictive,
                                            neg_mll)

SPACE = "transnas_micro"
W = torch.tensor([-1.0, 0.2, 0.6, 1.0], dtype=torch.float64)



def value(X: torch.Tensor) -> torch.Tensor:
    """Synthetic table: additive op scores + an interaction on the first edge."""
    return W[X.long()].sum(-1) + 0.5 * (X[:, 0] == 3).double()


def small_config(space: str = SPACE, **kw) -> DeepKernelConfig:
    args = dict(arch_encoder=DAGEncoderConfig(hidden_dim=16, embed_dim=8),
                dataset_encoder=DatasetEncoderConfig(feat_dim=8, hidden_dim=16, embed_dim=8,
                                                     n_heads=2, n_blocks=1),
                mlp_hidden=(16,), feat_dim=4)
    return DeepKernelConfig.for_space(space, **{**args, **kw})


def make_model(seed: int = 0, **kw) -> DeepKernelGP:
    torch.manual_seed(seed)
    return DeepKernelGP(small_config(**kw))


@pytest.fixture(scope="module")
def all_X():
    return torch.from_numpy(spaces.get(SPACE).all_array().copy()).double()


@pytest.fixture(scope="module")
def split(all_X):
    idx = torch.randperm(all_X.size(0), generator=torch.Generator().manual_seed(0))
    return all_X[idx[:40]], all_X[idx[500:1500]]


@pytest.fixture(scope="module")
def fitted(split):
    X, _ = split
    m = make_model()
    res = fit(m, X, value(X), steps=60, lr=1e-2, prox=0.0, patience=20)
    return m, res


def _spearman(a, b):
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


def test_features_dedup_and_shapes(all_X):
    m = make_model()
    m.set_task(all_X[:5], torch.arange(5.0))
    X = torch.cat([all_X[:3], all_X[:3], all_X[1:2]])
    z = m.features(X)
    assert z.shape == (7, 4) and z.dtype == torch.float64
    torch.testing.assert_close(z[:3], z[3:6])
    torch.testing.assert_close(z[6], z[1])
    zb = m.features(X.reshape(7, 1, 6))
    torch.testing.assert_close(zb.reshape(7, 4), z)
    with pytest.raises(ValueError, match="op indices"):
        m.features(torch.full((1, 6), 4.0))


def test_fits_synthetic_table(fitted, split):
    m, res = fitted
    X, X_test = split
    assert res.guard == "holdout" and res.best_step > 0 and max(res.scores) > res.scores[0]
    assert res.steps == res.best_step == len(res.losses)
    mean, var = m.predict(X_test)
    assert mean.shape == var.shape == (X_test.size(0),)
    assert (var > 0).all()
    assert _spearman(mean, value(X_test)) > 0.8
    # original units: the posterior mean at the observations is close to the observations
    mu_tr, _ = m.predict(X)
    assert (mu_tr - value(X)).abs().max() < 0.5


def test_acquisitions_over_whole_space(fitted, split, all_X):
    m, _ = fitted
    X, _ = split
    cand = all_X[:, None, :]
    best = value(X).max()
    with torch.no_grad():
        for acq in (LogExpectedImprovement(m, best_f=best), UpperConfidenceBound(m, beta=2.0),
                    ProbabilityOfImprovement(m, best_f=best)):
            a = acq(cand)
            assert a.shape == (all_X.size(0),) and torch.isfinite(a).all()
        pick = all_X[LogExpectedImprovement(m, best_f=best)(cand).argmax()]
    assert value(pick[None]) >= value(all_X).quantile(0.9)
    # BoTorch's acqf.to(X) moved nothing: encoders stay float32, the GP float64
    assert next(m.arch_encoder.parameters()).dtype == torch.float32
    assert m.covar_module.raw_outputscale.dtype == torch.float64


def test_fast_marginals_equal_gpytorch_path(fitted, all_X):
    m, _ = fitted
    Xc = all_X[::409][:, None, :]
    fast = m.posterior(Xc)
    generic = super(DeepKernelGP, m).posterior(Xc)  # GPyTorch prediction, standardised units
    s, mu = m.y_std, m.y_mean
    torch.testing.assert_close(fast.mean, generic.mean * s + mu)
    torch.testing.assert_close(fast.variance, generic.variance * s**2)
    joint = m.posterior(Xc[:, 0, :])  # q = n joint
    torch.testing.assert_close(joint.mean.reshape(-1), fast.mean.reshape(-1))
    torch.testing.assert_close(joint.variance.reshape(-1), fast.variance.reshape(-1))
    noisy = m.posterior(Xc, observation_noise=True)
    torch.testing.assert_close(noisy.variance - fast.variance,
                               (m.likelihood.noise * s**2).expand_as(fast.variance))


def test_table_prior_mean_enters_both_prediction_paths(split, all_X):
    """An architecture-indexed prior mean: the fast marginals equal GPyTorch's prediction,
    far from the data the posterior mean follows the prior mean, and it stays out of the
    checkpoint state."""
    X, _ = split
    sp = spaces.get(SPACE)
    v = value(all_X)
    idx = all_X.long() @ (sp.n_ops ** torch.arange(sp.n_edges - 1, -1, -1))
    table = torch.empty_like(v)
    table[idx] = (v - v.mean()) / v.std()  # radix order: the first edge most significant
    values = table[idx]  # per row of all_X
    m = make_model()
    keys = set(m.state_dict())
    m.prior_mean = TablePriorMean(table, sp.n_ops, sp.n_edges, weight=0.7)
    assert set(m.state_dict()) == keys
    torch.testing.assert_close(m.prior_mean(all_X[:5]), 0.7 * values[:5])
    m.set_task(X[:6], value(X[:6]))
    m.eval()
    Xc = all_X[::409][:, None, :]
    fast = m.posterior(Xc)
    generic = super(DeepKernelGP, m).posterior(Xc)
    torch.testing.assert_close(fast.mean, generic.mean * m.y_std + m.y_mean)
    with torch.no_grad():  # observations carry ~no information: the prior mean remains
        m.covar_module.outputscale = 1e-3
        m.likelihood.noise = 10.0
        mean, _ = m._marginals(all_X[:50])
    want = m.mean_module.constant + 0.7 * values[:50]
    torch.testing.assert_close(mean, want.to(mean), atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="entries"):
        TablePriorMean(table[:-1], sp.n_ops, sp.n_edges)


def test_hamming_residual_kernel_values():
    k = HammingResidualKernel(3, 3, scale=0.5)
    k.weights.copy_(torch.tensor([0.1, 1.0, 2.0], dtype=torch.float64))
    X = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 2], [1, 1, 1]],
                     dtype=torch.float64)
    K = k(X)
    want = 0.5 * torch.exp(-torch.tensor([0.0, 0.1, 1.0, 2.0, 3.1], dtype=torch.float64))
    torch.testing.assert_close(K[0], want)
    torch.testing.assert_close(K, K.T)
    torch.testing.assert_close(k(X, diag=True), K.diagonal())
    assert float(torch.linalg.eigvalsh(K).min()) > 0
    assert k(X, X[:2]).shape == (5, 2)
    torch.testing.assert_close(K, 0.5 * torch.exp(-(k.mismatch(X) @ k.weights)))


def test_residual_kernel_enters_both_prediction_paths(split, all_X):
    """With a residual kernel the fast marginals equal GPyTorch's prediction (q = 1 and
    joint), it stays out of the checkpoint state, and it changes the prediction."""
    X, _ = split
    m = make_model()
    keys = set(m.state_dict())
    m.set_task(X[:12], value(X[:12]))
    m.eval()
    Xc = all_X[::409][:, None, :]
    plain = m.posterior(Xc)
    m.residual_kernel = HammingResidualKernel(6, 4, scale=0.7, weight=0.4)
    assert set(m.state_dict()) == keys
    fast = m.posterior(Xc)
    generic = super(DeepKernelGP, m).posterior(Xc)
    torch.testing.assert_close(fast.mean, generic.mean * m.y_std + m.y_mean)
    torch.testing.assert_close(fast.variance, generic.variance * m.y_std**2)
    joint = m.posterior(Xc[:, 0, :])
    torch.testing.assert_close(joint.mean.reshape(-1), fast.mean.reshape(-1))
    assert not torch.allclose(plain.variance, fast.variance)


def test_fit_residual_learns_what_the_features_miss(all_X):
    """Targets that depend on edge 0 only, a deep kernel that is blind to them (random
    features, tiny scale): the residual is switched on, raises the marginal likelihood and
    weighs edge 0 most; too few points leave it off."""
    g = torch.Generator().manual_seed(3)
    X = all_X[torch.randperm(all_X.size(0), generator=g)[:40]]
    y = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=torch.float64)[X[:, 0].long()]
    y = y + 0.01 * torch.randn(40, generator=g, dtype=torch.float64)
    m = make_model(1)
    with torch.no_grad():
        m.covar_module.outputscale = 1e-3
    m.set_task(X, y)
    rf = fit_residual(m)
    assert rf.scale > 0.1 and rf.log_ml > rf.base_log_ml
    w = torch.tensor(rf.weights)
    assert int(w.argmax()) == 0 and float(w[0]) > 3 * float(w[1:].max())
    assert float(m.residual_kernel.scale) == rf.scale
    torch.testing.assert_close(float(m.likelihood.noise.detach()), rf.noise)
    mean, _ = m.predict(all_X[:200])  # the fitted model ranks by edge 0
    truth = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=torch.float64)[all_X[:200, 0].long()]
    assert _spearman(mean, truth) > 0.8
    few = make_model(1)
    few.set_task(X[:4], y[:4])
    noise = float(few.likelihood.noise.detach())
    rf = fit_residual(few, min_points=5)
    assert rf.scale == 0.0 and float(few.residual_kernel.scale) == 0.0
    assert float(few.likelihood.noise.detach()) == noise


def test_condition_on_observations_matches_refit_conditioning(fitted, split, all_X):
    m, _ = fitted
    X, _ = split
    new = all_X[3000:3003]
    fant = m.condition_on_observations(new, value(new)[:, None])
    assert fant.train_inputs[0].shape == (X.size(0) + 3, 6)
    ref = make_model()
    ref.load_state_dict(m.state_dict())
    ref.set_task(X, value(X))  # same standardisation as m
    ref.set_train_data(torch.cat([X, new]),
                       torch.cat([ref.train_targets, (value(new) - m.y_mean) / m.y_std]),
                       strict=False)
    ref.eval()
    cand = all_X[::500, None, :]
    torch.testing.assert_close(fant.posterior(cand).mean, ref.posterior(cand).mean)


def test_neg_mll_and_dataset_paths(all_X):
    m = make_model()
    X, y = all_X[:20], value(all_X[:20])
    samples = torch.randn(3, 5, 8, generator=torch.Generator().manual_seed(0))
    l_data = neg_mll(m, X, y, samples)
    l_none = neg_mll(m, X, y, None)
    assert l_data.dim() == 0 and torch.isfinite(l_data) and torch.isfinite(l_none)
    assert not torch.isclose(l_data, l_none)
    l_data.backward()
    grads = {n: p.grad for n, p in m.named_parameters()}
    assert grads["dataset_encoder.head.weight"].abs().sum() > 0
    assert grads["arch_encoder.dag.gru_fwd.weight_hh"].abs().sum() > 0
    assert grads["covar_module.raw_outputscale"] is not None


def test_loo_guard_never_worse_than_start(split):
    """A reckless learning rate: the LOO guard keeps the best-LOO weights (maybe the start)."""
    X, _ = split
    m = make_model(seed=1)
    m.set_task(X, value(X))
    start = loo_log_predictive(m)
    res = fit(m, X, value(X), steps=15, lr=0.5, prox=0.0, patience=3, guard="loo")
    assert res.guard == "loo" and not m.training
    assert loo_log_predictive(m) >= start - 1e-9
    assert res.scores[res.best_step] == pytest.approx(max(res.scores))


def test_holdout_guard_picks_the_step_count_on_held_out_points(split):
    X, _ = split
    m = make_model(seed=1)
    res = fit(m, X, value(X), steps=12, lr=0.5, prox=0.0, patience=4,
              generator=torch.Generator().manual_seed(3))
    assert res.guard == "holdout"
    assert res.scores[res.best_step] == max(res.scores)
    assert res.steps == res.best_step <= 12
    # the model ends conditioned on *all* observations
    assert m.train_inputs[0].shape == X.shape and not m.training
    # deterministic for a generator seed
    m2 = make_model(seed=1)
    res2 = fit(m2, X, value(X), steps=12, lr=0.5, prox=0.0, patience=4,
               generator=torch.Generator().manual_seed(3))
    assert res2.scores == res.scores
    # too few points: no adaptation, only conditioning
    m3 = make_model(seed=1)
    before = [p.detach().clone() for p in m3.parameters()]
    r3 = fit(m3, X[:2], value(X[:2]))
    assert r3.guard == "none" and r3.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, m3.parameters()))
    with pytest.raises(ValueError, match="guard"):
        fit(m3, X, value(X), guard="cv")
    # guard="holdout" asked for explicitly: below min_holdout_points nothing is adapted
    m4 = make_model(seed=1)
    before = [p.detach().clone() for p in m4.parameters()]
    r4 = fit(m4, X[:6], value(X[:6]), steps=5, lr=0.5, guard="holdout", min_holdout_points=8)
    assert r4.guard == "none" and r4.steps == 0
    assert all(torch.equal(a, b) for a, b in zip(before, m4.parameters()))
    assert m4.train_inputs[0].shape == X[:6].shape
    r5 = fit(m4, X[:8], value(X[:8]), steps=5, lr=0.5, guard="holdout", min_holdout_points=8)
    assert r5.guard == "holdout"


def test_fit_trainable_subsets(split):
    X, _ = split
    m = make_model(seed=2)
    enc0 = [p.detach().clone() for p in m.arch_encoder.parameters()]
    fit(m, X, value(X), steps=5, lr=1e-2, trainable="head")
    assert all(torch.equal(a, b) for a, b in zip(enc0, m.arch_encoder.parameters()))
    with pytest.raises(ValueError, match="trainable"):
        fit(m, X, value(X), steps=1, trainable="nope")


def test_reptile_step_on_gp(all_X):
    m = make_model(seed=3)
    tasks = [GPTask(all_X[i * 30:(i + 1) * 30], value(all_X[i * 30:(i + 1) * 30]) * (i + 1),
                    torch.randn(2, 4, 8) if i else None) for i in range(2)]
    w0 = [p.detach().clone() for p in m.parameters()]
    stats = reptile_step(m, gp_task_loss, tasks, inner_steps=2, inner_lr=1e-2, outer_lr=0.5,
                         generator=torch.Generator().manual_seed(0))
    assert math.isfinite(stats.loss_first) and stats.update_norm > 0
    assert any(not torch.equal(a, b) for a, b in zip(w0, m.parameters()))


# ---------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip(fitted, split, tmp_path):
    m, _ = fitted
    X, X_test = split
    m.save_pretrained(tmp_path / "ckpt")
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    assert cfg["space"] == SPACE and cfg["metanas_version"] and cfg["feat_dim"] == 4
    assert cfg["arch_encoder"]["hidden_dim"] == 16
    loaded = DeepKernelGP.from_pretrained(tmp_path / "ckpt", space=SPACE)
    assert loaded.config == m.config
    for a, b in zip(m.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    loaded.set_task(X, value(X))
    m.set_task(X, value(X))
    m.eval()
    ma, va = m.predict(X_test)
    mb, vb = loaded.predict(X_test)
    assert torch.equal(ma, mb) and torch.equal(va, vb)


def test_checkpoint_refuses_wrong_space_and_tampering(tmp_path):
    m = make_model()
    d = tmp_path / "a"
    m.save_pretrained(d)
    with pytest.raises(CheckpointError, match="space='transnas_micro', not space='nb201'"):
        DeepKernelGP.from_pretrained(d, space="nb201")
    # config.json edited: space swapped
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "space": "nb201"}))
    with pytest.raises(CheckpointError, match=r"does not match .*space is 'nb201'") as exc:
        DeepKernelGP.from_pretrained(d)
    assert "\n" not in str(exc.value)
    # config.json edited: a dimension
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["arch_encoder"]["hidden_dim"] = 32
    (d / "config.json").write_text(json.dumps(cfg2))
    with pytest.raises(CheckpointError, match="arch_encoder.hidden_dim is 32"):
        DeepKernelGP.from_pretrained(d)
    # config.json of another checkpoint next to these weights
    torch.manual_seed(0)
    DeepKernelGP(small_config(feat_dim=6)).save_pretrained(tmp_path / "b")
    (d / "config.json").write_text((tmp_path / "b" / "config.json").read_text())
    with pytest.raises(CheckpointError, match="feat_dim is 6"):
        DeepKernelGP.from_pretrained(d)
    with pytest.raises(CheckpointError, match="not found"):
        DeepKernelGP.from_pretrained(tmp_path / "missing")


def test_config_validation():
    with pytest.raises(ValueError, match="n_node_types"):
        DeepKernelConfig(space="transnas_micro")  # default arch encoder is sized for nb201
    with pytest.raises(ValueError, match="kernel"):
        small_config(kernel="linear")
    assert small_config(kernel="rbf", ard=True).kernel == "rbf"
    m = make_model(kernel="rbf", ard=True)
    assert m.covar_module.base_kernel.lengthscale.shape == (1, 4)
