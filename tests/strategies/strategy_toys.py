"""Synthetic evaluator for the strategy tests (unit tests only; no benchmark tables)."""

import numpy as np

from metanas import spaces
from metanas.benchmarks import Evaluation
from metanas.spaces import encodings as enc


class LinearToy:
    """A fixed random linear function of the one-hot encoding on a whole space (TransNAS micro:
    4096 cells by default). ``table`` holds every arch's value in index order."""

    def __init__(self, space_name: str = "transnas_micro", seed: int = 0):
        self.space = spaces.get(space_name)
        self.task = f"toy/{space_name}/{seed}"
        self.metric = "toy"
        self.n_evaluations = 0
        self.w = np.random.default_rng(seed).normal(size=self.space.n_edges * self.space.n_ops)
        self.table = enc.onehot(self.space, self.space.all_array()) @ self.w

    def evaluate(self, archs):
        self.n_evaluations += len(archs)
        v = enc.onehot(self.space, archs) @ self.w
        return [Evaluation(float(x)) for x in v]
