"""metanas.io: atomic writes leave no partial file and give a plain ``open()``'s mode
(``0o666`` less the umask), not the ``0o600`` of a ``mkstemp`` temp file."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from metanas.io import atomic_write_bytes, atomic_write_json, read_json


@pytest.fixture
def umask():
    """Set the process umask for one test (restored after it)."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_(mask: int) -> None:
        os.umask(mask)

    yield set_
    os.umask(saved)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def plain_open_mode(folder: Path) -> int:
    p = folder / "plain"
    with open(p, "wb") as fh:
        fh.write(b"x")
    m = mode(p)
    p.unlink()
    return m


@pytest.mark.parametrize("mask, want", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600),
                                        (0o002, 0o664)])
def test_atomic_write_has_plain_open_mode(tmp_path, umask, mask, want):
    umask(mask)
    atomic_write_bytes(tmp_path / "a.bin", b"data")
    atomic_write_json(tmp_path / "sub" / "b.json", {"k": 1})
    assert (tmp_path / "a.bin").read_bytes() == b"data"
    assert read_json(tmp_path / "sub" / "b.json") == {"k": 1}
    assert mode(tmp_path / "a.bin") == mode(tmp_path / "sub" / "b.json") == want
    assert plain_open_mode(tmp_path) == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "sub"]  # no temp left


def test_replacing_a_private_file_gives_the_new_file_mode(tmp_path, umask):
    umask(0o022)
    p = tmp_path / "old.json"
    p.write_text("{}")
    p.chmod(0o600)  # e.g. written by a metanas that created its files 0600
    atomic_write_json(p, [1, 2])
    assert read_json(p) == [1, 2] and mode(p) == 0o644


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, umask):
    umask(0o022)
    p = tmp_path / "keep.bin"
    atomic_write_bytes(p, b"old")
    with pytest.raises(TypeError):
        atomic_write_bytes(p, "not bytes")  # type: ignore[arg-type]
    assert p.read_bytes() == b"old"
    assert [q.name for q in tmp_path.iterdir()] == ["keep.bin"]


def _tiny_checkpoint(folder: Path) -> Path:
    import torch

    from metanas import hub
    from metanas.surrogates.deep_kernel import DeepKernelConfig, DeepKernelGP

    torch.manual_seed(0)
    model = DeepKernelGP(DeepKernelConfig.for_space("transnas_micro", mlp_hidden=(8,)))
    return hub.save_pretrained(model, folder)


def test_checkpoint_and_meta_dataset_files_are_readable_by_others(tmp_path, umask):
    """What metanas writes through metanas.io (a checkpoint's config.json and card, a
    meta-dataset collection) follows the umask: 0644 under the usual 022, 0640 under 027
    (``MetaDataset.save`` no longer forces 0644)."""
    from metanas.meta_dataset import MetaDataset

    umask(0o022)
    d = _tiny_checkpoint(tmp_path / "ckpt")
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json",
                                                    "model.safetensors"]
    for name in ("README.md", "config.json"):
        assert mode(d / name) == 0o644, name
    small = MetaDataset.load("transnas_micro").subset(["transnas_micro/jigsaw"])
    umask(0o027)
    small.save(tmp_path / "coll", compression_level=1)
    files = sorted((tmp_path / "coll").iterdir())
    assert {p.name for p in files} == {"tasks.parquet", "triples.parquet", "proxies.parquet"}
    assert all(mode(p) == 0o640 for p in files), {p.name: oct(mode(p)) for p in files}


def test_checkpoint_weights_are_readable_by_others(tmp_path, umask):
    umask(0o022)
    d = _tiny_checkpoint(tmp_path / "ckpt")
    assert mode(d / "model.safetensors") == 0o644
