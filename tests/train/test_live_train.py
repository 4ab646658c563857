"""Live training: data sources, task specs, splits, featuriser, trainer, LiveBenchmark."""

import numpy as np
import pytest
import torch

from metanas import spaces, strategies
from metanas.errors import UserInputError
from metanas.train import (FEAT_DIM, TaskSpec, TrainConfig, build_task, featurise, load_source,
                           sample_features, stratified_split, task_sample_features,
                           train_and_evaluate)
from metanas.train.data import task_data_from_arrays

NB = spaces.get("nb201")
TINY = TrainConfig(C=4, N=1, epochs=1, batch_size=16)
TASK = "digits:classes=0,3,5:max_per_class=12"
ARCH = NB.from_str("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|")


# ---------------------------------------------------------------------------- training
def test_training_is_deterministic_for_a_seed():
    data = build_task(TASK)
    threads = torch.get_num_threads()
    state = torch.random.get_rng_state()
    a = train_and_evaluate(ARCH, NB, data, TINY)
    b = train_and_evaluate(ARCH, "nb201", data, TINY)
    assert torch.get_num_threads() == threads  # restored
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    for k in ("valid_acc", "test_acc", "train_acc", "train_loss", "params", "flops"):
        assert getattr(a, k) == getattr(b, k), k
    assert 0 <= a.valid_acc <= 100 and 0 <= a.test_acc <= 100 and a.wall_s > 0
    assert a.params > 0 and a.flops > 0 and a.device == "cpu" and a.epochs == 1
    # the seed matters (init + batch order): another seed gives another loss
    c = train_and_evaluate(ARCH, NB, data, TINY.replace(seed=1))
    assert c.train_loss != a.train_loss


def test_train_options_run():
    data = build_task(TASK)
    cfg = TINY.replace(resolution=11, augment=True, label_smoothing=0.1, warmup_epochs=0.5,
                       batch_size=7)
    r = train_and_evaluate(ARCH, NB, data, cfg)
    assert np.isfinite(r.train_loss)
    assert r.flops > train_and_evaluate(ARCH, NB, data, TINY).flops  # 11x11 > 8x8


def test_train_config_text_and_validation():
    cfg = TrainConfig.from_strings({"epochs": "3", "resolution": "none", "augment": "true",
                                    "lr": "0.05"})
    assert (cfg.epochs, cfg.resolution, cfg.augment, cfg.lr) == (3, None, True, 0.05)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError):
        TrainConfig.from_strings({"epochz": "3"})


# ---------------------------------------------------------------------------- tasks / splits
def test_task_spec_text_round_trip_and_errors():
    s = TaskSpec.parse("digits:classes=0,3,5,7,9:max_per_class=20:split=0.6,0.2,0.2:split_seed=3")
    assert s.classes == ("0", "3", "5", "7", "9") and s.max_per_class == 20
    assert s.split == (0.6, 0.2, 0.2) and s.split_seed == 3
    assert TaskSpec.parse(s.id) == s
    assert TaskSpec.parse("digits").id == "digits"
    with pytest.raises(UserInputError, match="unknown option"):
        TaskSpec.parse("digits:clases=1,2")
    with pytest.raises(UserInputError):
        TaskSpec.parse("digits:split=0.5,0.5")
    with pytest.raises(UserInputError, match="not in digits"):
        build_task("digits:classes=0,42")


def test_splits_deterministic_stratified_and_disjoint():
    y = np.repeat(np.arange(4), [10, 13, 7, 40])
    a = stratified_split(y, (0.5, 0.25, 0.25), seed=3)
    b = stratified_split(y, (0.5, 0.25, 0.25), seed=3)
    c = stratified_split(y, (0.5, 0.25, 0.25), seed=4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))
    allidx = np.concatenate(a)
    assert len(allidx) == len(y) == len(np.unique(allidx))
    for part, frac in zip(a, (0.5, 0.25, 0.25)):
        counts = np.bincount(y[part], minlength=4)
        assert np.all(np.abs(counts - frac * np.bincount(y)) <= 1)  # stratified
    tr, va, te = stratified_split(y, seed=0, max_per_class=5)
    assert np.all(np.bincount(y[np.concatenate([tr, va, te])]) == 5)
    assert np.all(np.bincount(y[va], minlength=4) >= 1)


def test_class_subset_tasks_share_per_class_splits():
    a = build_task("digits:classes=0,3,5")
    b = build_task("digits:classes=3,5,7,9")
    assert a.n_classes == 3 and a.class_ids == (0, 3, 5) and a.classes == ("0", "3", "5")
    assert set(a.sizes()) == {"train", "valid", "test"}
    # class "3" is split identically in both tasks (its RNG is keyed by the source class)
    ta = a.raw_train[a.y_train.numpy() == 1]
    tb = b.raw_train[b.y_train.numpy() == 0]
    assert np.array_equal(ta, tb)
    # standardised with train statistics
    assert abs(float(a.x_train.mean())) < 1e-4 and abs(float(a.x_train.std()) - 1) < 1e-2
    assert build_task(TaskSpec.parse("digits:classes=5,0,3")).classes == a.classes


# ---------------------------------------------------------------------------- featuriser
@pytest.mark.parametrize("shape", [(5, 1, 7, 5), (4, 3, 13, 31), (3, 3, 1, 1), (2, 9, 3)])
def test_featuriser_any_size_and_channels(shape):
    x = np.random.default_rng(0).uniform(0, 255, size=shape)
    f = featurise(x)
    assert f.shape == (shape[0], FEAT_DIM) and f.dtype == np.float32
    assert np.isfinite(f).all()
    # scale / offset invariant: the same images in another pixel range give the same features
    np.testing.assert_allclose(featurise(x / 255.0 * 16 + 3), f, atol=1e-4)


def test_featuriser_grey_equals_repeated_rgb_and_constant_is_zero():
    g = np.random.default_rng(1).normal(size=(3, 1, 10, 6))
    np.testing.assert_allclose(featurise(g), featurise(np.repeat(g, 3, axis=1)), atol=1e-5)
    assert np.all(featurise(np.ones((2, 3, 9, 9))) == 0)
    f = featurise(g)
    np.testing.assert_allclose(f.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(f.std(1), 1, atol=1e-4)


def test_sample_features_per_class():
    data = build_task("digits:classes=1,2,8")
    f = task_sample_features(data)
    assert f.shape == (3, 20, 64)
    assert np.array_equal(f, task_sample_features(data))
    # a class with fewer images than asked is repeated cyclically (fixed shape)
    x = np.random.default_rng(0).normal(size=(7, 1, 5, 5))
    y = np.array([0, 0, 0, 0, 0, 1, 1])
    s = sample_features(x, y, 2, n_per_class=4)
    assert s.shape == (2, 4, 64) and np.array_equal(s[1, 0], s[1, 2])


# ---------------------------------------------------------------------------- sources
def _png_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls, n in (("cat", 5), ("dog", 4)):
        d = root / cls
        d.mkdir(parents=True)
        for i in range(n):
            if cls == "cat" and i == 0:  # a grey image among RGB ones
                Image.fromarray(rng.integers(0, 255, (12, 10), dtype=np.uint8), "L").save(d / f"{i}.png")
            elif cls == "dog" and i == 0:  # another size: resized to the common one
                Image.fromarray(rng.integers(0, 255, (7, 9, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
            elif cls == "dog" and i == 1:  # a NumPy image, channels last
                np.save(d / f"{i}.npy", rng.uniform(0, 255, (12, 10, 3)).astype(np.float32))
            else:
                Image.fromarray(rng.integers(0, 255, (12, 10, 4), dtype=np.uint8), "RGBA").save(d / f"{i}.png")
    (root / "dog" / "notes.txt").write_text("ignored")
    return root


def test_folder_of_images(tmp_path):
    root = _png_folder(tmp_path / "pets")
    src = load_source(str(root))
    assert src.classes == ("cat", "dog") and src.x.shape == (9, 3, 12, 10)
    assert np.bincount(src.y).tolist() == [5, 4]
    data = build_task(str(root))
    assert data.n_classes == 2 and data.in_channels == 3 and data.image_size == (12, 10)
    assert sum(data.sizes().values()) == 9
    r = train_and_evaluate(ARCH, NB, data, TINY)
    assert np.isfinite(r.train_loss)
    assert task_sample_features(data, n_per_class=3).shape == (2, 3, 64)


def test_npz_input_nhwc_and_nchw(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (30, 9, 7, 3)).astype(np.float32)
    y = np.array(["b", "a", "c"] * 10)
    np.savez(tmp_path / "a.npz", x=x, y=y)
    np.savez(tmp_path / "b.npz", x=np.moveaxis(x, -1, 1), y=y)
    sa, sb = load_source(str(tmp_path / "a.npz")), load_source(str(tmp_path / "b.npz"))
    assert sa.classes == ("a", "b", "c") and sa.x.shape == (30, 3, 9, 7)
    assert np.array_equal(sa.x, sb.x) and np.array_equal(sa.y, sb.y)
    np.savez(tmp_path / "g.npz", x=x[..., 0], y=np.arange(30) % 2)
    data = build_task(f"{tmp_path / 'g.npz'}:classes=0,1")
    assert data.in_channels == 1 and data.classes == ("0", "1")
    np.savez(tmp_path / "bad.npz", images=x, y=y)
    with pytest.raises(UserInputError, match="no array 'x'"):
        load_source(str(tmp_path / "bad.npz"))


def test_datasets_on_disk(tmp_path):
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    imgs = [Image.fromarray(rng.integers(0, 255, (6, 6, 3), dtype=np.uint8)) for _ in range(12)]
    feats = datasets.Features({"img": datasets.Image(),
                               "fine": datasets.ClassLabel(names=["x", "y", "z"])})
    ds = datasets.Dataset.from_dict({"img": imgs, "fine": [i % 3 for i in range(12)]},
                                    features=feats)
    datasets.DatasetDict({"train": ds.select(range(9)), "test": ds.select(range(9, 12))}
                         ).save_to_disk(str(tmp_path / "hf"))
    src = load_source(str(tmp_path / "hf"))
    assert src.classes == ("x", "y", "z") and src.x.shape == (12, 3, 6, 6)
    only = load_source(str(tmp_path / "hf"), hf_split="test")
    assert only.x.shape[0] == 3


def test_missing_path_and_offline_hub_are_one_line_errors(tmp_path, monkeypatch):
    with pytest.raises(UserInputError, match="no such file") as e1:
        load_source(str(tmp_path / "nope"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserInputError, match="Hugging Face Hub") as e2:
        load_source("someone/not-a-real-dataset-xyz")
    for e in (e1, e2):
        assert "\n" not in str(e.value)


def test_task_data_from_arrays():
    x = np.random.default_rng(0).normal(size=(40, 2, 5, 5))
    y = np.arange(40) % 4
    d = task_data_from_arrays(x, y, TaskSpec(source="arrays"), ["a", "b", "c", "d"])
    assert d.n_classes == 4 and d.in_channels == 2 and sum(d.sizes().values()) == 40


# ---------------------------------------------------------------------------- evaluator
def test_live_benchmark_through_run_search():
    from metanas.benchmarks import Evaluator, get_benchmark
    from metanas.benchmarks.live import LiveBenchmark
    from metanas.search import run_search

    bench = get_benchmark(f"dataset:{TASK}:C=4:N=1:batch_size=16", space="nb201", fidelity=1)
    assert isinstance(bench, LiveBenchmark) and isinstance(bench, Evaluator)
    assert bench.train_config == TINY and bench.fidelity == 1
    run = run_search(strategies.make("rs", NB, seed=0), bench, budget=2, seed=0)
    assert len(run.history) == 2 == bench.n_evaluations
    h = run.history[0]
    assert 0 <= h["value"] <= 100 and set(h["report"]) == {"test"} and h["cost_s"] > 0
    # the same arch evaluated again (fresh evaluator) gives the same numbers
    again = LiveBenchmark("nb201", TASK, TINY).evaluate([h["arch"]])[0]
    assert (again.value, again.report) == (h["value"], h["report"])
    assert again.info["params"] > 0 and again.info["flops"] > 0
    with pytest.raises(UserInputError):
        get_benchmark(f"dataset:{TASK}", metric="test_loss")


# ---------------------------------------------------------------------------- bad inputs
def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def test_folder_with_an_empty_class_is_a_clear_error(tmp_path):
    root = _png_folder(tmp_path / "pets")
    (root / "emu").mkdir()
    (root / "emu" / "readme.txt").write_text("no images here")
    with pytest.raises(UserInputError) as e:
        load_source(str(root))
    msg = _one_line(e)
    assert "emu" in msg and "empty class folder" in msg


@pytest.mark.parametrize("name,content", [("broken.png", b"\x89PNG\r\n\x1a\nnot really"),
                                          ("truncated.jpg", b"\xff\xd8\xff\xe0garbage"),
                                          ("bad.npy", b"this is not numpy")])
def test_folder_with_a_corrupt_image_is_a_clear_error(tmp_path, name, content):
    root = _png_folder(tmp_path / "pets")
    (root / "cat" / name).write_bytes(content)
    with pytest.raises(UserInputError) as e:
        load_source(str(root))
    msg = _one_line(e)
    assert name in msg and "not a readable" in msg


def test_single_class_data_is_a_clear_error(tmp_path):
    root = _png_folder(tmp_path / "pets")
    import shutil

    shutil.rmtree(root / "dog")
    with pytest.raises(UserInputError) as e:
        build_task(str(root))
    assert "at least 2 classes" in _one_line(e)
    np.savez(tmp_path / "one.npz", x=np.zeros((10, 5, 5), np.float32), y=np.zeros(10, int))
    with pytest.raises(UserInputError) as e:
        build_task(str(tmp_path / "one.npz"))
    assert "at least 2 classes" in _one_line(e)
    with pytest.raises(UserInputError) as e:  # a subset of one class
        build_task("digits:classes=3")
    assert "at least 2 classes" in _one_line(e)
