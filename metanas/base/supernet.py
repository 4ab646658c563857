"""One-shot supernet over a cell space: every edge carries a mixture of all the space's ops.

``SuperNet(space, config)`` has the macro skeleton of ``metanas.nn.CellNetwork`` (NB201's
``TinyNetwork``: stem, three stages of ``N`` cells at ``C, 2C, 4C`` channels separated by
residual reduction blocks, BN-ReLU, global pooling, linear head), so the architecture derived
from it is trained from scratch in the same network family by ``train_and_evaluate``. Each
cell is a ``MixedCell``: edge ``e`` computes ``sum_k w[e, k] * op_k(x)`` (``MixedOp``, DARTS'
continuous relaxation) with one ``[n_edges, n_ops]`` weight matrix shared by every cell (NB201
has a single cell type), given to ``forward``: a softmax (DARTS), a Gumbel-softmax sample
(SNAS / GDAS / BASE) or a one-hot arch (evaluating a sub-network).

BatchNorm layers have no affine parameters and no running statistics (``affine=False``,
``track_running_stats=False``, as in the DARTS / NB201 search code): they normalise with the
batch statistics in training and evaluation, so the supernet has no buffers and every
parameter is a conv / linear weight.

Parameters are drawn from a ``torch.Generator`` (PyTorch-default initialisation, as
``CellNetwork``); the global RNG is neither used nor advanced.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from ..nn.cell_network import OPS, ResidualReduction, init_parameters, make_op
from ..spaces import Arch, CellSpace
from ..spaces import get as get_space

__all__ = ["SuperNetConfig", "SuperNet", "MixedOp", "MixedCell", "supported_space",
           "arch_onehot"]


@dataclass(frozen=True)
class SuperNetConfig:
    """Macro configuration of the supernet (the same fields as ``NetworkConfig``).

    Attributes:
        C: channels of the first stage (then 2C, 4C). Default 8, as ``TrainConfig``.
        N: mixed cells per stage. Default 1, as ``TrainConfig``.
        in_channels: input image channels (1 for digits).
        num_classes: size of the linear head (5 for 5-way tasks).
    """

    C: int = 8
    N: int = 1
    in_channels: int = 1
    num_classes: int = 5

    def __post_init__(self) -> None:
        for name in ("C", "in_channels", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"SuperNetConfig.{name} must be >= 1, got {getattr(self, name)}")
        if int(self.N) < 0:
            raise ValueError(f"SuperNetConfig.N must be >= 0, got {self.N}")

    def replace(self, **changes) -> "SuperNetConfig":
        return replace(self, **changes)


def supported_space(space: CellSpace | str) -> CellSpace:
    """The space, if the supernet implements all its ops (NB201, TransNAS micro); else a
    ``ValueError`` naming the missing ops."""
    space = get_space(space) if isinstance(space, str) else space
    missing = sorted(set(space.ops) - set(OPS))
    if missing:
        raise ValueError(f"the supernet does not implement ops {missing} of space {space.name!r}")
    return space


def arch_onehot(space: CellSpace, arch: Arch) -> torch.Tensor:
    """``[n_edges, n_ops]`` one-hot matrix of ``arch``."""
    arch = space.validate(arch)
    out = torch.zeros(space.n_edges, space.n_ops)
    out[torch.arange(space.n_edges), torch.tensor(arch)] = 1.0
    return out


class MixedOp(nn.Module):
    """All ops of one edge; ``forward(x [B, C, H, W], w [n_ops]) = sum_k w[k] op_k(x)``.
    Ops with an exactly-zero weight and no gradient path (``w`` not requiring grad) are
    skipped (a one-hot arch runs one op)."""

    def __init__(self, op_names: tuple[str, ...], C: int) -> None:
        super().__init__()
        self.ops = nn.ModuleList(make_op(n, C, C, 1, affine=False, track_running_stats=False)
                                 for n in op_names)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        skip_zeros = not w.requires_grad
        out = None
        for k, op in enumerate(self.ops):
            if skip_zeros and float(w[k]) == 0.0:
                continue
            y = w[k] * op(x)
            out = y if out is None else out + y
        return out if out is not None else x.mul(0.0)


class MixedCell(nn.Module):
    """A DAG cell of ``MixedOp`` edges (node ``j`` sums its incoming edges, in edge order);
    ``forward(x, weights [n_edges, n_ops])``."""

    def __init__(self, space: CellSpace, C: int) -> None:
        super().__init__()
        self.edges = space.edges
        self.n_nodes = space.n_nodes
        self.edge_ops = nn.ModuleList(MixedOp(space.ops, C) for _ in space.edges)
        self._incoming = [[e for e, (_, d) in enumerate(self.edges) if d == j]
                          for j in range(self.n_nodes)]

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, self.n_nodes):
            out = None
            for e in self._incoming[j]:
                y = self.edge_ops[e](nodes[self.edges[e][0]], weights[e])
                out = y if out is None else out + y
            nodes.append(out)
        return nodes[-1]


class SuperNet(nn.Module):
    """NB201-skeleton supernet (module doc).

    Args:
        space: a ``CellSpace`` (or its name) whose ops are all in ``metanas.nn.OPS``.
        config: ``SuperNetConfig``.
        generator: initialise the parameters from it (default ``manual_seed(0)``).

    ``forward(x [B, in_channels, H, W], weights [n_edges, n_ops]) -> logits [B, num_classes]``.
    """

    def __init__(self, space: CellSpace | str = "nb201", config: SuperNetConfig | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        space = supported_space(space)
        self.space = space
        self.config = config = config or SuperNetConfig()
        C, N = config.C, config.N
        with torch.random.fork_rng(devices=[]):
            self.stem = nn.Sequential(
                nn.Conv2d(config.in_channels, C, 3, padding=1, bias=False),
                nn.BatchNorm2d(C, affine=False, track_running_stats=False))
            blocks: list[nn.Module] = []
            C_prev = C
            for stage, C_curr in enumerate((C, 2 * C, 4 * C)):
                if stage > 0:
                    blocks.append(ResidualReduction(C_prev, C_curr, affine=False,
                                                    track_running_stats=False))
                    C_prev = C_curr
                for _ in range(N):
                    blocks.append(MixedCell(space, C_curr))
            self.cells = nn.ModuleList(blocks)
            self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev, affine=False,
                                                        track_running_stats=False), nn.ReLU())
            self.classifier = nn.Linear(C_prev, config.num_classes)
        self.reset_parameters(generator or torch.Generator().manual_seed(0))

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch-default initialisation from ``generator`` (``nn.init_parameters``)."""
        init_parameters(self, generator)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.cells:
            x = block(x, weights) if isinstance(block, MixedCell) else block(x)
        x = self.lastact(x)
        return self.classifier(x.mean(dim=(2, 3)))
