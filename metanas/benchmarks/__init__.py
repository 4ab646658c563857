"""Evaluators (``Evaluation``, ``Evaluator``) and tabular benchmarks.

``TabularBenchmark``, ``get_benchmark`` and ``register_resolver`` (in ``tabular``) are imported
on first use, so importing the protocol stays free of pandas / pyarrow.
"""

from .base import Evaluation, Evaluator

_LAZY = {"TabularBenchmark", "get_benchmark", "register_resolver"}


def _live(task_id, **kwargs):
    from .live import resolve_live

    return resolve_live(task_id, **kwargs)


def __getattr__(name: str):
    if name in _LAZY:
        from . import tabular

        tabular.register_resolver("dataset:", _live)  # live training (metanas.benchmarks.live)
        return getattr(tabular, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Evaluation", "Evaluator", "TabularBenchmark", "get_benchmark", "register_resolver"]
