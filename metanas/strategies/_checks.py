"""Checks of strategy settings at construction time.

``adapt.py --set METHOD.KEY=VALUE`` passes any JSON value to a strategy's constructor, so every
numeric / enumerated setting is checked there, before the run starts: a bad value is a
``UserInputError`` (a ``ValueError``) whose one-line message names the method, the setting, the
value and what is allowed, e.g. ``gp-bo: chunk_size must be an integer >= 1, got 0``.

Each check returns the value as the strategy stores it (``int`` / ``float`` / ``bool``), the
same conversion the constructors did before, so a valid value changes nothing.
"""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Iterable

import numpy as np

from ..errors import UserInputError

#: ``kernel`` names ``metanas.surrogates.gp.make_kernel`` understands (mirrored here so a
#: strategy's constructor does not import torch; a test keeps the two equal)
GP_KERNELS = ("matern52", "rbf", "matern52-gamma")


def _fail(method: str, name: str, rule: str, value: Any) -> UserInputError:
    return UserInputError(f"{method}: {name} must be {rule}, got {value!r}")


def _is_int(value: Any) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, Integral):
        return True
    return isinstance(value, Real) and math.isfinite(float(value)) and float(value).is_integer()


def _is_number(value: Any) -> bool:
    return (not isinstance(value, (bool, np.bool_)) and isinstance(value, Real)
            and math.isfinite(float(value)))


def integer(name: str, value: Any, lo: int | None, method: str) -> int:
    """``value`` as an ``int`` when it is an integer (an integral float too) ``>= lo``
    (``lo=None``: any integer)."""
    rule = "an integer" + (f" >= {lo}" if lo is not None else "")
    if not _is_int(value) or (lo is not None and int(value) < lo):
        raise _fail(method, name, rule, value)
    return int(value)


def at_least(name: str, value: Any, lo: float, method: str, lo_name: str | None = None
             ) -> float:
    """``value`` as a ``float`` when it is a finite number ``>= lo`` (``lo_name``: the
    setting ``lo`` comes from, named in the message)."""
    if not _is_number(value) or float(value) < lo:
        bound = f"{lo_name} ({lo:g})" if lo_name else f"{lo:g}"
        raise _fail(method, name, f"a finite number >= {bound}", value)
    return float(value)


def positive(name: str, value: Any, method: str) -> float:
    """``value`` as a ``float`` when it is a finite number ``> 0``."""
    if not _is_number(value) or not float(value) > 0:
        raise _fail(method, name, "a finite number > 0", value)
    return float(value)


def optional_positive(name: str, value: Any, method: str) -> float | None:
    """``None``, or ``value`` as a finite ``float > 0``."""
    if value is None:
        return None
    if not _is_number(value) or not float(value) > 0:
        raise _fail(method, name, "a finite number > 0 or null (None)", value)
    return float(value)


def one_of(name: str, value: Any, choices: Iterable[str], method: str) -> Any:
    """``value`` when it is one of ``choices``."""
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise _fail(method, name, "one of " + ", ".join(choices), value)
    return value


def name_or_callable(name: str, value: Any, choices: Iterable[str], method: str,
                     what: str = "a callable") -> Any:
    """``value`` when it is one of ``choices`` or a callable (e.g. a custom encoding)."""
    if callable(value) and not isinstance(value, str):
        return value
    choices = tuple(choices)
    if not isinstance(value, str) or value not in choices:
        raise _fail(method, name, "one of " + ", ".join(choices) + f" or {what}", value)
    return value


def flag(name: str, value: Any, method: str) -> bool:
    """``value`` as a ``bool`` when it is one (or 0 / 1): a string such as ``"False"`` is an
    error, not ``True``."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if _is_int(value) and int(value) in (0, 1):
        return bool(int(value))
    raise _fail(method, name, "true or false", value)


__all__ = ["GP_KERNELS", "at_least", "flag", "integer", "name_or_callable", "one_of",
           "optional_positive", "positive"]
