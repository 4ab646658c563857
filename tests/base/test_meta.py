"""BASE meta-update, checkpoints, meta-training (tiny) and quick adaptation."""

import copy
import json

import pytest
import torch

from metanas.base.adapt import AdaptConfig, adapt, model_for_task
from metanas.base.bayes import BayesConfig, BayesSuperNet
from metanas.base.elbo import ELBOConfig, TaskBatches
from metanas.base.meta import (BaseCheckpoint, BaseMetaConfig, _loss_fn, load_base,
                               meta_train_base, save_base)
from metanas.meta.checkpoint import CheckpointError
from metanas.meta.reptile import reptile_step
from metanas.train import build_task

TINY = BayesConfig(C=2, N=1, num_classes=3)
TASK = "digits:classes=0,1,2:max_per_class=20"


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def test_one_meta_step_moves_w_toward_the_adapted_parameters():
    d = build_task(TASK)
    task = TaskBatches(d.x_train, d.y_train, TASK)
    model = BayesSuperNet(TINY)
    loss = _loss_fn(ELBOConfig(batch_size=8))
    w0 = _params(model)
    # the adapted parameters phi^T: the same inner loop on a copy, same generator stream
    inner = copy.deepcopy(model)
    opt = torch.optim.Adam(inner.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(7)
    for _ in range(3):
        opt.zero_grad()
        loss(inner, task, g).backward()
        opt.step()
    phi = _params(inner)
    model.sync_prior()
    reptile_step(model, loss, [task], inner_steps=3, inner_lr=1e-2, outer_lr=0.25,
                 generator=torch.Generator().manual_seed(7), buffers="keep")
    w1 = _params(model)
    for a, b, c in zip(w0, w1, phi):
        assert torch.allclose(b, a + 0.25 * (c - a), atol=1e-6)  # W <- W + lambda (phi - W)
    d0 = sum(float((c - a).pow(2).sum()) for a, c in zip(w0, phi))
    d1 = sum(float((c - b).pow(2).sum()) for b, c in zip(w1, phi))
    assert d0 > 0 and d1 == pytest.approx(0.75 ** 2 * d0, rel=1e-4)
    # the architecture logits and the weight scales are meta-learned too
    assert not torch.equal(w0[0], w1[0])  # arch_param comes first


def _ckpt():
    return BaseCheckpoint(space="nb201", net=TINY, training_tasks=["digits:classes=0,1,2"],
                          heldout_tasks=["digits:classes=3,4,5"])


def test_checkpoint_round_trip_identical(tmp_path):
    model = BayesSuperNet(TINY)
    with torch.no_grad():
        model.arch_param.normal_(generator=torch.Generator().manual_seed(0))
        for ls in model.log_sigma:
            ls.add_(0.1)
    save_base(model, _ckpt(), tmp_path / "p")
    files = sorted(p.name for p in (tmp_path / "p").iterdir())
    assert files == ["config.json", "model.safetensors"]
    back, ckpt = load_base(tmp_path / "p")
    assert ckpt == _ckpt()
    assert torch.equal(back.arch_probs(), model.arch_probs())
    for (k, a), (k2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    # the prior buffers are synced to the loaded W
    assert float(back.kl_weights().detach()) == 0 and float(back.kl_arch().detach()) == 0
    # through the Hub API too
    from metanas import hub

    hub.save_pretrained((model, ckpt), tmp_path / "h")
    m2, c2 = hub.load_pretrained(tmp_path / "h", kind="base", space="nb201")
    assert torch.equal(m2.arch_probs(), model.arch_probs()) and c2 == ckpt
    assert "kind: base" in (tmp_path / "h" / "README.md").read_text()


def test_checkpoint_mismatch_is_one_line(tmp_path):
    save_base(BayesSuperNet(TINY), _ckpt(), tmp_path / "p")
    cfg = json.loads((tmp_path / "p" / "config.json").read_text())
    cfg["net"]["C"] = 4
    (tmp_path / "p" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        load_base(tmp_path / "p")
    assert "\n" not in str(e.value) and "net.C" in str(e.value)


def test_adapt_from_prior_changes_arch_and_handles_other_class_counts():
    d = build_task(TASK)
    prior = BayesSuperNet(TINY)
    res = adapt(prior, d, AdaptConfig(steps=5, lr=1e-2, elbo=ELBOConfig(batch_size=8)),
                torch.Generator().manual_seed(0))
    assert res.steps == 5 and len(res.arch) == 6 and res.wall_s > 0
    assert not torch.equal(res.logits, prior.logits.detach())
    assert float(prior.kl_arch().detach()) == 0  # the prior is untouched
    # another class count: the head starts fresh, everything else from the prior
    m = model_for_task(prior, 1, 4)
    assert m.net.classifier.out_features == 4
    assert torch.equal(m.net.stem[0].weight, prior.net.stem[0].weight)
    assert torch.equal(m.arch_param, prior.arch_param)
    # derive with k samples ranked on validation
    res2 = adapt(prior, d, AdaptConfig(steps=2, derive_samples=3,
                                       elbo=ELBOConfig(batch_size=8)),
                 torch.Generator().manual_seed(0))
    assert len(res2.arch) == 6


def test_meta_train_tiny_resume_and_heldout_disjoint(tmp_path):
    cfg = BaseMetaConfig(n_tasks=3, n_val=1, n_heldout=2, iters=2, tasks_per_iter=1,
                         inner_steps=2, val_every=2, val_steps=1, save_every=1,
                         model={"C": 2, "N": 1}, elbo={"batch_size": 16})
    st = meta_train_base(cfg, tmp_path / "m", progress=False, command="python x")
    assert st["iter"] == 2 and st["done"]
    held, train = set(st["heldout_tasks"]), set(st["training_tasks"])
    assert len(held) == 2 and len(train) == 3 and not held & train
    assert not set(st["val_tasks"]) & (held | train)
    model, ckpt = load_base(tmp_path / "m")
    assert ckpt.heldout_tasks == st["heldout_tasks"] and ckpt.net.C == 2
    card = (tmp_path / "m" / "README.md").read_text()
    assert "python x" in card
    assert st["platform"]["threads"] >= 1 and st["platform"]["cpu"] in card  # where it ran
    # resume with more iterations continues from iteration 2
    cfg3 = BaseMetaConfig(**{**cfg.__dict__, "iters": 3})
    st3 = meta_train_base(cfg3, tmp_path / "m", resume=True, progress=False)
    assert st3["iter"] == 3 and [h["iter"] for h in st3["history"]] == [1, 2, 3]


def test_extending_a_finished_run_keeps_its_best_prior(tmp_path, monkeypatch):
    """More ``iters`` on a finished run whose new iterates validate worse: the checkpoint
    stays the old best (it used to become the last iterate while the card named the best)."""
    from safetensors.torch import load_file

    from metanas.base import meta

    cfg = BaseMetaConfig(n_tasks=2, n_val=1, n_heldout=0, iters=2, tasks_per_iter=1,
                         inner_steps=1, val_every=1, val_steps=1, save_every=1, patience=0,
                         model={"C": 2, "N": 1}, elbo={"batch_size": 16})
    ces = iter([1.5, 1.0, 2.0, 3.0])  # validation CE at iterations 1-4: 2 is the best
    monkeypatch.setattr(meta, "validate", lambda *a, **k: next(ces))
    out = tmp_path / "m"
    st = meta_train_base(cfg, out, progress=False)
    assert st["best_iter"] == 2
    best = load_file(str(out / "model.safetensors"))
    st4 = meta_train_base(BaseMetaConfig(**{**cfg.__dict__, "iters": 4}), out, progress=False)
    assert st4["iter"] == 4 and st4["best_iter"] == 2
    now = load_file(str(out / "model.safetensors"))
    last = load_file(str(out / "last.safetensors"))
    assert now.keys() == best.keys() and all(torch.equal(now[k], best[k]) for k in best)
    assert any(not torch.equal(last[k], best[k]) for k in best if k in last)


def test_tasks_per_iter_above_the_training_tasks_is_refused(tmp_path):
    """``tasks_per_iter`` larger than the training tasks is an error, not silently cut."""
    from metanas.errors import UserInputError

    cfg = BaseMetaConfig(n_tasks=2, n_val=0, n_heldout=0, iters=1, tasks_per_iter=100,
                         inner_steps=1, model={"C": 2, "N": 1}, elbo={"batch_size": 8})
    with pytest.raises(UserInputError, match="^--tasks-per-iter 100 exceeds the 2 training "
                                             "tasks; lower it or add tasks$"):
        meta_train_base(cfg, tmp_path / "m", progress=False)
    assert not (tmp_path / "m" / "training_state.json").exists()


def test_draw_tasks_names_every_count_when_too_many():
    """The held-out / validation / training counts together exceed the class subsets: the
    message sums the three options (not only ``--n-tasks``)."""
    from metanas.base.meta import draw_tasks
    from metanas.errors import UserInputError

    with pytest.raises(UserInputError, match=r"^--n-tasks 300 \+ --n-heldout 5 \+ --n-val 3 = "
                                             r"308 > 252 distinct 5-class subsets of 10 "
                                             r"classes; lower one of them$"):
        draw_tasks(BaseMetaConfig(n_tasks=300))
    with pytest.raises(UserInputError, match=r"^--n-heldout 200 \+ --n-val 100 = 300 > 252"):
        draw_tasks(BaseMetaConfig(n_heldout=200, n_val=100, tasks=["digits:classes=0,1"]))
    held, val, train = draw_tasks(BaseMetaConfig(n_tasks=244))  # exactly all 252
    assert len(set(held + val + train)) == 252


def test_rerunning_an_early_stopped_run_leaves_it_stopped(tmp_path, monkeypatch):
    """The same command on a run that stopped early does nothing (it used to train on, since
    its ``iters`` exceeded the iteration it stopped at); a higher ``iters`` continues it."""
    from metanas.base import meta

    ces = iter([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # only iteration 1 is best: stop at 2
    monkeypatch.setattr(meta, "validate", lambda *a, **k: next(ces))
    cfg = BaseMetaConfig(n_tasks=2, n_val=1, n_heldout=0, iters=10, tasks_per_iter=1,
                         inner_steps=1, val_every=1, val_steps=1, save_every=1, patience=1,
                         model={"C": 2, "N": 1}, elbo={"batch_size": 16})
    out = tmp_path / "m"
    st = meta_train_base(cfg, out, progress=False)
    assert st["stopped_early"] and st["iter"] == 2
    again = meta_train_base(cfg, out, progress=False)
    assert again["iter"] == 2 and again["stopped_early"]
    more = meta_train_base(BaseMetaConfig(**{**cfg.__dict__, "iters": 12}), out, progress=False)
    assert more["iter"] > 2
