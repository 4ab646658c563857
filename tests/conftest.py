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
