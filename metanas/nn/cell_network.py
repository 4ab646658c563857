"""Trainable PyTorch networks for the cell spaces (NAS-Bench-201 macro skeleton).

``CellNetwork(arch, space, config, seed=...)`` builds the network of NAS-Bench-201's
``TinyNetwork`` (Dong & Yang, ICLR 2020; ``models/cell_infers/tiny_network.py`` of
AutoDL-Projects) for any architecture of a ``CellSpace`` whose ops are among ``OPS``
(NAS-Bench-201 and TransNAS-Bench-101 micro)::

    stem:    Conv3x3(in_channels -> C) + BN
    stage 1: N cells, C channels
    reduce:  residual block, stride 2, C -> 2C
    stage 2: N cells, 2C channels
    reduce:  residual block, stride 2, 2C -> 4C
    stage 3: N cells, 4C channels
    head:    BN - ReLU - global average pool - Linear(4C -> num_classes)

Cell: node 0 is the cell input, every later node sums the ops on its incoming edges (in the
space's edge order), the last node is the cell output. Ops (all keep shape inside a cell):

=================  ================================================================
``none``           zero tensor of the output shape (``x * 0``, as NB201's ``Zero``)
``skip_connect``   identity
``nor_conv_1x1``   ReLU - Conv1x1 (no bias) - BN
``nor_conv_3x3``   ReLU - Conv3x3 pad 1 (no bias) - BN
``avg_pool_3x3``   AvgPool 3x3 stride 1 pad 1, ``count_include_pad=False`` (preceded by a
                   ReLU-Conv1x1-BN when channel counts differ, never inside a cell)
=================  ================================================================

Residual reduction block (NB201 ``ResNetBasicblock``, stride 2): ``ReLUConvBN 3x3 stride 2 ->
ReLUConvBN 3x3`` plus a shortcut ``AvgPool2x2 stride 2 -> Conv1x1``. The shortcut pool uses
``ceil_mode=True`` so that odd spatial sizes work (7x7 -> 4x4 on both branches); on even sizes
it is exactly NB201's pool. Any input height/width >= 1, channel count and class count work:
the head pools globally.

Parameters are initialised like PyTorch's defaults (as NB201 and the zero-cost-proxy papers
use: Kaiming-uniform ``a=sqrt(5)`` for conv/linear weights, uniform bias, BN weight 1 / bias 0)
but drawn from a ``torch.Generator`` (``seed`` or ``generator`` argument), so a network is a
pure function of ``(arch, space, config, seed)``; the global torch RNG is neither used nor
advanced.

``count_params(net)`` and ``count_flops(net, input_shape)`` (multiply-accumulates of conv and
linear layers for one sample, counted with forward hooks) come with it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..spaces import Arch, CellSpace
from ..spaces import get as get_space

#: op names understood by ``make_op``
OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")


@dataclass(frozen=True)
class NetworkConfig:
    """Macro configuration of ``CellNetwork``.

    Attributes:
        C: channels of the first stage (then 2C, 4C). NB201: 16.
        N: cells per stage. NB201: 5.
        in_channels: input image channels (3 for RGB, 1 for grey).
        num_classes: size of the linear head.
        affine: BN layers have a learnable scale / shift (NB201: True).
        track_running_stats: BN layers keep running statistics (NB201: True).

    ``NetworkConfig()`` is NB201's network (C=16, N=5, 3 channels, 10 classes);
    ``NetworkConfig.small()`` (C=8, N=1: 17x fewer MACs, 92k instead of 1.53M parameters
    for an all-conv3x3 cell) is the CPU-friendly option.
    """

    C: int = 16
    N: int = 5
    in_channels: int = 3
    num_classes: int = 10
    affine: bool = True
    track_running_stats: bool = True

    def __post_init__(self) -> None:
        for name in ("C", "in_channels", "num_classes"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"NetworkConfig.{name} must be >= 1, got {getattr(self, name)}")
        if int(self.N) < 0:
            raise ValueError(f"NetworkConfig.N must be >= 0, got {self.N}")

    @classmethod
    def small(cls, **overrides) -> "NetworkConfig":
        """CPU-sized network: C=8, N=1 (one cell per stage)."""
        return cls(**{"C": 8, "N": 1, **overrides})

    def replace(self, **changes) -> "NetworkConfig":
        return replace(self, **changes)


# ---------------------------------------------------------------------------- ops
class ReLUConvBN(nn.Module):
    """ReLU - Conv (no bias) - BN, NB201's ``nor_conv_kxk``."""

    def __init__(self, C_in: int, C_out: int, kernel_size: int, stride: int, padding: int,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(C_in, C_out, kernel_size, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(C_out, affine=affine, track_running_stats=track_running_stats),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Zero(nn.Module):
    """``none``: zeros of the output shape. Uses ``x * 0`` when the shape is kept (as NB201),
    so the output stays in the autograd graph (with zero gradient)."""

    def __init__(self, C_in: int, C_out: int, stride: int = 1) -> None:
        super().__init__()
        self.C_in, self.C_out, self.stride = C_in, C_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != 1:
            x = x[:, :, ::self.stride, ::self.stride]
        if self.C_in == self.C_out:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.C_out
        return x.new_zeros(shape)

    def extra_repr(self) -> str:
        return f"C_in={self.C_in}, C_out={self.C_out}, stride={self.stride}"


class AvgPool3x3(nn.Module):
    """``avg_pool_3x3``: optional ReLU-Conv1x1-BN (when channels differ), then 3x3 average
    pooling with padding 1 that ignores the padded zeros (NB201's ``POOLING``,
    ``nn.AvgPool2d(3, stride, 1, count_include_pad=False)``).

    At stride 1 it is computed as a depthwise 3x3 box sum divided by the number of valid
    pixels per window (same values, several times faster than ``avg_pool2d`` forward and
    backward on CPU); the box filter is functional, so it is not an ``nn.Conv2d`` layer for the
    proxies or ``count_flops``.
    """

    def __init__(self, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.stride = int(stride)
        self.preprocess = (None if C_in == C_out else
                           ReLUConvBN(C_in, C_out, 1, 1, 0, affine, track_running_stats))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preprocess is not None:
            x = self.preprocess(x)
        if self.stride != 1:
            return F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
        C, H, W = x.shape[1], x.shape[2], x.shape[3]
        box = x.new_ones((C, 1, 3, 3))
        total = F.conv2d(x, box, padding=1, groups=C)
        counts = F.conv2d(x.new_ones((1, 1, H, W)), box[:1], padding=1)
        return total / counts

    def extra_repr(self) -> str:
        return f"stride={self.stride}"


def make_op(name: str, C_in: int, C_out: int, stride: int = 1, affine: bool = True,
            track_running_stats: bool = True) -> nn.Module:
    """The module of op ``name`` (one of ``OPS``) mapping ``C_in`` to ``C_out`` channels."""
    if name == "none":
        return Zero(C_in, C_out, stride)
    if name == "skip_connect":
        if stride != 1 or C_in != C_out:
            raise ValueError("skip_connect needs stride 1 and C_in == C_out inside a cell")
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(C_in, C_out, 1, stride, 0, affine, track_running_stats)
    if name == "nor_conv_3x3":
        return ReLUConvBN(C_in, C_out, 3, stride, 1, affine, track_running_stats)
    if name == "avg_pool_3x3":
        return AvgPool3x3(C_in, C_out, stride, affine, track_running_stats)
    raise ValueError(f"unknown op {name!r}; ops: {', '.join(OPS)}")


# ---------------------------------------------------------------------------- blocks
class Cell(nn.Module):
    """A DAG cell: ``edges[i] = (src, dst)`` carries ``ops[i]``; node ``j`` sums its inputs."""

    def __init__(self, op_names: Sequence[str], edges: Sequence[tuple[int, int]], C: int,
                 affine: bool = True, track_running_stats: bool = True) -> None:
        super().__init__()
        if len(op_names) != len(edges):
            raise ValueError(f"{len(op_names)} ops for {len(edges)} edges")
        self.edges = tuple((int(s), int(d)) for s, d in edges)
        self.op_names = tuple(op_names)
        self.n_nodes = 1 + max(d for _, d in self.edges)
        for s, d in self.edges:
            if not 0 <= s < d:
                raise ValueError(f"edge {(s, d)} does not go forward")
        missing = set(range(1, self.n_nodes)) - {d for _, d in self.edges}
        if missing:
            raise ValueError(f"nodes {sorted(missing)} have no incoming edge")
        self.layers = nn.ModuleList(make_op(n, C, C, 1, affine, track_running_stats)
                                    for n in self.op_names)
        # edge ids grouped by destination node, in edge order
        self._incoming = [[e for e, (_, d) in enumerate(self.edges) if d == j]
                          for j in range(self.n_nodes)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for j in range(1, self.n_nodes):
            out = None
            for e in self._incoming[j]:
                y = self.layers[e](nodes[self.edges[e][0]])
                out = y if out is None else out + y
            nodes.append(out)
        return nodes[-1]

    def extra_repr(self) -> str:
        return ", ".join(f"{s}->{d}:{n}" for (s, d), n in zip(self.edges, self.op_names))


class ResidualReduction(nn.Module):
    """NB201's ``ResNetBasicblock`` with stride 2 (``ceil_mode`` shortcut pool, see module
    doc)."""

    def __init__(self, C_in: int, C_out: int, affine: bool = True,
                 track_running_stats: bool = True) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(C_in, C_out, 3, 2, 1, affine, track_running_stats)
        self.conv_b = ReLUConvBN(C_out, C_out, 3, 1, 1, affine, track_running_stats)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0, ceil_mode=True),
            nn.Conv2d(C_in, C_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


# ---------------------------------------------------------------------------- network
def _resolve_space(space: CellSpace | str) -> CellSpace:
    return get_space(space) if isinstance(space, str) else space


class CellNetwork(nn.Module):
    """NB201 macro network with every cell set to ``arch`` (see the module doc).

    Args:
        arch: op indices, one per edge of ``space`` (validated).
        space: a ``CellSpace`` or its registry name (``"nb201"``, ``"transnas_micro"``).
        config: ``NetworkConfig`` (default: NB201's C=16, N=5, 3 channels, 10 classes).
        seed: initialise the parameters from ``torch.Generator().manual_seed(seed)``.
        generator: or from this CPU generator (advanced); ``seed`` and ``generator`` are
            exclusive; with neither, seed 0.

    ``forward(x)`` takes ``[B, in_channels, H, W]`` (any ``H, W >= 1``) and returns logits
    ``[B, num_classes]``; ``forward_features(x)`` the pooled ``[B, 4C]`` features.
    """

    def __init__(self, arch: Arch, space: CellSpace | str = "nb201",
                 config: NetworkConfig | None = None, *, seed: int | None = None,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        space = _resolve_space(space)
        self.space_name = space.name
        self.arch = space.validate(arch)
        self.config = config = config if config is not None else NetworkConfig()
        self.op_names = tuple(space.ops[o] for o in self.arch)
        unknown = sorted(set(self.op_names) - set(OPS))
        if unknown:
            raise ValueError(f"ops {unknown} of space {space.name!r} are not implemented")
        if seed is not None and generator is not None:
            raise ValueError("give seed or generator, not both")
        if generator is None:
            generator = torch.Generator().manual_seed(0 if seed is None else int(seed))

        C, N, aff, trs = config.C, config.N, config.affine, config.track_running_stats
        # construction draws PyTorch's default init from the global RNG: fork it so that
        # building a network leaves the caller's RNG untouched, then re-initialise below
        with torch.random.fork_rng(devices=[]):
            self.stem = nn.Sequential(
                nn.Conv2d(config.in_channels, C, kernel_size=3, padding=1, bias=False),
                nn.BatchNorm2d(C, affine=aff, track_running_stats=trs))
            cells: list[nn.Module] = []
            C_prev = C
            for stage, C_curr in enumerate((C, 2 * C, 4 * C)):
                if stage > 0:
                    cells.append(ResidualReduction(C_prev, C_curr, aff, trs))
                    C_prev = C_curr
                for _ in range(N):
                    cells.append(Cell(self.op_names, space.edges, C_curr, aff, trs))
            self.cells = nn.ModuleList(cells)
            self.lastact = nn.Sequential(nn.BatchNorm2d(C_prev, affine=aff,
                                                        track_running_stats=trs),
                                         nn.ReLU(inplace=False))
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(C_prev, config.num_classes)
        self.out_channels = C_prev
        self.reset_parameters(generator)

    def reset_parameters(self, generator: torch.Generator) -> None:
        """PyTorch-default initialisation drawn from ``generator`` (``init_parameters``)."""
        init_parameters(self, generator)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.lastact(x)
        return torch.flatten(self.global_pooling(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.forward_features(x))

    def extra_repr(self) -> str:
        return f"space={self.space_name!r}, arch={self.arch}, config={self.config}"


@torch.no_grad()
def init_parameters(module: nn.Module, generator: torch.Generator) -> None:
    """PyTorch-default initialisation of every conv / linear layer of ``module`` (Kaiming-uniform
    ``a=sqrt(5)`` weights, uniform biases), in module order, drawn from ``generator``; BN layers
    get weight 1, bias 0 and fresh running statistics. The global RNG is not used."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
            if m.bias is not None:
                fan_in = m.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
                nn.init.uniform_(m.bias, -bound, bound, generator=generator)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
            if m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)


def build_network(arch: Arch, space: CellSpace | str = "nb201",
                  config: NetworkConfig | None = None, seed: int = 0) -> CellNetwork:
    """``CellNetwork(arch, space, config, seed=seed)``."""
    return CellNetwork(arch, space, config, seed=seed)


# ---------------------------------------------------------------------------- counters
def count_params(net: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BN scale/shift included, BN running statistics excluded).
    NB201's tables report this / 1e6 ("params, MB")."""
    return int(sum(p.numel() for p in net.parameters() if p.requires_grad or not trainable_only))


def count_flops(net: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one sample through the ``nn.Conv2d`` and ``nn.Linear`` layers.

    Args:
        net: any module (run once in eval mode on zeros; its train/eval mode is restored).
        input_shape: ``(C, H, W)`` or ``(1, C, H, W)``.

    Conv: ``out_h * out_w * out_channels * (in_channels / groups) * kh * kw``;
    linear: ``in_features * out_features``. Biases, BN, activations and pooling are not
    counted (NB201's "FLOPs" column also counts pooling windows and biases, so it is slightly
    larger; the order of architectures is nearly the same).
    """
    shape = tuple(int(s) for s in input_shape)
    if len(shape) == 3:
        shape = (1,) + shape
    if len(shape) != 4 or shape[0] != 1:
        raise ValueError(f"input_shape must be (C, H, W) or (1, C, H, W), got {input_shape}")
    total = 0

    def conv_hook(m: nn.Conv2d, inp, out) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        per_position = m.out_channels * (m.in_channels // m.groups) * kh * kw
        total += out.shape[2] * out.shape[3] * per_position

    def linear_hook(m: nn.Linear, inp, out) -> None:
        nonlocal total
        total += (out.numel() // m.out_features) * m.in_features * m.out_features

    handles = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = net.training
    try:
        p = next(net.parameters(), None)
        x = torch.zeros(shape, dtype=p.dtype if p is not None else torch.float32,
                        device=p.device if p is not None else None)
        net.eval()
        with torch.no_grad():
            net(x)
    finally:
        for h in handles:
            h.remove()
        net.train(was_training)
    return int(total)


__all__ = ["OPS", "NetworkConfig", "CellNetwork", "Cell", "ResidualReduction", "ReLUConvBN",
           "Zero", "AvgPool3x3", "make_op", "build_network", "init_parameters", "count_params",
           "count_flops"]
