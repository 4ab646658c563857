"""BoTorch compatibility of the surrogates: look-ahead acquisitions (``fantasize``,
``qKnowledgeGradient``), batched (fantasy) models, joint posteriors with the residual kernel,
dtype moves and caches, input / target validation, the mixture's members as sub-modules and
the global random stream."""

import pytest
import torch
from botorch.acquisition import (LogExpectedImprovement, qKnowledgeGradient,
                                 qLogExpectedImprovement, qLogNoisyExpectedImprovement)
from botorch.models import SingleTaskGP
from botorch.optim import optimize_acqf_discrete
from botorch.sampling import SobolQMCNormalSampler
from linear_operator.operators import LinearOperator

from metanas import spaces
from metanas.encoders import DAGEncoderConfig, DatasetEncoderConfig
from metanas.surrogates.deep_kernel import (DeepKernelConfig, DeepKernelGP,
                                            HammingResidualKernel, fit, fit_residual)
from metanas.surrogates.gp import CandidatePosterior, build_gp, fit_gp
from metanas.surrogates.mixture import MixtureGP

SPACE = "transnas_micro"
W = torch.tensor([-1.0, 0.2, 0.6, 1.0], dtype=torch.float64)


def value(X: torch.Tensor) -> torch.Tensor:
    return W[X.long()].sum(-1) + 0.5 * (X[:, 0] == 3).double()


def small_config() -> DeepKernelConfig:
    return DeepKernelConfig.for_space(
        SPACE, arch_encoder=DAGEncoderConfig(hidden_dim=16, embed_dim=8),
        dataset_encoder=DatasetEncoderConfig(feat_dim=8, hidden_dim=16, embed_dim=8, n_heads=2,
                                             n_blocks=1),
        mlp_hidden=(16,), feat_dim=4)


def make_model(seed: int = 0) -> DeepKernelGP:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DeepKernelGP(small_config())


@pytest.fixture(scope="module")
def all_X():
    return torch.from_numpy(spaces.get(SPACE).all_array().copy()).double()


@pytest.fixture(scope="module")
def obs(all_X):
    idx = torch.randperm(all_X.size(0), generator=torch.Generator().manual_seed(0))[:20]
    X = all_X[idx]
    return X, value(X) * 3.0 + 60.0


def conditioned(X, y, seed=0) -> DeepKernelGP:
    m = make_model(seed)
    m.set_task(X, y)
    m.eval()
    return m


# ---------------------------------------------------------------------- look-ahead
def test_fantasize_and_knowledge_gradient_on_a_candidate_set(obs, all_X):
    X, y = obs
    m = conditioned(X, y)
    sampler = SobolQMCNormalSampler(torch.Size([4]), seed=0)
    fm = m.fantasize(all_X[100:102], sampler=sampler)
    assert fm.batch_shape == torch.Size([4]) and fm.train_inputs[0].shape == (4, 22, 6)
    # qKG over a small candidate set: each t-batch = 1 candidate + 4 fantasy solutions
    cands = all_X[200:206]
    sols = all_X[300:304]
    Xkg = torch.cat([cands[:, None], sols.expand(6, 4, 6)], dim=-2)  # [6, 5, 6]
    kg = qKnowledgeGradient(m, num_fantasies=4, current_value=y.max())
    with torch.no_grad():
        val = kg(Xkg)
    assert val.shape == (6,) and torch.isfinite(val).all()
    # the acquisition ranks a discrete set (no gradient w.r.t. X: optimize_acqf_discrete)
    with torch.no_grad():
        best, acq = optimize_acqf_discrete(qLogExpectedImprovement(m, best_f=y.max()), q=1,
                                           choices=all_X[:50])
    assert best.shape == (1, 6) and torch.isfinite(acq).all()


@pytest.mark.filterwarnings("ignore::botorch.exceptions.warnings.InputDataWarning")
def test_batched_model_posterior_shapes_and_values(obs, all_X):
    """A model conditioned on batched ``Y`` (what ``fantasize`` builds): ``q = 1`` t-batches
    take the general path, with ``SingleTaskGP``'s shapes, and each batch member equals
    the unbatched model conditioned on that member's data."""
    X, y = obs
    m = conditioned(X, y)
    Xn = all_X[400:402]
    Yf = 60 + torch.randn(4, 2, 1, dtype=torch.float64,
                          generator=torch.Generator().manual_seed(1))
    fm = m.condition_on_observations(Xn, Yf)
    g = SingleTaskGP(X, y[:, None])
    g.eval()
    g.posterior(X[:1])
    fg = g.condition_on_observations(Xn, Yf)
    Xc = all_X[500:505]
    for Xt in (Xc[:, None, None], Xc[:4, None], Xc[:4].reshape(4, 1, 1, 6)):
        assert fm.posterior(Xt).mean.shape == fg.posterior(Xt).mean.shape
    post = fm.posterior(Xc[:, None, None])  # [5, 4, 1, 1]
    for k in range(4):
        mk = m.condition_on_observations(Xn, Yf[k])
        ref = mk.posterior(Xc[:, None])  # unbatched: the fast path
        torch.testing.assert_close(post.mean[:, k].reshape(-1), ref.mean.reshape(-1))
        torch.testing.assert_close(post.variance[:, k].reshape(-1), ref.variance.reshape(-1))


# ---------------------------------------------------------------------- residual kernel
def test_joint_posterior_with_residual_kernel_and_observed_or_repeated_cells(obs, all_X):
    X, y = obs
    m = conditioned(X, y)
    m.residual_kernel = HammingResidualKernel(6, 4, scale=0.5, weight=0.7)
    for Xq in (torch.stack([X[0], all_X[7], all_X[9]])[None],   # an observed cell
               torch.stack([all_X[7], all_X[7]])[None],         # a repeated cell
               torch.stack([X[1], X[1]]).expand(3, 2, 6)):      # both, t-batched
        post = m.posterior(Xq)
        assert post.mean.shape == (*Xq.shape[:-1], 1) and torch.isfinite(post.mean).all()
        # the joint marginals agree with the exact (fast path) ones
        fast = m.posterior(Xq.reshape(-1, 1, 6))
        torch.testing.assert_close(post.mean.reshape(-1), fast.mean.reshape(-1))
        torch.testing.assert_close(post.variance.reshape(-1), fast.variance.reshape(-1))
    # a linear operator, not a dense tensor (no eager Cholesky of the prior covariance)
    assert isinstance(m.kernel(X[:3], m.features(X[:3])), LinearOperator)
    assert isinstance(m.forward(X[:3].expand(2, 3, 6)).lazy_covariance_matrix, LinearOperator)
    with torch.no_grad():
        v = qLogNoisyExpectedImprovement(m, X_baseline=X)(all_X[1:9].reshape(4, 2, 6))
    assert v.shape == (4,) and torch.isfinite(v).all()


def test_qlognei_after_fit_residual(all_X):
    g = torch.Generator().manual_seed(3)
    X = all_X[torch.randperm(all_X.size(0), generator=g)[:30]]
    y = torch.tensor([-1.0, 0.0, 0.5, 2.0], dtype=torch.float64)[X[:, 0].long()]
    y = y + 0.01 * torch.randn(30, generator=g, dtype=torch.float64)
    m = make_model(1)
    with torch.no_grad():
        m.covar_module.outputscale = 1e-3
    m.set_task(X, y)
    rf = fit_residual(m)
    assert rf.scale > 0
    m.eval()
    with torch.no_grad():
        v = qLogNoisyExpectedImprovement(m, X_baseline=X)(
            torch.cat([X[:4], all_X[1:5]]).reshape(4, 2, 6))
        post = m.posterior(torch.stack([X[2], X[2], all_X[11]])[None])
    assert torch.isfinite(v).all() and torch.isfinite(post.mean).all()


# ---------------------------------------------------------------------- validation
def test_non_finite_targets_are_rejected(obs):
    X, y = obs
    bad = y.clone()
    bad[3] = float("nan")
    bad[5] = float("inf")
    m = make_model()
    with pytest.raises(ValueError, match="set_task got 2 non-finite"):
        m.set_task(X, bad)
    with pytest.raises(ValueError, match="fit got 2 non-finite"):
        fit(make_model(), X, bad, steps=3)
    with pytest.raises(ValueError, match="non-finite"):
        fit(make_model(), X[:2], bad[2:4], steps=3)  # below min_points: still checked


def test_dataset_samples_shape_is_checked(obs):
    X, y = obs
    m = make_model()
    m.set_task(X, y, torch.randn(3, 5, 8))  # feat_dim 8: fine
    with pytest.raises(ValueError, match=r"dataset samples must be \[n_classes, n_samples, 8\]"):
        m.set_task(X, y, torch.randn(3, 5, 100))
    with pytest.raises(ValueError, match="dataset samples"):
        m.set_task(X, y, torch.randn(5, 8))
    with pytest.raises(ValueError, match="dataset mask"):
        m.set_task(X, y, torch.randn(3, 5, 8), torch.ones(3, 4, dtype=torch.bool))


def test_input_errors_are_one_line_value_errors(obs, all_X):
    X, y = obs
    m = conditioned(X, y)
    for bad in (all_X[0], X.numpy()[:3, None]):
        with pytest.raises(ValueError) as e:
            m.posterior(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(ValueError, match=r"\[\.\.\., 6\]"):
        m.posterior(torch.zeros(3, 1, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[\.\.\., 1, 6\]"):
        MixtureGP([m]).posterior(torch.zeros(3, 1, 7, dtype=torch.float64))
    with pytest.raises(ValueError, match="torch.Tensor"):
        MixtureGP([m]).posterior(X.numpy()[:3, None])
    with pytest.raises(ValueError, match="same n"):
        build_gp(torch.rand(20, 5, dtype=torch.float64), torch.rand(19, dtype=torch.float64))
    gp = build_gp(torch.rand(8, 3, dtype=torch.float64), torch.rand(8, dtype=torch.float64))
    fit_gp(gp, maxiter=5, seed=0)
    cp = CandidatePosterior(gp)
    assert cp.posterior(torch.rand(4, 1, 3, dtype=torch.float64)).mean.shape == (4, 1, 1)
    with pytest.raises(ValueError, match=r"\[\.\.\., q, 3\]"):
        cp.posterior(torch.rand(4, 1, 5, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\[\.\.\., q, 3\]"):
        cp.condition_on_observations(torch.rand(2, 6, dtype=torch.float64),
                                     torch.rand(4, dtype=torch.float64))


# ---------------------------------------------------------------------- dtype / caches
def test_dtype_moves_keep_posteriors_working_and_drop_stale_caches(obs, all_X):
    X, y = obs
    m = conditioned(X, y)
    m.residual_kernel = HammingResidualKernel(6, 4, scale=0.3, weight=0.5)
    Xq = all_X[1:13].reshape(4, 3, 6)
    qei = qLogExpectedImprovement(m, best_f=y.max())
    ref = qei(Xq)  # builds GPyTorch's (float64) prediction cache
    cache = m.prediction_strategy
    assert cache is not None
    LogExpectedImprovement(m, best_f=y.max())(all_X[:5, None])  # acqf.to(float64): no move
    assert m.prediction_strategy is cache  # nothing changed: the cache is kept
    LogExpectedImprovement(m, best_f=y.max())(all_X[:5, None].float())  # -> float32 GP part
    assert m.prediction_strategy is None and m.mean_module.constant.dtype == torch.float32
    assert m.arch_encoder.dag.gru_fwd.weight_hh.dtype == torch.float32  # pinned
    out32 = qei(Xq)  # no stale float64 cache
    assert torch.isfinite(out32).all()
    assert m.posterior(all_X[:5, None].float()).mean.dtype == torch.float32
    assert m.posterior(Xq.float()).mean.dtype == torch.float32
    m.to(torch.float64)
    assert m.prediction_strategy is None
    assert m.posterior(all_X[:5, None]).mean.dtype == torch.float64
    assert m.posterior(Xq).mean.dtype == torch.float64
    torch.testing.assert_close(qei(Xq), ref, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------------- mixture members
def test_mixture_members_are_submodules(obs, all_X):
    X, y = obs
    a, b = conditioned(X, y, 0), conditioned(X, y, 1)
    mix = MixtureGP([a, b])
    assert len(list(mix.children())) == 1 and mix.models[1] is b
    assert sum(p.numel() for p in mix.parameters()) == \
        sum(p.numel() for p in a.parameters()) + sum(p.numel() for p in b.parameters())
    a.train()
    mix.eval()
    assert not a.training
    mix.to(torch.float32)
    assert a.mean_module.constant.dtype == torch.float32 == b.mean_module.constant.dtype
    assert mix.posterior(all_X[:5, None].float()).mean.dtype == torch.float32
    mix.to(torch.float64)
    post = mix.posterior(all_X[:5, None])
    assert post.mean.dtype == torch.float64 and mix.weights.tolist() == [0.5, 0.5]


# ---------------------------------------------------------------------- random stream
def test_from_pretrained_leaves_the_global_rng_alone(tmp_path):
    make_model(2).save_pretrained(tmp_path / "ckpt")
    torch.manual_seed(0)
    before = torch.random.get_rng_state().clone()
    DeepKernelGP.from_pretrained(tmp_path / "ckpt")
    assert torch.equal(before, torch.random.get_rng_state())
