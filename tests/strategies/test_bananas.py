"""BANANAS-style strategy (``metanas.strategies.bananas``): the MLP ensemble and its search."""

import numpy as np
import pytest

from metanas import strategies
from metanas.search import run_search
from metanas.spaces.encodings import path
from metanas.strategies.bananas import train_ensemble
from strategy_toys import LinearToy


def test_ensemble_fits_and_is_seeded():
    ev = LinearToy(seed=0)
    rng = np.random.default_rng(0)
    idx = rng.choice(ev.space.size, 60, replace=False)
    archs = ev.space.all_array()[idx]
    X, y = path(ev.space, archs), ev.table[idx]
    p1 = train_ensemble(X, y, seed=3, epochs=60)
    p2 = train_ensemble(X, y, seed=3, epochs=60)
    p3 = train_ensemble(X, y, seed=4, epochs=60)
    test = path(ev.space, ev.space.all_array()[:500])
    a, b, c = p1(test), p2(test), p3(test)
    assert a.shape == (5, 500)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert (a.std(0) > 0).all()  # the members differ (independent initialisations)
    fit = p1(X).mean(0)
    assert np.corrcoef(fit, y)[0, 1] > 0.9
    held = np.corrcoef(a.mean(0), ev.table[:500])[0, 1]
    assert held > 0.5


def test_bananas_beats_random_search_on_linear_task():
    task = 1
    rs = [run_search(strategies.make("rs", LinearToy().space, seed=s), LinearToy(seed=task),
                     budget=25, seed=s).best["value"] for s in range(20)]
    bn = [run_search(strategies.make("bananas", LinearToy().space, seed=s, n_init=10,
                                     epochs=50, n_candidates=60),
                     LinearToy(seed=task), budget=25, seed=s).best["value"] for s in range(2)]
    table = LinearToy(seed=task).table
    spread = table.max() - np.mean(rs)
    assert np.mean(bn) > np.mean(rs) + 0.25 * spread, (np.mean(bn), np.mean(rs), table.max())


def test_ucb_acquisition_ranks_by_upper_bound():
    ev = LinearToy(seed=0)
    st = strategies.make("bananas", ev.space, seed=0, acquisition="ucb", n_init=6, epochs=30,
                         n_candidates=30)
    run = run_search(st, ev, budget=8, seed=0)
    assert len({h["arch"] for h in run.history}) == 8
    with pytest.raises(ValueError):
        strategies.make("bananas", ev.space, acquisition="ei")


def test_candidate_pool_mutates_the_best():
    ev = LinearToy(seed=0)
    st = strategies.make("bananas", ev.space, seed=0, n_parents=2, n_candidates=40)
    run_search(st, ev, budget=12, seed=0)
    order = np.argsort(st.y)[::-1]
    parents = [st.X[i] for i in order[:2]]
    pool = st.candidate_pool(set())
    assert len(pool) == 40 and not set(pool) & st.seen
    d = [min(sum(x != y for x, y in zip(c, p)) for p in parents) for c in pool]
    assert max(d) <= 2 and min(d) >= 1
