"""Small I/O helpers: atomic writes (a crash never leaves a partial file)."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: str | os.PathLike, obj: Any, indent: int | None = None) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=indent).encode())


def read_json(path: str | os.PathLike) -> Any:
    with open(path) as fh:
        return json.load(fh)


def weights_fingerprint(folder: str | os.PathLike, name: str = "model.safetensors") -> str:
    """First 12 hex digits of a SHA-1 over a checkpoint folder's weights (names and bytes of the
    tensors of ``<folder>/<name>``, in name order: independent of the file's layout and
    metadata). Identifies what a run was made with when a folder's weights are re-trained."""
    import hashlib

    from safetensors.numpy import load_file

    h = hashlib.sha1()
    for key, arr in sorted(load_file(str(Path(folder) / name)).items()):
        h.update(key.encode())
        h.update(arr.tobytes())
    return h.hexdigest()[:12]
