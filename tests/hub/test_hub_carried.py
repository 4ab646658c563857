"""A TNAS checkpoint folder keeps its prior context and training record through
``load_pretrained`` -> ``save_pretrained`` / ``push_to_hub`` (offline: the upload is captured).
Works on a copy of the shipped checkpoint (the shipped folder is never written)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from metanas import hub, strategies
from metanas.hub import CheckpointError

from hub_helpers import SPACE, assert_same_predictions, tiny_model

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "pretrained" / "tnas-transnas_micro"


@pytest.fixture
def copy(tmp_path) -> Path:
    d = tmp_path / "src"
    shutil.copytree(SHIPPED, d)
    return d


def _tasks(folder: Path) -> list[str]:
    return json.loads((folder / "training_state.json").read_text())["training_tasks"]


def test_round_trip_keeps_prior_context_and_training_tasks(copy, tmp_path, caplog):
    model = hub.load_pretrained(copy, kind="tnas", space=SPACE.name)
    reference = hub.load_pretrained(SHIPPED, kind="tnas")
    context = (copy / "prior_context.safetensors").read_bytes()
    tasks = _tasks(copy)
    assert tasks
    shutil.rmtree(copy)  # the model carries the files: the source folder is not needed
    out = hub.save_pretrained(model, tmp_path / "new")
    assert {"config.json", "model.safetensors", "README.md", "prior_context.safetensors",
            "training_state.json"} <= {p.name for p in out.iterdir()}
    assert (out / "prior_context.safetensors").read_bytes() == context
    assert _tasks(out) == tasks
    back = hub.load_pretrained(out, kind="tnas", space=SPACE.name)
    assert_same_predictions(reference, back)
    card = (out / "README.md").read_text()
    assert "space: transnas_micro" in card and "n_training_tasks: 7" in card
    assert f"`{tasks[0]}`" in card
    # the tnas strategy behaves the same on the saved folder: same prior (top-k initial
    # design), same training tasks (the leak warning)
    a = strategies.make("tnas", SPACE, seed=0, pretrained=str(SHIPPED))
    b = strategies.make("tnas", SPACE, seed=0, pretrained=str(out), task=tasks[0])
    ra, rb = a.prior_ranking(), b.prior_ranking()
    assert ra is not None and rb is not None and np.array_equal(ra, rb)
    with caplog.at_level(logging.WARNING, logger="metanas"):
        b.model  # noqa: B018  (builds the surrogate; warns about the leak)
    assert b._read_training_tasks(out) == tasks
    assert any("meta-trained on the target task" in r.getMessage() for r in caplog.records)


def test_round_trip_again_and_in_place(copy, tmp_path):
    first = hub.save_pretrained(hub.load_pretrained(copy, kind="tnas"), tmp_path / "one")
    second = hub.save_pretrained(hub.load_pretrained(first, kind="tnas"), tmp_path / "two")
    for name in hub.CARRIED_FILES:
        assert (second / name).read_bytes() == (copy / name).read_bytes()
    hub.save_pretrained(hub.load_pretrained(copy, kind="tnas"), copy)  # in place: unchanged
    for name in hub.CARRIED_FILES:
        assert (copy / name).read_bytes() == (SHIPPED / name).read_bytes()


def test_fresh_model_carries_nothing(tmp_path):
    model = tiny_model()
    assert hub.carried_files(model) == {}
    d = hub.save_pretrained(model, tmp_path / "fresh")
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json",
                                                    "model.safetensors"]
    assert hub.carried_files(hub.load_pretrained(d, kind="tnas")) == {}


def test_push_of_loaded_model_uploads_what_the_folder_push_does(copy, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    sent: list[dict[str, bytes]] = []

    def capture(stage, repo_id, repo_type, **kw):
        sent.append({p.name: p.read_bytes() for p in Path(stage).iterdir()})
        return f"captured/{repo_id}"

    monkeypatch.setattr(hub, "_upload", capture)
    hub.push_to_hub(copy, "org/from-folder")
    hub.push_to_hub(hub.load_pretrained(copy, kind="tnas"), "org/from-model")
    folder_push, model_push = sent
    assert set(folder_push) == set(model_push) == {
        "README.md", "config.json", "model.safetensors", "prior_context.safetensors",
        "training_state.json"}
    for name in hub.CARRIED_FILES:  # (the weights file is re-serialised: same tensors)
        assert model_push[name] == folder_push[name], name
    assert b"n_training_tasks: 7" in model_push["README.md"]


def test_broken_prior_context_is_one_line(copy):
    (copy / "prior_context.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{broken}")
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(copy, kind="tnas")
    msg = str(exc.value)
    assert "\n" not in msg and "prior_context.safetensors is not a valid safetensors" in msg
