"""The "not a transfer setting" check of meta-learned methods (tnas, base, base-prior).

A method warns whenever its checkpoint's meta-training saw the target task: trained on it,
or validated on it (early stopping chose the weights on it). "The same task" is decided by
:func:`metanas.meta_dataset.same_task_in`: the same id, a short name of it, a live spec
(``dataset:...``) equal to a recorded one (normalised ``TaskSpec``), or a user table copying
a task's values.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

#: method -> (checkpoint, task) pairs already checked: warn once per process, not per seed
_CHECKED: dict[str, set[tuple[str, str]]] = {}


def read_val_tasks(ckpt: Path, state_name: str = "training_state.json") -> list[str] | None:
    """The validation tasks a checkpoint's meta-training recorded (``val_tasks`` of its
    training state, of the state's ``config`` or of ``config.json``); ``None``: not
    recorded (an older checkpoint: unknown)."""
    for name, path in ((state_name, ("val_tasks",)), (state_name, ("config", "val_tasks")),
                       ("config.json", ("val_tasks",))):
        try:
            d: Any = json.loads((Path(ckpt) / name).read_text())
        except (OSError, ValueError):
            continue
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        if isinstance(d, list):
            return [str(t) for t in d]
    return None


def warn_if_seen(logger: logging.Logger, method: str, ckpt, task: Any,
                 training_tasks: Sequence[str], val_tasks: Sequence[str] | None,
                 md_factory=None, warned: set | None = None) -> tuple[list[str], list[str]]:
    """Warn (once per process for ``(ckpt, task)``) when ``task`` is among (the same task as
    one of) the checkpoint's training or validation tasks; returns the matching
    ``(training, validation)`` names. ``md_factory``: a zero-argument callable giving the
    meta-dataset the names and the target refer to (``None``: compare ids and live specs
    only). ``warned``: the set of ``(checkpoint, task)`` pairs already checked (default one
    per method)."""
    if not isinstance(task, str) or not task:
        return [], []
    warned = warned if warned is not None else _CHECKED.setdefault(method, set())
    key = (str(ckpt), task)
    if key in warned:
        return [], []
    warned.add(key)
    from ..meta_dataset import same_task_in

    md = None
    if md_factory is not None:
        try:
            md = md_factory()
        except Exception as exc:  # no meta-dataset: ids and live specs only
            logger.debug("%s: no meta-dataset for the transfer check (%s)", method, exc)
    trained = same_task_in(md, task, list(training_tasks or ()))
    validated = same_task_in(md, task, list(val_tasks or ()))
    if trained == [task]:  # the original wording (tests and users grep it)
        logger.warning("%s: the checkpoint %s was meta-trained on the target task %r "
                       "(not a transfer setting)", method, ckpt, task)
    elif trained:
        logger.warning("%s: the checkpoint %s was meta-trained on the target task %r, as %s "
                       "(not a transfer setting)", method, ckpt, task, ", ".join(trained))
    if validated:
        same = "" if validated == [task] else f", as {', '.join(validated)}"
        logger.warning("%s: the checkpoint %s was validated on the target task %r%s (its "
                       "meta-training's early stopping chose the weights on it; not a "
                       "transfer setting)", method, ckpt, task, same)
    return trained, validated
