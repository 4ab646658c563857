"""Image classification data for live training: sources, class-subset tasks, splits.

A **source** is where the images come from (``load_source``); every source becomes an
``ImageSource``: ``x`` float32 ``[N, C, H, W]`` in the source's own pixel scale, ``y`` int64
``[N]`` class indices, ``classes`` the class names (strings) in index order.

=============================  ===========================================================
``digits``                      scikit-learn's bundled ``load_digits`` (1797 real 8x8 grey
                                hand-written digits, pixel values 0..16, classes ``0``..``9``);
                                works offline
``<folder>/<class>/<image>``    a folder of class sub-folders (sorted names = classes). Images
                                are read with PIL (``.png .jpg .jpeg .bmp .gif .tif .tiff
                                .webp .ppm .pgm``; always height x width [x channels]) or NumPy
                                (``.npy``, one array per image: ``[H, W]``, ``[H, W, C]`` or
                                ``[C, H, W]``, channels guessed by the layout rule below)
``<file>.npz``                  arrays ``x`` (``[N, H, W]``, ``[N, H, W, C]`` or
                                ``[N, C, H, W]``) and ``y`` (labels: a number or string array,
                                not an object array; sorted unique values = classes), and
                                optionally ``layout`` (the string ``"NHWC"`` or ``"NCHW"``)
``<folder>`` saved by           a Hugging Face ``datasets`` ``Dataset``/``DatasetDict``
``save_to_disk``                (``load_from_disk``); a ``DatasetDict``'s splits are
                                concatenated (sorted split names) unless ``hf_split`` is set
``<hub id>``                    anything else is a Hub dataset id for ``datasets.load_dataset``
                                (needs the network or the local HF cache; offline it is a
                                one-line ``UserInputError``)
=============================  ===========================================================

Layout rule (``.npy`` images, ``.npz`` ``x`` without ``layout``, non-PIL ``datasets`` arrays):
the channel axis is the first or the last axis of each image (``.npz``: axis 1 or axis 3 of
the whole array), and it must have 1..4 channels; when exactly one of the two has size 1..4 it
is the channel axis; when both do (e.g. 3x3 or 4x4 images) it is a one-line ``UserInputError``
(save the ``.npz`` with ``layout="NHWC"`` / ``"NCHW"``, or the images as PNG); when neither
does, too. Pixels must be finite: NaN / inf anywhere in ``x`` is a ``UserInputError`` naming
the file (and image index).

Images of different sizes are resized (PIL bilinear) to the most common size of the source
(ties: the largest); grey images are repeated to 3 channels when the source also has colour
images; alpha channels are dropped. ``datasets`` columns: the first ``Image`` feature (or a
column ``image``/``img``/``pixel_values``) and the first ``ClassLabel`` feature (or
``label``/``labels``/``fine_label``/``target``/``y``); override with ``image_column`` /
``label_column``.

A **task** (``TaskSpec``) is a source plus an optional class subset, an optional cap on
images per class, and a seeded stratified train/valid/test split. Its text form (``id``,
parsed by ``TaskSpec.parse``) is ``<source>[:key=value]...``, e.g.
``digits:classes=0,3,5,7,9``, ``digits:classes=0,1:max_per_class=20:split_seed=1``,
``/data/flowers:split=0.6,0.2,0.2``. ``classes`` are kept in natural order (numbers by
value, ``2`` before ``10``; other names as strings), so a task's id does not depend on the
order its classes were given in.

Split rule (``stratified_split``): for every class separately, its images are permuted with
``numpy.random.default_rng([split_seed, class_index])`` (``class_index`` = the class's index in
the whole source, so a class is split the same way in every task that contains it), cut to
``max_per_class``, then the first ``round(n * valid)`` go to valid, the next
``round(n * test)`` to test and the rest to train (each at least 1 when the class has >= 3
images). A task with a class of fewer than 3 images is a ``UserInputError`` (the class could
not be in every split). ``build_task`` standardises every channel with the mean / std of the
task's train split; labels are ``0..K-1`` in source class order.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..errors import UserInputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm")
NPY_EXTENSION = ".npy"
BUILTIN = ("digits",)
DEFAULT_SPLIT = (0.5, 0.25, 0.25)

_IMAGE_COLUMNS = ("image", "img", "pixel_values")
_LABEL_COLUMNS = ("label", "labels", "fine_label", "target", "y")


# ---------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class ImageSource:
    """All images of one source. ``x``: float32 ``[N, C, H, W]`` (source pixel scale),
    ``y``: int64 ``[N]`` in ``0..len(classes)-1``, ``classes``: class names."""

    name: str
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    classes: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.x.shape[1:])  # type: ignore[return-value]


def _frozen(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _labels_to_classes(labels: Sequence) -> tuple[np.ndarray, tuple[str, ...]]:
    """Any labels -> (int64 indices, sorted unique names). Numbers sort numerically."""
    arr = np.asarray(labels)
    uniq = np.unique(arr)
    idx = np.searchsorted(uniq, arr).astype(np.int64)
    names = tuple(str(u.item() if hasattr(u, "item") else u) for u in uniq)
    return idx, names


CHANNEL_SIZES = (1, 2, 3, 4)  # grey, grey + alpha, RGB, RGBA


def _channels_first(first: int, last: int, what: str, shape: tuple, fix: str) -> bool:
    """The layout rule of the module doc: is the channel axis the first of the two candidate
    axes (sizes ``first``, ``last``)?"""
    f, l_ = first in CHANNEL_SIZES, last in CHANNEL_SIZES
    if f and l_:
        raise UserInputError(f"{what}: shape {shape} is ambiguous (channels first or last?); "
                             f"{fix}")
    if not f and not l_:
        raise UserInputError(f"{what}: shape {shape} has no channel axis of size 1..4 (first "
                             f"or last); save grey, RGB or RGBA images (1, 3 or 4 channels)")
    return f


def _check_numeric(a: np.ndarray, what: str) -> np.ndarray:
    if a.dtype == bool:
        a = a.astype(np.uint8)
    if not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise UserInputError(f"{what}: not a numeric image array (dtype {a.dtype}); save real "
                             f"pixel values (int or float)")
    return a


def _first_non_finite(x: np.ndarray) -> int | None:
    """Index (axis 0) of the first image with a NaN / inf pixel, ``None`` if all are finite."""
    if not np.issubdtype(x.dtype, np.floating) or len(x) == 0:
        return None
    bad = ~np.isfinite(x.reshape(len(x), -1)).all(axis=1)
    return int(np.argmax(bad)) if bad.any() else None


def _finite_float32(x: np.ndarray, what: str, index: bool) -> np.ndarray:
    """``x`` (images along axis 0) as contiguous float32; NaN / inf pixels, or values too large
    for float32, are a ``UserInputError`` (``index``: naming the first bad image)."""
    for step in ("source", "float32"):
        bad = _first_non_finite(x)
        if bad is not None:
            why = "NaN / inf pixel values" if step == "source" else \
                "pixel values too large for float32"
            where = f" (first in image {bad})" if index else ""
            raise UserInputError(f"{what} has {why}{where}; fix or drop "
                                 f"{'those images' if index else 'it'}")
        if step == "source":
            with np.errstate(over="ignore", invalid="ignore"):
                x = np.ascontiguousarray(x, dtype=np.float32)
    return x


def _to_chw(a: np.ndarray, what: str, hwc: bool = False) -> np.ndarray:
    """One image as float32 ``[C, H, W]`` (1 or 3 channels). ``hwc``: ``a`` is ``[H, W]`` or
    ``[H, W, C]`` (a PIL array); else the layout rule of the module doc decides."""
    a = _check_numeric(np.asarray(a), what)
    if a.ndim == 2:
        a = a[None]
    elif a.ndim == 3:
        if hwc or not _channels_first(
                a.shape[0], a.shape[-1], what, a.shape,
                "save it as a PNG, or all images as one .npz with x, y and layout='NHWC' "
                "(or 'NCHW')"):
            a = np.moveaxis(a, -1, 0)
        if a.shape[0] not in CHANNEL_SIZES:
            raise UserInputError(f"{what}: image of shape {a.shape} has {a.shape[0]} "
                                 f"channels; need 1..4")
    else:
        raise UserInputError(f"{what}: image of shape {a.shape}; expected [H, W], [H, W, C] or "
                             f"[C, H, W]")
    if a.shape[0] == 4:  # RGBA / CMYK-like: drop the 4th channel
        a = a[:3]
    if a.shape[0] == 2:  # grey + alpha
        a = a[:1]
    return _finite_float32(a[None], f"{what}: image", index=False)[0]


def _pil_to_array(img) -> np.ndarray:
    """PIL image -> ``[H, W]`` (grey) or ``[H, W, 3]`` array (palette / alpha / CMYK -> RGB)."""
    if img.mode in ("L", "I", "F", "I;16", "1"):
        return np.asarray(img.convert("F") if img.mode != "L" else img)
    if img.mode == "LA":
        return np.asarray(img.convert("L"))
    return np.asarray(img.convert("RGB"))


def _resize_chw(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``[C, H, W]`` float32 to ``size = (H, W)`` (PIL, mode F)."""
    if a.shape[1:] == size:
        return a
    from PIL import Image

    return np.stack([np.asarray(Image.fromarray(ch, mode="F").resize((size[1], size[0]),
                                                                     Image.BILINEAR))
                     for ch in a]).astype(np.float32)


def _stack_images(images: list[np.ndarray], what: str) -> np.ndarray:
    """``[C, H, W]`` float32 images -> ``[N, C, H, W]``: common size (most frequent, ties:
    largest), channels (grey repeated to 3 when any image has 3)."""
    if not images:
        raise UserInputError(f"{what}: no images found")
    channels = max(a.shape[0] for a in images)
    sizes = Counter(a.shape[1:] for a in images)
    top = max(sizes.values())
    size = max(s for s, c in sizes.items() if c == top)
    out = np.empty((len(images), channels) + tuple(size), dtype=np.float32)
    for i, a in enumerate(images):
        if a.shape[0] != channels:
            a = np.repeat(a, channels, axis=0)
        out[i] = _resize_chw(a, size)
    return out


def _digits() -> ImageSource:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32)[:, None]  # [1797, 1, 8, 8], values 0..16
    y = d.target.astype(np.int64)
    return ImageSource("digits", _frozen(x), _frozen(y), tuple(str(i) for i in range(10)))


def _from_folder(root: Path) -> ImageSource:
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise UserInputError(f"{root}: no class sub-folders; put the images of each class in "
                             f"<folder>/<class name>/")
    images, labels = [], []
    pil = None
    for ci, d in enumerate(class_dirs):
        files = sorted(p for p in d.rglob("*") if p.is_file() and not p.name.startswith("."))
        for p in files:
            ext = p.suffix.lower()
            if ext == NPY_EXTENSION:
                try:
                    a = np.load(p, allow_pickle=False)
                except (OSError, ValueError) as exc:
                    raise UserInputError(f"{p}: not a readable .npy image "
                                         f"({_first_line(exc)})") from None
            elif ext in IMAGE_EXTENSIONS:
                if pil is None:
                    try:
                        from PIL import Image as pil
                    except ImportError:  # pragma: no cover - PIL is a datasets dependency
                        raise UserInputError(f"{p}: reading {ext} images needs Pillow (pip "
                                             f"install pillow), or save each image as .npy") from None
                try:
                    with pil.open(p) as img:
                        a = _pil_to_array(img)
                except (OSError, ValueError) as exc:
                    raise UserInputError(f"{p}: not a readable image ({_first_line(exc)}); "
                                         f"fix or remove the file") from None
            else:
                continue
            images.append(_to_chw(a, str(p), hwc=ext != NPY_EXTENSION))
            labels.append(ci)
        if not labels or labels[-1] != ci:
            raise UserInputError(f"{d}: empty class folder (no {', '.join(IMAGE_EXTENSIONS)} "
                                 f"or .npy images); add images or remove the folder")
    if not images:
        raise UserInputError(f"{root}: no images ({', '.join(IMAGE_EXTENSIONS)} or .npy) in "
                             f"its class sub-folders")
    x = _stack_images(images, str(root))
    return ImageSource(root.name, _frozen(x), _frozen(np.asarray(labels, dtype=np.int64)),
                       tuple(d.name for d in class_dirs))


_NPZ_OBJECT_FIX = {
    "x": "save the images as one numeric array [N, H, W] / [N, H, W, C] / [N, C, H, W] "
         "(np.stack(images))",
    "y": "save labels as an int or str array (np.asarray(y, dtype=str))",
    "layout": "save layout as the string 'NHWC' or 'NCHW'",
}


def _from_npz(path: Path) -> ImageSource:
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UserInputError(f"{path}: not a readable .npz file ({_first_line(exc)})") from None
    if not hasattr(z, "files"):  # a .npy renamed .npz
        raise UserInputError(f"{path}: not a .npz archive; save it with np.savez(path, x=..., "
                             f"y=...)")
    arrays = {}
    with z:
        for k in ("x", "y"):
            if k not in z.files:
                raise UserInputError(f"{path}: no array {k!r} (arrays: {', '.join(z.files)}); "
                                     f"save images as x and labels as y")
        for k in ("x", "y", "layout"):
            if k not in z.files:
                continue
            try:
                arrays[k] = np.asarray(z[k])
            except ValueError as exc:
                if "allow_pickle" in str(exc):  # never unpickle user files
                    raise UserInputError(f"{path}: {k} is an object array; "
                                         f"{_NPZ_OBJECT_FIX[k]}") from None
                raise UserInputError(f"{path}: array {k!r} is not readable "
                                     f"({_first_line(exc)})") from None
            except (OSError, EOFError) as exc:  # a truncated / corrupt member
                raise UserInputError(f"{path}: array {k!r} is not readable "
                                     f"({_first_line(exc)}); save the file again") from None
    x, labels = _check_numeric(arrays["x"], f"{path}: x"), arrays["y"]
    layout = None
    if "layout" in arrays:
        layout = str(arrays["layout"].item() if arrays["layout"].size == 1 else "").upper()
        if layout not in ("NHWC", "NCHW"):
            raise UserInputError(f"{path}: layout={arrays['layout']!r}; give 'NHWC' or 'NCHW' "
                                 f"(or leave it out)")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4:
        if layout is None:
            first = _channels_first(
                x.shape[1], x.shape[3], f"{path}: x", x.shape,
                "save it with np.savez(..., x=x, y=y, layout='NHWC') or layout='NCHW'")
        else:
            first = layout == "NCHW"
        if not first:
            x = np.moveaxis(x, -1, 1)
        if x.shape[1] not in CHANNEL_SIZES:
            raise UserInputError(f"{path}: x of shape {arrays['x'].shape} with layout "
                                 f"{layout or ('NCHW' if first else 'NHWC')} has {x.shape[1]} "
                                 f"channels; need 1..4")
    else:
        raise UserInputError(f"{path}: x has shape {x.shape}; expected [N, H, W], [N, H, W, C] "
                             f"or [N, C, H, W]")
    if labels.ndim != 1 or len(labels) != len(x):
        raise UserInputError(f"{path}: y must be a vector of {len(x)} labels, got shape "
                             f"{labels.shape}")
    if x.shape[1] == 4:
        x = x[:, :3]
    if x.shape[1] == 2:
        x = x[:, :1]
    x = _finite_float32(x, f"{path}: x", index=True)
    y, classes = _labels_to_classes(labels)
    return ImageSource(path.stem, _frozen(x), _frozen(y), classes)


def _is_saved_hf(path: Path) -> bool:
    return (path / "dataset_dict.json").is_file() or (path / "state.json").is_file()


def _hf_to_source(ds, name: str, image_column: str | None, label_column: str | None,
                  hf_split: str | None) -> ImageSource:
    import datasets

    if isinstance(ds, datasets.DatasetDict):
        if hf_split is not None:
            if hf_split not in ds:
                raise UserInputError(f"{name}: no split {hf_split!r} (splits: {', '.join(ds)})")
            ds = ds[hf_split]
        else:
            ds = datasets.concatenate_datasets([ds[k] for k in sorted(ds)])
    feats = ds.features
    for col, opt in ((image_column, "image_column"), (label_column, "label_column")):
        if col is not None and col not in feats:
            raise UserInputError(f"{name}: {opt}={col!r}: column {col!r} does not exist "
                                 f"(columns: {', '.join(feats)}); give one of them")
    if image_column is None:
        image_column = next((k for k, f in feats.items() if isinstance(f, datasets.Image)),
                            next((k for k in _IMAGE_COLUMNS if k in feats), None))
    if label_column is None:
        label_column = next((k for k, f in feats.items() if isinstance(f, datasets.ClassLabel)),
                            next((k for k in _LABEL_COLUMNS if k in feats), None))
    for role, col, opt in (("image", image_column, "image_column"),
                           ("label", label_column, "label_column")):
        if col is None or col not in feats:
            raise UserInputError(f"{name}: no {role} column found (columns: {', '.join(feats)}); "
                                 f"add :{opt}=<column> to the dataset id")
    images = []
    for i, im in enumerate(ds[image_column]):
        pil_image = hasattr(im, "mode")
        a = _pil_to_array(im) if pil_image else np.asarray(im)
        images.append(_to_chw(a, f"{name} row {i}", hwc=pil_image))
    x = _stack_images(images, name)
    raw = ds[label_column]
    lf = feats[label_column]
    if isinstance(lf, datasets.ClassLabel):
        present = sorted(set(int(v) for v in raw))
        remap = {c: i for i, c in enumerate(present)}
        y = np.asarray([remap[int(v)] for v in raw], dtype=np.int64)
        classes = tuple(lf.names[c] for c in present)
    else:
        y, classes = _labels_to_classes(raw)
    return ImageSource(name, _frozen(x), _frozen(y), classes)


def _from_hf_disk(path: Path, image_column, label_column, hf_split) -> ImageSource:
    import datasets

    ds = datasets.load_from_disk(str(path))
    return _hf_to_source(ds, path.name, image_column, label_column, hf_split)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_hub(hub_id: str, image_column, label_column, hf_split) -> ImageSource:
    import datasets

    try:
        ds = datasets.load_dataset(hub_id, split=hf_split)
    except Exception as exc:  # offline, unknown id, gated, network...
        offline = os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False")
        why = "offline (HF_HUB_OFFLINE is set)" if offline else _first_line(exc)
        raise UserInputError(
            f"dataset {hub_id!r} is not a local folder / .npz file and could not be loaded from "
            f"the Hugging Face Hub: {why}; give an existing path, 'digits', or run once online "
            f"to cache it") from None
    return _hf_to_source(ds, hub_id.replace("/", "__"), image_column, label_column, None)


def _looks_like_path(text: str) -> bool:
    return (text.startswith(("/", ".", "~")) or text.lower().endswith((".npz", ".npy"))
            or os.sep in text and text.count("/") > 1)


@lru_cache(maxsize=4)
def _load_source_cached(source: str, image_column, label_column, hf_split, version
                        ) -> ImageSource:
    if source == "digits":
        return _digits()
    path = Path(source).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".npz":
            raise UserInputError(f"{path}: a dataset file must be a .npz with arrays x and y")
        return _from_npz(path)
    if path.is_dir():
        if _is_saved_hf(path):
            return _from_hf_disk(path, image_column, label_column, hf_split)
        return _from_folder(path)
    if _looks_like_path(source):
        raise UserInputError(f"{source}: no such file or folder; give a folder of class "
                             f"sub-folders, a .npz with x and y, a datasets folder, or 'digits'")
    return _from_hub(source, image_column, label_column, hf_split)


def load_source(source: str, *, image_column: str | None = None,
                label_column: str | None = None, hf_split: str | None = None) -> ImageSource:
    """The images of ``source`` (see the module doc); cached per process (4 sources)."""
    source = str(source)
    try:  # a changed file (also one inside a folder) is read again
        version = source_fingerprint(source)
    except OSError:
        version = None
    return _load_source_cached(source, image_column, label_column, hf_split, version)


def source_fingerprint(source: str) -> str | None:
    """What identifies the content of a local ``source`` (a file, or a folder's files: their
    relative paths, sizes and modification times, SHA-1, 12 hex digits), so that results made
    with other data are never reused; ``None`` for the built-in sources and Hub ids (not
    local files)."""
    import hashlib

    source = str(source)
    p = Path(source).expanduser()
    if source in BUILTIN or not p.exists():
        return None
    h = hashlib.sha1()
    files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
    for f in files:
        st = f.stat()
        rel = f.name if f == p else f.relative_to(p).as_posix()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:12]


# ---------------------------------------------------------------------------- tasks
def _parse_split(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(v) for v in str(text).split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise UserInputError(f"split={text!r}: give three fractions train,valid,test such as "
                             f"0.5,0.25,0.25")
    return parts  # type: ignore[return-value]


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _natural_key(name: str) -> tuple:
    """Sort key of class names: numbers by value (``"2"`` before ``"10"``), then other names
    as strings."""
    if _NUMBER.fullmatch(name):
        return (0, float(name), name)
    return (1, 0.0, name)


@dataclass(frozen=True)
class TaskSpec:
    """One classification task: ``source`` (see the module doc), optionally restricted.

    Attributes:
        source: ``"digits"``, a folder, a ``.npz``, a ``datasets`` folder or a Hub id.
        classes: class names to keep (strings as in ``ImageSource.classes``; for ``digits``
            ``"0"``..``"9"``), ``None`` = all. Order does not matter: they are kept in
            natural order (numbers by value, then other names), so ``id`` is canonical;
            labels follow the source's class order.
        max_per_class: keep at most this many images per class (the first of the class's
            seeded permutation), ``None`` = all.
        split: fractions ``(train, valid, test)``, each > 0, summing to 1.
        split_seed: seed of the stratified split (see the module doc).
        image_column, label_column, hf_split: ``datasets`` options (see the module doc).
    """

    source: str = "digits"
    classes: tuple[str, ...] | None = None
    max_per_class: int | None = None
    split: tuple[float, float, float] = DEFAULT_SPLIT
    split_seed: int = 0
    image_column: str | None = None
    label_column: str | None = None
    hf_split: str | None = None

    def __post_init__(self) -> None:
        if self.classes is not None:
            cl = tuple(str(c).strip() for c in self.classes)
            if not cl or len(set(cl)) != len(cl):
                raise UserInputError(f"classes={','.join(cl)}: give distinct class names")
            object.__setattr__(self, "classes", tuple(sorted(cl, key=_natural_key)))
        sp = tuple(float(v) for v in self.split)
        if len(sp) != 3 or min(sp) <= 0 or abs(sum(sp) - 1.0) > 1e-6:
            raise UserInputError(f"split={sp}: need three fractions > 0 (train, valid, test) "
                                 f"summing to 1")
        object.__setattr__(self, "split", sp)
        if self.max_per_class is not None and int(self.max_per_class) < 3:
            raise UserInputError(f"max_per_class={self.max_per_class}: need at least 3 (one "
                                 f"image per split)")

    # text form ---------------------------------------------------------------
    @classmethod
    def parse(cls, text: str, **overrides) -> "TaskSpec":
        """``"<source>[:key=value]..."`` -> ``TaskSpec`` (keys: the field names)."""
        spec, _ = cls.parse_with_extras(text, allowed_extra=(), **overrides)
        return spec

    @classmethod
    def parse_with_extras(cls, text: str, allowed_extra: Sequence[str] = (),
                          **overrides) -> tuple["TaskSpec", dict[str, str]]:
        """Like ``parse``, also returning ``key=value`` options named in ``allowed_extra``
        (e.g. ``TrainConfig`` fields in a ``dataset:`` benchmark id) as strings."""
        parts = str(text).split(":")
        opt_re = re.compile(r"^[A-Za-z_][A-Za-z_0-9]*=")
        first = next((i for i, p in enumerate(parts) if i > 0 and opt_re.match(p)), len(parts))
        source = ":".join(parts[:first]).strip()
        if not source:
            raise UserInputError(f"{text!r}: empty dataset source; e.g. digits:classes=0,1,2")
        names = {f.name for f in fields(cls)} - {"source"}
        kw: dict = {}
        extras: dict[str, str] = {}
        for p in parts[first:]:
            key, _, value = p.partition("=")
            key = key.strip()
            if key in names:
                kw[key] = value.strip()
            elif key in allowed_extra:
                extras[key] = value.strip()
            else:
                raise UserInputError(f"{text!r}: unknown option {key!r}; options: "
                                     f"{', '.join(sorted(names | set(allowed_extra)))}")
        conv: dict = {}
        for k, v in kw.items():
            try:
                if k == "classes":
                    conv[k] = tuple(c for c in v.split(",") if c.strip())
                elif k in ("max_per_class", "split_seed"):
                    conv[k] = None if v.lower() in ("", "none", "all") else int(v)
                elif k == "split":
                    conv[k] = _parse_split(v)
                else:
                    conv[k] = v or None
            except UserInputError:
                raise
            except ValueError:
                raise UserInputError(f"{text!r}: option {k}={v!r} is not an integer") from None
        conv.update(overrides)
        return cls(source=source, **conv), extras

    @property
    def id(self) -> str:
        """Canonical text form (``TaskSpec.parse(spec.id) == spec``); defaults are omitted."""
        out = [self.source]
        if self.classes is not None:
            out.append("classes=" + ",".join(self.classes))
        if self.max_per_class is not None:
            out.append(f"max_per_class={self.max_per_class}")
        if self.split != DEFAULT_SPLIT:
            out.append("split=" + ",".join(repr(v) for v in self.split))
        if self.split_seed != 0:
            out.append(f"split_seed={self.split_seed}")
        for k in ("image_column", "label_column", "hf_split"):
            if getattr(self, k) is not None:
                out.append(f"{k}={getattr(self, k)}")
        return ":".join(out)

    def replace(self, **changes) -> "TaskSpec":
        return replace(self, **changes)

    def load_source(self) -> ImageSource:
        return load_source(self.source, image_column=self.image_column,
                           label_column=self.label_column, hf_split=self.hf_split)


def as_task_spec(task: "TaskSpec | str") -> TaskSpec:
    return task if isinstance(task, TaskSpec) else TaskSpec.parse(str(task))


def stratified_split(y: np.ndarray, split: Sequence[float] = DEFAULT_SPLIT, seed: int = 0,
                     max_per_class: int | None = None,
                     class_keys: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                       np.ndarray]:
    """Sorted index arrays ``(train, valid, test)`` of a stratified split (module doc rule).

    Args:
        y: int labels.
        split: fractions ``(train, valid, test)``.
        seed: split seed.
        max_per_class: cap on images per class.
        class_keys: ``class_keys[c]`` is the key mixed into class ``c``'s RNG (default ``c``).
    """
    y = np.asarray(y)
    _, fv, ft = (float(v) for v in split)
    parts: tuple[list, list, list] = ([], [], [])
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        key = int(c) if class_keys is None else int(class_keys[int(c)])
        idx = idx[np.random.default_rng([int(seed), key]).permutation(len(idx))]
        if max_per_class is not None:
            idx = idx[:int(max_per_class)]
        n = len(idx)
        nv, nt = int(round(n * fv)), int(round(n * ft))
        if n >= 3:
            nv, nt = max(nv, 1), max(nt, 1)
            while n - nv - nt < 1:
                if nv >= nt:
                    nv -= 1
                else:
                    nt -= 1
        else:
            nv, nt = 0, 0
        parts[1].append(idx[:nv])
        parts[2].append(idx[nv:nv + nt])
        parts[0].append(idx[nv + nt:])
    return tuple(np.sort(np.concatenate(p)).astype(np.int64) if p else np.empty(0, np.int64)
                 for p in parts)  # type: ignore[return-value]


@dataclass(frozen=True)
class TaskData:
    """A task ready for training: standardised float32 tensors ``[n, C, H, W]`` and int64
    labels ``0..n_classes-1`` per split, the raw (unstandardised) train images for the
    featuriser, and what they are."""

    spec: TaskSpec
    classes: tuple[str, ...]
    class_ids: tuple[int, ...]  # index of each class in the source
    x_train: torch.Tensor = field(repr=False)
    y_train: torch.Tensor = field(repr=False)
    x_valid: torch.Tensor = field(repr=False)
    y_valid: torch.Tensor = field(repr=False)
    x_test: torch.Tensor = field(repr=False)
    y_test: torch.Tensor = field(repr=False)
    raw_train: np.ndarray = field(repr=False)
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}


def task_data_from_arrays(x: np.ndarray, y: np.ndarray, spec: TaskSpec,
                          classes: Sequence[str], class_ids: Sequence[int] | None = None
                          ) -> TaskData:
    """Split + standardise ``x [N, C, H, W]``, ``y`` in ``0..K-1`` (the rule of the module
    doc; ``class_ids`` key each class's RNG, default ``0..K-1``)."""
    x = np.asarray(x)
    y = np.asarray(y, dtype=np.int64)
    if x.ndim != 4 or y.shape != (len(x),):
        raise UserInputError(f"task {spec.id!r}: need images [N, C, H, W] and N labels, got "
                             f"shapes {x.shape} and {y.shape}")
    x = _finite_float32(_check_numeric(x, f"task {spec.id!r}: x"), f"task {spec.id!r}: x",
                        index=True)
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise UserInputError(f"task {spec.id!r}: labels must be 0..{len(classes) - 1} (one per "
                             f"class name), got {int(y.min())}..{int(y.max())}")
    counts = np.bincount(y, minlength=len(classes))
    small = int(np.argmin(counts)) if len(counts) else 0
    if len(counts) and counts[small] < 3:
        raise UserInputError(f"task {spec.id!r}: class {classes[small]!r} has only "
                             f"{int(counts[small])} image(s); every class needs at least 3 (one "
                             f"per train/valid/test split): add images or leave the class out "
                             f"(:classes=...)")
    class_ids = tuple(range(len(classes))) if class_ids is None else tuple(int(c) for c in class_ids)
    tr, va, te = stratified_split(y, spec.split, spec.split_seed, spec.max_per_class, class_ids)
    xt = x[tr].astype(np.float64)
    mean = xt.mean(axis=(0, 2, 3))
    std = xt.std(axis=(0, 2, 3))
    std = np.where(std > 1e-12, std, 1.0)

    def norm(ix):
        z = (x[ix] - mean[None, :, None, None]) / std[None, :, None, None]
        return torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))

    def lab(ix):
        return torch.from_numpy(np.ascontiguousarray(y[ix]))

    return TaskData(spec, tuple(classes), class_ids, norm(tr), lab(tr), norm(va), lab(va),
                    norm(te), lab(te), _frozen(np.ascontiguousarray(x[tr])),
                    tuple(float(m) for m in mean), tuple(float(s) for s in std))


@lru_cache(maxsize=16)
def _build_task_cached(spec: TaskSpec) -> TaskData:
    src = spec.load_source()
    if spec.classes is None:
        keep = list(range(src.n_classes))
    else:
        pos = {c: i for i, c in enumerate(src.classes)}
        unknown = [c for c in spec.classes if c not in pos]
        if unknown:
            shown = ", ".join(src.classes[:20]) + (" ..." if src.n_classes > 20 else "")
            raise UserInputError(f"task {spec.id!r}: class(es) {', '.join(unknown)} not in "
                                 f"{src.name} (classes: {shown})")
        keep = sorted(pos[c] for c in spec.classes)
    if len(keep) < 2:
        raise UserInputError(f"task {spec.id!r}: need at least 2 classes")
    mask = np.isin(src.y, keep)
    remap = np.full(src.n_classes, -1, dtype=np.int64)
    remap[keep] = np.arange(len(keep))
    return task_data_from_arrays(src.x[mask], remap[src.y[mask]], spec,
                                 [src.classes[k] for k in keep], keep)


def build_task(task: TaskSpec | str) -> TaskData:
    """The ``TaskData`` of a ``TaskSpec`` or task id (cached per process, 16 tasks)."""
    return _build_task_cached(as_task_spec(task))


__all__ = ["ImageSource", "TaskSpec", "TaskData", "load_source", "build_task", "as_task_spec",
           "stratified_split", "task_data_from_arrays", "IMAGE_EXTENSIONS", "DEFAULT_SPLIT"]
