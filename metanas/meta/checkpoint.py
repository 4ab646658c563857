"""Checkpoints of meta-learned models: ``model.safetensors`` + ``config.json``, never pickles.

The layout is huggingface_hub's ``PyTorchModelHubMixin`` one (same file names, from
``huggingface_hub.constants``), so a folder can be pushed with ``upload_folder`` and read by
anything that speaks that convention. The mixin itself is not used: it loads non-strictly by
default (missing weights go unnoticed), does not rebuild nested dataclass configs, prints to
stdout and hooks ``__new__``, which gpytorch's ``ExactGP`` does not expect.

What is written:
    ``config.json``: ``{"model": <kind>, "format_version": 1, **asdict(config)}`` (the config
    dataclass, nested dataclasses as objects, tuples as lists; it carries ``space``, the dims
    and ``metanas_version``).
    ``model.safetensors``: the persistent ``state_dict``; its metadata repeats the config JSON
    so that an edited or swapped ``config.json`` is detected.

What loading checks, each failure a one-line ``CheckpointError``: both files exist, the model
kind and format version, every config field is known and of the right kind, an expected
``space`` (when the caller names one), ``config.json`` equals the config stored with the
weights, and every tensor shape equals the one the config builds.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import shlex
import types
import typing
from pathlib import Path
from typing import Any, Callable

import torch
from huggingface_hub import constants as hf_constants

from ..io import atomic_write_bytes, platform_info

#: one INFO line when a saved run is continued (``train_meta.py`` prints it)
logger = logging.getLogger(__name__)

__all__ = ["CheckpointError", "FORMAT_VERSION", "CONFIG_NAME", "WEIGHTS_NAME",
           "config_to_dict", "config_from_dict", "save_checkpoint", "load_checkpoint",
           "platform_info"]

FORMAT_VERSION = 1
CONFIG_NAME = hf_constants.CONFIG_NAME  # "config.json"
WEIGHTS_NAME = hf_constants.SAFETENSORS_SINGLE_FILE  # "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be loaded (missing file, wrong model / space, a config
    that does not match the weights)."""


# ---------------------------------------------------------------------- config <-> dict
def config_to_dict(config: Any) -> dict:
    """Dataclass -> JSON-ready dict (nested dataclasses -> dicts, tuples -> lists)."""
    def conv(v):
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {str(k): conv(x) for k, x in v.items()}
        return v

    if not (dataclasses.is_dataclass(config) and not isinstance(config, type)):
        raise TypeError(f"expected a dataclass instance, got {type(config).__name__}")
    return conv(config)


def _decode(tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise CheckpointError(f"{where} should be an object, got {value!r}")
        return config_from_dict(tp, value, where=where)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _decode(a, value, where)
            except CheckpointError as exc:
                errors.append(str(exc))
        raise CheckpointError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, list):
            raise CheckpointError(f"{where} should be a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        out = [_decode(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(out) if origin is tuple else out
    if tp is bool:
        if not isinstance(value, bool):
            raise CheckpointError(f"{where} should be true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckpointError(f"{where} should be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckpointError(f"{where} should be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise CheckpointError(f"{where} should be a string, got {value!r}")
        return value
    return value


def config_from_dict(cls: type, data: dict, *, where: str = "config") -> Any:
    """Rebuild dataclass ``cls`` from ``data`` (strict: unknown keys are an error; missing keys
    take the defaults; values are type-checked). Errors are ``CheckpointError``."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise CheckpointError(f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}")
    kwargs = {k: _decode(hints.get(k, Any), v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except (TypeError, ValueError, KeyError) as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{where}: {msg}") from None


def _first_difference(a: Any, b: Any, path: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            sub = f"{path}.{k}" if path else str(k)
            if k not in a or k not in b:
                return sub
            d = _first_difference(a[k], b[k], sub)
            if d is not None:
                return d
        return None
    return None if a == b else (path or "<root>")


def _get(d: dict, dotted: str) -> Any:
    for k in dotted.split("."):
        if not isinstance(d, dict) or k not in d:
            return "<missing>"
        d = d[k]
    return d


# ---------------------------------------------------------------------- save / load
def save_checkpoint(module: torch.nn.Module, config: Any, directory: str | Path, *,
                    kind: str) -> Path:
    """Write ``config.json`` and ``model.safetensors`` for ``module`` built from ``config``."""
    from safetensors.torch import save_model

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    cfg = {"model": kind, "format_version": FORMAT_VERSION, **config_to_dict(config)}
    text = json.dumps(cfg, sort_keys=True, indent=2)
    # safetensors write first (to a temp name, then replace) so a crash leaves no mixed pair;
    # re-written through atomic_write_bytes, since safetensors' own files are mode 0600
    tmp = directory / f".{WEIGHTS_NAME}.tmp"
    save_model(module, str(tmp), metadata={"format": "pt", "metanas_config": text})
    atomic_write_bytes(directory / WEIGHTS_NAME, tmp.read_bytes())
    tmp.unlink()
    atomic_write_bytes(directory / CONFIG_NAME, (text + "\n").encode())
    return directory


def load_checkpoint(directory: str | Path, config_cls: type,
                    build: Callable[[Any], torch.nn.Module], *, kind: str,
                    expect: dict[str, Any] | None = None) -> tuple[torch.nn.Module, Any]:
    """Validate and load a checkpoint folder.

    Args:
        config_cls: the config dataclass.
        build: ``config -> module`` (fresh, randomly initialised) to load the weights into.
        kind: model kind written by ``save_checkpoint``.
        expect: top-level config values the caller requires (e.g. ``{"space": "nb201"}``).

    Returns:
        ``(module, config)``; raises ``CheckpointError`` with a one-line reason otherwise.
    """
    from safetensors import safe_open

    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for p in (cfg_path, w_path):
        if not p.is_file():
            raise CheckpointError(f"{p} not found: {directory} is not a saved {kind} checkpoint")
    try:
        raw = json.loads(cfg_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{cfg_path} is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{cfg_path} should hold a JSON object")
    if raw.get("model") != kind:
        raise CheckpointError(f"{directory} holds a {raw.get('model')!r} checkpoint, not {kind!r}")
    if raw.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{directory} has checkpoint format {raw.get('format_version')!r}; "
                              f"this metanas reads format {FORMAT_VERSION}")
    for key, want in (expect or {}).items():
        if want is not None and raw.get(key) != want:
            raise CheckpointError(f"{directory} is a checkpoint for {key}={raw.get(key)!r}, "
                                  f"not {key}={want!r}")
    with safe_open(str(w_path), framework="pt") as fh:
        meta = fh.metadata() or {}
        shapes = {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}
    stored = meta.get("metanas_config")
    if stored is None:
        raise CheckpointError(f"{w_path} carries no metanas config; it was not written by "
                              "save_pretrained")
    stored = json.loads(stored)
    diff = _first_difference(raw, stored)
    if diff is not None:
        raise CheckpointError(
            f"{cfg_path.name} does not match the config saved with {w_path.name} in {directory}: "
            f"{diff} is {_get(raw, diff)!r} in {cfg_path.name} but {_get(stored, diff)!r} with "
            "the weights (edited or mixed-up files)")
    body = {k: v for k, v in raw.items() if k not in ("model", "format_version")}
    config = config_from_dict(config_cls, body, where=cfg_path.name)
    try:
        module = build(config)
    except (TypeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{cfg_path.name} cannot build a {kind}: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    for k in sorted(set(expected) | set(shapes)):
        if k not in shapes:
            raise CheckpointError(f"{w_path.name} lacks weight {k} that {cfg_path.name} implies")
        if k not in expected:
            raise CheckpointError(f"{w_path.name} has weight {k} that {cfg_path.name} does not "
                                  "build")
        if shapes[k] != expected[k]:
            raise CheckpointError(f"weight {k} has shape {list(shapes[k])} in {w_path.name} but "
                                  f"{cfg_path.name} builds {list(expected[k])} (dims changed?)")
    from safetensors.torch import load_model

    load_model(module, str(w_path), strict=True)
    return module, config


# ---------------------------------------------------------------------- training-state I/O
# Shared by the resumable meta-training loops (``tnas_train``, ``metanas.base.meta``).
def generator_state(gen: torch.Generator) -> str:
    """A ``torch.Generator``'s state as base64 text (for a JSON training state)."""
    return base64.b64encode(bytes(gen.get_state().tolist())).decode()


def set_generator_state(gen: torch.Generator, text: str) -> None:
    """Restore ``gen`` from ``generator_state`` text."""
    gen.set_state(torch.tensor(list(base64.b64decode(text)), dtype=torch.uint8))


def save_weights(model: torch.nn.Module, path: str | Path, it: int,
                 state: dict | None = None) -> None:
    """``model``'s state dict as safetensors (metadata ``iter``, and the training ``state`` as
    JSON when given), written atomically."""
    from safetensors.torch import save

    sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    meta = {"iter": str(it)}
    if state is not None:
        meta[STATE_KEY] = json.dumps(state)
    atomic_write_bytes(path, save(sd, metadata=meta))


def load_weights(model: torch.nn.Module, path: str | Path) -> int:
    """Load ``save_weights``'s file into ``model``; returns its ``iter`` (-1 if absent)."""
    from safetensors.torch import load_file

    it = int(_weights_metadata(path).get("iter", -1))
    model.load_state_dict(load_file(str(path)))
    return it


def _weights_metadata(path: str | Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), "pt") as f:
        return dict(f.metadata() or {})


#: ``last.safetensors`` carries the training state it belongs to under this metadata key, so
#: that weights and state are one atomic write (a crash between writing the weights and
#: ``training_state.json`` cannot leave a folder that no longer resumes)
STATE_KEY = "training_state"
LAST_WEIGHTS = "last.safetensors"
BEST_WEIGHTS = "best.safetensors"
#: settings that may differ when a saved run is continued: more iterations extend it
GROWABLE = ("iters",)


def restore_best_weights(out: str | Path, state: dict,
                         build: Callable[[], torch.nn.Module]) -> None:
    """Before a finished run is extended (more ``iters``): put its best weights back as
    ``<out>/best.safetensors``.

    A finished run ships its best iterate as ``model.safetensors`` and removes
    ``best.safetensors``; without this, an extension in which no later iterate validates
    better would ship its *last* weights while the state and card still name the old best.
    ``build()`` makes a fresh module of the run's architecture to load them into."""
    from safetensors.torch import load_model

    out = Path(out)
    best_path = out / BEST_WEIGHTS
    if state.get("iter") and state.get("best_iter") is not None and not best_path.exists() \
            and (out / WEIGHTS_NAME).exists():
        module = build()
        load_model(module, str(out / WEIGHTS_NAME))
        save_weights(module, best_path, int(state["best_iter"]))


def save_training_state(out: str | Path, state_name: str, model: torch.nn.Module,
                        state: dict) -> None:
    """The resume point of a training loop: ``<out>/last.safetensors`` (weights + ``state``)
    then ``<out>/<state_name>`` (the same state as readable JSON)."""
    from ..io import atomic_write_json

    out = Path(out)
    save_weights(model, out / LAST_WEIGHTS, int(state["iter"]), state=state)
    atomic_write_json(out / state_name, state, indent=1)


def open_training_run(out: str | Path, state_name: str, *, resume: bool | str,
                      config: dict, defaults: dict, training_tasks: list[str]) -> bool:
    """Whether meta-training into ``out`` continues the run saved there (``True``) or starts
    a new one (``False``, after removing a saved run's resume files).

    ``resume``: ``"auto"`` continues a saved run with the same settings and starts one where
    none is saved; ``True`` insists on a saved run; ``False`` starts over. ``config`` is the
    run's settings (``asdict`` of its config dataclass) and ``defaults`` the dataclass's
    defaults (for settings added after a run was saved): a saved run with other settings
    (other than ``GROWABLE``) or other training tasks is a one-line ``UserInputError`` naming
    the first difference, never silently continued or overwritten.
    """
    from ..errors import UserInputError
    from ..io import read_json

    out = Path(out)
    path = out / state_name
    if resume not in ("auto", True, False):
        raise ValueError(f"resume must be 'auto', True or False, got {resume!r}")
    if resume is False or not path.exists():
        if resume is True:
            raise UserInputError(f"{out} holds no meta-training run to resume (no {state_name}); "
                                 f"drop --resume to start one")
        for name in (state_name, LAST_WEIGHTS, BEST_WEIGHTS):
            (out / name).unlink(missing_ok=True)
        return False
    old = read_json(path)
    saved = {**defaults, **old.get("config", {})}
    for key in config:
        if key not in GROWABLE and _jsonable(saved.get(key)) != _jsonable(config[key]):
            raise UserInputError(
                f"{out} holds a meta-training run with {key}={saved.get(key)!r}, not "
                f"{config[key]!r}; rerun with its settings to continue it, --fresh to start "
                f"over, or use another --out")
    if sorted(old.get("training_tasks", [])) != sorted(training_tasks):
        raise UserInputError(f"{out} holds a meta-training run on other tasks; rerun with its "
                             f"tasks to continue it, --fresh to start over, or use another --out")
    done = int(old.get("iter", 0))
    if "iters" in config and config["iters"] < done:  # would silently do nothing
        raise UserInputError(f"--iters {config['iters']} < the {done} iterations already run in "
                             f"{out}; give --iters >= {done} or --fresh to start over")
    return True


def _jsonable(v: Any) -> Any:
    return json.loads(json.dumps(v))


def resume_training_state(out: str | Path, state_name: str, state: dict, model: torch.nn.Module,
                          gen: torch.Generator, *, iters: int) -> None:
    """Continue a resumable training loop from ``<out>/last.safetensors`` (weights + the
    state saved with them by ``save_training_state``; ``<out>/<state_name>`` for a folder
    saved before the state travelled with the weights): loads the weights into ``model`` and
    the generator state into ``gen``, and copies the saved values of ``state``'s keys into
    ``state`` (in place). Whether the saved run is this one is ``open_training_run``'s check.
    A run that stopped early goes on only when ``iters`` is raised above the maximum it was
    run with (rerunning the same command leaves it stopped)."""
    from ..errors import UserInputError
    from ..io import read_json

    out = Path(out)
    last = out / LAST_WEIGHTS
    if not last.exists():
        raise UserInputError(f"{last} is missing; rerun with --fresh to start over")
    meta = _weights_metadata(last)
    old = json.loads(meta[STATE_KEY]) if STATE_KEY in meta else read_json(out / state_name)
    it_w = load_weights(model, last)
    if it_w != old["iter"]:
        raise UserInputError(f"{last} (iter {it_w}) does not match {state_name} (iter "
                             f"{old['iter']}); rerun with --fresh to start over")
    set_generator_state(gen, old["generator"])
    for k in state:
        if k in old:
            state[k] = old[k]
    state["done"] = False
    ran_with = (old.get("config") or {}).get("iters")
    if old.get("stopped_early") and iters > (ran_with if ran_with is not None else old["iter"]):
        state["stopped_early"] = False


def check_ranges(config: Any, *, at_least_1: tuple[str, ...] = (),
                 at_least_0: tuple[str, ...] = (), positive: tuple[str, ...] = ()) -> None:
    """A one-line ``UserInputError`` for the first field of ``config`` out of range: integers
    ``>= 1`` / ``>= 0``, finite numbers ``> 0`` (shared by the meta-training configs)."""
    import math

    from ..errors import UserInputError

    for names, lo in ((at_least_1, 1), (at_least_0, 0)):
        for name in names:
            v = getattr(config, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < lo:
                raise UserInputError(f"{name} must be an integer >= {lo}, got {v!r}")
    for name in positive:
        v = getattr(config, name)
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise UserInputError(f"{name} must be a number > 0, got {v!r}")


def resumed_outcome(out: str | Path, state: dict, iters: int) -> dict:
    """What a trainer returns besides its state (never saved): ``outcome`` ``"continued"``
    and the iteration it went on from (``resumed_from``), after logging the one line
    ``continuing <out> from iteration A to N``. Called when a saved run is continued."""
    start = int(state["iter"])
    logger.info("continuing %s from iteration %d to %d", out, start, iters)
    return {"outcome": "continued", "resumed_from": start}


def finished_run(out: str | Path, state_name: str, state: dict, iters: int) -> bool:
    """Whether the run just resumed into ``state`` had finished (its ``<state_name>`` says
    ``done`` and its checkpoint exists) and ``iters`` adds nothing to it: then the folder is
    left exactly as it is (its card keeps the machine it was trained on)."""
    from ..io import read_json

    out = Path(out)
    if not (out / state_name).exists() or not (out / "model.safetensors").exists():
        return False
    if not read_json(out / state_name).get("done"):
        return False
    return state["iter"] >= iters or bool(state.get("stopped_early"))


def command_line(argv) -> str:
    """The shell command ``python <argv...>`` (quoted), as recorded in model cards."""
    return " ".join(shlex.quote(str(a)) for a in ["python", *argv])
