from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from tactkit.config import ConfigError, load_config, parse_overrides, to_dict


@dataclass
class Optim:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class Train:
    name: str
    steps: int = 100
    mode: Literal["rdp", "dp"] = "dp"
    keys: list[str] = field(default_factory=list)
    optim: Optim = field(default_factory=Optim)
    seed: int | None = None


def test_yaml_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: wipe\nsteps: 10\noptim:\n  lr: 0.001\n")
    cfg = load_config(Train, path, ["optim.lr=3e-4", "keys=[a, b]", "mode=rdp", "seed=7"])
    assert cfg.name == "wipe" and cfg.steps == 10
    assert cfg.optim.lr == pytest.approx(3e-4) and cfg.optim.betas == (0.9, 0.999)
    assert cfg.keys == ["a", "b"] and cfg.mode == "rdp" and cfg.seed == 7
    assert to_dict(cfg)["optim"]["betas"] == [0.9, 0.999]
    assert load_config(Train, to_dict(cfg)) == cfg


def test_errors_name_the_key():
    with pytest.raises(ConfigError, match="unknown config key optim.lrr"):
        load_config(Train, {"name": "x"}, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match="steps: expected an integer"):
        load_config(Train, {"name": "x", "steps": "many"})
    with pytest.raises(ConfigError, match="mode: 'sac' is not one of"):
        load_config(Train, {"name": "x", "mode": "sac"})
    with pytest.raises(ConfigError, match="missing required config key name"):
        load_config(Train, {})
    with pytest.raises(ConfigError, match="optim.betas: expected 2 items"):
        load_config(Train, {"name": "x", "optim": {"betas": [1.0]}})
    with pytest.raises(ConfigError, match="not of the form key=value"):
        parse_overrides(["steps"])


def test_overrides_are_data_not_code():
    cfg = load_config(Train, {"name": "x"}, ["name=__import__('os').system('true')"])
    assert cfg.name == "__import__('os').system('true')"
