"""How dataset keys become network inputs/outputs, and the min-max normaliser.

Each key gets a *kind* from its name and raw shape:

* ``image``   -- ``observation.images.*``, uint8 ``H x W x 3``, handled by the image encoder;
* ``pose``    -- a key ending in ``tcp_pose``, stored as 7-D xyz + quaternion (w, x, y, z; tactkit's
  own), 9-D xyz + 6-D rotation (the first two *rows* of the rotation matrix, as UMI's and
  RDP's buffers store ``*_tcp_pose``) or 6-D xyz + axis-angle (UMI's ``eef_rot_axis_angle``);
  inside the networks it is xyz + 6-D rotation (9-D, the first two columns) and is mapped back
  to the key's own layout (Gram-Schmidt, then quaternion / rows / axis-angle);
* ``tactile`` -- ``observation.tactile.*.marker_offset`` (``M x 2``), embedded by the tactile
  PCA (:class:`tactkit.sensors.embedding.TactilePCA`) before it reaches a network;
* ``flat``    -- anything else (gripper width, wrench, velocities), flattened. A 3-D ``H x W x C``
  key that is not ``observation.images.*`` is an error rather than a flat vector of pixels:
  map a buffer's camera key to one (``keys.img=observation.images.wrist``).

:class:`Normalizer` maps every non-image feature to [-1, 1] by its min/max; the 6-D rotation
components stay unnormalised (already in [-1, 1]). Its arrays are saved as safetensors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tactkit.policies.rotation import (
    matrix_to_quat,
    matrix_to_rot6d,
    pose7_to_pose9,
    pose9_to_pose7,
    rot6d_to_matrix,
)

#: pose layouts by raw size: what the stored vector holds after xyz
POSE_LAYOUTS = {7: "quaternion (w, x, y, z)", 9: "6-D rotation (first two rows of R, as UMI/RDP)",
                6: "axis-angle (as UMI)"}


@dataclass(frozen=True)
class FeatureSpec:
    key: str
    kind: str  # "image" | "pose" | "tactile" | "flat"
    raw_shape: tuple[int, ...]
    dim: int  # size of the network-side feature (images: channels)


def feature_kind(key: str, raw_shape: tuple[int, ...]) -> str:
    if key.startswith("observation.images."):
        if len(raw_shape) != 3 or raw_shape[-1] != 3:
            raise ValueError(f"{key}: image keys must be H x W x 3 uint8, got shape {raw_shape}")
        return "image"
    if key.startswith("observation.tactile.") and key.endswith("marker_offset"):
        if len(raw_shape) != 2 or raw_shape[-1] != 2:
            raise ValueError(f"{key}: marker offsets must be M x 2, got shape {raw_shape}")
        return "tactile"
    if key.endswith("tcp_pose"):
        if len(raw_shape) != 1 or raw_shape[0] not in POSE_LAYOUTS:
            layouts = "; ".join(f"{n}-D xyz + {what}" for n, what in POSE_LAYOUTS.items())
            raise ValueError(f"{key}: a pose must be {layouts}; got shape {raw_shape}")
        return "pose"
    if len(raw_shape) == 3 and raw_shape[-1] in (1, 3, 4):
        raise ValueError(
            f"{key}: shape {raw_shape} looks like H x W x C images, which would be trained as a flat "
            f"vector of {int(np.prod(raw_shape))} values; camera keys must be observation.images.<camera>: "
            f"map this one with the override keys.{key}=observation.images.<camera>")
    return "flat"


def make_spec(key: str, raw_shape: tuple[int, ...], pca_dim: int | None = None) -> FeatureSpec:
    raw_shape = tuple(int(s) for s in raw_shape)
    kind = feature_kind(key, raw_shape)
    if kind == "image":
        dim = 3
    elif kind == "pose":
        dim = 9
    elif kind == "tactile":
        if pca_dim is None:
            raise ValueError(f"{key}: tactile key needs a fitted PCA")
        dim = int(pca_dim)
    else:
        dim = int(np.prod(raw_shape)) if raw_shape else 1
    return FeatureSpec(key, kind, raw_shape, dim)


def _axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:
    """Rotation vectors ``[..., 3]`` -> matrices (Rodrigues; series near zero)."""
    theta2 = (v * v).sum(-1, keepdim=True)
    theta = theta2.clamp_min(1e-24).sqrt()
    small = theta2 < 1e-8
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)  # sin(t)/t
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / theta2.clamp_min(1e-24))
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    k = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1).reshape(*v.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand(k.shape)
    return eye + a[..., None] * k + b[..., None] * (k @ k)


def _matrix_to_axis_angle(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrices -> rotation vectors (through the w >= 0 quaternion)."""
    q = matrix_to_quat(m)
    w, xyz = q[..., :1], q[..., 1:]
    n = xyz.norm(dim=-1, keepdim=True)
    scale = torch.where(n > 1e-8, 2 * torch.atan2(n, w) / n.clamp_min(1e-12), 2 / w.clamp_min(1e-12))
    return xyz * scale


def pose_to_internal(x: torch.Tensor) -> torch.Tensor:
    """A stored pose ``[..., 7 | 9 | 6]`` (see :data:`POSE_LAYOUTS`) -> xyz + 6-D rotation (columns)."""
    size = x.shape[-1]
    if size == 7:
        return pose7_to_pose9(x)
    if size == 9:  # the given rows of R are the columns of R^T
        rot = rot6d_to_matrix(x[..., 3:9]).transpose(-1, -2)
    elif size == 6:
        rot = _axis_angle_to_matrix(x[..., 3:6])
    else:
        raise ValueError(f"a pose has 7, 9 or 6 values, got {size}")
    return torch.cat([x[..., :3], matrix_to_rot6d(rot)], dim=-1)


def pose_from_internal(y: torch.Tensor, size: int) -> torch.Tensor:
    """xyz + 6-D rotation ``[..., 9]`` -> the stored layout of ``size`` values (inverse of
    :func:`pose_to_internal` up to Gram-Schmidt)."""
    if size == 7:
        return pose9_to_pose7(y)
    rot = rot6d_to_matrix(y[..., 3:9])
    if size == 9:
        return torch.cat([y[..., :3], matrix_to_rot6d(rot.transpose(-1, -2))], dim=-1)
    if size == 6:
        return torch.cat([y[..., :3], _matrix_to_axis_angle(rot)], dim=-1)
    raise ValueError(f"a pose has 7, 9 or 6 values, got {size}")


def to_internal(spec: FeatureSpec, x: torch.Tensor) -> torch.Tensor:
    """Dataset units -> network units (before normalisation). ``x``: ``[..., *raw_shape]``
    (tactile keys: already PCA-embedded, ``[..., k]``)."""
    if spec.kind == "pose":
        return pose_to_internal(x)
    if spec.kind == "tactile":
        return x
    return x.reshape(*x.shape[: x.ndim - len(spec.raw_shape)], spec.dim)


def from_internal(spec: FeatureSpec, x: torch.Tensor) -> torch.Tensor:
    """Network units -> dataset units (flat): poses go back to their stored layout."""
    if spec.kind == "pose":
        return pose_from_internal(x, spec.raw_shape[0])
    return x


class Normalizer:
    """Per-key affine map ``y = x * scale + offset`` to [-1, 1] from min/max statistics
    (tactile PCA embeddings: one scale for all components, so they keep their relative sizes)."""

    def __init__(self, params: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.params = {k: (s.float(), o.float()) for k, (s, o) in params.items()}
        self._cache: dict[tuple[str, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def from_stats(
        cls, specs: list[FeatureSpec], stats: dict[str, dict[str, np.ndarray]], eps: float = 1e-4
    ) -> Normalizer:
        """``stats[key]`` holds ``min``/``max`` in network units before normalisation, except
        for pose keys, which may hold raw 7-D statistics (only xyz is used)."""
        params = {}
        for spec in specs:
            if spec.kind == "image":
                continue
            if spec.key not in stats:
                raise KeyError(f"no statistics for {spec.key!r}")
            lo = np.asarray(stats[spec.key]["min"], dtype=np.float64).reshape(-1)
            hi = np.asarray(stats[spec.key]["max"], dtype=np.float64).reshape(-1)
            if spec.kind == "pose":
                lo, hi = lo[:3], hi[:3]
            n = 3 if spec.kind == "pose" else spec.dim
            if lo.shape != (n,) or hi.shape != (n,):
                raise ValueError(f"statistics of {spec.key!r} have {lo.shape[0]} values, expected {n}")
            rng = hi - lo
            if spec.kind == "tactile":
                # One scale for every PCA component (the widest one's range -> [-1, 1]), each
                # centred: per-component min-max would blow the near-constant minor components
                # up by 100-1000x and make the networks react to marker noise.
                widest = float(rng.max())
                scale = np.full_like(rng, 2.0 / widest if widest >= eps else 1.0)
                offset = -(hi + lo) / 2.0 * scale
                params[spec.key] = (torch.as_tensor(scale), torch.as_tensor(offset))
                continue
            small = rng < eps
            scale = np.where(small, 1.0, 2.0 / np.where(small, 1.0, rng))
            offset = np.where(small, -(hi + lo) / 2.0, -1.0 - lo * scale)
            if spec.kind == "pose":  # 6-D rotation left as is
                scale = np.concatenate([scale, np.ones(6)])
                offset = np.concatenate([offset, np.zeros(6)])
            params[spec.key] = (torch.as_tensor(scale), torch.as_tensor(offset))
        return cls(params)

    def _get(self, key: str, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self._cache.get((key, like.device))
        if c is None:
            if key not in self.params:
                raise KeyError(f"normaliser has no entry for {key!r}")
            s, o = self.params[key]
            c = self._cache[(key, like.device)] = (s.to(like.device), o.to(like.device))
        return c

    def normalize(self, key: str, x: torch.Tensor) -> torch.Tensor:
        s, o = self._get(key, x)
        return x * s + o

    def unnormalize(self, key: str, y: torch.Tensor) -> torch.Tensor:
        s, o = self._get(key, y)
        return (y - o) / s

    def state_dict(self) -> dict[str, torch.Tensor]:
        out = {}
        for k, (s, o) in self.params.items():
            out[f"{k}/scale"] = s.contiguous()
            out[f"{k}/offset"] = o.contiguous()
        return out

    @classmethod
    def from_state_dict(cls, sd: dict[str, torch.Tensor]) -> Normalizer:
        keys = sorted({k.rsplit("/", 1)[0] for k in sd})
        return cls({k: (sd[f"{k}/scale"], sd[f"{k}/offset"]) for k in keys})

    def save(self, path: str | Path) -> None:
        from safetensors.torch import save_file

        save_file(self.state_dict(), str(path), metadata={"format": "tactkit.normalizer/1"})

    @classmethod
    def load(cls, path: str | Path) -> Normalizer:
        from safetensors.torch import load_file

        return cls.from_state_dict(load_file(str(path)))


class FeatureCodec:
    """Specs of every key a policy uses plus the normaliser: batch tensors <-> network tensors.

    A batch is a dict from dataset key to a tensor ``[B, S, *raw_shape]`` (tactile keys already
    PCA-embedded). Network-side tensors are ``[B, S, D]``: features of ``keys`` converted,
    normalised and concatenated in order.
    """

    def __init__(self, specs: dict[str, FeatureSpec], normalizer: Normalizer) -> None:
        self.specs = specs
        self.normalizer = normalizer

    def dim(self, keys: list[str]) -> int:
        return sum(self.specs[k].dim for k in keys)

    def raw_dim(self, keys: list[str]) -> int:
        """Size of the flat dataset-unit vector of ``keys`` (poses count 7)."""
        return sum(int(np.prod(self.specs[k].raw_shape)) if self.specs[k].kind != "tactile" else self.specs[k].dim for k in keys)

    def encode(self, batch: dict[str, torch.Tensor], keys: list[str], steps: int | None = None) -> torch.Tensor:
        parts = []
        for k in keys:
            if k not in batch:
                raise KeyError(f"batch is missing key {k!r}")
            x = batch[k] if steps is None else batch[k][:, :steps]
            x = to_internal(self.specs[k], x.float())
            parts.append(self.normalizer.normalize(k, x))
        return torch.cat(parts, dim=-1)

    def decode(self, y: torch.Tensor, keys: list[str]) -> torch.Tensor:
        """Normalised network output ``[..., D]`` -> flat dataset units ``[..., raw_dim]``."""
        parts = []
        i = 0
        for k in keys:
            spec = self.specs[k]
            x = self.normalizer.unnormalize(k, y[..., i : i + spec.dim])
            parts.append(from_internal(spec, x))
            i += spec.dim
        return torch.cat(parts, dim=-1)
