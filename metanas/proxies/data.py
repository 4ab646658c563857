"""Real mini-batches for zero-cost proxies that work offline.

``digits_batch`` draws images from scikit-learn's bundled ``load_digits`` (1797 real 8x8
grey-scale hand-written digits, 10 classes; no download): pixel values 0..16 are scaled to
[0, 1], standardised with the mean / std of the whole data set, resized to ``size x size``
(bilinear, ``align_corners=False``; ``size=8`` keeps the originals) and given ``channels``
identical channels (3 = the grey image repeated, the input of an RGB network; 1 = grey).
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F


class ProxyBatch(NamedTuple):
    """One mini-batch: ``inputs [B, C, H, W]`` float32, ``targets [B]`` int64, and the
    number of classes of the task (the network head size)."""

    inputs: torch.Tensor
    targets: torch.Tensor
    num_classes: int


@lru_cache(maxsize=1)
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32) / 16.0  # [1797, 8, 8]
    x = (x - x.mean()) / x.std()
    x.flags.writeable = False
    y = d.target.astype(np.int64)
    y.flags.writeable = False
    return x, y


def digits_batch(n: int = 64, size: int = 32, seed: int = 0, channels: int = 3) -> ProxyBatch:
    """``n`` distinct digits drawn uniformly without replacement (``numpy`` generator of
    ``seed``), resized to ``size x size`` with ``channels`` channels (see the module doc)."""
    x_all, y_all = _digits()
    if not 1 <= n <= len(x_all):
        raise ValueError(f"n must be in 1..{len(x_all)}, got {n}")
    if size < 1 or channels < 1:
        raise ValueError(f"size and channels must be >= 1, got {size}, {channels}")
    idx = np.random.default_rng(seed).choice(len(x_all), size=n, replace=False)
    x = torch.from_numpy(np.ascontiguousarray(x_all[idx]))[:, None]  # [n, 1, 8, 8]
    if size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.expand(-1, channels, -1, -1).contiguous()
    y = torch.from_numpy(np.ascontiguousarray(y_all[idx]))
    return ProxyBatch(x, y, 10)


__all__ = ["ProxyBatch", "digits_batch"]
