"""Local search (``metanas.strategies.local_search``): a failed (non-finite) evaluation counts
as the worst value, never as the centre."""

import math

from metanas import strategies
from metanas.spaces import get as get_space


def test_nan_start_arch_is_not_the_centre():
    ls = strategies.make("ls", get_space("nb201"), seed=0, n_init=3)
    a = ls.ask(3)
    ls.tell(a, [math.nan, 50.0, 70.0])
    ls.ask(1)
    assert ls._center == a[2]


def test_nan_neighbour_does_not_replace_the_centre():
    ls = strategies.make("ls", get_space("nb201"), seed=0, n_init=2)
    a = ls.ask(2)
    ls.tell(a, [10.0, 60.0])
    nb = ls.space.neighbours(a[1])
    # every neighbour fails: the centre is a local optimum (a restart), never a NaN arch
    for _ in range(len(nb) + 5):
        b = ls.ask(1)
        assert ls._center in (a[1], None) or ls._center not in nb
        ls.tell(b, [math.nan if b[0] in nb else 0.0])
        if ls.n_restarts:
            break
    assert ls.n_restarts == 1


def test_inf_values_count_as_worst():
    ls = strategies.make("ls", get_space("nb201"), seed=0, n_init=3)
    a = ls.ask(3)
    ls.tell(a, [math.inf, -math.inf, 5.0])
    ls.ask(1)
    assert ls._center == a[2]
