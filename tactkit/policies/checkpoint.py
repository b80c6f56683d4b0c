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
    """Write a checkpoint directory atomically (a temporary directory renamed into place).

    Refuses (:class:`CheckpointError`, nothing written) weights or normaliser values that are
    not finite: a run that diverged must fail, not save a checkpoint that loads and moves a robot.
    """
    from safetensors.torch import save_file

    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    # a diverged run (lr too high, a bad batch) must not leave a checkpoint that looks usable
    _check_finite(path / "model.safetensors", state, saving=True)
    _check_finite(path / "normalizer.safetensors", codec.normalizer.state_dict(), saving=True)
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


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _load_tensors(f: Path, device: str = "cpu") -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, each checked finite; any failure names the file."""
    from safetensors.torch import load_file

    if f.stat().st_size == 0:
        raise CheckpointError(f"{f}: empty file: a damaged or truncated checkpoint")
    try:
        tensors = load_file(str(f), device=device)
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError, ValueError...
        raise CheckpointError(f"{f}: not a readable safetensors file ({_one_line(exc)}): "
                              "a damaged or truncated checkpoint") from None
    _check_finite(f, tensors)
    return tensors


def _read(f: Path, reader: Any) -> Any:
    try:
        return reader(f)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{f}: not a readable safetensors file ({_one_line(exc)}): "
                              "a damaged or truncated checkpoint") from None


def _check_finite(f: Path, tensors: dict[str, Any], saving: bool = False) -> None:
    bad = [k for k, v in tensors.items() if not bool(torch.isfinite(torch.as_tensor(v)).all())]
    if bad:
        what = f"{len(bad)} of {len(tensors)} tensors hold NaN or infinite values (first: {bad[0]!r})"
        if saving:
            raise CheckpointError(f"refusing to save {f}: {what}; the training run diverged (try a lower lr)")
        raise CheckpointError(f"{f}: {what}: the checkpoint is unusable")


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
    f = p / "config.json"
    try:
        meta = json.loads(f.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise CheckpointError(f"{f}: not a text file (not UTF-8): a damaged checkpoint") from None
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        what = "empty" if f.stat().st_size == 0 else f"not valid JSON ({_one_line(exc)})"
        raise CheckpointError(f"{f}: {what}: a damaged or truncated checkpoint") from None
    except OSError as exc:
        raise CheckpointError(f"{f}: cannot read ({exc.strerror or exc})") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{f}: expected a JSON object, got {type(meta).__name__}")
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{p}: not a tactkit policy checkpoint (format={meta.get('format')!r})")
    version = meta.get("format_version", 0)
    if not isinstance(version, int) or isinstance(version, bool):
        raise CheckpointError(f"{f}: format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{p}: checkpoint format version {meta['format_version']} is newer than this tactkit reads ({FORMAT_VERSION})"
        )
    return meta


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the policy module, codec and PCAs of a checkpoint (module in eval mode).

    Every failure is a :class:`CheckpointError` whose one-line message names the file: a
    missing, empty, truncated or malformed ``config.json`` or ``.safetensors`` file, weights that
    do not fit the model, and weights or normaliser values that are not finite.
    """
    p = resolve_checkpoint_dir(path)
    meta = read_checkpoint_meta(p)
    try:
        cfg = PolicyConfig.from_dict(meta["config"])
        kind = get_kind(meta["policy"])
        specs = _specs_from_json(meta["features"])
        extra = _extra_from_json(meta.get("extra", {}))
    except KeyError as exc:
        raise CheckpointError(f"{p / 'config.json'}: incompatible checkpoint config: missing {exc}") from None
    except (ValueError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{p / 'config.json'}: incompatible checkpoint config: {_one_line(exc)}") from None
    for name in ("model.safetensors", "normalizer.safetensors"):
        if not (p / name).is_file():
            raise CheckpointError(f"{p}: checkpoint is missing {name}")
    normalizer = _read(p / "normalizer.safetensors", lambda f: Normalizer.from_state_dict(_load_tensors(f)))
    missing_norm = [k for k, s in specs.items() if s.kind != "image" and k not in normalizer.params]
    if missing_norm:
        raise CheckpointError(f"{p}: normaliser has no entry for {missing_norm[0]!r}")
    pcas = {}
    for k, s in specs.items():
        if s.kind == "tactile":
            f = p / "pca" / f"{k}.safetensors"
            if not f.is_file():
                raise CheckpointError(f"{p}: checkpoint is missing the tactile PCA for {k!r} ({f.name})")
            pcas[k] = _read(f, TactilePCA.load)
            _check_finite(f, {"mean": pcas[k].mean, "components": pcas[k].components})
    codec = FeatureCodec(specs, normalizer)
    try:
        model = kind.build_model(cfg, codec, extra)
    except (ValueError, TypeError, KeyError) as exc:
        raise CheckpointError(f"{p / 'config.json'}: its config builds no model: {_one_line(exc)}") from None
    state = _load_tensors(p / "model.safetensors", device=str(map_location))
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
