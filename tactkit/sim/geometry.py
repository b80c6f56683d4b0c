"""Pose helpers at the PyBullet boundary: quaternions are w, x, y, z as in the tactkit API
(arithmetic: :mod:`tactkit.real.quat`); PyBullet uses x, y, z, w, converted only here."""

from __future__ import annotations

import numpy as np

from tactkit.real import quat as Q


def wxyz_to_xyzw(q: np.ndarray | list[float]) -> list[float]:
    return [float(q[1]), float(q[2]), float(q[3]), float(q[0])]


def xyzw_to_wxyz(q: tuple[float, ...] | list[float]) -> np.ndarray:
    return np.array([q[3], q[0], q[1], q[2]], dtype=np.float64)


def unit_quat(q: np.ndarray | list[float]) -> np.ndarray:
    """``q`` normalised (:func:`tactkit.real.quat.normalize`); a zero quaternion is an error."""
    q = np.asarray(q, dtype=np.float64)
    if float(np.linalg.norm(q)) < 1e-12:
        raise ValueError("quaternion has zero norm")
    return Q.normalize(q)


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
