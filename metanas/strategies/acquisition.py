"""Analytic acquisition functions from botorch, scored over many candidates in chunks.

Shared by every model-based strategy (``gp-bo``, ``tnas``) so the names, the UCB convention
and the chunked scoring exist once.
"""

from __future__ import annotations

import numpy as np

#: acquisition names -> botorch class name (``botorch.acquisition.analytic``)
ACQUISITIONS = {
    "logei": "LogExpectedImprovement",
    "ei": "ExpectedImprovement",
    "ucb": "UpperConfidenceBound",
    "pi": "ProbabilityOfImprovement",
    "logpi": "LogProbabilityOfImprovement",
}


def check_acquisition(name: str, extra: tuple[str, ...] = ()) -> str:
    """``name`` if known (an analytic acquisition or one of a strategy's ``extra`` ones),
    else a ``KeyError`` listing the choices."""
    if name not in ACQUISITIONS and name not in extra:
        raise KeyError(f"unknown acquisition {name!r}; choose one of "
                       f"{', '.join([*ACQUISITIONS, *extra])}")
    return name


def incumbent(best_f: float):
    """``best_f`` as a float64 tensor: botorch keeps a Python float as a float32 buffer, which
    at large offsets (values near 1e6: a resolution of 0.06) changes which candidate wins."""
    import torch

    return torch.tensor(float(best_f), dtype=torch.float64)


def make_acquisition(name: str, model, best_f: float, ucb_beta: float = 2.0):
    """botorch analytic acquisition ``name`` on ``model`` (UCB: mean + sqrt(beta) * std;
    the others improve on ``best_f``, in the model's output units)."""
    from botorch.acquisition import analytic

    cls = getattr(analytic, ACQUISITIONS[check_acquisition(name)])
    if name == "ucb":
        return cls(model, beta=ucb_beta)
    return cls(model, best_f=incumbent(best_f))


def score_candidates(model, X, name: str, best_f: float, *, ucb_beta: float = 2.0,
                     chunk_size: int = 16384) -> np.ndarray:
    """Acquisition value of every row of ``X`` ``[N, d]`` (one-point t-batches ``[N, 1, d]``,
    ``chunk_size`` rows per call) -> ``[N]`` array."""
    import torch

    from ..surrogates.gp import quiet_warnings

    out = []
    with torch.no_grad(), quiet_warnings():
        acqf = make_acquisition(name, model, best_f, ucb_beta)
        for s in range(0, X.shape[0], chunk_size):
            out.append(acqf(X[s:s + chunk_size].unsqueeze(-2)))
    return torch.cat(out).numpy()
