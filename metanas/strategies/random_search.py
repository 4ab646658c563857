"""Random search: uniform samples without repetition."""

from __future__ import annotations

from .base import Strategy, register


@register("rs")
class RandomSearch(Strategy):
    """Uniform random search over the space, never proposing an arch twice."""

    def _propose(self, n: int):
        return self.sample_unseen(n)
