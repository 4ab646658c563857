"""ANASOD strategies (``metanas.strategies.anasod``): simplex encodings, decoding with exact op
counts, biased-RS annealing and the TuRBO-style beta rule of ANASOD-BO."""

import numpy as np
import pytest

from metanas import spaces, strategies
from metanas.search import run_search
from metanas.spaces.encodings import opdist, round_to_counts
from strategy_toys import LinearToy


@pytest.mark.parametrize("space_name", ["nb201", "transnas_micro"])
def test_encodings_on_simplex_and_decoded_counts_exact(space_name):
    sp = spaces.get(space_name)
    st = strategies.make("anasod-rs", sp, seed=0)
    P = st.dirichlet(np.ones(sp.n_ops), 200)
    assert np.allclose(P.sum(1), 1.0) and (P >= 0).all()
    counts = st.to_counts(P)
    assert (counts.sum(1) == sp.n_edges).all() and (counts >= 0).all()
    assert np.array_equal(counts, round_to_counts(P, sp.n_edges))
    for c in counts[:50]:
        a = st.arch_from_counts(c, set())
        assert np.array_equal(opdist(sp, [a])[0] * sp.n_edges, c)
    archs = st.ask(30)
    enc = opdist(sp, archs)
    assert np.allclose(enc.sum(1), 1.0) and len(set(archs)) == 30


def test_decoding_is_uniform_over_archs_with_the_counts():
    sp = spaces.get("transnas_micro")  # 4 ops, 6 edges
    st = strategies.make("anasod-rs", sp, seed=1)
    c = np.array([3, 3, 0, 0])  # C(6, 3) = 20 archs
    draws = [st.arch_from_counts(c, set()) for _ in range(2000)]
    freq = np.array(list({a: draws.count(a) for a in set(draws)}.values()))
    assert len(freq) == 20 and freq.min() > 50 and freq.max() < 160


def test_biased_rs_annealing_and_concentration():
    sp = spaces.get("nb201")
    st = strategies.make("anasod-biased-rs", sp, seed=0, beta_max=8.0, anneal_steps=40)
    assert st.beta(0) == 0.0 and st.beta(20) == pytest.approx(4.0) and st.beta(400) == 8.0
    assert np.array_equal(st.concentration(5.0), np.ones(sp.n_ops))  # nothing observed yet
    a = (1, 1, 1, 1, 2, 3)
    st.tell([a], [1.0])
    alpha = st.concentration(2.0)
    assert np.allclose(alpha, sp.n_ops * 2.0 * opdist(sp, [a])[0] + 1)


def test_anasod_bo_beta_halving_doubling_on_streaks():
    sp = spaces.get("transnas_micro")
    st = strategies.make("anasod-bo", sp, seed=0, n_init=3, beta0=1.0, success_tol=2,
                         failure_tol=3, beta_min=0.25, beta_max=4.0)
    assert st.beta == 0.0
    st.tell(st.ask(3), [0.0, 1.0, 2.0])  # initial phase: no streaks, beta starts at beta0
    assert st.beta == 1.0 and st.n_success == 0 and st.n_failure == 0
    st.update_beta(True)
    assert st.beta == 1.0
    st.update_beta(True)
    assert st.beta == 0.5  # two successes in a row: halved
    for _ in range(3):
        st.update_beta(False)
    assert st.beta == 1.0  # three failures in a row: doubled
    st.update_beta(False); st.update_beta(True); st.update_beta(False); st.update_beta(False)
    assert st.beta == 1.0  # a success breaks the failure streak
    for _ in range(12):
        st.update_beta(False)
    assert st.beta == 4.0  # clipped at beta_max
    # through tell: improvements of the incumbent count as successes
    st.beta, st.n_success, st.n_failure = 1.0, 0, 0
    st.tell([sp.from_index(7)], [10.0])
    st.tell([sp.from_index(8)], [11.0])
    assert st.beta == 0.5


def test_anasod_bo_beats_anasod_rs_on_linear_task():
    ev = LinearToy(seed=2)
    bo = [run_search(strategies.make("anasod-bo", ev.space, seed=s, n_init=5, pool_size=60,
                                     fit_maxiter=30),
                     LinearToy(seed=2), budget=18, seed=s).best["value"] for s in range(2)]
    rs = [run_search(strategies.make("anasod-rs", ev.space, seed=s), LinearToy(seed=2),
                     budget=18, seed=s).best["value"] for s in range(10)]
    assert np.mean(bo) > np.mean(rs)


def test_candidates_nearest_counts():
    sp = spaces.get("nb201")
    cands = [(0, 0, 0, 0, 0, 0), (1, 1, 1, 1, 1, 2)]
    st = strategies.make("anasod-rs", sp, seed=0, candidates=cands)
    a = st.decode(np.array([0.0, 1.0, 0.0, 0.0, 0.0]), set())  # counts (0,6,0,0,0): none exact
    assert a == (1, 1, 1, 1, 1, 2)
