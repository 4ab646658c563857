"""ProxyBO (``metanas.strategies.proxybo``): a proxy's ``-inf`` (a failed computation, e.g.
NASWOT's singular kernel) is the worst score, not an unknown one; only NaN is unknown. The
shipped ``digits_nwot`` table stores those ``-inf`` as NaN, which the table provider reads back
as the worst score."""

import numpy as np
import pytest

from metanas import strategies
from metanas.spaces import get as get_space
from metanas.strategies.proxybo import (FunctionProvider, LiveProxyProvider,
                                        TableProxyProvider, rank_agreement, ranks_desc)

SINGULAR = "|none~0|+|none~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"


def test_ranks_desc_inf_is_worst_or_best_nan_is_neutral():
    r = ranks_desc(np.array([3.0, -np.inf, 1.0, np.nan, np.inf]))
    assert r[4] == 1.0 and r[4] < r[0] < r[2] < r[1]
    assert r[1] == 5.0  # -inf: the worst rank, below every finite score
    assert r[3] == pytest.approx(3.0)  # NaN: unknown, the mean rank
    tied = ranks_desc(np.array([2.0, -np.inf, -np.inf]))
    assert tied[0] == 1.0 and tied[1] == tied[2] == 2.5


def test_rank_agreement_counts_inf_as_lowest():
    y = np.array([1.0, 2.0, 3.0, 4.0])
    assert rank_agreement(np.array([-np.inf, 2.0, 3.0, 4.0]), y) == 1.0
    assert rank_agreement(np.array([4.0, 3.0, 2.0, -np.inf]), y) == 0.0
    # two -inf tie: that pair counts 1/2, the other five agree
    assert rank_agreement(np.array([-np.inf, -np.inf, 3.0, 4.0]), y) == pytest.approx(5.5 / 6)


def test_function_provider_keeps_inf():
    sp = get_space("nb201")
    prov = FunctionProvider({"f": lambda s, a: np.array([1.0, -np.inf, np.nan])[:len(a)]})
    out = prov.scores(sp, [sp.from_index(i) for i in range(3)])
    assert out[0, 0] == 1.0 and np.isneginf(out[1, 0]) and np.isnan(out[2, 0])


def test_table_digits_nwot_nan_is_worst():
    sp = get_space("nb201")
    prov = TableProxyProvider("nb201/cifar10", proxies=["digits_nwot", "digits_synflow_log"])
    col = prov._table[:, 0]
    worst = np.isneginf(col)
    assert worst.sum() == 201 and not np.isnan(col).any()
    # exactly cells that compute the zero function (their NASWOT kernel is singular)
    assert all(sp.computes_zero(sp.from_index(int(i))) for i in np.nonzero(worst)[0])
    a = sp.from_str(SINGULAR)
    s = prov.scores(sp, [a, sp.from_index(0)])
    assert np.isneginf(s[0, 0]) and np.isfinite(s[0, 1])
    assert prov.coverage.tolist() == [sp.size, sp.size]


def test_table_published_nan_stays_unknown():
    prov = TableProxyProvider("nb201/cifar10", proxies=["nwot", "jacov"])
    assert not np.isinf(prov._table).any()  # NaN in the published tables: unknown


def test_live_nwot_of_singular_cell_is_worst():
    from metanas.nn.cell_network import NetworkConfig
    from metanas.proxies import digits_batch

    sp = get_space("nb201")
    prov = LiveProxyProvider(names=("nwot",), batch=digits_batch(n=32, size=16, seed=0),
                             config=NetworkConfig(C=8, N=1, in_channels=3, num_classes=10))
    s = prov.scores(sp, [sp.from_str(SINGULAR)])
    assert np.isneginf(s[0, 0])


def test_failed_proxy_candidate_ranks_last():
    """A candidate whose only proxy failed (-inf) is proposed after one scored low, when the
    proxy carries all the weight."""
    sp = get_space("nb201")
    good = {sp.from_index(i): float(i) for i in range(1, 40)}

    def proxy(space, archs):
        return np.array([good.get(a, -np.inf) for a in archs])

    cands = [sp.from_index(i) for i in range(0, 40)]
    st = strategies.make("proxybo", sp, seed=0, candidates=cands, proxies={"p": proxy},
                         n_init=3, n_random=100, n_local=0, fit_maxiter=5)
    a = st.ask(3)
    st.tell(a, [good.get(x, 0.0) for x in a])
    order = st.ask(40 - 3)
    if sp.from_index(0) not in a:
        assert order[-1] == sp.from_index(0)


@pytest.mark.parametrize("bad", [{"a": 1}, {"a": "synflow"}, {}])
def test_function_provider_rejects_non_callables(bad):
    with pytest.raises((TypeError, ValueError), match="proxies"):
        FunctionProvider(bad)


def test_unknown_proxies_string_is_named():
    with pytest.raises(ValueError, match="unknown proxies string 'Table'; use 'table' or "
                                         "'live'"):
        strategies.make("proxybo", get_space("nb201"), seed=0, proxies="Table")


def test_proxies_as_list_of_table_names():
    st = strategies.make("proxybo", get_space("nb201"), seed=0, task="nb201/cifar10",
                         proxies=["synflow", "nwot"])
    assert isinstance(st.provider, TableProxyProvider)
    assert st.provider.names == ("synflow", "nwot")
    with pytest.raises(ValueError, match="task"):
        strategies.make("proxybo", get_space("nb201"), seed=0, proxies=["synflow"])
