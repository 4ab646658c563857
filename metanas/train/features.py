"""Per-class sample features of a task, the input of the Set-Transformer dataset encoder.

The featuriser (``FEATURISER = "grey8x8-area-zscore/v1"``) is fixed and has no parameters,
so the features of every task (any image size, any channel count, any pixel scale) live in
the same 64-dimensional space and dataset embeddings are comparable:

1. grey: the mean over the channels (1 channel: the image itself; 3: (R + G + B) / 3);
2. area interpolation to 8x8 (``adaptive_avg_pool2d``: the mean over each of 8x8 cells;
   images smaller than 8 in a dimension repeat their pixels);
3. flatten to 64 values (row-major) and standardise per image: subtract the image's mean and
   divide by its standard deviation (a constant image gives zeros).

Step 3 makes the features independent of the pixel scale (0..16, 0..255, 0..1) and of the
brightness / contrast of each image.

``sample_features`` picks ``n_per_class`` (default 20) images per class from the task's
**train** split (never valid / test) with ``numpy.random.default_rng([seed, class_id])``
(without replacement; a class with fewer images is repeated cyclically in the same drawn
order, so the shape is fixed) and returns ``float32 [n_classes, n_per_class, 64]``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data import TaskData

FEATURISER = "grey8x8-area-zscore/v1"
FEAT_SIZE = 8
FEAT_DIM = FEAT_SIZE * FEAT_SIZE
N_PER_CLASS = 20


def featurise(images) -> np.ndarray:
    """``[N, C, H, W]`` or ``[N, H, W]`` images (any size, channels, scale) -> float32
    ``[N, 64]`` (see the module doc)."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4 or min(x.shape[1:]) < 1:
        raise ValueError(f"featurise needs [N, C, H, W] or [N, H, W] images, got {tuple(x.shape)}")
    grey = x.mean(dim=1, keepdim=True)
    small = F.adaptive_avg_pool2d(grey, FEAT_SIZE).flatten(1)  # [N, 64]
    small = small - small.mean(dim=1, keepdim=True)
    std = small.std(dim=1, unbiased=False, keepdim=True)
    small = torch.where(std > 1e-8, small / std.clamp_min(1e-8), torch.zeros_like(small))
    return small.to(torch.float32).numpy()


def sample_features(x, y, n_classes: int, n_per_class: int = N_PER_CLASS, seed: int = 0,
                    class_ids=None) -> np.ndarray:
    """``float32 [n_classes, n_per_class, 64]`` features of ``n_per_class`` images per class.

    Args:
        x: images ``[N, C, H, W]`` (raw pixels; any scale). y: labels ``0..n_classes-1``.
        seed: selection seed; class ``c`` uses ``default_rng([seed, class_ids[c]])``.
        class_ids: RNG key of each class (default ``0..n_classes-1``); ``TaskData`` passes
            the source's class indices, so a class gets the same samples in every task.
    """
    y = np.asarray(y)
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    keys = list(range(n_classes)) if class_ids is None else [int(k) for k in class_ids]
    picks = []
    for c in range(n_classes):
        idx = np.flatnonzero(y == c)
        if not len(idx):
            raise ValueError(f"class {c} has no images")
        idx = idx[np.random.default_rng([int(seed), keys[c]]).permutation(len(idx))]
        picks.append(np.resize(idx, n_per_class))  # cyclic repeat when too few
    sel = np.concatenate(picks)
    return featurise(np.asarray(x)[sel]).reshape(n_classes, n_per_class, FEAT_DIM)


def task_sample_features(data: TaskData, n_per_class: int = N_PER_CLASS,
                         seed: int = 0) -> np.ndarray:
    """``sample_features`` of a task's raw train images."""
    return sample_features(data.raw_train, data.y_train.numpy(), data.n_classes, n_per_class,
                           seed, data.class_ids)


__all__ = ["FEATURISER", "FEAT_DIM", "N_PER_CLASS", "featurise", "sample_features",
           "task_sample_features"]
