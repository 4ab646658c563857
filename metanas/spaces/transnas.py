"""TransNAS-Bench-101 micro cell space: 4 nodes, 6 edges, 4 ops, 4096 cells (Duan et al., CVPR 2021).

The cell string of the benchmark is ``64-41414-a_bc_def``: ``a`` is the op on 0->1, ``bc`` on
0->2, 1->2, ``def`` on 0->3, 1->3, 2->3, with ops 0 none, 1 skip_connect, 2 conv 1x1,
3 conv 3x3. That is the same edge order as NAS-Bench-201's string, so both spaces share
``CellSpace`` and the same op names (TransNAS lacks ``avg_pool_3x3``).
"""

from __future__ import annotations

import re

from .base import Arch, CellSpace, InvalidArchitecture
from .nb201 import CELL_EDGES, _load_index

TRANSNAS_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3")
MACRO_PREFIX = "64-41414-"
_CELL_RE = re.compile(r"^(?:64-41414-)?([0-3])_([0-3]{2})_([0-3]{3})$")


class TransNASMicroSpace(CellSpace):
    """TransNAS-Bench-101 micro. ``to_str`` gives ``64-41414-a_bc_def``; ``from_str`` also
    takes ``a_bc_def`` and the tuple form ``(a, b, c, d, e, f)`` of NASLib's tables;
    ``index`` is the row order of the benchmark table (``spaces/data/transnas_micro_index.npy``)."""

    def __init__(self) -> None:
        super().__init__("transnas_micro", TRANSNAS_OPS, CELL_EDGES,
                         _load_index("transnas_micro_index.npy"))

    def to_str(self, arch: Arch) -> str:
        a = self.validate(arch)
        return f"{MACRO_PREFIX}{a[0]}_{a[1]}{a[2]}_{a[3]}{a[4]}{a[5]}"

    def from_str(self, text: str) -> Arch:
        t = self._tuple_from_str(text)
        if t is not None:
            return t
        m = _CELL_RE.match(str(text).strip())
        if not m:
            raise InvalidArchitecture(
                f"{text!r} is not a TransNAS-Bench-101 micro cell string (expected e.g. "
                f"'64-41414-3_13_123' or '(3, 1, 3, 1, 2, 3)', ops 0 none, 1 skip, 2 conv1x1, "
                f"3 conv3x3)")
        return self.validate(int(c) for c in "".join(m.groups()))
