"""Test-wide settings: offline Hub, a private temp dir (PyG writes generated files there).

Set at import time, before any test module imports torch-geometric.
"""

import os
import tempfile

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
_TMP = tempfile.mkdtemp(prefix="metanas-tests-")
os.environ["TMPDIR"] = _TMP
tempfile.tempdir = _TMP

import torch  # noqa: E402  (after TMPDIR: torch-geometric reads it on import)

# Tests use tiny tensors and run 2 pytest workers on 2 cores: intra-op threads only add
# waiting (measured: tiny scatters ~10 ms each with 2 threads under load).
torch.set_num_threads(1)
