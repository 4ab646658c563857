"""NAS-Bench-201 cell space: 4 nodes, 6 edges, 5 ops, 15625 cells (Dong & Yang, ICLR 2020)."""

from __future__ import annotations

from importlib import resources

import numpy as np

from .base import Arch, CellSpace, InvalidArchitecture

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: edge order of the arch string ``|a~0|+|b~0|c~1|+|d~0|e~1|f~2|``
CELL_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))


def _load_index(filename: str) -> np.ndarray | None:
    path = resources.files("metanas.spaces") / "data" / filename
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        return np.load(fh, allow_pickle=False)


class NB201Space(CellSpace):
    """NAS-Bench-201. ``to_str`` gives the official arch string; ``index`` the official index
    (the order of the benchmark's tables, shipped as ``spaces/data/nb201_index.npy``)."""

    def __init__(self) -> None:
        super().__init__("nb201", NB201_OPS, CELL_EDGES, _load_index("nb201_index.npy"))

    def to_str(self, arch: Arch) -> str:
        a = self.validate(arch)
        ops = self.ops
        return (f"|{ops[a[0]]}~0|+|{ops[a[1]]}~0|{ops[a[2]]}~1|"
                f"+|{ops[a[3]]}~0|{ops[a[4]]}~1|{ops[a[5]]}~2|")

    def from_str(self, text: str) -> Arch:
        """The arch of NB201's string form. A tuple of op indices is refused: tools order NB201's
        ops and edges differently (NASLib's ``op_indices``: ops skip, none, 3x3, 1x1, avg and
        edges 01, 02, 03, 12, 13, 23), so a tuple would silently name another cell."""
        if str(text).strip().startswith("("):
            raise InvalidArchitecture(
                f"{text!r} is a tuple of op indices, which tools order differently for "
                f"NAS-Bench-201 (NASLib's op_indices are not this package's); give the string "
                f"form, e.g. '|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|"
                f"none~1|nor_conv_3x3~2|' (metanas.spaces.get('nb201').to_str(arch))")
        try:
            nodes = [n for n in str(text).strip().split("+")]
            out = []
            for j, node in enumerate(nodes, start=1):
                parts = [p for p in node.strip().strip("|").split("|")]
                if len(parts) != j:
                    raise ValueError
                for i, p in enumerate(parts):
                    op, src = p.split("~")
                    if int(src) != i:
                        raise ValueError
                    out.append(self.ops.index(op))
            return self.validate(out)
        except (ValueError, InvalidArchitecture):
            raise InvalidArchitecture(
                f"{text!r} is not a NAS-Bench-201 arch string (expected e.g. "
                f"'|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|+|skip_connect~0|none~1|"
                f"nor_conv_3x3~2|' with ops {', '.join(self.ops)})") from None
