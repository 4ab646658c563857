"""metanas.hub without a Hub: offline-first resolution, fast failures, validation on load.
No server but the closed / silent loopback ports opened here."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from pathlib import Path

import pytest

from metanas import hub, strategies
from metanas.errors import UserInputError
from metanas.hub import CheckpointError, HubError

from hub_helpers import SPACE, assert_same_predictions, tiny_model

REPO = Path(__file__).resolve().parents[2]


def one_line(exc) -> str:
    msg = str(exc.value)
    assert msg and "\n" not in msg, msg
    return msg


@pytest.fixture
def offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    from huggingface_hub import snapshot_download  # noqa: F401  (import time is not measured)


@pytest.fixture
def saved(tmp_path):
    model = tiny_model()
    d = hub.save_pretrained(model, tmp_path / "ckpt")
    return model, d


# ---------------------------------------------------------------------- resolution
@pytest.mark.parametrize("repo_id,folder", sorted(hub.DEFAULT_IDS.items()))
def test_default_id_resolves_to_shipped_copy_offline_instantly(offline, repo_id, folder):
    t0 = time.perf_counter()
    path = hub.resolve_pretrained(repo_id, kind="tnas")
    dt = time.perf_counter() - t0
    assert path == REPO / "pretrained" / folder
    assert dt < 1.0, f"{dt:.3f} s"  # measured ~1 ms; generous for a loaded machine


def test_auto_is_the_default_id_of_the_space(offline):
    assert hub.resolve_pretrained("auto", kind="tnas", space="nb201") == \
        REPO / "pretrained" / "tnas-nb201"


def test_shipped_default_loads(offline):
    model = hub.load_pretrained("metanas/tnas-transnas_micro", space="transnas_micro")
    assert model.config.space == "transnas_micro"


def test_unknown_id_offline_fails_fast_with_one_line(offline):
    t0 = time.perf_counter()
    with pytest.raises(HubError) as exc:
        hub.resolve_pretrained("someone/unknown-model", kind="tnas")
    assert time.perf_counter() - t0 < 1.0
    msg = one_line(exc)
    assert "HF_HUB_OFFLINE" in msg and "hf download someone/unknown-model" in msg


def test_missing_folder_is_one_line(offline, tmp_path):
    with pytest.raises(FileNotFoundError) as exc:  # HubError is a FileNotFoundError
        hub.resolve_pretrained(str(tmp_path / "nope"), kind="tnas")
    assert "no checkpoint folder" in one_line(exc)
    (tmp_path / "empty").mkdir()
    with pytest.raises(HubError) as exc:
        hub.resolve_pretrained(tmp_path / "empty", kind="tnas")
    assert "no config.json" in one_line(exc)


def _timed_failure(monkeypatch, tmp_path, endpoint: str) -> tuple[float, str]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    t0 = time.perf_counter()
    with pytest.raises(HubError) as exc:
        hub.load_pretrained("org/not-reachable", kind="tnas")
    return time.perf_counter() - t0, one_line(exc)


def test_unreachable_hub_closed_port_fails_fast(monkeypatch, tmp_path, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dt, msg = _timed_failure(monkeypatch, tmp_path, f"http://127.0.0.1:{port}")
    with capsys.disabled():
        print(f"\n[hub] unreachable Hub (closed port): failed in {dt:.3f} s")
    assert dt < 5.0
    assert msg == ("cannot reach the Hub for 'org/not-reachable' (offline or no network): pass "
                   "a local folder, or download it where you have network with "
                   "`hf download org/not-reachable`")


def test_unreachable_hub_silent_server_fails_fast(monkeypatch, tmp_path, capsys):
    """A server that accepts connections and never answers (the worst case)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    conns = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(srv.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        dt, msg = _timed_failure(monkeypatch, tmp_path, f"http://127.0.0.1:{srv.getsockname()[1]}")
    finally:
        stop.set()
        th.join(5)
        for c in conns:
            c.close()
        srv.close()
    with capsys.disabled():
        print(f"\n[hub] unreachable Hub (silent server): failed in {dt:.3f} s")
    assert dt < 5.0
    assert msg.startswith("cannot reach the Hub for 'org/not-reachable'")


def test_offline_never_touches_the_network(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # would fail differently
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))

    def boom(*a, **k):
        raise AssertionError("network attempted")

    monkeypatch.setattr(hub, "_download", boom)
    with pytest.raises(HubError, match="HF_HUB_OFFLINE is set"):
        hub.resolve_pretrained("org/x", kind="tnas")


# ---------------------------------------------------------------------- save / load
def test_local_round_trip_and_card(saved, offline):
    model, d = saved
    assert sorted(p.name for p in d.iterdir()) == ["README.md", "config.json",
                                                    "model.safetensors"]
    card = (d / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: metanas\n")
    assert 'tags: ["metanas", "nas"' in card
    loaded = hub.load_pretrained(d, kind="tnas", space=SPACE.name)
    assert_same_predictions(model, loaded)


def test_model_card_contents():
    card = hub.model_card(kind="tnas", space="nb201",
                          training_tasks=["nb201/cifar10", "metad2a/1"],
                          validation={"spearman": 0.97},
                          command="python train_meta.py --space nb201")
    head, body = card.split("\n---\n", 1)
    assert "license: apache-2.0" in head and "library_name: metanas" in head
    assert 'datasets: ["metanas/metadataset-nb201", "metanas/metadataset-metad2a"]' in head
    assert "spearman: 0.97" in head
    assert "`nb201/cifar10`" in body and "python train_meta.py --space nb201" in body
    shipped = hub.card_from_folder(REPO / "pretrained" / "tnas-transnas_micro")
    assert shipped.startswith("---\n") and "space: transnas_micro" in shipped
    assert "python train_meta.py --space transnas_micro" in shipped
    nb = hub.card_from_folder(REPO / "pretrained" / "tnas-nb201")  # NB201 + MetaD2A recipe
    assert 'excluded_collections: ["digits_live"]' in nb.split("\n---\n", 1)[0]
    assert "--exclude-source digits_live" in nb


def test_metad2a_predictor_round_trip(tmp_path, offline):
    import numpy as np

    from metanas.meta_dataset import MetaDataset
    from metanas.strategies.metad2a import MetaPredictor

    md = MetaDataset.load("transnas_micro")
    pred = MetaPredictor(SPACE, md, "transnas_micro/jigsaw", seed=0, epochs=1, hidden=32)
    d = hub.save_pretrained(pred, tmp_path / "md2a")
    back = hub.load_pretrained(d, kind="metad2a", space=SPACE.name)
    archs = SPACE.all_array()[:200]
    assert np.array_equal(pred.predict(archs), back.predict(archs))
    assert back.tasks == pred.tasks and back.exclude == "transnas_micro/jigsaw"
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas")
    assert "not a tnas one" in one_line(exc)


# ---------------------------------------------------------------------- tampering
def _edit_config(d: Path, **changes) -> None:
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))


def test_edited_config_is_refused(saved):
    _, d = saved
    _edit_config(d, feat_dim=8)
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas")
    assert "does not match the config saved with model.safetensors" in one_line(exc)


def test_other_space_is_refused(saved):
    _, d = saved
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas", space="nb201")
    assert "space 'transnas_micro', not 'nb201'" in one_line(exc)


def test_other_metanas_series_is_refused(saved):
    _, d = saved
    _edit_config(d, metanas_version="9.0.0")
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas")
    assert "written by metanas 9.0.0" in one_line(exc)


def _rewrite_header(path: Path, edit) -> None:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = edit(raw[8:8 + n].decode())
    hb = header.encode()
    hb += b" " * ((8 - len(hb) % 8) % 8)
    path.write_bytes(struct.pack("<Q", len(hb)) + hb + raw[8 + n:])


def test_edited_safetensors_header_is_refused(saved):
    _, d = saved
    w = d / "model.safetensors"
    # the config stored with the weights now says another feat_dim: config.json disagrees
    _rewrite_header(w, lambda h: h.replace('\\"feat_dim\\": 4', '\\"feat_dim\\": 5'))
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas")
    assert "feat_dim is 4 in config.json but 5 with the weights" in one_line(exc)


def test_corrupted_safetensors_header_is_refused(saved):
    _, d = saved
    w = d / "model.safetensors"
    raw = bytearray(w.read_bytes())
    raw[8:20] = b"#not-json###"
    w.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas")
    assert "is not a valid safetensors file" in one_line(exc)


def test_tensor_shape_edit_is_refused(saved):
    _, d = saved
    w = d / "model.safetensors"

    def edit(h):
        meta = json.loads(h)
        name = next(k for k, v in meta.items() if k != "__metadata__" and len(v["shape"]) == 2
                    and v["shape"][0] != v["shape"][1])
        r, c = meta[name]["shape"]
        meta[name]["shape"] = [c, r]  # same byte size, transposed
        return json.dumps(meta)

    _rewrite_header(w, edit)
    with pytest.raises(CheckpointError) as exc:
        hub.load_pretrained(d, kind="tnas")
    assert "dims changed?" in one_line(exc)


def test_pickles_are_never_uploaded(saved):
    _, d = saved
    (d / "pytorch_model.bin").write_bytes(b"\x80\x04not really")
    stage = hub._stage(d, hub.MODEL_PATTERNS, None)
    assert sorted(p.name for p in stage.iterdir()) == ["README.md", "config.json",
                                                        "model.safetensors"]


# ---------------------------------------------------------------------- CLI / strategy hooks
def test_tnas_strategy_and_adapt_cli_accept_ids(offline, capsys):
    st = strategies.make("tnas", SPACE, seed=0, pretrained="metanas/tnas-transnas_micro")
    assert st._resolve_checkpoint() == REPO / "pretrained" / "tnas-transnas_micro"
    from metanas.cli import _pretrained_kwargs, adapt_main

    kw = _pretrained_kwargs("metanas/tnas-transnas_micro", ["tnas", "rs"])
    assert kw == {"tnas": {"pretrained": str(REPO / "pretrained" / "tnas-transnas_micro")}}
    # several, comma-separated: tnas's ensemble, each resolved
    shipped = str(REPO / "pretrained" / "tnas-transnas_micro")
    kw = _pretrained_kwargs(f"metanas/tnas-transnas_micro, {shipped}", ["tnas"])
    assert kw == {"tnas": {"pretrained": [shipped, shipped]}}
    with pytest.raises(UserInputError, match="ensemble"):
        _pretrained_kwargs(f"{shipped},{shipped}", ["base"])
    with pytest.raises(UserInputError, match="names no checkpoint"):
        _pretrained_kwargs(" , ", ["tnas"])
    with pytest.raises(SystemExit) as exc:
        adapt_main(["--space", "transnas_micro", "--method", "tnas",
                    "--pretrained", "someone/unknown-model", "--quiet"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "hf download someone/unknown-model" in err


def test_model_class_from_pretrained_takes_hub_ids(monkeypatch):
    """``DeepKernelGP.from_pretrained`` accepts a default Hub id offline (-> shipped copy) and
    gives the same model as ``hub.load_pretrained``."""
    import torch

    from metanas.hub import load_pretrained
    from metanas.surrogates.deep_kernel import DeepKernelGP

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    a = DeepKernelGP.from_pretrained("metanas/tnas-transnas_micro")
    b = load_pretrained("metanas/tnas-transnas_micro", kind="tnas")
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert hasattr(a, "push_to_hub")
