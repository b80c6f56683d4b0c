"""Policy checkpoints: safetensors weights + JSON config + normaliser and PCA arrays, no pickle.

Layout of a checkpoint directory::

    config.json              format, policy kind, PolicyConfig, feature specs, stage configs
    model.safetensors        inference weights (the EMA weights when EMA is on)
    normalizer.safetensors   min-max scale/offset per key
    pca/<key>.safetensors    one TactilePCA per tactile key

:func:`load_checkpoint` rebuilds the module from these files and refuses anything that does
not fit (unknown format or kind, missing file, missing/unexpected/mis-shaped weights).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

import tactkit
from tactkit.policies.config import PolicyConfig
from tactkit.policies.factory import get_kind
from tactkit.policies.features import FeatureCodec, FeatureSpec, Normalizer
from tactkit.sensors.embedding import TactilePCA

FORMAT = "tactkit.policy_checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, of another format, or does not fit the code that loads it."""


@dataclass
class Checkpoint:
    cfg: PolicyConfig
    model: nn.Module
    codec: FeatureCodec
    pcas: dict[str, TactilePCA]
    extra: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    path: Path | None = None


def _specs_to_json(specs: dict[str, FeatureSpec]) -> dict[str, Any]:
    return {k: {"kind": s.kind, "raw_shape": list(s.raw_shape), "dim": s.dim} for k, s in specs.items()}


def _specs_from_json(d: dict[str, Any]) -> dict[str, FeatureSpec]:
    return {k: FeatureSpec(k, v["kind"], tuple(v["raw_shape"]), int(v["dim"])) for k, v in d.items()}


def _extra_to_json(extra: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.to_dict() if isinstance(v, PolicyConfig) else v) for k, v in extra.items()}


def _extra_from_json(d: dict[str, Any]) -> dict[str, Any]:
    return {k: (PolicyConfig.from_dict(v) if k.endswith("_config") else v) for k, v in d.items()}


def save_checkpoint(
    path: str | Path,
    cfg: PolicyConfig,
    model: nn.Module,
    codec: FeatureCodec,
    pcas: dict[str, TactilePCA],
    extra: dict[str, Any] | None = None,
    step: int = 0,
) -> Path:
    """Write a checkpoint directory atomically (a temporary directory renamed into place)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tactkit_version": tactkit.__version__,
            "policy": cfg.policy,
            "step": int(step),
            "config": cfg.to_dict(),
            "features": _specs_to_json(codec.specs),
            "extra": _extra_to_json(extra or {}),
        }
        (tmp / "config.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
        state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": FORMAT, "policy": cfg.policy})
        codec.normalizer.save(tmp / "normalizer.safetensors")
        for key, pca in pcas.items():
            pca.save(tmp / "pca" / f"{key}.safetensors")
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def resolve_checkpoint_dir(path: str | Path) -> Path:
    """Accept a checkpoint directory, a training run directory (``<run>/checkpoint``) or an
    ``rdp`` run directory (``<run>/ldp/checkpoint``)."""
    p = Path(path)
    for cand in (p, p / "checkpoint", p / "ldp" / "checkpoint"):
        if (cand / "config.json").is_file():
            return cand
    if not p.exists():
        raise FileNotFoundError(f"checkpoint not found: {p}")
    raise CheckpointError(f"{p}: not a policy checkpoint (no config.json here, in checkpoint/ or ldp/checkpoint/)")


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    p = resolve_checkpoint_dir(path)
    try:
        meta = json.loads((p / "config.json").read_text())
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{p / 'config.json'}: not valid JSON ({exc})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a tactkit policy checkpoint (format={meta.get('format')!r})")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format version {meta['format_version']} is newer than this tactkit reads ({FORMAT_VERSION})"
        )
    return meta


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the policy module, codec and PCAs of a checkpoint (module in eval mode)."""
    from safetensors.torch import load_file

    p = resolve_checkpoint_dir(path)
    meta = read_checkpoint_meta(p)
    try:
        cfg = PolicyConfig.from_dict(meta["config"])
        kind = get_kind(meta["policy"])
        specs = _specs_from_json(meta["features"])
        extra = _extra_from_json(meta.get("extra", {}))
    except KeyError as exc:
        raise CheckpointError(f"{p}: incompatible checkpoint config: {exc}") from None
    except ValueError as exc:
        raise CheckpointError(f"{p}: incompatible checkpoint config: {exc}") from None
    for name in ("model.safetensors", "normalizer.safetensors"):
        if not (p / name).is_file():
            raise CheckpointError(f"{p}: checkpoint is missing {name}")
    normalizer = Normalizer.load(p / "normalizer.safetensors")
    missing_norm = [k for k, s in specs.items() if s.kind != "image" and k not in normalizer.params]
    if missing_norm:
        raise CheckpointError(f"{p}: normaliser has no entry for {missing_norm[0]!r}")
    pcas = {}
    for k, s in specs.items():
        if s.kind == "tactile":
            f = p / "pca" / f"{k}.safetensors"
            if not f.is_file():
                raise CheckpointError(f"{p}: checkpoint is missing the tactile PCA for {k!r} ({f.name})")
            pcas[k] = TactilePCA.load(f)
    codec = FeatureCodec(specs, normalizer)
    model = kind.build_model(cfg, codec, extra)
    state = load_file(str(p / "model.safetensors"), device=str(map_location))
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    if missing or unexpected:
        raise CheckpointError(
            f"{p}: incompatible checkpoint for policy {cfg.policy!r}: "
            + (f"missing weights {missing[:3]}" if missing else "")
            + (" " if missing and unexpected else "")
            + (f"unexpected weights {unexpected[:3]}" if unexpected else "")
        )
    for k, v in state.items():
        if own[k].shape != v.shape:
            raise CheckpointError(
                f"{p}: incompatible checkpoint: weight {k!r} has shape {tuple(v.shape)}, the model built from "
                f"its config expects {tuple(own[k].shape)}"
            )
    model.load_state_dict(state)
    model.to(map_location).eval()
    return Checkpoint(cfg, model, codec, pcas, extra, int(meta.get("step", 0)), p)
