"""Evaluators (``Evaluation``, ``Evaluator``) and tabular benchmarks."""

from .base import Evaluation, Evaluator

__all__ = ["Evaluation", "Evaluator"]
