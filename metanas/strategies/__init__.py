"""Search strategies behind one ask/tell interface; ``make(name, space, seed)`` builds one.

Importing this package registers every built-in method.
"""

from .base import Strategy, available, make, register
from . import random_search  # noqa: F401  (registers "rs")

__all__ = ["Strategy", "available", "make", "register"]
