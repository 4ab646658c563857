"""Checkpoint format: safetensors + config.json round trip, strict config decoding, clear
one-line errors for mismatches."""

import json
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from metanas.meta.checkpoint import (CheckpointError, config_from_dict, config_to_dict,
                                     load_checkpoint, save_checkpoint)


@dataclass
class Inner:
    width: int = 3
    flag: bool = True


@dataclass
class Cfg:
    space: str = "nb201"
    inner: Inner = field(default_factory=Inner)
    hidden: tuple[int, ...] = (4, 5)
    scale: float = 1.0
    note: str | None = None


class Toy(nn.Module):
    def __init__(self, cfg: Cfg):
        super().__init__()
        self.a = nn.Linear(cfg.inner.width, cfg.hidden[0])
        self.b = nn.Linear(cfg.hidden[0], cfg.hidden[1])
        self.register_buffer("count", torch.tensor(3))
        self.register_buffer("scratch", torch.zeros(2), persistent=False)


def test_config_dict_round_trip():
    cfg = Cfg(inner=Inner(7, False), hidden=(1, 2, 3), scale=2, note="x")
    d = config_to_dict(cfg)
    assert d == {"space": "nb201", "inner": {"width": 7, "flag": False}, "hidden": [1, 2, 3],
                 "scale": 2, "note": "x"}
    back = config_from_dict(Cfg, json.loads(json.dumps(d)))
    assert back == Cfg(inner=Inner(7, False), hidden=(1, 2, 3), scale=2.0, note="x")
    assert config_from_dict(Cfg, {}) == Cfg()
    with pytest.raises(CheckpointError, match="unknown field"):
        config_from_dict(Cfg, {"inner": {"width": 3, "depth": 2}})
    with pytest.raises(CheckpointError, match=r"config.inner.width should be an integer"):
        config_from_dict(Cfg, {"inner": {"width": "3"}})


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = Cfg()
    m = Toy(cfg)
    save_checkpoint(m, cfg, tmp_path, kind="toy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    m2, cfg2 = load_checkpoint(tmp_path, Cfg, Toy, kind="toy", expect={"space": "nb201"})
    assert cfg2 == cfg
    for k, v in m.state_dict().items():
        assert torch.equal(v, m2.state_dict()[k])


def test_errors_are_one_line(tmp_path):
    torch.manual_seed(0)
    cfg = Cfg()
    save_checkpoint(Toy(cfg), cfg, tmp_path, kind="toy")
    cases = [
        (dict(kind="other"), "holds a 'toy' checkpoint, not 'other'"),
        (dict(kind="toy", expect={"space": "transnas_micro"}),
         "space='nb201', not space='transnas_micro'"),
    ]
    for kw, msg in cases:
        with pytest.raises(CheckpointError, match=msg) as exc:
            load_checkpoint(tmp_path, Cfg, Toy, **kw)
        assert "\n" not in str(exc.value)
    # weights and config saved consistently but the weights do not fit the config's dims
    bad = Cfg(inner=Inner(width=5))
    save_checkpoint(Toy(cfg), bad, tmp_path / "x", kind="toy")
    with pytest.raises(CheckpointError, match=r"weight a.weight has shape \[4, 3\].*\[4, 5\]"):
        load_checkpoint(tmp_path / "x", Cfg, Toy, kind="toy")
    # edited config.json
    raw = json.loads((tmp_path / "config.json").read_text())
    raw["hidden"] = [4, 6]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    with pytest.raises(CheckpointError, match=r"hidden is \[4, 6\] in config.json but \[4, 5\]"):
        load_checkpoint(tmp_path, Cfg, Toy, kind="toy")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(tmp_path, Cfg, Toy, kind="toy")
