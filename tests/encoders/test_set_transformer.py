"""Set Transformer blocks and the two-level dataset encoder: shapes, permutation
invariance (samples and classes), ragged sets, the no-data path."""

import pytest
import torch

from metanas.encoders import (ISAB, PMA, SAB, DatasetEncoder, DatasetEncoderConfig,
                              pad_classes)

F = 8


def _enc(**kw) -> DatasetEncoder:
    torch.manual_seed(0)
    cfg = dict(feat_dim=F, hidden_dim=16, embed_dim=6, n_heads=2, n_blocks=2)
    cfg.update(kw)
    return DatasetEncoder(DatasetEncoderConfig(**cfg)).double()


def _x(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_blocks_equivariance_and_invariance():
    torch.manual_seed(0)
    x = _x(3, 7, 16)
    perm = torch.randperm(7)
    sab = SAB(16, 16, 4).double()
    torch.testing.assert_close(sab(x[:, perm]), sab(x)[:, perm])
    isab = ISAB(16, 16, 5, 4).double()
    torch.testing.assert_close(isab(x[:, perm]), isab(x)[:, perm])
    pma = PMA(16, 2, 4).double()
    assert pma(x).shape == (3, 2, 16)
    torch.testing.assert_close(pma(x[:, perm]), pma(x))


@pytest.mark.parametrize("isab", [0, 4])
def test_shapes_and_permutation_invariance(isab):
    enc = _enc(isab_inducing=isab)
    x = _x(5, 9, F)
    z = enc(x)
    assert z.shape == (6,)
    g = torch.Generator().manual_seed(1)
    # shuffle the samples of every class independently, then the classes
    shuffled = torch.stack([c[torch.randperm(9, generator=g)] for c in x])
    shuffled = shuffled[torch.randperm(5, generator=g)]
    torch.testing.assert_close(enc(shuffled), z)
    # it does depend on the data
    assert not torch.allclose(enc(x + 1.0), z)


def test_batched_over_tasks():
    enc = _enc()
    xs = _x(3, 4, 6, F)
    out = enc(xs)
    assert out.shape == (3, 6)
    for i in range(3):
        torch.testing.assert_close(out[i], enc(xs[i]))


def test_ragged_sets_and_padding_is_ignored():
    enc = _enc()
    classes = [_x(n, F, seed=n) for n in (2, 5, 3)]
    samples, mask = pad_classes(classes)
    z = enc(samples, mask)
    junk = samples.clone()
    junk[~mask] = 1e3
    torch.testing.assert_close(enc(junk, mask), z)
    # invariance holds with ragged classes too
    torch.testing.assert_close(enc(*pad_classes([classes[2], classes[0], classes[1]])), z)
    # a single full class without mask == the same class with an all-true mask
    full = _x(1, 4, F)
    torch.testing.assert_close(enc(full), enc(full, torch.ones(1, 4, dtype=torch.bool)))


def test_encode_tasks_mixes_data_and_no_data():
    enc = _enc()
    a = _x(3, 4, F, seed=1)
    b = [_x(2, F, seed=2), _x(6, F, seed=3)]
    out = enc.encode_tasks([a, None, b])
    assert out.shape == (3, 6)
    torch.testing.assert_close(out[0], enc(a))
    torch.testing.assert_close(out[1], enc(None))
    torch.testing.assert_close(out[2], enc(*pad_classes(b)))
    assert torch.equal(enc.encode_tasks([None, None]), enc.no_data.expand(2, -1))


def test_no_data_embedding_is_learned():
    enc = _enc()
    assert enc(None) is enc.no_data
    enc(None).sum().backward()
    assert enc.no_data.grad is not None and enc.no_data.grad.abs().sum() > 0
    # a task whose every sample is masked out falls back to it
    x = _x(2, 3, F)
    torch.testing.assert_close(enc(x, torch.zeros(2, 3, dtype=torch.bool)), enc.no_data)


def test_validation():
    enc = _enc()
    with pytest.raises(ValueError, match="features"):
        enc(_x(2, 3, F + 1))
    with pytest.raises(ValueError, match="n_heads"):
        DatasetEncoderConfig(hidden_dim=10, n_heads=4)
