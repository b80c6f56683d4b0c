"""Small, allocation-light pose helpers (quaternions w, x, y, z as in the tactkit API;
PyBullet uses x, y, z, w, converted only at the PyBullet boundary)."""

from __future__ import annotations

import math

import numpy as np


def wxyz_to_xyzw(q: np.ndarray | list[float]) -> list[float]:
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def xyzw_to_wxyz(q: tuple[float, ...] | list[float]) -> np.ndarray:
    return np.array([q[3], q[0], q[1], q[2]], dtype=np.float64)


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    aw, ax, ay, az = a
    bw, bx, by, bz = b
    return np.array(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ]
    )


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.array([q[0], -q[1], -q[2], -q[3]])


def quat_normalize(q: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(q))
    if n < 1e-12:
        raise ValueError("quaternion has zero norm")
    return np.asarray(q, dtype=np.float64) / n


def rotation_error(q_target: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Rotation vector (world frame) turning ``q`` into ``q_target`` (shortest way)."""
    e = quat_mul(q_target, quat_conj(q))
    if e[0] < 0:
        e = -e
    s = math.sqrt(e[1] * e[1] + e[2] * e[2] + e[3] * e[3])
    if s < 1e-9:
        return 2.0 * e[1:]
    angle = 2.0 * math.atan2(s, e[0])
    return e[1:] * (angle / s)


def quat_from_axis_angle(axis: np.ndarray | list[float], angle: float) -> np.ndarray:
    a = np.asarray(axis, dtype=np.float64)
    a = a / np.linalg.norm(a)
    return np.concatenate([[math.cos(angle / 2)], a * math.sin(angle / 2)])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    w, x, y, z = q
    return np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )


#: tool pointing straight down (tool z = world -z): rotation of pi about world x
DOWN = np.array([0.0, 1.0, 0.0, 0.0])
