"""metanas.train.data input checks: image layouts, non-finite pixels, object arrays, task ids,
datasets columns, classes too small to split. Tiny data made from scikit-learn's digits."""

import numpy as np
import pytest

from metanas.errors import UserInputError
from metanas.train.data import TaskSpec, build_task, load_source, task_data_from_arrays


def _one_line(exc_info) -> str:
    msg = str(exc_info.value)
    assert "\n" not in msg
    return msg


def _digits_rgb(size: int, n_per_class: int = 3, classes=(0, 1)):
    """``{class: [uint8 HxWx3 image]}``: digits resized to ``size`` with three different
    channels (so that a channel / row mix-up changes the pixels)."""
    from PIL import Image
    from sklearn.datasets import load_digits

    d = load_digits()
    out = {}
    for c in classes:
        imgs = []
        for im in d.images[d.target == c][:n_per_class]:
            g = np.asarray(Image.fromarray((im * 15).astype(np.uint8)).resize((size, size),
                                                                              Image.BILINEAR))
            imgs.append(np.stack([g, 255 - g, g.T], axis=-1).astype(np.uint8))
        out[str(c)] = imgs
    return out


def _png_folder(root, size, **kw):
    from PIL import Image

    data = _digits_rgb(size, **kw)
    for c, imgs in data.items():
        (root / c).mkdir(parents=True)
        for i, a in enumerate(imgs):
            Image.fromarray(a, "RGB").save(root / c / f"{i}.png")
    return data


# ---------------------------------------------------------------------------- 1. layouts
@pytest.mark.parametrize("size", [3, 4, 5, 8])
def test_small_rgb_pngs_in_a_folder_keep_their_layout(tmp_path, size):
    data = _png_folder(tmp_path / "f", size)
    src = load_source(str(tmp_path / "f"))
    assert src.image_shape == (3, size, size)
    expected = np.stack([np.moveaxis(a, -1, 0) for c in sorted(data) for a in data[c]])
    assert np.array_equal(src.x, expected.astype(np.float32))


def test_small_rgb_images_in_a_datasets_folder_keep_their_layout(tmp_path):
    import datasets
    from PIL import Image

    data = _digits_rgb(4)
    imgs = [a for c in sorted(data) for a in data[c]]
    feats = datasets.Features({"image": datasets.Image(),
                               "label": datasets.ClassLabel(names=["0", "1"])})
    datasets.Dataset.from_dict({"image": [Image.fromarray(a) for a in imgs],
                                "label": [0, 0, 0, 1, 1, 1]}, features=feats
                               ).save_to_disk(str(tmp_path / "hf"))
    src = load_source(str(tmp_path / "hf"))
    assert src.image_shape == (3, 4, 4)
    assert np.array_equal(src.x, np.stack([np.moveaxis(a, -1, 0) for a in imgs]).astype(np.float32))


def test_npz_layout_is_decided_on_the_whole_array(tmp_path):
    data = _digits_rgb(8)
    imgs = [a for c in sorted(data) for a in data[c]]
    nhwc = np.stack(imgs)  # [6, 8, 8, 3]
    y = np.array([0, 0, 0, 1, 1, 1])
    np.savez(tmp_path / "hwc.npz", x=nhwc, y=y)
    np.savez(tmp_path / "chw.npz", x=np.moveaxis(nhwc, -1, 1), y=y)
    a, b = load_source(str(tmp_path / "hwc.npz")), load_source(str(tmp_path / "chw.npz"))
    assert a.image_shape == b.image_shape == (3, 8, 8)
    assert np.array_equal(a.x, np.moveaxis(nhwc, -1, 1).astype(np.float32))
    assert np.array_equal(a.x, b.x)
    # 8x8 grey with a channel axis of 1, either side
    np.savez(tmp_path / "g1.npz", x=nhwc[..., :1], y=y)
    np.savez(tmp_path / "g2.npz", x=np.moveaxis(nhwc[..., :1], -1, 1), y=y)
    assert load_source(str(tmp_path / "g1.npz")).image_shape == (1, 8, 8)
    assert load_source(str(tmp_path / "g2.npz")).image_shape == (1, 8, 8)


def test_ambiguous_npz_layout_is_an_error_and_layout_resolves_it(tmp_path):
    data = _digits_rgb(4)
    imgs = [a for c in sorted(data) for a in data[c]]
    nhwc = np.stack(imgs)  # [6, 4, 4, 3]: axis 1 and axis 3 could both be channels
    y = np.array([0, 0, 0, 1, 1, 1])
    np.savez(tmp_path / "amb.npz", x=nhwc, y=y)
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "amb.npz"))
    msg = _one_line(e)
    assert "amb.npz" in msg and "layout" in msg and "NHWC" in msg and "NCHW" in msg
    np.savez(tmp_path / "hwc.npz", x=nhwc, y=y, layout="NHWC")
    np.savez(tmp_path / "chw.npz", x=np.moveaxis(nhwc, -1, 1), y=y, layout="nchw")
    a, b = load_source(str(tmp_path / "hwc.npz")), load_source(str(tmp_path / "chw.npz"))
    assert a.image_shape == (3, 4, 4)
    assert np.array_equal(a.x, np.moveaxis(nhwc, -1, 1).astype(np.float32))
    assert np.array_equal(a.x, b.x)
    np.savez(tmp_path / "badlayout.npz", x=nhwc, y=y, layout="HWC")
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "badlayout.npz"))
    assert "layout" in _one_line(e)


def test_npy_images_in_a_folder(tmp_path):
    data = _digits_rgb(8)
    for c, imgs in data.items():
        (tmp_path / "f" / c).mkdir(parents=True)
        for i, a in enumerate(imgs):  # channels last and channels first, mixed
            np.save(tmp_path / "f" / c / f"{i}.npy", a if i % 2 else np.moveaxis(a, -1, 0))
    src = load_source(str(tmp_path / "f"))
    expected = np.stack([np.moveaxis(a, -1, 0) for c in sorted(data) for a in data[c]])
    assert np.array_equal(src.x, expected.astype(np.float32))
    np.save(tmp_path / "f" / "0" / "tiny.npy", np.zeros((3, 3, 3), np.float32))
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "f"))
    msg = _one_line(e)
    assert "tiny.npy" in msg and "(3, 3, 3)" in msg


# ---------------------------------------------------------------------------- 2. NaN / inf
def test_non_finite_pixels_in_npz_are_an_error(tmp_path):
    x = np.random.default_rng(0).uniform(size=(12, 6, 6)).astype(np.float32)
    x[7, 2, 3] = np.nan
    x[9, 0, 0] = np.inf
    np.savez(tmp_path / "nan.npz", x=x, y=np.arange(12) % 2)
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "nan.npz"))
    msg = _one_line(e)
    assert "nan.npz" in msg and "image 7" in msg and "NaN" in msg
    big = np.ones((12, 6, 6))  # float64 values that become inf in float32
    big[4, 0, 0] = 1e300
    np.savez(tmp_path / "big.npz", x=big, y=np.arange(12) % 2)
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "big.npz"))
    msg = _one_line(e)
    assert "big.npz" in msg and "image 4" in msg and "too large" in msg


def test_non_finite_pixels_in_a_folder_are_an_error(tmp_path):
    from PIL import Image

    data = _digits_rgb(8)
    for c, imgs in data.items():
        (tmp_path / "f" / c).mkdir(parents=True)
        for i, a in enumerate(imgs):
            Image.fromarray(a).save(tmp_path / "f" / c / f"{i}.png")
    bad = np.ones((8, 8), np.float32)
    bad[1, 1] = -np.inf
    np.save(tmp_path / "f" / "1" / "bad.npy", bad)
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "f"))
    assert "bad.npy" in _one_line(e)
    (tmp_path / "f" / "1" / "bad.npy").unlink()
    bad[1, 1] = np.nan  # a float TIFF read by PIL
    Image.fromarray(bad, mode="F").save(tmp_path / "f" / "1" / "bad.tiff")
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "f"))
    assert "bad.tiff" in _one_line(e)


def test_non_finite_pixels_in_task_arrays_are_an_error():
    x = np.random.default_rng(0).normal(size=(12, 1, 4, 4))
    x[5, 0, 1, 1] = np.nan
    with pytest.raises(UserInputError) as e:
        task_data_from_arrays(x, np.arange(12) % 2, TaskSpec(source="arrays"), ["a", "b"])
    assert "image 5" in _one_line(e)


# ---------------------------------------------------------------------------- 3. object arrays
def test_npz_object_arrays_are_a_clear_error(tmp_path):
    x = np.zeros((6, 5, 5), np.float32)
    np.savez(tmp_path / "objy.npz", x=x, y=np.array([0, "a", 1.5, 0, "a", 1.5], dtype=object))
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "objy.npz"))
    msg = _one_line(e)
    assert "objy.npz" in msg and "y is an object array" in msg and "dtype=str" in msg
    xo = np.empty(6, dtype=object)
    for i in range(6):
        xo[i] = np.zeros((5, 5))
    np.savez(tmp_path / "objx.npz", x=xo, y=np.arange(6) % 2)
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "objx.npz"))
    msg = _one_line(e)
    assert "objx.npz" in msg and "x is an object array" in msg


# ---------------------------------------------------------------------------- 4. split=
def test_bad_split_in_an_id_says_what_is_wrong():
    with pytest.raises(UserInputError) as e:
        TaskSpec.parse("digits:classes=0,1:split=0.6,0.2")
    msg = _one_line(e)
    assert "three fractions" in msg and "not an integer" not in msg
    with pytest.raises(UserInputError, match="not an integer"):
        TaskSpec.parse("digits:max_per_class=many")


# ---------------------------------------------------------------------------- 5. class order
def test_class_order_does_not_change_the_task():
    a, b = TaskSpec(classes=("1", "0")), TaskSpec(classes=("0", "1"))
    assert a == b and a.id == b.id == "digits:classes=0,1" and hash(a) == hash(b)
    assert TaskSpec.parse("digits:classes=8,7,5,1,0").id == "digits:classes=0,1,5,7,8"
    assert TaskSpec(source="x", classes=("10", "2", "b", "a", "1")).classes == (
        "1", "2", "10", "a", "b")
    # the shipped digits_live ids are unchanged
    for ids in ("0,1,5,7,8", "2,3,4,5,7", "4,6,7,8,9"):
        assert TaskSpec.parse(f"digits:classes={ids}").id == f"digits:classes={ids}"


# ---------------------------------------------------------------------------- 6. columns
def test_a_missing_named_column_is_named(tmp_path):
    import datasets

    feats = datasets.Features({"image": datasets.Image(),
                               "label": datasets.ClassLabel(names=["0", "1"])})
    from PIL import Image

    datasets.Dataset.from_dict({"image": [Image.new("L", (5, 5))] * 6,
                                "label": [0, 1] * 3}, features=feats
                               ).save_to_disk(str(tmp_path / "hf_cl"))
    with pytest.raises(UserInputError) as e:
        build_task(f"{tmp_path / 'hf_cl'}:label_column=nope")
    msg = _one_line(e)
    assert "'nope'" in msg and "does not exist" in msg and "image, label" in msg
    assert "no label column found" not in msg
    with pytest.raises(UserInputError) as e:
        load_source(str(tmp_path / "hf_cl"), image_column="pic")
    assert "'pic'" in _one_line(e)


# ---------------------------------------------------------------------------- 7. tiny classes
@pytest.mark.parametrize("n_small", [1, 2])
def test_a_class_too_small_to_split_is_an_error(tmp_path, n_small):
    x = np.random.default_rng(0).uniform(size=(10 + n_small, 6, 6)).astype(np.float32)
    y = np.array(["big"] * 10 + ["tiny"] * n_small)
    np.savez(tmp_path / "t.npz", x=x, y=y)
    with pytest.raises(UserInputError) as e:
        build_task(str(tmp_path / "t.npz"))
    msg = _one_line(e)
    assert "'tiny'" in msg and f"only {n_small}" in msg and "at least 3" in msg
    y3 = np.array(["big"] * 9 + ["tiny"] * 3)
    np.savez(tmp_path / "t3.npz", x=np.zeros((12, 6, 6), np.float32) + np.arange(12)[:, None, None],
             y=y3)
    d = build_task(str(tmp_path / "t3.npz"))
    for part in ("y_train", "y_valid", "y_test"):
        assert set(getattr(d, part).tolist()) == {0, 1}
