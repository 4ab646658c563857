"""Train an architecture's network on a task with one fixed, documented recipe.

``train_and_evaluate(arch, space, data, config)`` builds ``CellNetwork(arch, space,
NetworkConfig(C, N, in_channels, n_classes), seed=config.seed)`` (NB201 macro skeleton, see
``metanas.nn.cell_network``) and trains it from scratch:

* inputs: the task's standardised images (``TaskData``), optionally resized to
  ``resolution x resolution`` (bilinear, ``antialias=True``); optional augmentation
  (``augment=True``: random crop with ``max(1, H // 8)`` zero padding + horizontal flip, as
  NB201's CIFAR recipe; off by default: digits must not be flipped);
* ``epochs`` passes over the train split in mini-batches of ``batch_size``, the order a
  permutation per epoch drawn from ``torch.Generator().manual_seed(seed + 1)`` (a trailing
  batch of one image is merged into the previous batch, BN needs two);
* loss: cross-entropy with ``label_smoothing``;
* optimiser: SGD, ``momentum``, Nesterov, ``weight_decay`` on every parameter (NB201);
* learning rate: linear warm-up for ``warmup_epochs`` then cosine annealing from ``lr`` to 0,
  updated every step;
* evaluation: eval mode (BN running statistics), top-1 accuracy in % on the valid and test
  splits.

Determinism: the network initialisation (``seed``) and the batch order (``seed + 1``) come
from private ``torch.Generator`` s, and training runs under ``torch.set_num_threads(threads)``
(default 1; restored afterwards), so on CPU the same arch + data + config give bit-identical
accuracies in any process. On a GPU (``device="cuda"`` / ``"auto"``) results are close but
not guaranteed identical (cuDNN kernels).
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, fields, replace

import torch
import torch.nn.functional as F

from ..nn import NetworkConfig, build_network, count_flops, count_params
from ..spaces import Arch, CellSpace
from ..spaces import get as get_space
from .data import TaskData


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe (every field is part of the result's identity).

    Attributes:
        C: channels of the first stage (then 2C, 4C). N: cells per stage.
        epochs: training epochs (the fidelity).
        batch_size: training mini-batch size.
        lr: peak learning rate. momentum / nesterov: SGD. weight_decay: L2 on every parameter.
        label_smoothing: of the cross-entropy (0 = none).
        warmup_epochs: linear warm-up before the cosine schedule (may be fractional).
        resolution: resize images to ``resolution x resolution`` before training; ``None`` =
            the task's own size.
        augment: random crop (padding ``H // 8``) + horizontal flip per batch.
        seed: network initialisation (``seed``) and batch order (``seed + 1``).
        threads: ``torch.set_num_threads`` while training (restored afterwards); ``None`` =
            leave as is (then CPU results can depend on the thread count).
        eval_batch_size: batch size of the evaluation passes (does not change results).

    The default (C=8, N=1, 12 epochs, batch 64, lr 0.1, wd 5e-4, native resolution) is the
    digits fidelity proposed for the live digits collection: about 2.5 s per architecture on
    one (shared) CPU core for a 5-way digits task (450 / 226 / 226 train / valid / test images
    of 8x8). Measured on 5-way digits (40 archs): Spearman ~0.4-0.6 with NB201 CIFAR-10;
    16x16 inputs or C=16 cost 2x and saturate (~96 % for every arch), ranking worse.
    """

    C: int = 8
    N: int = 1
    epochs: int = 12
    batch_size: int = 64
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    warmup_epochs: float = 0.0
    resolution: int | None = None
    augment: bool = False
    seed: int = 0
    threads: int | None = 1
    eval_batch_size: int = 512

    def __post_init__(self) -> None:
        for k in ("C", "epochs", "batch_size", "eval_batch_size"):
            if int(getattr(self, k)) < 1:
                raise ValueError(f"TrainConfig.{k} must be >= 1, got {getattr(self, k)}")
        if int(self.N) < 0:
            raise ValueError(f"TrainConfig.N must be >= 0, got {self.N}")
        if self.resolution is not None and int(self.resolution) < 1:
            raise ValueError(f"TrainConfig.resolution must be >= 1 or None, got {self.resolution}")
        if not 0.0 <= float(self.label_smoothing) < 1.0:
            raise ValueError(f"TrainConfig.label_smoothing must be in [0, 1)")
        if self.threads is not None and int(self.threads) < 1:
            raise ValueError(f"TrainConfig.threads must be >= 1 or None, got {self.threads}")

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s) {sorted(unknown)}")
        return cls(**d)

    @classmethod
    def from_strings(cls, opts: dict[str, str], base: "TrainConfig | None" = None) -> "TrainConfig":
        """Fields from ``{"epochs": "5", "resolution": "none", ...}`` (text options)."""
        base = base or cls()
        types = {f.name: f.type for f in fields(cls)}
        out = {}
        for k, v in opts.items():
            if k not in types:
                raise ValueError(f"unknown TrainConfig field {k!r}")
            t = str(types[k])
            s = str(v).strip()
            if "None" in t and s.lower() in ("none", ""):
                out[k] = None
            elif t.startswith("bool"):
                if s.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(f"{k}={v!r} is not a boolean")
                out[k] = s.lower() in ("1", "true", "yes")
            elif t.startswith("int"):
                out[k] = int(s)
            else:
                out[k] = float(s)
        return base.replace(**out)

    def short(self) -> str:
        """Compact text of the non-default fields (for descriptions)."""
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name not in ("threads", "eval_batch_size")}
        return ", ".join(f"{k}={v}" for k, v in d.items())


@dataclass(frozen=True)
class TrainResult:
    """Outcome of one training run (accuracies in %)."""

    valid_acc: float
    test_acc: float
    train_acc: float
    train_loss: float
    wall_s: float
    params: int
    flops: int
    epochs: int
    device: str


def resolve_device(device=None) -> torch.device:
    """``None``/``"cpu"`` -> CPU; ``"auto"`` -> the current CUDA device when available, else
    CPU; anything else -> ``torch.device(device)`` (e.g. ``"cuda"``, ``"cuda:1"``)."""
    if device is None:
        return torch.device("cpu")
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(device)


@contextlib.contextmanager
def _threads(n: int | None):
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _resize(x: torch.Tensor, resolution: int | None) -> torch.Tensor:
    if resolution is None or tuple(x.shape[2:]) == (resolution, resolution):
        return x
    return F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False,
                         antialias=True)


def _batches(n: int, batch_size: int, gen: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=gen)
    out = list(perm.split(batch_size))
    if len(out) > 1 and len(out[-1]) == 1:
        out[-2] = torch.cat([out[-2], out[-1]])
        out.pop()
    return out


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    b, _, h, w = x.shape
    pad = max(1, h // 8)
    xp = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen).tolist()
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen).tolist()
    flip = torch.rand(b, generator=gen).lt(0.5).tolist()
    out = torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    idx = [i for i in range(b) if flip[i]]
    if idx:
        out[idx] = out[idx].flip(-1)
    return out


class _SGD:
    """SGD with momentum / Nesterov / L2 weight decay, PyTorch's update rule (``torch.optim.SGD``
    with ``dampening=0``, single-tensor path)::

        g = grad + weight_decay * p
        buf = g (first step) | momentum * buf + g
        p -= lr * (g + momentum * buf if nesterov else buf)

    Implemented here because constructing a ``torch.optim`` optimizer imports
    ``torch._dynamo`` (about 3 s in every fresh process: each Dask worker, each builder run).
    """

    def __init__(self, params: list[torch.Tensor], momentum: float, nesterov: bool,
                 weight_decay: float) -> None:
        self.params = [p for p in params if p.requires_grad]
        self.momentum, self.nesterov, self.wd = float(momentum), bool(nesterov), float(weight_decay)
        self.bufs: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lr: float) -> None:
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            g = p.grad
            if self.wd:
                g = g.add(p, alpha=self.wd)
            if self.momentum:
                buf = self.bufs[i]
                if buf is None:
                    buf = self.bufs[i] = torch.clone(g).detach()
                else:
                    buf.mul_(self.momentum).add_(g)
                g = g.add(buf, alpha=self.momentum) if self.nesterov else buf
            p.add_(g, alpha=-lr)


@torch.no_grad()
def _accuracy(net, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    if not len(y):
        return float("nan")
    net.eval()
    correct = 0
    for i in range(0, len(y), batch_size):
        logits = net(x[i:i + batch_size])
        correct += int((logits.argmax(1) == y[i:i + batch_size]).sum())
    return 100.0 * correct / len(y)


def train_and_evaluate(arch: Arch, space: CellSpace | str, data: TaskData,
                       config: TrainConfig | None = None, *, device=None) -> TrainResult:
    """Train ``arch`` on ``data`` with ``config`` (module doc) and measure it.

    Args:
        arch: op indices of ``space``.
        space: a ``CellSpace`` or its name.
        data: the task (``metanas.train.build_task``).
        config: the recipe (default ``TrainConfig()``).
        device: ``None``/``"cpu"`` (default), ``"auto"`` or any torch device.

    Returns:
        ``TrainResult``: valid / test / final-epoch train accuracy (%), final-epoch mean
        train loss, wall seconds (build + train + evaluate), parameters, FLOPs (MACs of one
        sample at the training resolution), epochs, device.
    """
    config = config or TrainConfig()
    space = get_space(space) if isinstance(space, str) else space
    arch = space.validate(arch)
    dev = resolve_device(device)
    t0 = time.perf_counter()
    with _threads(config.threads):
        x_tr = _resize(data.x_train, config.resolution).to(dev)
        y_tr = data.y_train.to(dev)
        net_cfg = NetworkConfig(C=config.C, N=config.N, in_channels=data.in_channels,
                                num_classes=data.n_classes)
        net = build_network(arch, space, net_cfg, seed=config.seed)
        params = count_params(net)
        flops = count_flops(net, tuple(x_tr.shape[1:]))
        net = net.to(dev)
        opt = _SGD(list(net.parameters()), config.momentum,
                   config.nesterov and config.momentum > 0, config.weight_decay)
        gen = torch.Generator().manual_seed(int(config.seed) + 1)
        n = len(y_tr)
        steps_per_epoch = math.ceil(n / config.batch_size)
        if steps_per_epoch > 1 and n % config.batch_size == 1:
            steps_per_epoch -= 1
        total = config.epochs * steps_per_epoch
        warm = int(round(config.warmup_epochs * steps_per_epoch))
        step = 0
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        for epoch in range(config.epochs):
            net.train()
            loss_sum.zero_()
            correct.zero_()
            for idx in _batches(n, config.batch_size, gen):
                if step < warm:
                    lr = config.lr * (step + 1) / warm
                else:
                    lr = 0.5 * config.lr * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))
                idx_d = idx.to(dev)
                xb, yb = x_tr[idx_d], y_tr[idx_d]
                if config.augment:
                    xb = _augment(xb, gen)
                logits = net(xb)
                loss = F.cross_entropy(logits, yb, label_smoothing=config.label_smoothing)
                opt.zero_grad()
                loss.backward()
                opt.step(lr)
                step += 1
                with torch.no_grad():
                    loss_sum += loss.detach() * len(yb)
                    correct += (logits.argmax(1) == yb).sum()
        train_loss = float(loss_sum) / n
        train_acc = 100.0 * int(correct) / n
        x_va = _resize(data.x_valid, config.resolution).to(dev)
        x_te = _resize(data.x_test, config.resolution).to(dev)
        valid = _accuracy(net, x_va, data.y_valid.to(dev), config.eval_batch_size)
        test = _accuracy(net, x_te, data.y_test.to(dev), config.eval_batch_size)
    wall = time.perf_counter() - t0
    return TrainResult(valid_acc=valid, test_acc=test, train_acc=train_acc, train_loss=train_loss,
                       wall_s=wall, params=params, flops=flops, epochs=config.epochs,
                       device=str(dev))


__all__ = ["TrainConfig", "TrainResult", "train_and_evaluate", "resolve_device"]
