"""Meta-training of the TNAS deep-kernel GP (``metanas.meta.tnas_train`` + ``train_meta.py``) on a
tiny synthetic meta-dataset."""

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from metanas import spaces
from metanas.meta import tnas_train
from metanas.meta.tnas_train import TrainConfig, train
from metanas.meta_dataset import MetaDataset
from metanas.surrogates.deep_kernel import DeepKernelGP

ROOT = Path(__file__).resolve().parents[2]
SPACE = spaces.get("transnas_micro")
FEAT = 8


def _md() -> MetaDataset:
    """3 large tasks (60 archs, with dataset samples), 5 small ones (2-4 archs), and the task
    'toy/held' whose archs appear in no other task."""
    rng = np.random.default_rng(0)
    allx = SPACE.all_array()
    perm = rng.permutation(len(allx))
    held_rows, rest = perm[:60], perm[60:]
    w = rng.normal(size=(SPACE.n_edges, SPACE.n_ops))
    tasks, triples = [], []

    def add(tid, rows, samples):
        tasks.append(dict(task=tid, space=SPACE.name, description="synthetic", n_classes=2,
                          class_ids=[0, 1], sample_features=samples, default_metric="acc",
                          report_metric=None, source="test", licence="CC0"))
        for r in rows:
            a = tuple(int(v) for v in allx[r])
            val = float(sum(w[i, o] for i, o in enumerate(a)) + 0.1 * rng.normal())
            triples.append(dict(task=tid, space=SPACE.name, arch=SPACE.to_str(a), metric="acc",
                                value=val, fidelity=0, split="valid", source="test"))

    def samples():
        return rng.normal(size=(2, 3, FEAT)).astype(np.float32).tolist()

    for i in range(3):
        add(f"toy/big{i}", rng.choice(rest, 60, replace=False), samples())
    for i in range(5):
        add(f"toy/small{i}", rng.choice(rest, 2 + i % 3, replace=False), None)
    add("toy/held", held_rows, samples())
    return MetaDataset(pd.DataFrame(tasks), pd.DataFrame(triples), name="toy")


def _cfg(**kw):
    base = dict(space="transnas_micro", iters=4, inner_steps=2, batch_size=20, val_every=2,
                save_every=2, small_group=3, val_k=8, val_m=20, val_draws=1, val_frac=0.3,
                context_top=4, context_random=20, patience=0,
                model={"mlp_hidden": [16], "feat_dim": 4})
    base.update(kw)
    return TrainConfig(**base)


@pytest.fixture(scope="module")
def md():
    return _md()


def test_writes_loadable_checkpoint_with_model_card(md, tmp_path):
    st = train(_cfg(exclude=["toy/held"]), tmp_path, progress=False, md=md,
               command="python train_meta.py --space transnas_micro --out X")
    for f in ("model.safetensors", "config.json", "README.md", "training_state.json",
              "prior_context.safetensors", "last.safetensors"):
        assert (tmp_path / f).is_file(), f
    model = DeepKernelGP.from_pretrained(tmp_path, space="transnas_micro")
    assert model.config.dataset_encoder.feat_dim == FEAT  # taken from the samples
    card = (tmp_path / "README.md").read_text()
    assert "toy/big0" in card and "toy/held" in card and "python train_meta.py" in card
    assert "wall time" in card and "validation" in card
    # where and with which weights: the card and the state name the machine and the SHA-1
    from metanas.io import weights_fingerprint

    fp = weights_fingerprint(tmp_path)
    assert st["weights_sha1"] == fp and f"`{fp}`" in card
    assert st["platform"]["torch"] == torch.__version__ and st["platform"]["cpu"] in card
    assert st["iter"] == 4 and st["best_iter"] in (2, 4)
    assert "toy/held" not in st["training_tasks"] and len(st["training_tasks"]) == 8
    assert all("spearman" in h for h in st["history"] if h["iter"] % 2 == 0)


def test_resume_continues(md, tmp_path):
    first = train(_cfg(), tmp_path, progress=False, md=md)
    hist = [dict(h) for h in first["history"]]
    again = train(_cfg(iters=6), tmp_path, resume=True, progress=False, md=md)
    assert again["iter"] == 6 and len(again["history"]) == 6
    assert again["history"][:4] == hist  # continued, not restarted
    # resuming a finished run with the same budget does no more iterations and leaves the
    # folder as it is (its card keeps the machine it was trained on)
    files = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    same = train(_cfg(iters=6), tmp_path, resume=True, progress=False, md=md)
    assert same["history"] == again["history"]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == files
    # a state from another task set or with other settings is refused, with or without
    # --resume, and left as it was
    saved = (tmp_path / "training_state.json").read_text()
    for resume in (True, "auto"):
        with pytest.raises(ValueError, match=r"with exclude=\[\], not \['toy/big0'\].*--fresh"):
            train(_cfg(iters=8, exclude=["toy/big0"]), tmp_path, resume=resume, progress=False,
                  md=md)
        with pytest.raises(ValueError, match="with seed=0, not 3"):
            train(_cfg(iters=8, seed=3), tmp_path, resume=resume, progress=False, md=md)
    assert (tmp_path / "training_state.json").read_text() == saved
    # the same settings continue without --resume too; --fresh (resume=False) starts over
    assert train(_cfg(iters=7), tmp_path, progress=False, md=md)["history"][:6] == \
        again["history"]
    new = train(_cfg(seed=3), tmp_path, resume=False, progress=False, md=md)
    assert new["iter"] == 4 and new["config"]["seed"] == 3
    with pytest.raises(ValueError, match="holds no meta-training run to resume"):
        train(_cfg(), tmp_path / "empty", resume=True, progress=False, md=md)


def test_a_fresh_run_never_ships_an_earlier_runs_weights(md, tmp_path):
    """``best.safetensors`` left by an interrupted run is not the checkpoint of a new run in
    the same folder (here one without validation, which keeps its last weights)."""
    from safetensors.torch import load_file

    ref = train(_cfg(seed=1, val_k=30), tmp_path / "ref", progress=False, md=md)
    assert ref["iter"] == ref["best_iter"] == 4 and ref["best_metrics"] is None
    out = tmp_path / "used"
    train(_cfg(), out, progress=False, md=md)
    (out / "model.safetensors").replace(out / "best.safetensors")  # as if killed mid-way
    train(_cfg(seed=1, val_k=30), out, resume=False, progress=False, md=md)
    a, b = load_file(str(out / "model.safetensors")), load_file(str(tmp_path / "ref" /
                                                                    "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_after_a_crash_between_weights_and_state(md, tmp_path):
    """The resume point is ``last.safetensors`` with its state inside: killed after the
    weights of the save at iteration 4 were written but before ``training_state.json`` was
    (simulated: the JSON rewound to the save at 2), the run still resumes, bit-identically."""
    from safetensors.torch import load_file

    import metanas.meta.reptile as rep

    full = train(_cfg(iters=6), tmp_path / "full", progress=False, md=md)
    part = tmp_path / "part"
    calls = {"n": 0}
    real = rep.reptile_step

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return real(*a, **k)

    rep.reptile_step = crashing
    try:
        with pytest.raises(KeyboardInterrupt):
            train(_cfg(iters=6), part, progress=False, md=md)
    finally:
        rep.reptile_step = real
    old = json.loads((part / "training_state.json").read_text())
    assert old["iter"] == 4
    old["iter"], old["history"] = 2, old["history"][:2]
    (part / "training_state.json").write_text(json.dumps(old))
    st = train(_cfg(iters=6), part, resume=True, progress=False, md=md)
    assert st["history"] == full["history"]
    a, b = (load_file(str(d / "last.safetensors")) for d in (tmp_path / "full", part))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_validation_tasks_and_task_selection_errors(md, tmp_path):
    """A validation task outside ``tasks`` is validated on (it was silently dropped); one
    that is also left out, a task of another space or one with no value of its metric is a
    one-line error."""
    from metanas.errors import UserInputError

    st = train(_cfg(tasks=["toy/big0", "toy/big1"], val_tasks=["toy/big2"]), tmp_path / "v",
               progress=False, md=md)
    assert st["training_tasks"] == ["toy/big0", "toy/big1"]
    rhos = [h["spearman"] for h in st["history"] if "spearman" in h]
    assert len(rhos) == 2 and all(r != 0.0 for r in rhos) and "toy/big2" in st["validation"]
    with pytest.raises(UserInputError, match="both a validation task"):
        train(_cfg(exclude=["toy/big2"], val_tasks=["toy/big2"]), tmp_path / "w",
              progress=False, md=md)
    other = MetaDataset(pd.concat([md.tasks, md.tasks.iloc[[0]].assign(task="nb/t0",
                                                                        space="nb201")]),
                        md.triples, name="two")
    with pytest.raises(UserInputError, match="'nb/t0' is a task of space nb201, not "
                                             "transnas_micro"):
        train(_cfg(tasks=["toy/big0", "nb/t0"]), tmp_path / "x", progress=False, md=other)
    wrong = MetaDataset(md.tasks.assign(default_metric=np.where(md.tasks["task"] == "toy/big1",
                                                                "loss", "acc")),
                        md.triples, name="wrong")
    with pytest.raises(UserInputError, match="'toy/big1' has no finite value of its default "
                                             "metric 'loss'"):
        train(_cfg(), tmp_path / "y", progress=False, md=wrong)
    with pytest.raises(UserInputError, match="val_every must be an integer >= 1, got 0"):
        train(_cfg(val_every=0), tmp_path / "z", progress=False, md=md)


def test_every_large_task_is_validated(md, tmp_path):
    """``val_frac`` of a small task is below ``val_k`` + a few targets: the task still holds
    out enough archs to validate on (before, nothing was validated and every check scored a
    Spearman of 0)."""
    st = train(_cfg(val_frac=0.05, exclude=["toy/held"]), tmp_path, progress=False, md=md)
    rhos = [h["spearman"] for h in st["history"] if "spearman" in h]
    assert rhos and all(r != 0.0 for r in rhos)


def test_resume_is_bit_identical(md, tmp_path):
    """Interrupt after the periodic save at iteration 2 (simulated: drop the final files and
    rewind the state), resume: same weights as the uninterrupted run."""
    full = tmp_path / "full"
    train(_cfg(), full, progress=False, md=md)
    part = tmp_path / "part"
    cfg = _cfg()
    import metanas.meta.reptile as rep

    calls = {"n": 0}
    real = rep.reptile_step

    def crashing(*a, **k):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    rep.reptile_step = crashing
    try:
        with pytest.raises(KeyboardInterrupt):
            train(cfg, part, progress=False, md=md)
    finally:
        rep.reptile_step = real
    assert json.loads((part / "training_state.json").read_text())["iter"] == 2
    train(_cfg(), part, resume=True, progress=False, md=md)
    from safetensors.torch import load_file

    a, b = load_file(str(full / "last.safetensors")), load_file(str(part / "last.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(torch.isnan(v).any() for v in a.values())


def test_excluded_task_never_sampled(md, tmp_path, monkeypatch):
    held = {SPACE.to_str(SPACE.from_str(s)) for s in md.table("toy/held").index}
    others = set()
    for t in md.task_ids():
        if t != "toy/held":
            others |= set(md.table(t).index)
    only_held = held - others
    assert only_held
    seen = set()
    real = tnas_train.batch_nll

    def spy(model, batch, gen=None):
        for X, _, _ in batch.groups:
            for row in X.round().long().tolist():
                seen.add(SPACE.to_str(tuple(row)))
        return real(model, batch, gen)

    monkeypatch.setattr(tnas_train, "batch_nll", spy)
    train(_cfg(exclude=["toy/held"], iters=6), tmp_path, progress=False, md=md)
    assert seen and not (seen & only_held)


def test_method_base_goes_to_base_meta_training(tmp_path, capsys):
    """``train_meta.py --method base`` runs BASE's meta-training (tiny run here); TNAS-only
    options are a one-line error; ``tnas_train.train`` refuses the BASE method."""
    sys.path.insert(0, str(ROOT))
    try:
        import train_meta
    finally:
        sys.path.remove(str(ROOT))
    rc = train_meta.main(["--space", "nb201", "--out", str(tmp_path / "x"), "--method", "base",
                          "--exclude-task", "nb201/cifar10"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--n-heldout" in err
    rc = train_meta.main(["--space", "nb201", "--out", str(tmp_path / "x"), "--method", "base",
                          "--top-share", "0.5"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "--top-share is an option of --method " \
        "tnas" in err
    out = tmp_path / "tiny"
    rc = train_meta.main(["--space", "nb201", "--method", "base", "--out", str(out),
                          "--n-tasks", "2", "--n-val", "1", "--n-heldout", "1", "--iters", "2",
                          "--inner-steps", "1", "--val-every", "2", "--val-steps", "1",
                          "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    with pytest.raises(tnas_train.MethodNotAvailable, match="meta_train_base"):
        train(TrainConfig(method="base"), tmp_path / "y", progress=False)



def test_prior_context_balances_sources():
    """One task of source 'a' (+1 everywhere) and three of source 'b' (-1): balanced, every
    arch measured by both sources gets the mean of the two source means (0), not -0.5."""
    X = SPACE.all_array()[:60].astype(np.int64)
    one = np.ones(60)
    tasks = [tnas_train.TaskData("a/t0", X, one)]
    tasks += [tnas_train.TaskData(f"b/t{i}", X, -one) for i in range(3)]
    cfg = _cfg(context_top=5, context_random=20, min_large=50, balance_sources=True)
    _, y = tnas_train._prior_context(tasks, cfg, SPACE, np.random.default_rng(0))
    assert np.allclose(y, 0.0)
    _, y_flat = tnas_train._prior_context(tasks, _cfg(context_top=5, context_random=20,
                                                      min_large=50, balance_sources=False),
                                          SPACE, np.random.default_rng(0))
    assert np.allclose(y_flat, -0.5)
    assert tnas_train.source_of("digits_live/digits-0-1-2-3-4") == "digits_live"


def test_balancing_is_a_no_op_with_one_source(md, tmp_path):
    """Every toy task is of source 'toy': the balanced draw is the plain one, bit for bit."""
    train(_cfg(balance_sources=True), tmp_path / "on", progress=False, md=md)
    train(_cfg(balance_sources=False), tmp_path / "off", progress=False, md=md)
    from safetensors.torch import load_file

    a = load_file(tmp_path / "on" / "model.safetensors")
    b = load_file(tmp_path / "off" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_exclude_sources_leaves_whole_collections_out(md, tmp_path):
    """``exclude_sources`` drops every task of a collection (as ``--exclude-source``), is
    recorded in the state and the card, and an unknown collection is a clear error."""
    two = MetaDataset(md.tasks.assign(task=md.tasks["task"].str.replace("toy/big2", "other/big2")),
                      md.triples.assign(task=md.triples["task"].str.replace("toy/big2",
                                                                             "other/big2")),
                      name="two")
    st = train(_cfg(exclude=["toy/held"], exclude_sources=["other"]), tmp_path / "a",
               progress=False, md=two)
    assert "other/big2" not in st["training_tasks"] and "toy/big0" in st["training_tasks"]
    assert st["config"]["exclude_sources"] == ["other"]
    assert "| excluded collections | `other` |" in (tmp_path / "a" / "README.md").read_text()
    # the same task set given task by task trains the same weights, bit for bit
    train(_cfg(exclude=["toy/held", "other/big2"]), tmp_path / "b", progress=False, md=two)
    from safetensors.torch import load_file

    wa, wb = (load_file(str(tmp_path / d / "model.safetensors")) for d in ("a", "b"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    with pytest.raises(ValueError, match="--exclude-source 'nope' is no collection"):
        train(_cfg(exclude_sources=["nope"]), tmp_path / "c", progress=False, md=two)


def test_top_weighted_batches_draw_the_top_share():
    """``top_share=0.5, top_quantile=0.1``: half of each 20-arch batch comes from the task's
    top 10% of training rows (by value), the other half from the rest, no row twice."""
    X = SPACE.all_array()[:200].astype(np.int64)
    y = np.arange(200, dtype=np.float64)[::-1].copy()  # row i has rank i
    d = tnas_train.TaskData("a/t", X, y, train_rows=np.arange(0, 200, 2))  # 100 train rows
    cfg = _cfg(batch_size=20, top_share=0.5, top_quantile=0.1)
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        sel = tnas_train._top_weighted_rows(d, cfg, g)
        assert len(sel) == 20 and len(set(sel.tolist())) == 20
        assert set(sel.tolist()) <= set(d.train_rows.tolist())
        # the top 10% of the 100 training rows are rows 0, 2, ..., 18
        assert int((sel < 20).sum()) == 10


def test_top_share_zero_and_copula_options(md, tmp_path):
    """``top_share=0`` is the uniform draw bit for bit; the options change the weights; the
    copula replaces large tasks' values by their normal scores; bad settings are clear
    errors."""
    from safetensors.torch import load_file

    def weights(name, **kw):
        train(_cfg(**kw), tmp_path / name, progress=False, md=md)
        return load_file(str(tmp_path / name / "model.safetensors"))

    base, zero = weights("base"), weights("zero", top_share=0.0, top_quantile=0.5)
    assert all(torch.equal(base[k], zero[k]) for k in base)
    for name, kw in (("top", {"top_share": 0.5}), ("cop", {"target_transform": "copula"})):
        w = weights(name, **kw)
        assert any(not torch.equal(base[k], w[k]) for k in base), name
    assert json.loads((tmp_path / "cop" / "training_state.json").read_text()
                      )["config"]["target_transform"] == "copula"
    tasks = [tnas_train.TaskData("a/big", np.zeros((60, 6), np.int64),
                                 np.exp(np.linspace(0, 5, 60))),
             tnas_train.TaskData("a/small", np.zeros((3, 6), np.int64), np.array([1., 2., 4.]))]
    tnas_train._standardise(tasks, 50, "copula")
    from scipy.stats import norm

    z = norm.ppf((np.arange(1, 61) - 0.5) / 60)
    assert np.allclose(tasks[0].y, (z - z.mean()) / z.std(ddof=1))
    small = np.array([1., 2., 4.])  # small: not warped; centred, scaled by the small sd
    assert np.allclose(tasks[1].y, (small - small.mean()) / small.std(ddof=1))
    with pytest.raises(ValueError, match="target_transform must be one of"):
        train(_cfg(target_transform="rank"), tmp_path / "bad", progress=False, md=md)
    with pytest.raises(ValueError, match="top_share must be in"):
        train(_cfg(top_share=1.5), tmp_path / "bad2", progress=False, md=md)


def test_train_meta_cli_bad_settings_are_one_line_errors(tmp_path, capsys, monkeypatch):
    """Out-of-range settings, ``--resume`` without a saved run and a push that cannot happen
    (offline) fail in one line before any training; ``--resume`` / ``--fresh`` stay out of the
    card's rebuild command."""
    sys.path.insert(0, str(ROOT))
    try:
        import train_meta
    finally:
        sys.path.remove(str(ROOT))
    out = tmp_path / "o"
    base = ["--space", "transnas_micro", "--out", str(out), "--no-progress"]
    for extra, msg in [(["--iters", "0"], "iters must be an integer >= 1, got 0"),
                       (["--val-every", "0"], "val_every must be an integer >= 1"),
                       (["--batch-size", "-1"], "batch_size must be an integer >= 1"),
                       (["--outer-lr", "0"], "outer_lr must be a number > 0"),
                       (["--method", "base", "--iters", "-3"], "iters must be an integer >= 1"),
                       (["--resume"], "holds no meta-training run to resume"),
                       (["--push-to-hub", "me/m"], "HF_HUB_OFFLINE is set: cannot push")]:
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        rc = train_meta.main(base + extra)
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and msg in err, (extra, err)
        assert not (out / "training_state.json").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    rc = train_meta.main(base + ["--push-to-hub", "not a/valid/id"])
    assert rc == 2 and "is not a Hub repo id" in capsys.readouterr().err
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    rc = train_meta.main(base + ["--iters", "2", "--val-every", "2", "--fresh"])
    assert rc == 0, capsys.readouterr().err
    card = (out / "README.md").read_text()
    assert "--iters 2" in card and "--fresh" not in card


def _cache_dataset(md: MetaDataset, home: Path, repo_id: str) -> Path:
    """Put ``md`` into the Hugging Face cache under ``home`` as dataset repo ``repo_id`` (the
    layout ``snapshot_download`` reads: refs/main -> snapshots/<commit>)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = home / "hub" / f"datasets--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snap = repo / "snapshots" / commit
    md.save(snap, compression_level=1)
    return snap


def test_meta_dataset_takes_a_cached_hub_id(md, tmp_path, monkeypatch):
    """``meta_dataset`` may be a Hub dataset id: offline, a cached one trains."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    _cache_dataset(md.subset(["toy/big0", "toy/big1", "toy/big2", "toy/small0"]),
                   tmp_path / "hf_home", "someone/toy-md")
    st = train(_cfg(iters=2, meta_dataset="someone/toy-md"), tmp_path / "out", progress=False)
    assert st["iter"] == 2
    assert (tmp_path / "out" / "config.json").is_file()


def test_train_meta_cli_uncached_hub_meta_dataset_is_one_line(tmp_path, capsys, monkeypatch):
    """``--meta-dataset org/name`` offline and not in the cache: the hub's one-line message
    (what to run to get it), status 2, no traceback, nothing trained."""
    sys.path.insert(0, str(ROOT))
    try:
        import train_meta
    finally:
        sys.path.remove(str(ROOT))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    out = tmp_path / "o"
    rc = train_meta.main(["--space", "transnas_micro", "--out", str(out), "--no-progress",
                          "--meta-dataset", "someone/not-cached-md"])
    cap = capsys.readouterr()
    err = cap.err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "Traceback" not in cap.err + cap.out
    assert "HF_HUB_OFFLINE" in err and \
        "hf download someone/not-cached-md --repo-type dataset" in err, err
    assert not (out / "training_state.json").exists()
    with pytest.raises(SystemExit):
        train_meta.main(["--help"])
    assert "Hub dataset id org/name" in " ".join(capsys.readouterr().out.split())


def test_inner_optimizer_default_adam_sgd_opt_in_and_on_the_card(md, tmp_path, monkeypatch):
    """The Reptile inner loop is Adam by default (the shipped checkpoints' recipe) and SGD
    (Algorithm 1 as written) with ``inner_optimizer="sgd"``; the card says which."""
    from metanas.errors import UserInputError
    from metanas.meta import reptile

    assert TrainConfig().inner_optimizer == "adam"
    with pytest.raises(UserInputError, match="inner_optimizer must be one of adam, sgd"):
        TrainConfig(inner_optimizer="rmsprop").check()
    used = []
    real = reptile._make_optimizer

    def spy(name, params, lr):
        used.append(name)
        return real(name, params, lr)

    monkeypatch.setattr(reptile, "_make_optimizer", spy)
    for opt in ("adam", "sgd"):
        used.clear()
        kw = {} if opt == "adam" else {"inner_optimizer": "sgd"}
        train(_cfg(iters=2, val_k=30, **kw), tmp_path / opt, progress=False, md=md)
        assert used and set(used) == {opt}
        card = (tmp_path / opt / "README.md").read_text()
        assert f"| inner optimiser, steps v, inner lr, outer lr | {opt}, 2," in card
        assert 'inner_optimizer=\\"sgd\\"' in card or 'inner_optimizer="sgd"' in card
    assert "Adam in the inner loop" in (tmp_path / "adam" / "README.md").read_text()


def test_runs_saved_before_inner_optimizer_count_as_adam(md, tmp_path, monkeypatch):
    """A run / checkpoint saved without ``inner_optimizer`` (all before it existed, the
    shipped ones included) is an Adam run: it resumes with the default settings, is refused
    for ``"sgd"``, and ``tnas_loto.trained_checkpoint`` reuses it instead of re-training."""
    from metanas.errors import UserInputError
    from metanas.meta.tnas_train import STATE_NAME

    for d in ("nb201", "transnas_micro"):
        old = json.loads((ROOT / "pretrained" / f"tnas-{d}" / STATE_NAME).read_text())
        assert old.get("config", {}).get("inner_optimizer", "adam") == "adam"
    out = tmp_path / "run"
    train(_cfg(), out, progress=False, md=md)
    sp = out / STATE_NAME
    st = json.loads(sp.read_text())
    del st["config"]["inner_optimizer"]
    sp.write_text(json.dumps(st))
    with pytest.raises(UserInputError, match="with inner_optimizer='adam', not 'sgd'"):
        train(_cfg(iters=6, inner_optimizer="sgd"), out, resume=True, progress=False, md=md)
    again = train(_cfg(iters=6), out, resume=True, progress=False, md=md)
    assert again["iter"] == 6 and again["config"]["inner_optimizer"] == "adam"

    sys.path.insert(0, str(ROOT))
    try:
        from benchmarks import tnas_loto
    finally:
        sys.path.remove(str(ROOT))
    from dataclasses import asdict

    d = tmp_path / "loto"
    d.mkdir()
    cfg = TrainConfig(space="transnas_micro", exclude=["transnas_micro/jigsaw"], iters=3)
    saved = asdict(cfg)
    del saved["inner_optimizer"]
    (d / STATE_NAME).write_text(json.dumps({"config": saved, "done": True, "wall_s": 7.0}))
    monkeypatch.setattr(tnas_train, "train", lambda *a, **k: pytest.fail("re-trained"))
    assert tnas_loto.trained_checkpoint(d, cfg, lambda m: None, "x", "cmd") == (d, 7.0)


def test_batch_nll_makes_its_tensors_on_the_data_device():
    """``batch_nll`` creates its group ids and identity on the device of the data (not the
    default device), so meta-training runs on an accelerator."""
    from torch.overrides import TorchFunctionMode

    class Factories(TorchFunctionMode):
        def __init__(self):
            super().__init__()
            self.calls = []

        def __torch_function__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            if func in (torch.full, torch.eye):
                self.calls.append((func.__name__, "device" in kwargs))
            return func(*args, **kwargs)

    torch.manual_seed(0)
    model = tnas_train._build_model(_cfg(), None).double()
    rng = np.random.default_rng(0)
    X = [torch.as_tensor(np.array([SPACE.sample(rng)[0] for _ in range(4)]), dtype=torch.float64)
         for _ in range(2)]
    batch = tnas_train.Batch([(x, torch.randn(4, dtype=torch.float64), None) for x in X])
    with Factories() as mode:
        loss = tnas_train.batch_nll(model, batch)
    assert torch.isfinite(loss)
    assert {c[0] for c in mode.calls} == {"full", "eye"} and all(c[1] for c in mode.calls)


def test_train_meta_cli_says_what_it_did_and_refuses_fewer_iters(md, tmp_path, capsys):
    """The final line tells a new run, a continued one and a complete one apart (a continued
    run also says so first, on stderr); --iters below the iterations already run is a
    one-line error; the bar is drawn only on a terminal (or with --progress)."""
    sys.path.insert(0, str(ROOT))
    try:
        import train_meta
    finally:
        sys.path.remove(str(ROOT))
    folder = tmp_path / "md"
    md.save(folder / "toy", compression_level=1)
    out = tmp_path / "o"
    base = ["--space", "transnas_micro", "--meta-dataset", str(folder / "toy"), "--out",
            str(out), "--val-every", "2", "--batch-size", "20", "--inner-steps", "1"]
    assert train_meta.main(base + ["--iters", "2"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith(f"trained {out}: 2 iterations, best iter ")
    assert "meta-train tnas" not in cap.err  # stderr is no terminal here: no bar
    assert train_meta.main(base + ["--iters", "2"]) == 0
    assert capsys.readouterr().out.strip() == \
        f"{out} is already complete at 2 iterations; nothing to do"
    assert train_meta.main(base + ["--iters", "3", "--progress"]) == 0
    cap = capsys.readouterr()
    assert cap.out.startswith(f"continued {out} from 2 to 3 iterations, best iter ")
    assert f"continuing {out} from iteration 2 to 3" in cap.err
    assert "meta-train tnas" in cap.err  # forced bar
    saved = (out / "training_state.json").read_text()
    assert train_meta.main(base + ["--iters", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"train_meta.py: error: --iters 1 < the 3 iterations already run in {out}; "
                   f"give --iters >= 3 or --fresh to start over")
    assert (out / "training_state.json").read_text() == saved
    assert train_meta.main(base + ["--iters", "1", "--fresh"]) == 0
    assert capsys.readouterr().out.startswith(f"trained {out}: 1 iteration, ")


def test_train_returns_its_outcome(md, tmp_path):
    assert train(_cfg(iters=2), tmp_path, progress=False, md=md)["outcome"] == "trained"
    st = train(_cfg(iters=3), tmp_path, progress=False, md=md)
    assert st["outcome"] == "continued" and st["resumed_from"] == 2
    assert train(_cfg(iters=3), tmp_path, progress=False, md=md)["outcome"] == "complete"
    assert "outcome" not in json.loads((tmp_path / "training_state.json").read_text())
    with pytest.raises(ValueError, match=r"--iters 2 < the 3 iterations already run"):
        train(_cfg(iters=2), tmp_path, progress=False, md=md)
