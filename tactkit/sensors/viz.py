"""Drawing marker displacement on tactile images (``tactkit sensors view``, teleop overlays)."""

from __future__ import annotations

import numpy as np


def draw_markers(
    image: np.ndarray,
    rest_px: np.ndarray,
    positions_px: np.ndarray,
    valid: np.ndarray | None = None,
    scale: float = 3.0,
) -> np.ndarray:
    """Copy of ``image`` with an arrow from each rest position along its displacement x ``scale``.

    Tracked markers are green, neighbour-interpolated ones (``valid`` False) orange.
    """
    import cv2

    out = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    valid = np.ones(len(rest_px), dtype=bool) if valid is None else valid
    sub = 4  # fixed-point bits: sub-pixel arrow ends
    for (x0, y0), (x1, y1), ok in zip(rest_px, positions_px, valid):
        end = (x0 + scale * (x1 - x0), y0 + scale * (y1 - y0))
        p0 = (int(round(x0 * 2**sub)), int(round(y0 * 2**sub)))
        p1 = (int(round(end[0] * 2**sub)), int(round(end[1] * 2**sub)))
        color = (0, 220, 0) if ok else (0, 140, 255)
        cv2.arrowedLine(out, p0, p1, color, 1, cv2.LINE_AA, sub, tipLength=0.25)
    return out
