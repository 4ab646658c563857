"""Small models and data for the Hub tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from metanas import spaces
from metanas.encoders import DatasetEncoderConfig
from metanas.surrogates.deep_kernel import DeepKernelConfig, DeepKernelGP

SPACE = spaces.get("transnas_micro")


def tiny_model(seed: int = 0) -> DeepKernelGP:
    """A randomly initialised (seeded) small TNAS deep-kernel GP."""
    torch.manual_seed(seed)
    cfg = DeepKernelConfig.for_space(SPACE.name, mlp_hidden=(16,), feat_dim=4,
                                     dataset_encoder=DatasetEncoderConfig(feat_dim=8))
    return DeepKernelGP(cfg).eval()


def predictions(model: DeepKernelGP) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean / variance on 64 archs after conditioning on 24 fixed observations."""
    rng = np.random.default_rng(0)
    allx = SPACE.all_array()
    idx = rng.choice(len(allx), 88, replace=False)
    X = torch.as_tensor(allx[idx[:24]], dtype=torch.float64)
    y = torch.as_tensor(rng.normal(size=24))
    model.set_task(X, y)
    model.eval()
    return model.predict(torch.as_tensor(allx[idx[24:]], dtype=torch.float64))


def assert_same_predictions(a: DeepKernelGP, b: DeepKernelGP) -> None:
    ma, va = predictions(a)
    mb, vb = predictions(b)
    assert torch.equal(ma, mb) and torch.equal(va, vb)


def repo_files(folder: Path, names=None) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(Path(folder).iterdir())
            if p.is_file() and (names is None or p.name in names)}
