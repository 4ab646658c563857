"""REA's tournament and ``Strategy.incumbent`` with failed (NaN / inf) observations."""

import math

import numpy as np

from metanas import spaces, strategies

SPACE = spaces.get("transnas_micro")


def _archs(n):
    rng = np.random.default_rng(0)
    out = []
    while len(out) < n:
        a = SPACE.sample(rng)[0]
        if a not in out:
            out.append(a)
    return out


def test_a_failed_member_never_wins_a_tournament():
    """NaN compares False both ways, so ``max`` kept a NaN member whenever it was drawn first
    (77 of 200 tournaments here); it must lose to any finite member."""
    st = strategies.make("rea", SPACE, seed=0, population_size=3, tournament_size=3)
    archs = _archs(3)
    st.tell(archs, [math.nan, 50.0, 60.0])
    wins = [st._tournament() for _ in range(200)]
    assert wins.count(archs[0]) == 0
    assert wins.count(archs[2]) == 200  # the whole population is drawn: the best wins


def test_tournament_keeps_the_first_of_equals_and_an_all_failed_population():
    st = strategies.make("rea", SPACE, seed=0, population_size=3, tournament_size=3)
    archs = _archs(3)
    st.tell(archs, [math.nan, -math.inf, math.nan])
    for _ in range(20):  # all failed: whichever is drawn first (any member, no error)
        assert st._tournament() in archs
    st2 = strategies.make("rea", SPACE, seed=0, population_size=3, tournament_size=2)
    st2.tell(archs, [7.0, 7.0, math.nan])
    assert {st2._tournament() for _ in range(50)} <= set(archs[:2])


def test_incumbent_is_the_best_finite_observation():
    st = strategies.make("rs", SPACE, seed=0)
    assert st.incumbent is None
    archs = _archs(5)
    st.tell(archs[:2], [math.nan, -math.inf])
    assert st.incumbent is None  # nothing finite observed
    st.tell(archs[2:], [3.0, math.nan, 3.0])
    assert st.incumbent == (archs[2], 3.0)  # NaN is skipped; the first of equals
    # anasod's incumbent encoding (the one user of ``incumbent``) follows it
    an = strategies.make("anasod-rs", SPACE, seed=0)
    assert an.incumbent_encoding() is None
    an.tell(archs[:2], [math.nan, 1.0])
    from metanas.spaces.encodings import opdist

    assert np.array_equal(an.incumbent_encoding(), opdist(SPACE, [archs[1]])[0])
