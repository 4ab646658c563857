"""Shared analytic acquisitions (``metanas.strategies.acquisition``)."""

import pytest
import torch

from metanas.strategies.acquisition import make_acquisition


@pytest.mark.parametrize("name", ["logei", "ei", "pi", "logpi"])
def test_incumbent_keeps_double_precision(name):
    """botorch stores a Python float ``best_f`` as float32 (0.06 resolution near 1e6), which
    changes the argmax when the values carry a large offset; the incumbent stays float64."""
    from botorch.models import SingleTaskGP

    X = torch.rand(6, 2, dtype=torch.float64)
    model = SingleTaskGP(X, 1e6 + X.sum(-1, keepdim=True))
    acq = make_acquisition(name, model, 999999.353)
    assert acq.best_f.dtype == torch.float64 and acq.best_f.item() == 999999.353
