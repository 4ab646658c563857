"""Set Transformer blocks (Lee et al., ICML 2019) and the two-level dataset encoder of
TNAS / MetaD2A.

Blocks (all take ``[batch, set_size, dim]`` tensors and an optional boolean ``mask``
``[batch, set_size]``, ``True`` = a real element; padded elements are never attended to):

- ``MAB(Q, K)``: ``H = LN(Q' + Multihead(Q, K, K))``, ``out = LN(H + relu(Linear(H)))`` (the
  reference implementation's layout, ``Q'`` = projected queries).
- ``SAB(X) = MAB(X, X)`` (permutation equivariant), ``ISAB(X) = MAB(X, MAB(I, X))`` with
  ``m`` learned inducing points (equivariant, linear in the set size),
  ``PMA_k(Z) = MAB(S, relu(Linear(Z)))`` with ``k`` learned seeds (permutation invariant).

``DatasetEncoder``: a dataset is a set of classes, a class a set of sample features
(e.g. frozen ResNet features of a few images). A first Set Transformer pools the samples of
each class into one vector, a second pools the classes into the dataset vector, a linear head
maps it to ``embed_dim``. Tasks without samples (a tabular benchmark whose images are not at
hand) get a learned ``no_data`` embedding, so both kinds of task train together.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

__all__ = ["MAB", "SAB", "ISAB", "PMA", "SetEncoder", "DatasetEncoderConfig", "DatasetEncoder",
           "pad_classes"]


def _masked_fill_keys(logits: Tensor, mask: Tensor | None) -> Tensor:
    if mask is None:
        return logits
    # logits [B, heads, q, k]; mask [B, k]. A fully masked row gets uniform weights over the
    # padding (finite; such sets are masked out again one level up).
    return logits.masked_fill(~mask[:, None, None, :], torch.finfo(logits.dtype).min)


class MAB(nn.Module):
    """Multihead attention block ``MAB(Q, K)``: ``[B, q, dim_q] x [B, k, dim_k] -> [B, q, dim]``."""

    def __init__(self, dim_q: int, dim_k: int, dim: int, n_heads: int = 4,
                 layer_norm: bool = True) -> None:
        super().__init__()
        if dim % n_heads:
            raise ValueError(f"dim {dim} is not divisible by n_heads {n_heads}")
        self.n_heads = n_heads
        self.fc_q = nn.Linear(dim_q, dim)
        self.fc_k = nn.Linear(dim_k, dim)
        self.fc_v = nn.Linear(dim_k, dim)
        self.fc_o = nn.Linear(dim, dim)
        self.ln0 = nn.LayerNorm(dim) if layer_norm else nn.Identity()
        self.ln1 = nn.LayerNorm(dim) if layer_norm else nn.Identity()

    def forward(self, q: Tensor, k: Tensor, mask: Tensor | None = None) -> Tensor:
        """``mask``: ``[B, k]`` bool, ``True`` for real keys."""
        b, nq, _ = q.shape
        nk = k.size(1)
        h = self.n_heads
        qp = self.fc_q(q)
        d = qp.size(-1) // h
        qh = qp.view(b, nq, h, d).transpose(1, 2)
        kh = self.fc_k(k).view(b, nk, h, d).transpose(1, 2)
        vh = self.fc_v(k).view(b, nk, h, d).transpose(1, 2)
        logits = _masked_fill_keys(qh @ kh.transpose(-1, -2) / math.sqrt(d), mask)
        att = torch.softmax(logits, dim=-1) @ vh  # [B, h, q, d]
        o = self.ln0(qp + att.transpose(1, 2).reshape(b, nq, h * d))
        return self.ln1(o + torch.relu(self.fc_o(o)))


class SAB(nn.Module):
    """Set attention block ``MAB(X, X)`` (equivariant)."""

    def __init__(self, dim_in: int, dim: int, n_heads: int = 4, layer_norm: bool = True) -> None:
        super().__init__()
        self.mab = MAB(dim_in, dim_in, dim, n_heads, layer_norm)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(x, x, mask)


class ISAB(nn.Module):
    """Induced set attention block ``MAB(X, MAB(I, X))`` with ``n_inducing`` learned points."""

    def __init__(self, dim_in: int, dim: int, n_inducing: int = 16, n_heads: int = 4,
                 layer_norm: bool = True) -> None:
        super().__init__()
        self.inducing = nn.Parameter(torch.empty(1, n_inducing, dim))
        nn.init.xavier_uniform_(self.inducing)
        self.mab0 = MAB(dim, dim_in, dim, n_heads, layer_norm)
        self.mab1 = MAB(dim_in, dim, dim, n_heads, layer_norm)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        hid = self.mab0(self.inducing.expand(x.size(0), -1, -1), x, mask)
        return self.mab1(x, hid)


class PMA(nn.Module):
    """Pooling by multihead attention with ``n_seeds`` learned seeds (invariant):
    ``[B, n, dim] -> [B, n_seeds, dim]``."""

    def __init__(self, dim: int, n_seeds: int = 1, n_heads: int = 4,
                 layer_norm: bool = True) -> None:
        super().__init__()
        self.seeds = nn.Parameter(torch.empty(1, n_seeds, dim))
        nn.init.xavier_uniform_(self.seeds)
        self.ff = nn.Linear(dim, dim)
        self.mab = MAB(dim, dim, dim, n_heads, layer_norm)

    def forward(self, z: Tensor, mask: Tensor | None = None) -> Tensor:
        return self.mab(self.seeds.expand(z.size(0), -1, -1), torch.relu(self.ff(z)), mask)


class SetEncoder(nn.Module):
    """``n_blocks`` SAB (or ISAB) blocks then ``PMA_1``: ``[B, n, dim_in] (+ mask [B, n])
    -> [B, dim]`` (permutation invariant over the ``n`` elements)."""

    def __init__(self, dim_in: int, dim: int, n_blocks: int = 2, n_heads: int = 4,
                 isab_inducing: int = 0, layer_norm: bool = True) -> None:
        super().__init__()
        blocks = []
        for i in range(n_blocks):
            d_in = dim_in if i == 0 else dim
            blocks.append(ISAB(d_in, dim, isab_inducing, n_heads, layer_norm) if isab_inducing
                          else SAB(d_in, dim, n_heads, layer_norm))
        self.blocks = nn.ModuleList(blocks)
        self.proj = nn.Linear(dim_in, dim) if n_blocks == 0 else None
        self.pool = PMA(dim, 1, n_heads, layer_norm)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        if self.proj is not None:
            x = self.proj(x)
        for blk in self.blocks:
            x = blk(x, mask)
        return self.pool(x, mask).squeeze(1)


@dataclass
class DatasetEncoderConfig:
    """Hyper-parameters of ``DatasetEncoder``.

    Attributes:
        feat_dim: size of one sample's feature vector (e.g. 512 for ResNet-18 features).
        hidden_dim: width of both Set Transformers.
        embed_dim: size of the dataset embedding.
        n_heads: attention heads (must divide ``hidden_dim``).
        n_blocks: SAB/ISAB blocks before the pooling, in each of the two levels.
        isab_inducing: ``0`` = SAB blocks; ``m > 0`` = ISAB blocks with ``m`` inducing points
            (for large sets).
        layer_norm: LayerNorm inside the attention blocks.
    """

    feat_dim: int = 512
    hidden_dim: int = 64
    embed_dim: int = 32
    n_heads: int = 4
    n_blocks: int = 2
    isab_inducing: int = 0
    layer_norm: bool = True

    def __post_init__(self) -> None:
        for k in ("feat_dim", "hidden_dim", "embed_dim", "n_heads"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"DatasetEncoderConfig.{k} must be >= 1, got {getattr(self, k)}")
        if self.hidden_dim % self.n_heads:
            raise ValueError(f"DatasetEncoderConfig.hidden_dim ({self.hidden_dim}) must be a "
                             f"multiple of n_heads ({self.n_heads})")


def pad_classes(classes: Sequence[Tensor], feat_dim: int | None = None) -> tuple[Tensor, Tensor]:
    """Ragged per-class sample sets ``[n_c, feat_dim]`` -> ``(samples [C, S_max, feat_dim],
    mask [C, S_max])`` with zero padding (``mask`` True for real samples)."""
    if len(classes) == 0:
        raise ValueError("pad_classes needs at least one class")
    f = feat_dim or classes[0].size(-1)
    s = max(int(c.size(0)) for c in classes)
    ref = classes[0]
    out = ref.new_zeros(len(classes), s, f)
    mask = torch.zeros(len(classes), s, dtype=torch.bool, device=ref.device)
    for i, c in enumerate(classes):
        out[i, :c.size(0)] = c
        mask[i, :c.size(0)] = True
    return out, mask


class DatasetEncoder(nn.Module):
    """Two stacked Set Transformers: samples within a class -> class vector, classes ->
    dataset vector -> ``Linear`` -> ``embed_dim``.

    ``forward(samples, mask=None)``:
        - ``samples`` ``[n_classes, n_samples, feat_dim]`` -> ``[embed_dim]``;
        - ``samples`` ``[n_tasks, n_classes, n_samples, feat_dim]`` -> ``[n_tasks, embed_dim]``;
        - ``samples=None`` -> the learned no-data embedding ``[embed_dim]``.
        ``mask`` (bool, ``samples.shape[:-1]``, True = real sample) handles ragged sets:
        classes with different sample counts, tasks with different class counts (a class with
        no real sample is ignored; a task with none at all gets the no-data embedding).
    ``encode_tasks(list)`` batches a list of tasks given as tensors, lists of per-class tensors
    or ``None``.
    """

    def __init__(self, config: DatasetEncoderConfig | None = None) -> None:
        super().__init__()
        self.config = c = config or DatasetEncoderConfig()
        self.intra = SetEncoder(c.feat_dim, c.hidden_dim, c.n_blocks, c.n_heads,
                                c.isab_inducing, c.layer_norm)
        self.inter = SetEncoder(c.hidden_dim, c.hidden_dim, c.n_blocks, c.n_heads,
                                c.isab_inducing, c.layer_norm)
        self.head = nn.Linear(c.hidden_dim, c.embed_dim)
        self.no_data = nn.Parameter(torch.zeros(c.embed_dim))
        nn.init.normal_(self.no_data, std=0.1)

    @property
    def embed_dim(self) -> int:
        return self.config.embed_dim

    def forward(self, samples: Tensor | None, mask: Tensor | None = None) -> Tensor:
        if samples is None:
            return self.no_data
        if samples.dim() not in (3, 4):
            raise ValueError("samples must be [n_classes, n_samples, feat_dim] or [n_tasks, "
                             f"n_classes, n_samples, feat_dim], got {tuple(samples.shape)}")
        if samples.size(-1) != self.config.feat_dim:
            raise ValueError(f"samples have {samples.size(-1)} features, the encoder expects "
                             f"feat_dim={self.config.feat_dim}")
        single = samples.dim() == 3
        if single:
            samples = samples.unsqueeze(0)
            mask = None if mask is None else mask.unsqueeze(0)
        samples = samples.to(self.head.weight.dtype)
        t, c, s, f = samples.shape
        if mask is not None:
            mask = mask.to(torch.bool)
            if mask.shape != (t, c, s):
                raise ValueError(f"mask has shape {tuple(mask.shape)}, expected {(t, c, s)}")
        if t * c * s == 0:
            out = self.no_data.expand(t, -1)
            return out[0] if single else out
        flat_mask = None if mask is None else mask.reshape(t * c, s)
        cls = self.intra(samples.reshape(t * c, s, f), flat_mask).reshape(t, c, -1)
        cls_mask = None if mask is None else mask.any(-1)
        out = self.head(self.inter(cls, cls_mask))
        if cls_mask is not None:
            empty = ~cls_mask.any(-1)
            if bool(empty.any()):
                out = torch.where(empty[:, None], self.no_data.expand_as(out), out)
        return out[0] if single else out

    def encode_tasks(self, tasks: Sequence[Tensor | Sequence[Tensor] | None]) -> Tensor:
        """``[n_tasks, embed_dim]`` for a list of tasks, each ``[C, S, F]``, a list of
        per-class ``[S_c, F]`` tensors, or ``None`` (no data); padded into one batch."""
        sets = []
        for task in tasks:
            sets.append(None if task is None else list(task))
        real = [cl for cl in sets if cl]
        if not real:
            return self.no_data.expand(len(tasks), -1)
        ref = real[0][0]
        c_max = max(len(cl) for cl in real)
        s_max = max(int(x.size(0)) for cl in real for x in cl)
        f = self.config.feat_dim
        samples = ref.new_zeros(len(tasks), c_max, s_max, f)
        mask = torch.zeros(len(tasks), c_max, s_max, dtype=torch.bool, device=ref.device)
        for i, cl in enumerate(sets):
            for j, x in enumerate(cl or []):
                samples[i, j, :x.size(0)] = x
                mask[i, j, :x.size(0)] = True
        return self.forward(samples, mask)
