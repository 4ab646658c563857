"""Zero-cost proxies computed for real on ``metanas.nn.CellNetwork`` and one mini-batch.

``measures``: the proxies as ``score(net, inputs, targets, loss_fn=...) -> float``
(``grad_norm``, ``snip``, ``synflow``, ``jacob_cov``, ``nwot``); ``registry``: ``compute`` /
``compute_many`` by name for architectures of a cell space; ``data``: ``digits_batch``, a real
offline mini-batch (scikit-learn digits).
"""

from .data import ProxyBatch, digits_batch
from .measures import grad_norm, jacob_cov, nwot, snip, synflow
from .registry import ALIASES, PROXIES, canonical_name, compute, compute_many, get, names

__all__ = ["grad_norm", "snip", "synflow", "jacob_cov", "nwot", "ProxyBatch", "digits_batch",
           "PROXIES", "ALIASES", "names", "canonical_name", "get", "compute", "compute_many"]
