"""Model zoo on the Hugging Face Hub: one place that finds, loads, saves and shares every
meta-learned model and meta-dataset of metanas.

Resolution (``resolve_pretrained``), offline first, in this order:

1. an existing local folder (``pretrained/tnas-nb201``, ``~/ckpt``...);
2. a Hub id (``org/name``) already in the local Hugging Face cache
   (``snapshot_download(..., local_files_only=True)``; never touches the network);
3. a default id (``DEFAULT_IDS``, e.g. ``metanas/tnas-nb201``): the copy shipped in
   ``<repo>/pretrained/``;
4. only when ``HF_HUB_OFFLINE`` is not set: a real download, with a hard short timeout on the
   first request (``CONNECT_TIMEOUT`` = 1 s per phase, no retries, a hard 1.3 s bound; see
   ``_probe``), so an unreachable Hub fails in under 2 s with one line saying what to do.

``HF_HUB_OFFLINE`` / ``HF_ENDPOINT`` / ``HF_HOME`` / ``HF_HUB_CACHE`` / ``HF_TOKEN`` are read
from the environment at *call* time (huggingface_hub reads them once at import); during a
download this module sets huggingface_hub's offline flag and timeouts for the duration of the
call only (``_hub_session``). The default run (``pretrained="auto"``) never calls this module's
network path.

Checkpoints are ``model.safetensors`` + ``config.json`` (``metanas.meta.checkpoint``): loading
validates the model kind, the search space, the metanas version series, the config against the
copy stored in the safetensors header and every tensor shape; every failure is a one-line
``CheckpointError``. Only ``*.safetensors`` / ``*.json`` / ``README.md`` are downloaded or
uploaded; nothing is ever unpickled. A TNAS folder written by ``train_meta.py`` also holds
``prior_context.safetensors`` and ``training_state.json`` (``CARRIED_FILES``): a model loaded
with ``load_pretrained`` keeps them and ``save_pretrained`` / ``push_to_hub`` write them back.

Kinds: ``"tnas"`` (``DeepKernelGP``, the TNAS surrogate), ``"metad2a"`` (the MetaD2A-style
``MetaPredictor``, saved through a small adapter here since the strategy has no checkpoint code)
and ``"base"`` (``BayesSuperNet``, the BASE prior of ``metanas.base``; loaded as ``(model,
BaseCheckpoint)``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from huggingface_hub import constants as hf_constants

from . import __version__
from .meta.checkpoint import CONFIG_NAME, WEIGHTS_NAME, CheckpointError

__all__ = ["HubError", "CheckpointError", "DEFAULT_IDS", "DEFAULT_DATASET_IDS", "KINDS",
           "resolve_pretrained", "load_pretrained", "save_pretrained", "push_to_hub",
           "model_card", "card_from_folder", "push_meta_dataset", "load_meta_dataset",
           "resolve_meta_dataset", "MetaD2AConfig", "CONNECT_TIMEOUT", "CARRIED_FILES",
           "carry_files", "carried_files"]

#: Hub id -> folder under ``<repo>/pretrained/`` (the shipped copy)
DEFAULT_IDS: dict[str, str] = {
    "metanas/tnas-nb201": "tnas-nb201",
    "metanas/tnas-transnas_micro": "tnas-transnas_micro",
    "metanas/base-nb201": "base-nb201",
}
#: Hub dataset id -> shipped collection under ``<repo>/meta_datasets/``
DEFAULT_DATASET_IDS: dict[str, str] = {
    "metanas/metadataset-nb201": "nb201",
    "metanas/metadataset-transnas_micro": "transnas_micro",
    "metanas/metadataset-metad2a": "metad2a",
    "metanas/metadataset-digits_live": "digits_live",
}
#: kind -> ``model`` field of ``config.json``
KINDS: dict[str, str] = {"tnas": "DeepKernelGP", "metad2a": "MetaD2APredictor",
                         "base": "BaseSuperNet"}

#: seconds allowed per phase (connect, read) of the first request to the Hub, no retries
#: (``METANAS_HUB_TIMEOUT`` overrides it, e.g. on a slow link)
CONNECT_TIMEOUT = float(os.environ.get("METANAS_HUB_TIMEOUT") or 1.0)
#: hard wall-clock bound of that first request (DNS lookup included)
PROBE_DEADLINE = CONNECT_TIMEOUT + 0.3
#: per-file metadata timeout once the Hub answered the first request (huggingface_hub's default)
FILE_ETAG_TIMEOUT = 10.0
#: seconds allowed between bytes of a file download once the Hub answered
DOWNLOAD_TIMEOUT = 30.0
#: what a model download fetches / an upload sends (no pickles)
MODEL_PATTERNS = ["*.safetensors", "*.json", "README.md"]
DATASET_PATTERNS = ["*.parquet", "README.md", "*.json"]
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".npy", ".npz")
#: files of a checkpoint folder that belong to the model besides its weights, config and card:
#: the TNAS meta-training prior context (without it the ``tnas`` strategy's top-k initial
#: design is random) and the training record (its ``training_tasks`` drive the "meta-trained
#: on the target task" warning; its validation figures go into the model card).
#: ``load_pretrained`` keeps their bytes on the model (``carry_files``) and
#: ``save_pretrained`` / ``push_to_hub`` write them back unchanged.
CARRIED_FILES = ("prior_context.safetensors", "training_state.json")
_CARRIED_ATTR = "_metanas_carried_files"

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")

os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(max(1, int(CONNECT_TIMEOUT + 0.5))))
os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(DOWNLOAD_TIMEOUT)))


class HubError(FileNotFoundError):
    """A model / meta-dataset that is neither local nor obtainable from the Hub (offline, no
    network, unknown id). ``str()`` is one line saying what to do."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------------- environment
def _env_true(v: str | None) -> bool:
    return v is not None and v.strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as set now (falls back to huggingface_hub's import-time value)."""
    v = os.environ.get("HF_HUB_OFFLINE")
    if v is not None and v.strip():
        return _env_true(v)
    return bool(hf_constants.HF_HUB_OFFLINE)


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or hf_constants.ENDPOINT).rstrip("/")


def hub_cache_dir() -> str:
    if os.environ.get("HF_HUB_CACHE"):
        return os.path.expanduser(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return os.path.join(os.path.expanduser(os.environ["HF_HOME"]), "hub")
    return hf_constants.HF_HUB_CACHE


def _token(token: str | bool | None) -> str | bool | None:
    if token is not None:
        return token
    return os.environ.get("HF_TOKEN") or None


@contextlib.contextmanager
def _hub_session():
    """huggingface_hub settings for one online call: not offline, short timeouts."""
    saved = (hf_constants.HF_HUB_OFFLINE, hf_constants.HF_HUB_ETAG_TIMEOUT,
             hf_constants.HF_HUB_DOWNLOAD_TIMEOUT)
    hf_constants.HF_HUB_OFFLINE = False
    hf_constants.HF_HUB_ETAG_TIMEOUT = FILE_ETAG_TIMEOUT
    hf_constants.HF_HUB_DOWNLOAD_TIMEOUT = DOWNLOAD_TIMEOUT
    try:
        yield
    finally:
        (hf_constants.HF_HUB_OFFLINE, hf_constants.HF_HUB_ETAG_TIMEOUT,
         hf_constants.HF_HUB_DOWNLOAD_TIMEOUT) = saved


def _repo_root() -> Path:
    import metanas

    return Path(metanas.__file__).resolve().parents[1]


def shipped_dir(repo_id: str) -> Path | None:
    """Shipped folder of a default model id (``None`` for other ids)."""
    sub = DEFAULT_IDS.get(repo_id)
    return None if sub is None else _repo_root() / "pretrained" / sub


def _unreachable(repo_id: str, repo_type: str) -> str:
    flag = " --repo-type dataset" if repo_type == "dataset" else ""
    return (f"cannot reach the Hub for {repo_id!r} (offline or no network): pass a local "
            f"folder, or download it where you have network with `hf download {repo_id}{flag}`")


def _looks_like_path(text: str) -> bool:
    return (text.startswith((".", "/", "~")) or os.sep + os.sep in text or text.count("/") > 1
            or "\\" in text or not _REPO_ID.match(text))


# ---------------------------------------------------------------------- resolution
def _from_cache(repo_id: str, repo_type: str, revision: str | None) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, repo_type=repo_type, revision=revision,
                                      cache_dir=hub_cache_dir(), local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or a broken cache entry
        return None


def _probe(api, repo_id: str, repo_type: str, revision: str):
    """``api.repo_info`` with a hard wall-clock bound of ``PROBE_DEADLINE`` s: the request
    has ``CONNECT_TIMEOUT`` per phase (connect / read) and no retries, and it runs in a daemon
    thread so that what httpx timeouts do not cover (a hanging DNS lookup) cannot hold the
    caller either. huggingface_hub's agent-detection registry (a best-effort telemetry fetch
    to its import-time endpoint with its own 3 s timeout, made before the first request of a
    process) is set to empty first so it does not add to this bound."""
    import threading

    with contextlib.suppress(Exception):
        from huggingface_hub.utils import _detect_agent

        if _detect_agent._registry is None:
            _detect_agent._registry = _detect_agent._EMPTY_REGISTRY
    with contextlib.suppress(Exception):
        from huggingface_hub.utils._http import get_session

        get_session()  # build the HTTP client (TLS context) outside the timed request
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["info"] = api.repo_info(repo_id, repo_type=repo_type, revision=revision,
                                        timeout=CONNECT_TIMEOUT)
        except BaseException as exc:  # handed to the caller
            box["exc"] = exc

    th = threading.Thread(target=work, name="metanas-hub-probe", daemon=True)
    th.start()
    th.join(PROBE_DEADLINE)
    if th.is_alive():
        raise TimeoutError(f"no answer from the Hub within {PROBE_DEADLINE} s")
    if "exc" in box:
        raise box["exc"]
    return box["info"]


def _download(repo_id: str, repo_type: str, revision: str | None, patterns: list[str],
              token: str | bool | None = None) -> Path:
    """Online path: one short-timeout ``repo_info`` (fails fast, no retries), then
    ``snapshot_download`` pinned to the commit it returned."""
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, RepositoryNotFoundError,
                                        RevisionNotFoundError)
    from huggingface_hub._revision import ResolvedRevision

    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint, token=_token(token))
    what = "dataset" if repo_type == "dataset" else "model"
    with _hub_session():
        try:
            info = _probe(api, repo_id, repo_type, revision or "main")
        except GatedRepoError:
            raise HubError(f"{what} {repo_id!r} on {endpoint} is gated: accept its terms on the "
                           "Hub and pass a token (HF_TOKEN / `hf auth login`)") from None
        except RepositoryNotFoundError:
            raise HubError(f"no {what} {repo_id!r} on {endpoint} (or it is private: pass a token "
                           "with HF_TOKEN / `hf auth login`); check the id, or pass a local "
                           "folder") from None
        except RevisionNotFoundError:
            raise HubError(f"{what} {repo_id!r} has no revision {revision!r} on "
                           f"{endpoint}") from None
        except HfHubHTTPError as exc:
            code = getattr(getattr(exc, "response", None), "status_code", "?")
            if code in (401, 403, 404):
                raise HubError(f"no {what} {repo_id!r} on {endpoint} (HTTP {code}; private? "
                               "pass a token with HF_TOKEN); check the id, or pass a local "
                               "folder") from None
            raise HubError(f"the Hub at {endpoint} answered HTTP {code} for {repo_id!r}: try "
                           "again later, or pass a local folder") from None
        except Exception:  # connect error, DNS failure, timeout, offline mode
            raise HubError(_unreachable(repo_id, repo_type)) from None
        rev = ResolvedRevision(resolved=info.sha, initial=revision, repo_id=repo_id,
                               repo_type=repo_type)
        try:
            path = snapshot_download(repo_id, repo_type=repo_type, revision=rev,
                                     cache_dir=hub_cache_dir(), endpoint=endpoint,
                                     etag_timeout=FILE_ETAG_TIMEOUT, allow_patterns=patterns,
                                     token=_token(token))
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise HubError(f"downloading {what} {repo_id!r} from {endpoint} failed ({msg}); "
                           "try again, or pass a local folder") from None
    path = Path(path)
    # a pinned (ResolvedRevision) download records no ref: record it, so that the next
    # offline-first lookup of this id / revision finds the snapshot without the network
    with contextlib.suppress(OSError):
        ref = path.parent.parent / "refs" / (revision or "main")
        ref.parent.mkdir(parents=True, exist_ok=True)
        if not ref.is_file() or ref.read_text() != info.sha:
            ref.write_text(info.sha)
    return path


def resolve_pretrained(name_or_path: str | os.PathLike | None, *, kind: str = "tnas",
                       space: str | None = None, revision: str | None = None,
                       token: str | bool | None = None) -> Path:
    """Folder holding the checkpoint ``name_or_path`` (a local folder or a Hub id), offline
    first (see the module docstring). ``None`` / ``"auto"``: the default id of ``kind`` and
    ``space`` (``metanas/<kind>-<space>``). Raises ``HubError`` (one line) when it cannot be
    found or fetched; no validation of the contents (``load_pretrained`` does that)."""
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(KINDS)}")
    if name_or_path is None or str(name_or_path).lower() == "auto":
        if space is None:
            raise ValueError("resolve_pretrained('auto') needs space=")
        from . import spaces

        name_or_path = f"metanas/{kind}-{spaces.get(space).name}"
    text = os.fspath(name_or_path)
    local = Path(text).expanduser()
    if local.exists():
        if not (local / CONFIG_NAME).is_file():
            raise HubError(f"{local} is not a checkpoint folder (no {CONFIG_NAME} in it)")
        return local
    if _looks_like_path(text):
        raise HubError(f"no checkpoint folder {text} (and it is not a Hub id 'org/name')")
    repo_id = text
    cached = _from_cache(repo_id, "model", revision)
    if cached is not None and (cached / CONFIG_NAME).is_file():
        return cached
    shipped = shipped_dir(repo_id)
    if shipped is not None and revision in (None, "main") and (shipped / CONFIG_NAME).is_file():
        return shipped
    if hub_offline():
        raise HubError(f"no folder {text} here and {repo_id!r} is not in the Hugging Face "
                       f"cache ({hub_cache_dir()}); HF_HUB_OFFLINE is set: pass a local folder, "
                       f"or download it where you have network with `hf download {repo_id}`")
    return _download(repo_id, "model", revision, MODEL_PATTERNS, token)


# ---------------------------------------------------------------------- validation
def _version_series(v: str) -> tuple[int, ...]:
    from packaging.version import InvalidVersion, Version

    try:
        rel = Version(v).release
    except InvalidVersion:
        raise CheckpointError(f"metanas_version {v!r} is not a version") from None
    rel = tuple(rel) + (0, 0)
    return rel[:2] if rel[0] == 0 else rel[:1]


def check_config(folder: str | os.PathLike, *, kind: str, space: str | None = None) -> dict:
    """Read and check ``config.json`` before any weight is touched: model kind, space and
    metanas version series (0.x: same minor; >= 1: same major). Returns the raw config."""
    folder = Path(folder)
    path = folder / CONFIG_NAME
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path} not found: {folder} is not a saved {kind} checkpoint") \
            from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path} should hold a JSON object")
    want = KINDS[kind]
    if raw.get("model") != want:
        raise CheckpointError(f"{folder} holds a {raw.get('model')!r} checkpoint, not a {kind} "
                              f"one ({want!r})")
    if space is not None:
        from . import spaces

        sp = spaces.get(space).name
        if raw.get("space") != sp:
            raise CheckpointError(f"{folder} is a checkpoint for space {raw.get('space')!r}, not "
                                  f"{sp!r}: use the checkpoint of that space")
    v = raw.get("metanas_version")
    if not isinstance(v, str):
        raise CheckpointError(f"{path} has no metanas_version")
    if _version_series(v) != _version_series(__version__):
        raise CheckpointError(
            f"{folder} was written by metanas {v}, this is metanas {__version__} (checkpoints "
            f"load within one {'.'.join(map(str, _version_series(__version__)))}.x series): "
            "install that metanas version, or re-run the training command in its README.md")
    return raw


def _safetensors_ok(folder: Path) -> None:
    """Header of ``model.safetensors`` readable (corrupted / edited headers -> one line)."""
    from safetensors import safe_open

    w = folder / WEIGHTS_NAME
    if not w.is_file():
        raise CheckpointError(f"{w} not found: {folder} is not a saved checkpoint")
    try:
        with safe_open(str(w), framework="pt") as fh:
            meta = fh.metadata() or {}
            for k in fh.keys():
                fh.get_slice(k).get_shape()
        if "metanas_config" in meta:
            json.loads(meta["metanas_config"])
    except Exception as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{w} is not a valid safetensors file written by metanas "
                              f"({msg}): re-download or rebuild it") from None


# ---------------------------------------------------------------------- MetaD2A adapter
@dataclass
class MetaD2AConfig:
    """``config.json`` of a MetaD2A ``MetaPredictor`` (MLP on one-hot + path encoding + dataset
    embedding + flag)."""

    space: str = "nb201"
    hidden: int = 128
    layers: int = 2
    emb_dim: int = 0
    exclude: str | None = None
    tasks: list[str] = field(default_factory=list)
    n_train: int = 0
    metanas_version: str = __version__

    def __post_init__(self) -> None:
        from . import spaces

        self.space = spaces.get(self.space).name
        if self.hidden < 1 or self.layers < 1 or self.emb_dim < 0:
            raise ValueError("hidden and layers must be >= 1, emb_dim >= 0")

    def in_dim(self) -> int:
        from . import spaces
        from .strategies.metad2a import arch_features

        sp = spaces.get(self.space)
        return int(arch_features(sp, [[0] * sp.n_edges]).shape[1]) + self.emb_dim + 1


def _metad2a_net(cfg: MetaD2AConfig):
    import torch

    dims = [cfg.in_dim()] + [cfg.hidden] * cfg.layers + [1]
    mods: list = []
    for i in range(len(dims) - 1):
        mods.append(torch.nn.Linear(dims[i], dims[i + 1]))
        if i + 2 < len(dims):
            mods.append(torch.nn.ReLU())
    return torch.nn.Sequential(*mods)


def _metad2a_config(pred) -> MetaD2AConfig:
    import torch

    lin = [m for m in pred.net if isinstance(m, torch.nn.Linear)]
    return MetaD2AConfig(space=pred.space.name, hidden=int(lin[0].out_features),
                         layers=len(lin) - 1, emb_dim=int(pred.emb_dim), exclude=pred.exclude,
                         tasks=[str(t) for t in pred.tasks], n_train=int(pred.n_train))


def _load_metad2a(folder: Path, space: str | None):
    from . import spaces
    from .meta.checkpoint import load_checkpoint
    from .strategies.metad2a import MetaPredictor, arch_features

    net, cfg = load_checkpoint(folder, MetaD2AConfig, _metad2a_net, kind=KINDS["metad2a"],
                               expect=None if space is None else {"space": spaces.get(space).name})
    net.eval()
    pred = MetaPredictor.__new__(MetaPredictor)  # adapter: no meta-training on load
    sp = spaces.get(cfg.space)
    pred.space, pred.exclude, pred.tasks = sp, cfg.exclude, list(cfg.tasks)
    pred.emb_dim, pred.n_train, pred.net = cfg.emb_dim, cfg.n_train, net
    pred._arch_feats = arch_features(sp, sp.all_array())
    return pred


# ---------------------------------------------------------------------- save / load
def _kind_of(model) -> str:
    from .base.bayes import BayesSuperNet

    if isinstance(model, BayesSuperNet):
        return "base"
    from .surrogates.deep_kernel import DeepKernelGP

    if isinstance(model, DeepKernelGP):
        return "tnas"
    from .strategies.metad2a import MetaPredictor

    if isinstance(model, MetaPredictor):
        return "metad2a"
    raise TypeError(f"no Hub format for {type(model).__name__}; supported: DeepKernelGP "
                    "(tnas), MetaPredictor (metad2a), (BayesSuperNet, BaseCheckpoint) (base)")


def save_pretrained(model, directory: str | os.PathLike, card: Mapping[str, Any] | str | None
                    = None) -> Path:
    """Write ``model`` to ``directory`` (``config.json`` + ``model.safetensors``, plus the
    ``CARRIED_FILES`` a model loaded by ``load_pretrained`` came with: the TNAS prior context
    and ``training_state.json``, byte for byte) and a model card ``README.md``: ``card`` is the
    card text, or keyword arguments of ``model_card`` (``kind`` / ``space`` filled in), or
    ``None`` (a generated card listing the training tasks, unless the folder already has a
    README.md)."""
    directory = Path(directory)
    base_ckpt = None
    if isinstance(model, tuple) and len(model) == 2:  # (BayesSuperNet, BaseCheckpoint)
        model, base_ckpt = model
    kind = _kind_of(model)
    carried = carried_files(model)
    if kind == "base":
        from .base.meta import save_base

        if base_ckpt is None:
            raise TypeError("save a BASE prior as (model, BaseCheckpoint)")
        save_base(model, base_ckpt, directory)
        space, tasks = base_ckpt.space, list(base_ckpt.training_tasks)
    elif kind == "tnas":
        model.save_pretrained(directory)
        space = model.config.space
        tasks = _state_tasks(carried)
    else:
        from .meta.checkpoint import save_checkpoint

        cfg = _metad2a_config(model)
        save_checkpoint(model.net, cfg, directory, kind=KINDS["metad2a"])
        space, tasks = cfg.space, cfg.tasks
    from .io import atomic_write_bytes

    for name, data in carried.items():  # the prior context and training record it came with
        atomic_write_bytes(directory / name, data)
    readme = directory / "README.md"
    if isinstance(card, str):
        text = card
    elif card is not None:
        kw = {"kind": kind, "space": space, "training_tasks": tasks, **dict(card)}
        text = model_card(**kw)
    elif not readme.exists():
        text = model_card(kind=kind, space=space, training_tasks=tasks)
    else:
        return directory
    atomic_write_bytes(readme, text.encode())
    return directory


def carried_files(model) -> dict[str, bytes]:
    """``{name: bytes}`` of the ``CARRIED_FILES`` the model was loaded with (``carry_files``);
    empty for a model that was not loaded from a folder by ``load_pretrained``."""
    if isinstance(model, tuple) and len(model) == 2:
        model = model[0]
    return dict(getattr(model, _CARRIED_ATTR, None) or {})


def carry_files(model, folder: str | os.PathLike):
    """Keep on ``model`` (a loaded ``DeepKernelGP``, ``MetaPredictor`` or BASE model) the bytes
    of the ``CARRIED_FILES`` present in its checkpoint ``folder``, so that ``save_pretrained``
    / ``push_to_hub`` of the model write them too (a load / save round trip keeps the TNAS
    prior context and the training tasks). The prior context must be a readable safetensors
    file holding ``X`` and ``y`` (one-line ``CheckpointError`` otherwise; never unpickled).
    Returns ``model``."""
    folder = Path(folder)
    files: dict[str, bytes] = {}
    for name in CARRIED_FILES:
        path = folder / name
        if path.is_file():
            files[name] = path.read_bytes()
    if "prior_context.safetensors" in files:
        _prior_context_ok(folder / "prior_context.safetensors", files["prior_context.safetensors"])
    target = model[0] if isinstance(model, tuple) and len(model) == 2 else model
    setattr(target, _CARRIED_ATTR, files)
    return model


def _prior_context_ok(path: Path, data: bytes) -> None:
    """The safetensors header of a prior context parses and names ``X`` and ``y``."""
    import struct

    try:
        (n,) = struct.unpack("<Q", data[:8])
        if not 2 <= n <= len(data) - 8:
            raise ValueError("header size out of range")
        header = json.loads(data[8:8 + n])
        if not isinstance(header, dict):
            raise ValueError("header is not a JSON object")
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path} is not a valid safetensors file ({msg}): re-download the "
                              "checkpoint or re-run its training command") from None
    if not {"X", "y"} <= set(header):
        raise CheckpointError(f"{path} lacks the tensors X and y of a prior context: "
                              "re-download the checkpoint or re-run its training command")


def _state_tasks(carried: Mapping[str, bytes]) -> list[str]:
    """``training_tasks`` of a carried ``training_state.json`` (``[]`` when absent)."""
    try:
        state = json.loads(carried["training_state.json"])
        return [str(t) for t in state.get("training_tasks") or []]
    except (KeyError, ValueError, AttributeError, TypeError):
        return []


def load_pretrained(id_or_path: str | os.PathLike | None = "auto", kind: str = "tnas", *,
                    revision: str | None = None, space: str | None = None,
                    token: str | bool | None = None):
    """Resolve (``resolve_pretrained``), validate and load a meta-learned model: a
    ``DeepKernelGP`` (``kind="tnas"``), a MetaD2A ``MetaPredictor`` (``kind="metad2a"``) or a
    BASE prior ``(BayesSuperNet, BaseCheckpoint)`` (``kind="base"``).
    ``space`` (optional) must match the checkpoint's. The model keeps the folder's
    ``CARRIED_FILES`` (``carry_files``), so ``save_pretrained`` of it writes a folder that
    behaves the same. Raises ``HubError`` / ``CheckpointError`` with one line."""
    folder = resolve_pretrained(id_or_path, kind=kind, space=space, revision=revision,
                                token=token)
    raw = check_config(folder, kind=kind, space=space)
    _safetensors_ok(folder)
    if kind == "tnas":
        from .surrogates.deep_kernel import DeepKernelGP

        model = DeepKernelGP.from_pretrained(folder, space=space)
    elif kind == "base":
        from .base.meta import load_base

        model = load_base(folder, space=None if space is None else raw["space"])
    else:
        model = _load_metad2a(folder, space)
    return carry_files(model, folder)


# ---------------------------------------------------------------------- model cards
def _yaml_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(str(i)) for i in items) + "]"


def datasets_of(tasks: Iterable[str]) -> list[str]:
    """Hub dataset ids of the shipped collections the tasks come from."""
    rev = {v: k for k, v in DEFAULT_DATASET_IDS.items()}
    out = []
    for t in tasks:
        d = rev.get(str(t).split("/", 1)[0])
        if d and d not in out:
            out.append(d)
    return out


def model_card(*, kind: str = "tnas", space: str, training_tasks: Iterable[str] = (),
               validation: Mapping[str, Any] | None = None, command: str | None = None,
               license: str = "apache-2.0", datasets: Iterable[str] | None = None,
               tags: Iterable[str] = (), title: str | None = None, description: str = "",
               excluded_tasks: Iterable[str] = (), excluded_collections: Iterable[str] = (),
               body: str | None = None, metrics_note: str = "") -> str:
    """Model card (``README.md``) with Hub metadata (YAML front matter: ``library_name``,
    ``license``, ``tags``, ``datasets``, a ``metanas`` block with the kind, space, training
    tasks count, the excluded tasks / collections and validation figures) and a body:
    ``body`` (e.g. the training code's own card) or a generated one listing the meta-training
    tasks, validation figures, the space and the command that reproduces the model."""
    tasks = [str(t) for t in training_tasks]
    datasets = list(datasets) if datasets is not None else datasets_of(tasks)
    all_tags = ["metanas", "nas", "neural-architecture-search", "meta-learning", kind, space]
    for t in tags:
        if t not in all_tags:
            all_tags.append(str(t))
    val = {k: v for k, v in (validation or {}).items() if v is not None}
    fm = ["---", "library_name: metanas", f"license: {license}", f"tags: {_yaml_list(all_tags)}"]
    if datasets:
        fm.append(f"datasets: {_yaml_list(datasets)}")
    fm += ["metanas:", f"  kind: {kind}", f"  model: {KINDS.get(kind, kind)}",
           f"  space: {space}", f"  metanas_version: {json.dumps(__version__)}",
           f"  n_training_tasks: {len(tasks)}"]
    if excluded_collections:
        fm.append(f"  excluded_collections: {_yaml_list(excluded_collections)}")
    if excluded_tasks:
        fm.append(f"  excluded_tasks: {_yaml_list(excluded_tasks)}")
    if val:
        fm.append("  validation:")
        fm += [f"    {k}: {json.dumps(v)}" for k, v in val.items()]
    if command:
        fm.append(f"  command: {json.dumps(command)}")
    fm.append("---")
    if body is None:
        title = title or f"{kind.upper()} model meta-trained on `{space}` (metanas)"
        shown = ", ".join(f"`{t}`" for t in tasks[:12]) + (f" ... (+{len(tasks) - 12} more)"
                                                          if len(tasks) > 12 else "")
        lines = [f"# {title}", ""]
        if description:
            lines += [description, ""]
        lines += ["| | |", "|---|---|", f"| kind | `{kind}` ({KINDS.get(kind, kind)}) |",
                  f"| search space | `{space}` |",
                  f"| meta-training tasks | {len(tasks)}{': ' + shown if tasks else ''} |"]
        if excluded_collections:
            lines.append(f"| excluded collections | "
                         f"{', '.join(f'`{t}`' for t in excluded_collections)} |")
        if excluded_tasks:
            lines.append(f"| excluded tasks | {', '.join(f'`{t}`' for t in excluded_tasks)} |")
        for k, v in val.items():
            lines.append(f"| validation {k} | {v:.3f} |" if isinstance(v, float)
                         else f"| validation {k} | {v} |")
        if metrics_note:
            lines += ["", metrics_note]
        lines += ["", "Load:", "", "```python", "from metanas.hub import load_pretrained",
                  (f"model, ckpt = load_pretrained(\"<this repo id or folder>\", kind=\"{kind}\")"
                   if kind == "base" else
                   f"model = load_pretrained(\"<this repo id or folder>\", kind=\"{kind}\")"),
                  "```", ""]
        if command:
            lines += ["Reproduce (exact command):", "", "```", command, "```", ""]
        lines += [f"Licence: {license}.", ""]
        body = "\n".join(lines)
    return "\n".join(fm) + "\n" + body.lstrip("\n")


def _strip_front_matter(text: str) -> str:
    if text.startswith("---\n"):
        end = text.find("\n---", 4)
        if end != -1:
            return text[end + 4:].lstrip("\n")
    return text


def card_from_folder(folder: str | os.PathLike, license: str = "apache-2.0") -> str:
    """Model card of a checkpoint folder written by training (``train_meta.py``): the folder's
    own README.md body (or a generated one) under Hub metadata built from ``config.json`` and
    ``training_state.json`` (training tasks, best validation figures, command)."""
    folder = Path(folder)
    cfg = json.loads((folder / CONFIG_NAME).read_text())
    kind = next((k for k, m in KINDS.items() if m == cfg.get("model")), str(cfg.get("model")))
    state: dict = {}
    sp = folder / "training_state.json"
    if sp.is_file():
        try:
            state = json.loads(sp.read_text())
        except (OSError, json.JSONDecodeError):
            state = {}
    readme = folder / "README.md"
    body = _strip_front_matter(readme.read_text()) if readme.is_file() else None
    command = None
    if body:
        m = re.search(r"```\n(python [^\n]+)\n```", body)
        command = m.group(1) if m else None
    tcfg = state.get("config") or {}
    if command is None and tcfg:
        command = f"python train_meta.py --space {cfg.get('space')} --out {folder.name}" + \
            "".join(f" --exclude-task {t}" for t in tcfg.get("exclude") or []) + \
            "".join(f" --exclude-source {t}" for t in tcfg.get("exclude_sources") or []) + \
            " --no-progress"
    bm = state.get("best_metrics") or {}
    validation = {k: bm[k] for k in ("spearman", "lpd") if isinstance(bm.get(k), (int, float))}
    if state.get("best_iter") is not None:
        validation["best_iter"] = state["best_iter"]
    tasks = state.get("training_tasks") or cfg.get("tasks") or []
    return model_card(kind=kind, space=str(cfg.get("space")), training_tasks=tasks,
                      validation=validation, command=command, license=license, body=body,
                      excluded_tasks=tcfg.get("exclude") or [],
                      excluded_collections=tcfg.get("exclude_sources") or [])


# ---------------------------------------------------------------------- upload
def _stage(folder: Path, patterns: list[str], card: str | None) -> Path:
    import fnmatch

    stage = Path(tempfile.mkdtemp(prefix="metanas-push-"))
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith("."):
            continue
        if p.suffix.lower() in PICKLE_SUFFIXES:
            continue
        if any(fnmatch.fnmatch(p.name, pat) for pat in patterns):
            shutil.copy2(p, stage / p.name)
    if card is not None:
        (stage / "README.md").write_text(card)
    return stage


def push_to_hub(dir_or_model, repo_id: str, *, private: bool = False, revision: str | None = None,
                token: str | bool | None = None, commit_message: str | None = None,
                card: Mapping[str, Any] | str | None = None, kind: str | None = None,
                exclude: Iterable[str] = ("last.safetensors",)) -> str:
    """Upload a checkpoint folder (or a model, saved first) as Hub model repo ``repo_id``
    (``HfApi.create_repo(exist_ok=True)`` + ``upload_folder``). The folder is validated by
    loading it first; only ``*.safetensors``, ``*.json`` and ``README.md`` go up (``exclude``
    drops files, by default the resume-only ``last.safetensors``); the model card gets Hub
    metadata (``card_from_folder``) unless ``card`` is given. Returns the commit URL."""
    if hub_offline():
        raise HubError(f"HF_HUB_OFFLINE is set: cannot push to {repo_id!r}; unset it first")
    tmp_model = None
    if isinstance(dir_or_model, (str, os.PathLike)):
        folder = Path(dir_or_model)
        if not (folder / CONFIG_NAME).is_file():
            raise HubError(f"{folder} is not a checkpoint folder (no {CONFIG_NAME})")
    else:
        tmp_model = Path(tempfile.mkdtemp(prefix="metanas-model-"))
        folder = save_pretrained(dir_or_model, tmp_model, card=card)
    raw = json.loads((folder / CONFIG_NAME).read_text())
    kind = kind or next((k for k, m in KINDS.items() if m == raw.get("model")), None)
    if kind is None:
        raise CheckpointError(f"{folder} holds a {raw.get('model')!r} checkpoint: not a metanas "
                              "model")
    load_pretrained(folder, kind=kind)  # validate before anything goes up
    if isinstance(card, str):
        text = card
    elif isinstance(card, Mapping) and tmp_model is None:
        text = model_card(kind=kind, space=raw["space"], **dict(card))
    else:
        text = card_from_folder(folder)
    stage = _stage(folder, MODEL_PATTERNS, text)
    for name in exclude:
        (stage / name).unlink(missing_ok=True)
    try:
        url = _upload(stage, repo_id, "model", private=private, revision=revision, token=token,
                      commit_message=commit_message or f"Upload metanas {kind} model "
                                                       f"({raw['space']})")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        if tmp_model is not None:
            shutil.rmtree(tmp_model, ignore_errors=True)
    return url


def _upload(stage: Path, repo_id: str, repo_type: str, *, private: bool, revision: str | None,
            token, commit_message: str) -> str:
    from huggingface_hub import HfApi

    endpoint = hub_endpoint()
    api = HfApi(endpoint=endpoint, token=_token(token))
    with _hub_session():
        try:
            api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
            if revision not in (None, "main"):
                api.create_branch(repo_id, repo_type=repo_type, branch=revision, exist_ok=True)
            info = api.upload_folder(folder_path=str(stage), repo_id=repo_id,
                                     repo_type=repo_type, revision=revision,
                                     commit_message=commit_message)
        except Exception as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            if type(exc).__name__ in ("ConnectError", "ConnectTimeout", "ReadTimeout"):
                msg = "offline or no network"
            raise HubError(f"pushing to {repo_id!r} on {endpoint} failed ({msg}); check the "
                           "network and your token (HF_TOKEN / `hf auth login`)") from None
    return str(getattr(info, "commit_url", info))


# ---------------------------------------------------------------------- meta-datasets
def push_meta_dataset(folder: str | os.PathLike, repo_id: str, *, private: bool = False,
                      revision: str | None = None, token: str | bool | None = None,
                      commit_message: str | None = None) -> str:
    """Upload a meta-dataset collection folder (``tasks.parquet``, ``triples.parquet``,
    optional ``proxies.parquet`` and its ``README.md`` with the ``configs`` YAML, so
    ``datasets.load_dataset(repo_id, "triples")`` works) as Hub dataset repo ``repo_id``. The
    collection is validated by loading it first."""
    from .meta_dataset import MetaDataset

    if hub_offline():
        raise HubError(f"HF_HUB_OFFLINE is set: cannot push to {repo_id!r}; unset it first")
    folder = Path(folder)
    md = MetaDataset.load(folder)
    readme = folder / "README.md"
    card = None
    if not readme.is_file():
        files = [f for f in ("tasks", "triples", "proxies") if (folder / f"{f}.parquet").is_file()]
        card = ("---\nlicense: other\ntags: [metanas, nas, meta-dataset]\nconfigs:\n"
                + "".join(f"- config_name: {f}\n  data_files: {f}.parquet\n" for f in files)
                + f"---\n# metanas meta-dataset: {folder.name}\n\n{len(md.tasks)} tasks, "
                f"{len(md.triples)} triples.\n")
    stage = _stage(folder, DATASET_PATTERNS, card)
    try:
        return _upload(stage, repo_id, "dataset", private=private, revision=revision,
                       token=token, commit_message=commit_message or
                       f"Upload metanas meta-dataset {folder.name}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def resolve_meta_dataset(repo_id_or_path: str | os.PathLike, revision: str | None = None,
                         token: str | bool | None = None) -> Path:
    """Folder of a meta-dataset collection: local folder; Hub dataset id in the HF cache; a
    default id's shipped collection; a download (not with ``HF_HUB_OFFLINE``)."""
    text = os.fspath(repo_id_or_path)
    local = Path(text).expanduser()
    if local.exists():
        return local
    if _looks_like_path(text):
        from .meta_dataset import shipped_root

        if (shipped_root() / text).is_dir():
            return shipped_root() / text
        raise HubError(f"no meta-dataset folder {text} (and it is not a Hub id 'org/name')")
    cached = _from_cache(text, "dataset", revision)
    if cached is not None and (cached / "tasks.parquet").is_file():
        return cached
    sub = DEFAULT_DATASET_IDS.get(text)
    if sub is not None and revision in (None, "main"):
        from .meta_dataset import shipped_root

        if (shipped_root() / sub / "tasks.parquet").is_file():
            return shipped_root() / sub
    if hub_offline():
        raise HubError(f"no folder {text} here and dataset {text!r} is not in the Hugging Face "
                       f"cache ({hub_cache_dir()}); HF_HUB_OFFLINE is set: pass a local folder, "
                       f"or download it where you have network with "
                       f"`hf download {text} --repo-type dataset`")
    return _download(text, "dataset", revision, DATASET_PATTERNS, token)


def load_meta_dataset(repo_id_or_path: str | os.PathLike, revision: str | None = None,
                      token: str | bool | None = None):
    """``MetaDataset`` from a local collection folder, a shipped collection name or a Hub
    dataset repo (``resolve_meta_dataset``; snapshot + ``MetaDataset.load``: the parquet files
    are schema-checked there)."""
    from .meta_dataset import MetaDataset

    text = os.fspath(repo_id_or_path)
    if "/" not in text and os.sep not in text and not Path(text).exists():
        return MetaDataset.load(text)  # a shipped collection name
    return MetaDataset.load(resolve_meta_dataset(text, revision=revision, token=token))
