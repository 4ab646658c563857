"""GP surrogate (``metanas.surrogates.gp``) and GP-BO (``metanas.strategies.gp_bo``)."""

import time
import warnings

import numpy as np
import pytest
import torch

from metanas import spaces, strategies
from metanas.search import run_search
from metanas.spaces import encodings as enc
from metanas.surrogates import gp as gpmod
from metanas.surrogates.gp import (CandidatePosterior, build_gp, exact_mll_closure, fit_gp,
                                   hyperparameters)
from metanas.strategies.gp_bo import ACQUISITIONS
from strategy_toys import LinearToy


def _data(space_name="transnas_micro", n=25, seed=0):
    sp = spaces.get(space_name)
    rng = np.random.default_rng(seed)
    idx = rng.choice(sp.size, n, replace=False)
    X = torch.as_tensor(enc.onehot(sp, sp.all_array()[idx]))
    w = rng.normal(size=X.shape[1])
    Y = torch.as_tensor(X.numpy() @ w + 0.3 * np.sin(3 * X.numpy() @ rng.normal(size=X.shape[1])))
    return sp, X, Y


def test_candidate_posterior_matches_singletaskgp():
    sp, X, Y = _data()
    gp = build_gp(X, Y)
    assert fit_gp(gp, maxiter=50, seed=0).ok
    cp = CandidatePosterior(gp, chunk_size=100)  # several chunks
    test = torch.as_tensor(enc.onehot(sp, sp.all_array()[:300]))
    with torch.no_grad():
        for q in (1, 3):
            Xq = test.reshape(-1, q, test.shape[-1])
            a, b = gp.posterior(Xq), cp.posterior(Xq)
            assert torch.allclose(a.mean, b.mean, atol=1e-8)
            assert torch.allclose(a.distribution.covariance_matrix,
                                  b.distribution.covariance_matrix, atol=1e-7)
        # Kriging-believer conditioning = botorch's own conditioning (same hyperparameters)
        gp(test)  # fills gpytorch's prediction caches
        newX, newY = test[:3], torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
        a = gp.condition_on_observations(newX, newY.unsqueeze(-1)).posterior(test.unsqueeze(1))
        b = cp.condition_on_observations(newX, newY).posterior(test.unsqueeze(1))
        assert torch.allclose(a.mean, b.mean, atol=1e-8)
        assert torch.allclose(a.variance, b.variance, atol=1e-8)


@pytest.mark.parametrize("kernel", gpmod.KERNELS)
def test_fast_mll_closure_is_gpytorch_objective(kernel):
    from botorch.optim.closures import get_loss_closure_with_grads
    from botorch.optim.utils import get_parameters
    from gpytorch.mlls import ExactMarginalLogLikelihood

    _, X, Y = _data(n=15)
    gp = build_gp(X, Y, kernel=kernel)
    mll = ExactMarginalLogLikelihood(gp.likelihood, gp).train()
    ref = get_loss_closure_with_grads(mll, parameters=get_parameters(mll, requires_grad=True))
    l1, g1 = ref()
    g1 = [g.clone() for g in g1]
    l2, g2 = exact_mll_closure(mll)()
    assert l1.item() == pytest.approx(l2.item(), rel=1e-10)
    for a, b in zip(g1, g2):
        assert torch.allclose(a, b, atol=1e-10)


def test_fit_falls_back_without_raising(monkeypatch):
    _, X, Y = _data(n=12)
    gp = build_gp(X, Y)
    good = fit_gp(gp, maxiter=30, seed=0)
    assert good.ok

    def boom(*a, **k):
        raise gpmod.ModelFittingError("forced")

    monkeypatch.setattr(gpmod, "fit_gpytorch_mll", boom)
    gp2 = build_gp(X, Y)
    init = hyperparameters(gp2)
    res = fit_gp(gp2, init=good.hp, fallback=good.hp, seed=0)
    assert res.status == "fallback" and not gp2.training
    assert all(torch.equal(res.hp[k], good.hp[k]) for k in good.hp)
    res = fit_gp(build_gp(X, Y), seed=0)
    assert res.status == "initial" and all(torch.equal(res.hp[k], init[k]) for k in init)
    # the strategy keeps proposing (previous hyperparameters, or the initial ones)
    ev = LinearToy()
    st = strategies.make("gp-bo", ev.space, seed=0, n_init=3)
    run = run_search(st, ev, budget=6)
    assert len({h["arch"] for h in run.history}) == 6 and st.n_fit_failures == 3


@pytest.mark.parametrize("acq,encoding", [(a, "onehot") for a in ACQUISITIONS] + [("logei", "path")])
def test_acquisitions_and_encodings(acq, encoding):
    ev = LinearToy()
    st = strategies.make("gp-bo", ev.space, seed=1, n_init=4, acquisition=acq, encoding=encoding,
                         fit_maxiter=30)
    run = run_search(st, ev, budget=8, batch_size=2)
    archs = [h["arch"] for h in run.history]
    assert len(set(archs)) == 8
    assert st.last_step["fit_status"] in ("warm", "cold")


def test_unknown_acquisition_rejected():
    with pytest.raises(KeyError):
        strategies.make("gp-bo", spaces.get("nb201"), acquisition="nope")


def test_batch_first_pick_is_greedy_pick_and_believer_spreads():
    ev = LinearToy()
    st = strategies.make("gp-bo", ev.space, seed=0, n_init=6, fit_maxiter=30)
    run_search(st, ev, budget=8)
    state = st.state_dict()
    one = strategies.make("gp-bo", ev.space, seed=0, n_init=6, fit_maxiter=30)
    one.load_state_dict(state)
    four = strategies.make("gp-bo", ev.space, seed=0, n_init=6, fit_maxiter=30)
    four.load_state_dict(state)
    a, b = one.ask(1), four.ask(4)
    assert a[0] == b[0] and len(set(b)) == 4 and not set(b) & set(st.X)


def test_no_warnings_even_on_degenerate_data():
    """Constant values (zero outcome variance) and duplicated encodings (path encoding maps
    archs with dead edges together) neither crash nor print warnings."""

    class Const(LinearToy):
        def evaluate(self, archs):
            return [e.__class__(1.0) for e in super().evaluate(archs)]

    import metanas.surrogates.gp  # noqa: F401  (library import-time notices are not ours)

    for ev, encoding in ((Const(), "onehot"), (LinearToy(), "path")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            st = strategies.make("gp-bo", ev.space, seed=0, n_init=3, encoding=encoding,
                                 fit_maxiter=30)
            run = run_search(st, ev, budget=7, batch_size=2)
        assert len({h["arch"] for h in run.history}) == 7
        assert not caught, [str(w.message) for w in caught]


def test_scoring_whole_nb201_is_fast():
    """All 15625 NB201 cells are scored through the fast exact posterior (gpytorch's own path
    builds a 15625 x 15625 kernel and takes tens of seconds)."""
    from botorch.acquisition import LogExpectedImprovement

    sp, X, Y = _data("nb201", n=50)
    gp = build_gp(X, Y)
    fit_gp(gp, maxiter=30, seed=0)
    allX = torch.as_tensor(enc.onehot(sp, sp.all_array()))
    t0 = time.perf_counter()
    with torch.no_grad():
        v = LogExpectedImprovement(CandidatePosterior(gp), best_f=Y.max())(allX.unsqueeze(1))
    assert v.shape == (sp.size,) and torch.isfinite(v).all()
    assert time.perf_counter() - t0 < 5.0


def test_gp_bo_beats_random_search():
    """Default GP-BO (10 random + 20 model steps) on the linear task: every seed's best beats
    random search's mean best at the same budget, and the mean best is near the optimum."""
    ev = LinearToy(seed=0)
    rs = []
    for s in range(20):
        rs.append(run_search(strategies.make("rs", ev.space, seed=s), LinearToy(seed=0),
                             budget=30, seed=s).best["value"])
    rs_mean = float(np.mean(rs))
    gp_best = [run_search(strategies.make("gp-bo", ev.space, seed=s), LinearToy(seed=0),
                          budget=30, seed=s).best["value"] for s in range(3)]
    opt = float(ev.table.max())
    assert min(gp_best) > rs_mean, (gp_best, rs_mean)
    assert np.mean(gp_best) > rs_mean + 0.5 * (opt - rs_mean), (gp_best, rs_mean, opt)


def test_failed_evaluations_are_skipped_by_the_model():
    """NaN values (a failed training run) are kept in the history but not fitted."""

    class Flaky(LinearToy):
        def evaluate(self, archs):
            out = super().evaluate(archs)
            return [e.__class__(float("nan")) if i % 3 == 0 else e for i, e in enumerate(out)]

    ev = Flaky()
    st = strategies.make("gp-bo", ev.space, seed=0, n_init=4)
    run = run_search(st, ev, budget=10, batch_size=3)
    assert len({h["arch"] for h in run.history}) == 10
    assert 2 <= st.last_step["n_obs"] < len(st.X)


def test_warp_values():
    """``copula``: normal scores of the ranks; ``power``: monotone, pulls a failed cell's
    lower tail in (the top keeps a larger share of the spread than under standardisation),
    stays finite on a handful of extreme values; unknown names are refused by GP-BO."""
    from scipy.special import ndtri

    from metanas.strategies.gp_bo import warp_values

    y = np.array([10.0, 95.0, 96.0, 97.0, 98.0, 99.0, 99.5, 100.0])
    assert np.allclose(warp_values(y, "none"), y)
    assert np.allclose(warp_values(y, "copula"), ndtri((np.arange(1, 9) - 0.5) / 8))
    p = warp_values(y, "power")
    z = (y - y.mean()) / y.std()
    assert np.all(np.diff(p) > 0)
    top_share = lambda v: (v[-1] - v[1]) / (v[-1] - v[0])  # noqa: E731
    assert top_share(p) > 2 * top_share(z)
    assert np.all(np.isfinite(warp_values(np.array([0.0, 1e6, 1e6 + 1]), "power")))
    assert np.allclose(warp_values(np.array([3.0, 3.0, 3.0]), "power"), 3.0)
    with pytest.raises(KeyError, match="unknown warp"):
        strategies.make("gp-bo", spaces.get("transnas_micro"), seed=0, warp="log")
