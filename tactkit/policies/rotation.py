"""Quaternion (w, x, y, z) <-> 6-D rotation (first two columns of the rotation matrix).

The 6-D representation (Zhou et al., 2019) is continuous, so networks regress it well; it is
mapped back to a rotation by Gram-Schmidt. Works on torch tensors of any leading shape.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """Unit quaternion ``[..., 4]`` (w, x, y, z) -> rotation matrix ``[..., 3, 3]``."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    w, x, y, z = q.unbind(-1)
    m = torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    )  # fmt: skip
    return m.reshape(*q.shape[:-1], 3, 3)


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrix ``[..., 3, 3]`` -> unit quaternion ``[..., 4]`` (w, x, y, z), w >= 0.

    Uses the numerically stable branch per element (largest of w, x, y, z first).
    """
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    # Four candidate solutions, each accurate where its leading component is large.
    cands = torch.stack(
        [
            torch.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        dim=-2,
    )  # [..., 4, 4]; row k has 4*q_k*q as entries (up to scale)
    diag = torch.stack([cands[..., k, k] for k in range(4)], -1)
    best = diag.argmax(-1, keepdim=True)
    q = torch.gather(cands, -2, best[..., None].expand(*best.shape, 4)).squeeze(-2)
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.where(q[..., :1] < 0, -q, q)


def matrix_to_rot6d(m: torch.Tensor) -> torch.Tensor:
    """Rotation matrix ``[..., 3, 3]`` -> its first two columns, ``[..., 6]`` (col 0 then col 1)."""
    return torch.cat([m[..., :, 0], m[..., :, 1]], dim=-1)


def rot6d_to_matrix(r: torch.Tensor) -> torch.Tensor:
    """6-D rotation ``[..., 6]`` -> rotation matrix by Gram-Schmidt (any non-degenerate input)."""
    a1, a2 = r[..., :3], r[..., 3:6]
    b1 = a1 / a1.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / a2.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    b3 = torch.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def quat_to_rot6d(q: torch.Tensor) -> torch.Tensor:
    """Quaternion ``[..., 4]`` (w, x, y, z) -> 6-D rotation ``[..., 6]``."""
    return matrix_to_rot6d(quat_to_matrix(q))


def rot6d_to_quat(r: torch.Tensor) -> torch.Tensor:
    """6-D rotation ``[..., 6]`` -> unit quaternion ``[..., 4]`` (w, x, y, z), w >= 0."""
    return matrix_to_quat(rot6d_to_matrix(r))


def pose7_to_pose9(p: torch.Tensor) -> torch.Tensor:
    """Pose ``[..., 7]`` (xyz + quaternion wxyz) -> ``[..., 9]`` (xyz + 6-D rotation)."""
    return torch.cat([p[..., :3], quat_to_rot6d(p[..., 3:7])], dim=-1)


def pose9_to_pose7(p: torch.Tensor) -> torch.Tensor:
    """Pose ``[..., 9]`` (xyz + 6-D rotation) -> ``[..., 7]`` (xyz + unit quaternion wxyz)."""
    return torch.cat([p[..., :3], rot6d_to_quat(p[..., 3:9])], dim=-1)


def rot6d_to_quat_np(r: np.ndarray) -> np.ndarray:
    """numpy (float64) :func:`rot6d_to_quat`: the run-time path, ~10x cheaper than torch on
    one action. Same math: Gram-Schmidt, then the largest-component quaternion branch."""
    r = np.asarray(r, dtype=np.float64)
    a1, a2 = r[..., :3], r[..., 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    b3 = np.cross(b1, b2)
    m = np.stack([b1, b2, b3], axis=-1)
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    cands = np.stack(
        [
            np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
            np.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
            np.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
            np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
        ],
        axis=-2,
    )
    best = np.argmax(np.diagonal(cands, axis1=-2, axis2=-1), axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    return np.where(q[..., :1] < 0, -q, q)


def rot6d_to_quat_scalar(r: np.ndarray) -> np.ndarray:
    """:func:`rot6d_to_quat_np` for one rotation ``[6]``, in Python floats: a fast step decodes one
    action, where numpy's per-call overhead dominates (a few microseconds instead of ~50)."""
    a = [float(v) for v in r]
    n1 = max(math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]), 1e-12)
    b1 = [a[0] / n1, a[1] / n1, a[2] / n1]
    d = b1[0] * a[3] + b1[1] * a[4] + b1[2] * a[5]
    c = [a[3] - d * b1[0], a[4] - d * b1[1], a[5] - d * b1[2]]
    n2 = max(math.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]), 1e-12)
    b2 = [c[0] / n2, c[1] / n2, c[2] / n2]
    b3 = [
        b1[1] * b2[2] - b1[2] * b2[1],
        b1[2] * b2[0] - b1[0] * b2[2],
        b1[0] * b2[1] - b1[1] * b2[0],
    ]
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = zip(b1, b2, b3)  # rows of [b1 b2 b3]
    cands = (
        (1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01),
        (m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20),
        (m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21),
        (m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22),
    )
    q = cands[max(range(4), key=lambda k: cands[k][k])]
    n = max(math.sqrt(sum(v * v for v in q)), 1e-12)
    out = np.array(q) / n
    return -out if out[0] < 0 else out
