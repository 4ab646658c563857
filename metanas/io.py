"""Small I/O helpers: atomic writes (a crash never leaves a partial file).

Permissions: the final file gets the mode a plain ``open(path, "wb")`` of a new file would
give it, ``0o666`` less the process umask (and any default ACL of the folder). The temp file
is created with ``os.open(..., O_CREAT | O_EXCL, 0o666)``, so the kernel applies the umask
itself at creation, exactly as for ``open()``: nothing reads the umask (``os.umask`` can only
read it by setting it, which races with other threads creating files) and no ``chmod``
follows (which would also override a default ACL). ``tempfile.mkstemp`` is not used: it
creates ``0o600`` files, which left checkpoints unreadable to others once copied to a shared
folder. Replacing an existing file gives it the new-file mode too (not the old file's).
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

#: flags of the temp file: new (never an existing file or a symlink), write-only
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | \
    getattr(os, "O_BINARY", 0)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new, empty temp file next to ``path`` (mode ``0o666`` & ~umask): ``(fd, name)``."""
    for _ in range(100):
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, _TMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"cannot create a temp file next to {path}: 100 names taken")


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder + ``os.replace``; the file
    gets a plain ``open()``'s mode (``0o666`` & ~umask, see the module docstring)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
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


#: packages whose versions can change a search's numbers (recorded with every result)
RESULT_PACKAGES = ("metanas", "torch", "gpytorch", "botorch", "linear-operator",
                   "torch-geometric", "numpy", "scipy", "pandas", "scikit-learn")


def platform_info() -> dict:
    """Where a checkpoint or result was made: ``{"cpu", "machine", "isa", "python", "torch",
    "threads"}`` (``threads``: torch's intra-op threads).
    Recorded with meta-training results because floating-point results, and so the weights
    Reptile converges to, differ between CPUs: the same recipe and seed re-trained elsewhere is
    another checkpoint."""
    import platform

    import torch

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:  # the vector instruction set torch's CPU kernels dispatch to (e.g. AVX2, AVX512)
        isa = torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        isa = "unknown"
    return {"cpu": cpu, "machine": platform.machine(), "isa": isa,
            "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def environment_info() -> dict[str, Any]:
    """What produced a search result: ``platform_info()`` plus the OS (``platform``), the
    core count (``cpu_count``) and the versions of ``RESULT_PACKAGES`` (``packages``;
    ``None`` for one not installed). JSON-serialisable."""
    import platform
    from importlib import metadata

    versions: dict[str, str | None] = {}
    for name in RESULT_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {**platform_info(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
            "packages": versions}
