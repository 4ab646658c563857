"""BANANAS-style search (White, Neiswanger & Savani, "BANANAS: Bayesian Optimization with Neural
Architectures for Neural Architecture Search", AAAI 2021; defaults of NASLib's ``Bananas``).

1. ``n_init`` (10) uniform random archs;
2. each step trains an ensemble of ``n_models`` (5) MLPs from independent random
   initialisations on the **path encoding** of the observations (targets standardised;
   full-batch Adam, ``epochs`` (100) steps at lr 0.01, weight decay 1e-4; the ensemble is trained as one batched
   network, torch generator seeded from ``self.rng``);
3. candidate pool: ``n_candidates`` (150) unseen archs made by mutating the ``n_parents`` (5)
   best observed archs (each child: 1 edge changed, with probability 1/2 a second one: the
   "mutation" acquisition optimiser of BANANAS), filled with uniform random archs when the
   neighbourhoods run out;
4. acquisition: independent Thompson sampling (``"its"``, the BANANAS default: one draw per
   candidate from ``N(mean, std)`` of the ensemble's predictions, independently per
   candidate) or ``"ucb"`` (``mean + ucb_kappa * std``); the ``n`` best are proposed.

With ``candidates`` the mutations are kept only when allowed, and the pool is filled from the
allowed unseen archs nearest to the parents, then at random.

State: nothing beyond the RNG and the observations (the ensemble is retrained every step from a
seed drawn from ``self.rng``), so a resumed run continues the exact trajectory (same torch
thread count).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..spaces import Arch, CellSpace
from ..spaces.encodings import ENCODINGS, encode
from ._checks import at_least, integer, one_of, positive
from .base import Strategy, register


def train_ensemble(X: np.ndarray, y: np.ndarray, *, n_models: int = 5, hidden: int = 32,
                   layers: int = 3, epochs: int = 200, lr: float = 0.01,
                   weight_decay: float = 1e-4, seed: int = 0):
    """An ensemble of ``n_models`` MLPs ``[d] -> 1`` trained as one batched network on
    ``(X, y)``. Returns ``predict(Xnew) -> [n_models, N]`` numpy predictions (in the scale of
    ``y``)."""
    import torch

    gen = torch.Generator().manual_seed(int(seed))
    Xt = torch.as_tensor(X, dtype=torch.float32)
    mu, sd = float(np.mean(y)), float(np.std(y)) or 1.0
    yt = torch.as_tensor((np.asarray(y) - mu) / sd, dtype=torch.float32)
    d = Xt.shape[1]
    dims = [d] + [hidden] * layers + [1]
    params = []
    for i in range(len(dims) - 1):
        bound = 1.0 / np.sqrt(dims[i])
        W = (torch.rand(n_models, dims[i], dims[i + 1], generator=gen) * 2 - 1) * bound
        b = (torch.rand(n_models, 1, dims[i + 1], generator=gen) * 2 - 1) * bound
        params += [W.requires_grad_(), b.requires_grad_()]

    def forward(x: "torch.Tensor") -> "torch.Tensor":
        h = x.unsqueeze(0).expand(n_models, -1, -1)
        for i in range(0, len(params), 2):
            h = torch.baddbmm(params[i + 1], h, params[i])
            if i + 2 < len(params):
                h = torch.relu(h)
        return h.squeeze(-1)  # [n_models, N]

    opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    for _ in range(int(epochs)):
        opt.zero_grad()
        loss = ((forward(Xt) - yt.unsqueeze(0)) ** 2).mean()
        loss.backward()
        opt.step()

    def predict(Xnew: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = forward(torch.as_tensor(Xnew, dtype=torch.float32)).numpy()
        return out.astype(np.float64) * sd + mu

    return predict


@register("bananas")
class Bananas(Strategy):
    """BANANAS-style neural-ensemble BO (see the module doc).

    Args:
        n_init: random archs before the first model step (>= 2: the ensemble's first fit
            needs two observations).
        n_models: ensemble size.
        acquisition: ``"its"`` (independent Thompson sampling) or ``"ucb"``.
        ucb_kappa: std multiplier of UCB.
        n_candidates: mutated candidates scored per step.
        n_parents: best archs mutated.
        encoding: ``"path"`` (default), ``"onehot"``, ``"opdist"``.
        hidden, layers, epochs, lr, weight_decay: MLP / training settings.
    """

    def __init__(self, space: CellSpace, seed: int | np.random.Generator = 0,
                 candidates: Sequence[Arch] | None = None, *, n_init: int = 10,
                 n_models: int = 5, acquisition: str = "its", ucb_kappa: float = 1.0,
                 n_candidates: int = 150, n_parents: int = 5, encoding: str = "path",
                 hidden: int = 32, layers: int = 3, epochs: int = 100, lr: float = 0.01,
                 weight_decay: float = 1e-4) -> None:
        super().__init__(space, seed=seed, candidates=candidates)
        m = self.name
        self.acquisition = one_of("acquisition", acquisition, ("its", "ucb"), m)
        # the ensemble is first trained on two finite observations: n_init=1 is refused, not
        # silently run as 2
        self.n_init = integer("n_init", n_init, 2, m)
        # the acquisitions need the ensemble's spread (std with ddof=1): two members at least
        self.n_models = integer("n_models", n_models, 2, m)
        self.ucb_kappa = at_least("ucb_kappa", ucb_kappa, 0, m)
        self.n_candidates = integer("n_candidates", n_candidates, 1, m)
        self.n_parents = integer("n_parents", n_parents, 1, m)
        self.encoding = one_of("encoding", encoding, ENCODINGS, m)
        self.hidden = integer("hidden", hidden, 1, m)
        self.layers = integer("layers", layers, 0, m)  # 0: a linear model
        self.epochs = integer("epochs", epochs, 1, m)
        self.lr = positive("lr", lr, m)
        self.weight_decay = at_least("weight_decay", weight_decay, 0, m)

    def encode(self, archs) -> np.ndarray:
        return encode(self.space, np.asarray(archs, dtype=np.int64).reshape(-1, self.space.n_edges),
                      self.encoding)

    def candidate_pool(self, exclude: set[Arch]) -> list[Arch]:
        """Unseen mutations of the best archs (see the module doc)."""
        y = np.asarray(self.y, dtype=np.float64)
        y = np.where(np.isfinite(y), y, -np.inf)
        parents: list[Arch] = []
        for i in np.argsort(-y, kind="stable"):
            if self.X[i] not in parents:
                parents.append(self.X[i])
            if len(parents) == self.n_parents:
                break
        taken = self.seen | exclude
        out: list[Arch] = []
        for t in range(4 * self.n_candidates):
            p = parents[t % len(parents)]
            c = self.space.mutate(p, self.rng)
            if self.rng.random() < 0.5:
                c = self.space.mutate(c, self.rng)
            if c not in taken and self.allowed(c):
                out.append(c)
                taken.add(c)
            if len(out) == self.n_candidates:
                return out
        if self.candidates is not None:
            for p in parents:
                for c in self.nearest_unseen(p, taken):
                    if len(out) < self.n_candidates:
                        out.append(c)
                        taken.add(c)
        if len(out) < self.n_candidates:
            free = [a for a in self.sample_unseen(self.n_candidates - len(out),
                                                  exclude=taken - self.seen) if a not in taken]
            out += list(dict.fromkeys(free))
        return out

    def _propose(self, n: int) -> list[Arch]:
        y_all = np.asarray(self.y, dtype=np.float64)
        ok = np.isfinite(y_all)
        n_random = max(0, self.n_init - len(self.X) - len(self.pending))
        if int(ok.sum()) < 2:
            n_random = n
        out = self.sample_unseen(min(n, n_random)) if n_random else []
        if len(out) == n:
            return out
        Xo = [a for a, k in zip(self.X, ok) if k]
        seed = int(self.rng.integers(2**31 - 1))
        predict = train_ensemble(self.encode(Xo), y_all[ok], n_models=self.n_models,
                                 hidden=self.hidden, layers=self.layers, epochs=self.epochs,
                                 lr=self.lr, weight_decay=self.weight_decay, seed=seed)
        pool = self.candidate_pool(set(out))
        pool = [a for a in pool if a not in set(out)]
        if not pool:
            return out + self.sample_unseen(n - len(out), exclude=set(out))
        pred = predict(self.encode(pool))
        mean, std = pred.mean(0), pred.std(0, ddof=1)
        if self.acquisition == "its":
            score = mean + std * self.rng.standard_normal(len(pool))
        else:
            score = mean + self.ucb_kappa * std
        order = np.lexsort((self.rng.random(len(pool)), -score))
        out += [pool[int(i)] for i in order[: n - len(out)]]
        if len(out) < n:
            out += self.sample_unseen(n - len(out), exclude=set(out))
        return out
