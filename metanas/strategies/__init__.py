"""Search strategies behind one ask/tell interface; ``make(name, space, seed)`` builds one.

Importing this package registers every built-in method:

- ``rs``: random search (``random_search``)
- ``rea``: regularised evolution (``rea``)
- ``ls``: local search (``local_search``)
- ``gp-bo``: exact-GP Bayesian optimisation (``gp_bo``)
- ``proxybo``: BO fused with zero-cost proxies by dynamic weights (``proxybo``)
- ``anasod-rs``, ``anasod-biased-rs``, ``anasod-bo``: search on the operation-distribution
  encoding (``anasod``)
- ``bananas``: neural-ensemble BO on the path encoding (``bananas``)
- ``metad2a``: meta-learned (dataset, arch) predictor ranking, leave-one-task-out (``metad2a``)
- ``base``, ``base-prior``, ``darts``, ``snas``, ``darts+``: one-shot supernet searches
  (BASE's meta-learned prior with / without quick adaptation, DARTS, SNAS, DARTS+) (``oneshot``)
"""

from .base import Strategy, available, constructor_params, make, register, run_settings
from . import random_search  # noqa: F401  (registers "rs")
from . import rea  # noqa: F401  (registers "rea")
from . import local_search  # noqa: F401  (registers "ls")
from . import gp_bo  # noqa: F401  (registers "gp-bo")
from . import proxybo  # noqa: F401  (registers "proxybo")
from . import anasod  # noqa: F401  (registers "anasod-rs", "anasod-biased-rs", "anasod-bo")
from . import bananas  # noqa: F401  (registers "bananas")
from . import metad2a  # noqa: F401  (registers "metad2a")
from . import tnas  # noqa: F401  (registers "tnas")
from . import oneshot  # noqa: F401  (registers "base", "base-prior", "darts", "snas", "darts+")

__all__ = ["Strategy", "available", "constructor_params", "make", "register", "run_settings"]
