"""Search strategies behind one ask/tell interface; ``make(name, space, seed)`` builds one.

Importing this package registers every built-in method:

- ``rs``: random search (``random_search``)
- ``rea``: regularised evolution (``rea``)
- ``ls``: local search (``local_search``)
- ``gp-bo``: exact-GP Bayesian optimisation (``gp_bo``)
"""

from .base import Strategy, available, make, register
from . import random_search  # noqa: F401  (registers "rs")
from . import rea  # noqa: F401  (registers "rea")
from . import local_search  # noqa: F401  (registers "ls")
from . import gp_bo  # noqa: F401  (registers "gp-bo")

__all__ = ["Strategy", "available", "make", "register"]
