"""Bad values are refused where they enter: training configs, saved weights, damaged checkpoints.

Every damaged checkpoint gives ``tactkit eval`` and ``tactkit control`` a one-line error that
names the file (exit 1, no traceback); a checkpoint with non-finite weights is never written
and never loaded.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from tactkit.cli.main import main
from tactkit.config import ConfigError
from tactkit.policies.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tactkit.policies.config import load_policy_config
from tactkit.policies.factory import get_kind
from tactkit.policies.features import FeatureCodec, Normalizer, make_spec


def _tiny_dp():
    shapes = {"observation.state.tcp_pose": (7,), "action.tcp_pose": (7,), "action.gripper_width": (1,)}
    specs = {k: make_spec(k, s, 15) for k, s in shapes.items()}
    n = {k: 7 if s.kind == "pose" else s.dim for k, s in specs.items()}
    codec = FeatureCodec(specs, Normalizer.from_stats(
        list(specs.values()), {k: {"min": -np.ones(n[k]), "max": np.ones(n[k])} for k in specs}))
    cfg = load_policy_config("dp", ["size=tiny", "obs_keys=[observation.state.tcp_pose]", "down_dims=[16,32]",
                                    "diffusion_step_embed_dim=16"])
    return cfg, get_kind("dp").build_model(cfg, codec, {}), codec


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    cfg, model, codec = _tiny_dp()
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "dp", cfg, model, codec, {})


@pytest.fixture
def checkpoint(good_checkpoint, tmp_path) -> Path:
    return Path(shutil.copytree(good_checkpoint, tmp_path / "dp"))


def _truncate(f: Path) -> None:
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])


def _nan_weight(f: Path) -> None:
    state = load_file(str(f))
    name = sorted(k for k, v in state.items() if v.is_floating_point())[0]
    state[name] = state[name].clone()
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(f))


def _edit_config(change) -> callable:
    def edit(f: Path) -> None:
        meta = json.loads(f.read_text())
        change(meta)
        f.write_text(json.dumps(meta))
    return edit


DAMAGE = {
    "model empty": ("model.safetensors", lambda f: f.write_bytes(b"")),
    "model truncated": ("model.safetensors", _truncate),
    "model garbage": ("model.safetensors", lambda f: f.write_bytes(b"\x07\x00\x00\x00\x00\x00\x00\x00{garbage" * 40)),
    "model NaN weight": ("model.safetensors", _nan_weight),
    "normalizer truncated": ("normalizer.safetensors", _truncate),
    "normalizer empty": ("normalizer.safetensors", lambda f: f.write_bytes(b"")),
    "config empty": ("config.json", lambda f: f.write_bytes(b"")),
    "config truncated": ("config.json", _truncate),
    "config not text": ("config.json", lambda f: f.write_bytes(b"\xff\xfe\x00\x81binary")),
    "config not an object": ("config.json", lambda f: f.write_text("[1, 2, 3]")),
    "config wrong type": ("config.json", _edit_config(lambda m: m["config"].update(horizon="sixteen"))),
    "config negative value": ("config.json", _edit_config(lambda m: m["config"].update(num_inference_steps=-3))),
    "config no features": ("config.json", _edit_config(lambda m: m.pop("features"))),
    "config bad features": ("config.json", _edit_config(lambda m: m.update(features=[1, 2]))),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_checkpoint_is_refused_naming_the_file(checkpoint, case):
    name, damage = DAMAGE[case]
    damage(checkpoint / name)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(checkpoint)
    message = str(info.value)
    assert str(checkpoint / name) in message and "\n" not in message, message


@pytest.mark.parametrize("case", ["model truncated", "model NaN weight", "config truncated", "config not text",
                                  "normalizer empty"])
@pytest.mark.parametrize("command", ["control", "eval"])
def test_cli_names_the_damaged_file_in_one_line(checkpoint, case, command, capsys):
    name, damage = DAMAGE[case]
    damage(checkpoint / name)
    args = (["control", "--policy", str(checkpoint), "--robot", "fake", "--duration", "1"] if command == "control"
            else ["eval", "--policy", str(checkpoint), "--task", "wipe", "--episodes", "1"])
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err, err
    assert str(checkpoint / name) in err, err


def test_non_finite_weights_are_never_saved(tmp_path):
    cfg, model, codec = _tiny_dp()
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] = float("inf")
    with pytest.raises(CheckpointError, match="refusing to save .*model.safetensors.*NaN or infinite"):
        save_checkpoint(tmp_path / "dp", cfg, model, codec, {})
    assert not (tmp_path / "dp").exists() and not list(tmp_path.iterdir())  # nothing written, no temp dir


def test_a_good_checkpoint_still_loads(checkpoint):
    ckpt = load_checkpoint(checkpoint)
    assert ckpt.cfg.policy == "dp" and all(torch.isfinite(p).all() for p in ckpt.model.parameters())


@pytest.mark.parametrize("override, key", [
    ("num_steps=-5", "num_steps"), ("num_steps=0", "num_steps"), ("lr=inf", "lr"), ("lr=.nan", "lr"),
    ("lr=1e400", "lr"), ("lr=-1e-4", "lr"), ("batch_size=0", "batch_size"), ("ema_decay=1.0", "ema_decay"),
    ("weight_decay=.nan", "weight_decay"), ("grad_clip=-1", "grad_clip"), ("warmup_steps=-1", "warmup_steps"),
    ("val_ratio=1.5", "val_ratio"), ("fps=0", "fps"), ("down_dims=[]", "down_dims"),
    ("num_inference_steps=500", "num_inference_steps"),
])
def test_training_config_refuses_unusable_values(override, key):
    with pytest.raises(ConfigError, match=key):
        load_policy_config("dp", [override])


def test_train_cli_refuses_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    for bad in ("num_steps=-5", "lr=inf"):
        assert main(["train", "dp", "--data", str(tmp_path / "no_store.zarr"), "--out", str(out), bad]) == 1
        err = capsys.readouterr().err
        assert bad.split("=")[0] in err and "Traceback" not in err, err
    assert not out.exists()
