"""Reptile: the outer step is eps * (task-adapted - old) weights, batched mean, buffers,
determinism with a generator, frozen parameters; meta_train validation / early stop /
checkpoint callback."""

import copy

import pytest
import torch
from torch import nn

from metanas.meta import meta_train, reptile_step


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 4)
        self.bn = nn.BatchNorm1d(4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.bn(self.lin(x))))


def make_task(seed: int, n: int = 32):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 3, generator=g)
    w = torch.randn(3, 1, generator=g)
    return x, x @ w + 0.1 * torch.randn(n, 1, generator=g)


def loss_fn(model, task, generator=None):
    x, y = task
    if generator is not None:  # random mini-batch: exercises the generator
        idx = torch.randperm(x.size(0), generator=generator)[:16]
        x, y = x[idx], y[idx]
    return (model(x) - y).pow(2).mean()


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _adapt(model, task, steps, lr, opt="adam", generator=None):
    """Reference inner loop on a deep copy."""
    m = copy.deepcopy(model)
    o = torch.optim.Adam(m.parameters(), lr=lr) if opt == "adam" else \
        torch.optim.SGD(m.parameters(), lr=lr)
    for _ in range(steps):
        o.zero_grad()
        loss_fn(m, task, generator).backward()
        o.step()
    return m


@pytest.mark.parametrize("opt", ["adam", "sgd"])
def test_step_moves_eps_toward_adapted_weights(opt):
    torch.manual_seed(0)
    model = Net()
    task = make_task(1)
    w_old = _flat(model)
    w_adapted = _flat(_adapt(model, task, 4, 0.05, opt))
    eps = 0.3
    stats = reptile_step(model, loss_fn, task, inner_steps=4, inner_lr=0.05, outer_lr=eps,
                         inner_optimizer=opt)
    step = _flat(model) - w_old
    torch.testing.assert_close(step, eps * (w_adapted - w_old), rtol=1e-5, atol=1e-7)
    cos = torch.nn.functional.cosine_similarity(step, w_adapted - w_old, dim=0)
    assert cos > 1 - 1e-5
    assert stats.loss_last < stats.loss_first


def test_single_sgd_step_is_scaled_gradient_step():
    torch.manual_seed(0)
    model = Net()
    task = make_task(2)
    loss = loss_fn(model, task)
    grads = torch.autograd.grad(loss, list(model.parameters()))
    w_old = _flat(model)
    reptile_step(model, loss_fn, task, inner_steps=1, inner_lr=0.1, outer_lr=0.5,
                 inner_optimizer="sgd")
    expected = w_old - 0.5 * 0.1 * torch.cat([g.reshape(-1) for g in grads])
    torch.testing.assert_close(_flat(model), expected)


def test_batch_of_tasks_uses_mean_difference():
    torch.manual_seed(0)
    model = Net()
    tasks = [make_task(3), make_task(4), make_task(5)]
    w_old = _flat(model)
    mean_adapted = torch.stack([_flat(_adapt(model, t, 3, 0.02)) for t in tasks]).mean(0)
    reptile_step(model, loss_fn, tasks, inner_steps=3, inner_lr=0.02, outer_lr=1.0)
    torch.testing.assert_close(_flat(model), mean_adapted, rtol=1e-5, atol=1e-7)


def test_buffers_policies():
    torch.manual_seed(0)
    task = make_task(6)
    base = Net()
    adapted = _adapt(base, task, 2, 0.01)
    rm0, rm1 = base.bn.running_mean.clone(), adapted.bn.running_mean
    for policy, expected in [("interpolate", rm0 + 0.25 * (rm1 - rm0)), ("adapted", rm1),
                             ("keep", rm0)]:
        m = copy.deepcopy(base)
        reptile_step(m, loss_fn, task, inner_steps=2, inner_lr=0.01, outer_lr=0.25,
                     buffers=policy)
        torch.testing.assert_close(m.bn.running_mean, expected)
    m = copy.deepcopy(base)
    reptile_step(m, loss_fn, task, inner_steps=2, inner_lr=0.01, outer_lr=0.25)
    assert int(m.bn.num_batches_tracked) == 2  # integer buffer: the adapted count
    with pytest.raises(ValueError, match="buffers"):
        reptile_step(m, loss_fn, task, buffers="average")


def test_deterministic_with_generator_and_frozen_params():
    torch.manual_seed(0)
    base = Net()
    base.lin.weight.requires_grad_(False)
    frozen = base.lin.weight.clone()
    tasks = [make_task(7), make_task(8)]
    runs = []
    for _ in range(2):
        m = copy.deepcopy(base)
        g = torch.Generator().manual_seed(123)
        for _ in range(3):
            reptile_step(m, loss_fn, tasks, inner_steps=2, inner_lr=0.01, generator=g)
        runs.append(_flat(m))
        assert torch.equal(m.lin.weight, frozen)
    assert torch.equal(runs[0], runs[1])
    m = copy.deepcopy(base)
    reptile_step(m, loss_fn, tasks, inner_steps=2, inner_lr=0.01,
                 generator=torch.Generator().manual_seed(999))
    assert not torch.equal(_flat(m), runs[0])  # other seed: other mini-batches


def test_rejects_bad_arguments():
    m = Net()
    with pytest.raises(ValueError, match="inner_optimizer"):
        reptile_step(m, loss_fn, make_task(0), inner_optimizer="lbfgs")
    with pytest.raises(ValueError, match="at least one task"):
        reptile_step(m, loss_fn, [])


def test_meta_train_validation_early_stop_and_checkpoint():
    torch.manual_seed(0)
    model = Net()
    train = [make_task(i) for i in range(10, 20)]
    val = [make_task(i) for i in range(30, 33)]

    def sampler(g):
        return [train[int(i)] for i in torch.randint(len(train), (2,), generator=g)]

    saved = []
    res = meta_train(model, loss_fn, sampler, n_iters=30, val_tasks=val, val_every=5,
                     patience=2, inner_steps=3, inner_lr=0.01, outer_lr=0.5,
                     outer_lr_final=0.1, generator=torch.Generator().manual_seed(0),
                     checkpoint=lambda m, it, v: saved.append((it, v, _flat(m).clone())))
    vals = [h["val"] for h in res.history if "val" in h]
    assert vals and res.best_val == min(vals)
    assert saved and saved[-1][0] == res.best_iter and saved[-1][1] == res.best_val
    # best weights restored
    torch.testing.assert_close(_flat(model), saved[-1][2])
    assert [v for _, v, _ in saved] == sorted([v for _, v, _ in saved], reverse=True)
    assert res.history[0]["outer_lr"] == pytest.approx(0.5)
    if res.stopped_early:
        assert len(res.history) < 30


def test_meta_train_patience_stops():
    torch.manual_seed(0)
    model = Net()
    task = make_task(1)
    calls = iter(range(100))
    # a validation that only gets worse -> stops after `patience` bad validations
    res = meta_train(model, loss_fn, lambda g: task, n_iters=50, val_tasks=[task],
                     val_fn=lambda m, t: float(next(calls)), val_every=1, patience=3,
                     inner_steps=1)
    assert res.stopped_early and len(res.history) == 4 and res.best_iter == 1
