"""Synthetic evaluator and meta-dataset for the strategy tests (unit tests only; no benchmark
tables)."""

import numpy as np
import pandas as pd

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


def toy_meta_dataset(space_name: str = "transnas_micro", feat: int | None = None):
    """Three synthetic tasks ``toy/t0..2`` of 60 archs each, valued by one fixed random linear
    function of the cell (metric ``acc``, split ``valid``); with ``feat``, each task has
    samples (2 classes x 3 feature vectors of size ``feat``), else none."""
    from metanas.meta_dataset import MetaDataset

    sp = spaces.get(space_name)
    rng = np.random.default_rng(0)
    allx = sp.all_array()
    w = rng.normal(size=(sp.n_edges, sp.n_ops))
    tasks, triples = [], []
    for i in range(3):
        samples = rng.normal(size=(2, 3, feat)).tolist() if feat is not None else None
        tasks.append(dict(task=f"toy/t{i}", space=sp.name, description="synthetic",
                          n_classes=2, class_ids=[0, 1], default_metric="acc",
                          sample_features=samples, report_metric=None, source="test",
                          licence="CC0"))
        for r in rng.choice(len(allx), 60, replace=False):
            a = tuple(int(v) for v in allx[r])
            triples.append(dict(task=f"toy/t{i}", space=sp.name, arch=sp.to_str(a),
                                metric="acc", value=float(sum(w[j, o] for j, o in enumerate(a))),
                                fidelity=0, split="valid", source="test"))
    return MetaDataset(pd.DataFrame(tasks), pd.DataFrame(triples), name="toy")
