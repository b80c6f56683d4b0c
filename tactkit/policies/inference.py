"""Shared inference plumbing: observation windows -> batches, checkpoints -> policies.

:func:`load_policy` is what the controller calls: it reads a checkpoint (or run) directory,
picks the policy class from the checkpoint's config and returns a
:class:`tactkit.policies.interface.Policy`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tactkit.policies.checkpoint import Checkpoint, CheckpointError, load_checkpoint
from tactkit.policies.data import prepare_arrays
from tactkit.policies.factory import get_kind
from tactkit.policies.features import pose_from_internal
from tactkit.policies.interface import FastSignal, Policy
from tactkit.policies.rotation import rot6d_to_quat_np, rot6d_to_quat_scalar


class TorchPolicy(Policy):
    """Base of the torch policies: holds the checkpoint, prepares observation windows."""

    def __init__(
        self,
        ckpt: Checkpoint,
        device: str | torch.device = "cpu",
        latency_steps: int | None = None,
        num_inference_steps: int | None = None,
        seed: int = 0,
    ) -> None:
        self.ckpt = ckpt
        self.cfg = ckpt.cfg
        self.device = torch.device(device)
        self.model = ckpt.model.to(self.device).eval()
        self.codec = ckpt.codec
        self.pcas = ckpt.pcas
        keys = list(self.cfg.obs_keys) + [k for k in self.cfg.fast_keys if k not in self.cfg.obs_keys]
        keys += [k for k in self.cfg.action_anchors.values() if k not in keys]
        self.obs_keys = tuple(keys)
        self.n_obs_steps = self.cfg.n_obs_steps
        self.action_keys = tuple(self.cfg.action_keys)
        self.action_dim = self.codec.raw_dim(list(self.action_keys))
        self.dt = 1.0 / self.cfg.fps
        self.latency_steps = self.cfg.latency_steps if latency_steps is None else int(latency_steps)
        max_skip = self.cfg.horizon - self.n_obs_steps
        if not 0 <= self.latency_steps <= max_skip:
            raise ValueError(f"latency_steps must be in [0, {max_skip}], got {self.latency_steps}")
        if num_inference_steps is not None:
            self.model.cfg = self.cfg = _with(self.cfg, num_inference_steps=int(num_inference_steps))
        self._decode_np: list[tuple[bool, int, np.ndarray, np.ndarray]] | None = None
        self.seed = seed
        self.generator = torch.Generator(self.device).manual_seed(seed)

    def reset(self) -> None:
        """Re-seed the sampling noise: each episode is reproducible on its own."""
        self.generator.manual_seed(self.seed)

    @property
    def chunk_duration(self) -> float:
        """Seconds from the newest observation to a plan's last step."""
        return (self.cfg.horizon - self.n_obs_steps) * self.dt

    @property
    def first_step(self) -> int:
        """Index in the predicted chunk of plan step 0 (newest observation + latency_steps)."""
        return self.n_obs_steps - 1 + self.latency_steps

    def window_time(self, window: dict[str, np.ndarray]) -> float:
        if "timestamp" not in window:
            raise KeyError("observation window is missing 'timestamp' (capture times, oldest first)")
        ts = np.asarray(window["timestamp"], dtype=np.float64).reshape(-1)
        return float(ts[-1])

    def obs_batch(self, window: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """Window ``{key: [>= n_obs_steps, ...]}`` -> batch ``{key: [1, n_obs_steps, ...]}``."""
        raw = {}
        for k in self.obs_keys:
            if k not in window:
                raise KeyError(f"observation window is missing {k!r}; the policy needs {list(self.obs_keys)}")
            x = np.asarray(window[k])
            spec = self.codec.specs[k]
            if x.ndim != len(spec.raw_shape) + 1 or tuple(x.shape[1:]) != spec.raw_shape:
                if spec.kind != "image" or x.ndim != 4 or x.shape[-1] != 3:
                    raise ValueError(
                        f"{k}: expected [n_obs_steps, {', '.join(map(str, spec.raw_shape))}], got {list(x.shape)}"
                    )
            if x.shape[0] < self.n_obs_steps:
                raise ValueError(f"{k}: window has {x.shape[0]} steps, the policy needs {self.n_obs_steps}")
            raw[k] = x[-self.n_obs_steps :]
        prepared = prepare_arrays(raw, self.codec.specs, self.pcas, tuple(self.cfg.image_shape))
        return {k: torch.from_numpy(np.ascontiguousarray(v))[None].to(self.device) for k, v in prepared.items()}

    def fast_tensor(self, fast: FastSignal) -> torch.Tensor:
        """Latest fast signals ``{fast key: raw value}`` (marker offsets ``[M, 2]``/``[M*2]``, a
        pad's tactile embedding ``[k]``, a wrench) -> the normalised network input ``[1, F]``."""
        if not hasattr(fast, "keys"):
            raise TypeError(f"fast signals come as {{key: value}} for {list(self.fast_keys)}, got {type(fast).__name__}")
        batch = {}
        for k in self.fast_keys:
            if k not in fast:
                raise KeyError(f"fast signal is missing {k!r}; the policy reacts to {list(self.fast_keys)}")
            spec = self.codec.specs[k]
            x = np.asarray(fast[k], dtype=np.float32)
            if spec.kind == "tactile" and x.size != spec.dim:
                x = self.pcas[k].transform(x.reshape(-1, 2))
            elif x.size not in (spec.dim, int(np.prod(spec.raw_shape))):
                raise ValueError(f"fast signal {k!r} has {x.size} values, expected {spec.dim} ({spec.raw_shape})")
            if not np.isfinite(x).all():
                raise ValueError(f"fast signal {k!r} contains NaN or Inf")
            batch[k] = torch.from_numpy(np.ascontiguousarray(x.reshape(1, -1))).to(self.device)
        return self.codec.encode(batch, list(self.fast_keys))

    def to_actions(self, y: torch.Tensor, offset: np.ndarray | None = None) -> np.ndarray:
        """Normalised network actions ``[..., A]`` -> dataset units ``[..., action_dim]`` (float64),
        plus ``offset`` (:meth:`action_offset`) for a policy trained on relative actions."""
        a = self.actions_np(y.detach().double().cpu().numpy())
        return a if offset is None else a + offset

    def action_offset(self, window: dict[str, np.ndarray]) -> np.ndarray | None:
        """What turns relative actions back into absolute ones: the newest observed xyz of each
        arm in its pose action's slot, zeros elsewhere (``[action_dim]``). None for absolute actions."""
        anchors = self.cfg.action_anchors
        if not anchors:
            return None
        offset, i = np.zeros(self.action_dim), 0
        for k in self.action_keys:
            if k in anchors:
                pose = np.asarray(window[anchors[k]], dtype=np.float64)
                offset[i : i + 3] = pose[-1, :3]
            i += self.codec.raw_dim([k])
        return offset

    def actions_np(self, x: np.ndarray) -> np.ndarray:
        """:meth:`to_actions` on a numpy array: the numpy twin of ``FeatureCodec.decode`` (a fast
        step decodes one action, where torch's per-op overhead would dominate)."""
        if self._decode_np is None:
            self._decode_np = []
            for k in self.action_keys:
                spec = self.codec.specs[k]
                scale, offset = (v.double().cpu().numpy() for v in self.codec.normalizer.params[k])
                self._decode_np.append((spec.kind == "pose" and spec.raw_shape[0], spec.dim, scale, offset))
        parts, i = [], 0
        for pose_size, dim, scale, offset in self._decode_np:
            v = (x[..., i : i + dim] - offset) / scale
            if pose_size and pose_size != 7:  # 9-D / 6-D stored poses (UMI, RDP buffers)
                v = pose_from_internal(torch.from_numpy(np.ascontiguousarray(v)), pose_size).numpy()
            elif pose_size:
                r = v[..., 3:9]
                q = rot6d_to_quat_scalar(r.reshape(6)).reshape(*r.shape[:-1], 4) if r.size == 6 else rot6d_to_quat_np(r)
                v = np.concatenate([v[..., :3], q], axis=-1)
            parts.append(v)
            i += dim
        return np.concatenate(parts, axis=-1)

def _with(cfg: Any, **changes: Any) -> Any:
    import dataclasses

    return dataclasses.replace(cfg, **changes)


def load_policy(checkpoint_dir: str | Path, device: str = "cpu", **kwargs: Any) -> Policy:
    """Load the policy in ``checkpoint_dir`` (a checkpoint, a run directory, or an ``rdp`` run).

    ``kwargs`` go to the policy class: ``latency_steps``, ``num_inference_steps``, ``seed``.
    """
    ckpt = load_checkpoint(checkpoint_dir, map_location=device)
    kind = get_kind(ckpt.cfg.policy)
    if kind.inference is None:
        raise CheckpointError(
            f"{ckpt.path}: a {kind.name!r} checkpoint ({kind.description}) is not a runnable policy"
            + ("; load the ldp stage of the rdp run" if kind.name == "at" else "")
        )
    module, _, cls_name = kind.inference.partition(":")
    cls = getattr(importlib.import_module(module), cls_name)
    return cls(ckpt, device=device, **kwargs)
