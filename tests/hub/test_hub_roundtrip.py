"""Real round trips on loopback: downloads from olah (a Hub-compatible server, offline mode,
serving plain git repos laid out as ``{mirrors}/{models|datasets}/{org}/{repo}``) and uploads
to ``fake_hub.FakeHub`` (the Hub upload endpoints), which commits into olah's mirror so what
was pushed is downloaded back through olah."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from metanas import hub
from metanas.meta_dataset import MetaDataset

from fake_hub import FakeHub, commit_files
from hub_helpers import SPACE, assert_same_predictions, repo_files, tiny_model

REPO = Path(__file__).resolve().parents[2]


def tiny_collection(folder: Path) -> MetaDataset:
    md = MetaDataset.load("transnas_micro")
    keep = ["transnas_micro/jigsaw", "transnas_micro/class_scene"]
    small = md.subset(keep)
    small.save(folder)
    src = (REPO / "meta_datasets" / "transnas_micro" / "README.md").read_text()
    (folder / "README.md").write_text(src)  # the YAML `configs` of the collection
    return MetaDataset.load(folder)


def same_md(a: MetaDataset, b: MetaDataset) -> None:
    pd.testing.assert_frame_equal(a.tasks.reset_index(drop=True), b.tasks.reset_index(drop=True))
    pd.testing.assert_frame_equal(a.triples.reset_index(drop=True),
                                  b.triples.reset_index(drop=True))


# ---------------------------------------------------------------------- downloads (olah)
def test_load_pretrained_downloads_from_hub(olah, hub_env, tmp_path, monkeypatch):
    model = tiny_model(1)
    d = hub.save_pretrained(model, tmp_path / "src")
    commit_files(olah.mirrors / "models" / "org" / "tiny-tnas", repo_files(d), "add model")
    home = hub_env(olah.url)
    loaded = hub.load_pretrained("org/tiny-tnas", kind="tnas", space=SPACE.name)
    assert_same_predictions(model, loaded)
    snap = hub.resolve_pretrained("org/tiny-tnas", kind="tnas")
    assert str(snap).startswith(str(home / "hub" / "models--org--tiny-tnas" / "snapshots"))
    # offline afterwards: served from the HF cache, no network
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hub, "_download", lambda *a, **k: pytest.fail("network attempted"))
    assert hub.resolve_pretrained("org/tiny-tnas", kind="tnas") == snap


def test_tnas_strategy_uses_a_hub_id(olah, hub_env, tmp_path):
    from metanas import strategies

    d = hub.save_pretrained(tiny_model(2), tmp_path / "src")
    commit_files(olah.mirrors / "models" / "org" / "tiny-tnas-2", repo_files(d), "add model")
    hub_env(olah.url)
    st = strategies.make("tnas", SPACE, seed=0, pretrained="org/tiny-tnas-2", n_init=2)
    assert st.ask(2) and Path(st.checkpoint_dir).name != "src"


def test_missing_repo_on_a_live_hub_is_one_line(olah, hub_env):
    hub_env(olah.url)
    with pytest.raises(hub.HubError) as exc:
        hub.load_pretrained("org/does-not-exist", kind="tnas")
    msg = str(exc.value)
    assert "\n" not in msg and "'org/does-not-exist'" in msg


def test_load_meta_dataset_downloads_from_hub(olah, hub_env, tmp_path):
    src = tiny_collection(tmp_path / "coll")
    commit_files(olah.mirrors / "datasets" / "org" / "tiny-md", repo_files(tmp_path / "coll"),
                 "add collection")
    hub_env(olah.url)
    same_md(src, hub.load_meta_dataset("org/tiny-md"))


# ---------------------------------------------------------------------- uploads (fake hub)
@pytest.fixture
def fake_hub(olah):
    with FakeHub(olah.mirrors) as fh:
        yield fh
    assert not fh.unhandled, fh.unhandled


def test_push_model_then_download(olah, fake_hub, hub_env, monkeypatch):
    model = tiny_model(3)
    hub_env(fake_hub.url)
    url = hub.push_to_hub(model, "org/pushed-model", commit_message="first upload")
    assert url.startswith(fake_hub.url) and fake_hub.commits[-1]["files"] == \
        ["README.md", "config.json", "model.safetensors"]
    monkeypatch.setenv("HF_ENDPOINT", olah.url)  # download what was pushed, through olah
    loaded = hub.load_pretrained("org/pushed-model", kind="tnas", space=SPACE.name)
    assert_same_predictions(model, loaded)
    card = (hub.resolve_pretrained("org/pushed-model", kind="tnas") / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: metanas\n")
    meta = fake_hub.validated[-1]  # the Hub metadata, as the server's YAML parser sees it
    assert meta["library_name"] == "metanas" and meta["license"] == "apache-2.0"
    assert {"metanas", "nas", "tnas", "transnas_micro"} <= set(meta["tags"])
    assert meta["metanas"]["space"] == "transnas_micro"


def test_push_trained_folder_with_card_and_revision(olah, fake_hub, hub_env, monkeypatch):
    folder = REPO / "pretrained" / "tnas-transnas_micro"
    hub_env(fake_hub.url)
    hub.push_to_hub(folder, "org/tnas-transnas_micro", revision="v1")
    c = fake_hub.commits[-1]
    assert c["revision"] == "v1" and "last.safetensors" not in c["files"]
    assert {"config.json", "model.safetensors", "prior_context.safetensors", "README.md",
            "training_state.json"} <= set(c["files"])
    monkeypatch.setenv("HF_ENDPOINT", olah.url)
    snap = hub.resolve_pretrained("org/tnas-transnas_micro", kind="tnas", revision="v1")
    card = (snap / "README.md").read_text()
    assert "space: transnas_micro" in card and "spearman:" in card
    assert "python train_meta.py --space transnas_micro" in card
    assert (snap / "model.safetensors").read_bytes() == (folder / "model.safetensors").read_bytes()
    a = hub.load_pretrained(folder, kind="tnas")
    b = hub.load_pretrained("org/tnas-transnas_micro", kind="tnas", revision="v1")
    assert_same_predictions(a, b)


def test_push_meta_dataset_then_download(olah, fake_hub, hub_env, tmp_path, monkeypatch):
    src = tiny_collection(tmp_path / "coll")
    hub_env(fake_hub.url)
    hub.push_meta_dataset(tmp_path / "coll", "org/pushed-md")
    c = fake_hub.commits[-1]
    assert c["type"] == "dataset" and "README.md" in c["files"]
    monkeypatch.setenv("HF_ENDPOINT", olah.url)
    same_md(src, hub.load_meta_dataset("org/pushed-md"))
    # the pushed repo is a regular Hub dataset: `datasets.load_dataset(id, "triples")` works
    # (in a fresh process: `datasets` reads HF_HUB_OFFLINE / HF_ENDPOINT at import)
    env = {**os.environ, "HF_HOME": str(tmp_path / "ds_home"), "HF_HUB_OFFLINE": "0",
           "HF_ENDPOINT": olah.url, "HF_DATASETS_OFFLINE": "0"}
    code = ("import datasets; ds = datasets.load_dataset('org/pushed-md', 'triples', "
            "split='train'); print(len(ds))")
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert int(r.stdout.split()[-1]) == len(src.triples)


def test_push_refused_offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.HubError, match="HF_HUB_OFFLINE is set"):
        hub.push_to_hub(tiny_model(), "org/x")
