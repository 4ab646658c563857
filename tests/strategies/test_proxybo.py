"""ProxyBO (``metanas.strategies.proxybo``): generalisation scores, weights, temperature,
proxy providers and the coverage rule of partial tables."""

import math

import numpy as np
import pytest

from metanas import strategies
from metanas.search import run_search
from metanas.spaces import get as get_space
from metanas.strategies.proxybo import (FunctionProvider, LiveProxyProvider, ProxyBO,
                                        TableProxyProvider, rank_agreement, ranks_desc,
                                        softmax_weights, temperature)
from strategy_toys import LinearToy


def test_rank_agreement_extremes():
    y = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    assert rank_agreement(y * 2 + 1, y) == 1.0
    assert rank_agreement(-y, y) == 0.0
    assert rank_agreement(np.ones(5), y) == 0.5
    assert rank_agreement(np.array([1.0, np.nan]), np.array([1.0, 2.0])) == 0.5  # < 2 scored
    # one discordant pair out of C(4, 2) = 6
    assert rank_agreement(np.array([1.0, 2.0, 4.0, 3.0]), np.array([1.0, 2.0, 3.0, 4.0])) == \
        pytest.approx(5 / 6)


def test_temperature_schedule_and_sharpening():
    assert temperature(0.1, 1) == pytest.approx(0.1)
    assert temperature(0.1, 10) == pytest.approx(0.1 / (1 + math.log(10)))
    taus = [temperature(0.1, T) for T in range(1, 200)]
    assert all(a > b for a, b in zip(taus, taus[1:]))
    G = np.array([0.8, 0.7, 0.5])
    w_early, w_late = softmax_weights(G, temperature(0.1, 5)), softmax_weights(G, temperature(0.1, 100))
    assert w_early.sum() == pytest.approx(1.0) and w_late.sum() == pytest.approx(1.0)
    assert w_late[0] > w_early[0] and w_late[2] < w_early[2]  # sharper later


def test_ranks_desc_matches_scipy_and_neutral_for_missing():
    from scipy.stats import rankdata

    v = np.random.default_rng(0).integers(0, 6, size=40).astype(float)
    assert np.array_equal(ranks_desc(v), rankdata(-v, method="average"))
    r = ranks_desc(np.array([3.0, np.nan, 1.0, 2.0]))
    assert r[0] == 1.0 and r[2] == 4.0  # scored ranks span 1..n
    assert r[1] == pytest.approx(2.5)  # unscored: the mean rank


def test_weights_favour_perfect_proxy_over_random():
    ev = LinearToy(seed=0)
    noise = np.random.default_rng(123).normal(size=ev.space.size)
    prov = FunctionProvider({
        "random": lambda sp, a: noise[[sp.index(x) for x in a]],
        "perfect": lambda sp, a: ev.table[[sp.index(x) for x in a]],
    })
    st = strategies.make("proxybo", ev.space, seed=0, proxies=prov, n_init=5, n_random=30,
                         n_local=30)
    run_search(st, ev, budget=15, seed=0)
    G = dict(zip(st.last_step["names"], st.last_step["G"]))
    w = dict(zip(st.last_step["names"], st.last_step["weights"]))
    assert G["perfect"] == 1.0 and G["random"] < 0.8
    assert w["perfect"] > 0.5 > w["random"]
    assert w["perfect"] > 10 * w["random"]
    # and the search exploits it: the best of 15 is near the optimum of 4096 archs
    assert max(st.y) >= np.quantile(ev.table, 0.995)


def test_table_provider_coverage_and_restriction():
    from metanas.benchmarks import get_benchmark

    bench = get_benchmark("nb201/cifar10")
    # default on NB201: the full-space proxies computed here (digits_*), no restriction
    full = TableProxyProvider("nb201/cifar10")
    assert all(n.startswith("digits_") for n in full.names)
    assert full.covered(bench.space) is None
    # the published table's proxies cover ~725 archs: ProxyBO restricts to those
    prov = TableProxyProvider("nb201/cifar10", proxies=("synflow", "jacov", "snip"))
    assert prov.names == ("synflow", "jacov", "snip")
    cov = prov.covered(bench.space)
    assert 700 <= len(cov) <= 730
    st = ProxyBO(bench.space, seed=0, proxies=prov, n_init=5, n_random=20, n_local=20)
    run = run_search(st, bench, budget=9, seed=0)
    archs = {bench.space.from_str(h["arch"]) for h in run.history}
    assert archs <= cov  # restrict: only archs the published table scores
    assert st.last_step["Q"] > 0
    # transnas: zen scores every cell where it did not fail (3927 of 4096)
    tprov = TableProxyProvider("transnas_micro/jigsaw")
    assert tprov.names == ("jacov", "snip", "zen")
    assert len(tprov.covered(get_space("transnas_micro"))) > 3900
    # neutral mode searches the whole space
    st2 = ProxyBO(bench.space, seed=0, proxies=prov, coverage="neutral")
    assert st2._restricted is None


def test_live_provider_caches():
    from metanas.nn.cell_network import NetworkConfig
    from metanas.proxies import digits_batch
    from metanas.spaces import get

    sp = get("nb201")
    prov = LiveProxyProvider(names=("nwot", "synflow_log"), batch=digits_batch(n=8, size=8),
                             config=NetworkConfig(C=4, N=1))
    archs = [sp.from_index(100), sp.from_index(5000)]
    s1 = prov.scores(sp, archs)
    assert s1.shape == (2, 2) and len(prov._cache) == 2
    s2 = prov.scores(sp, archs[::-1])
    assert np.array_equal(s2, s1[::-1], equal_nan=True) and len(prov._cache) == 2


def test_default_provider_table_or_live_fallback():
    sp = get_space("transnas_micro")
    st = ProxyBO(sp, seed=0, task="transnas_micro/class_object")
    assert isinstance(st.provider, TableProxyProvider)
    st = ProxyBO(sp, seed=0, task="toy/not-a-task")  # no table: computed live
    assert isinstance(st.provider, LiveProxyProvider)
    assert isinstance(ProxyBO(sp, seed=0).provider, LiveProxyProvider)
