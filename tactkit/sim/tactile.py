"""GelSight-like marker field from contact forces (pure numpy, no PyBullet).

A real marker tracker reports, for each of ``rows x cols`` markers printed on the gel, its
displacement from rest in image pixels; tactkit stores it normalised by the image size
(x / width, y / height). This model produces the same quantity from contact forces:

* each contact c at pad coordinates ``u_c`` (m) presses the gel with normal force ``N_c``
  and drags it with in-plane force ``S_c`` (the friction the object exerts on the gel);
* marker i moves by ``sum_c k(|m_i - u_c|) * (g_n * N_c * (m_i - u_c) / sigma + g_s * S_c)``
  with ``k(r) = exp(-r^2 / (2 sigma^2))``: indentation pushes markers radially away from
  the contact (peak at ``r = sigma``), shear drags them along the friction force;
* the gel's travel saturates smoothly (``tanh``) at ``max_offset``.

The pad frame is the tool's TCP frame: image x = TCP x, image y = TCP y, the gel's outward
normal = TCP z. Sliding the pad in +x over a surface drags the markers towards -x (the
direction the surface moves relative to the pad), as on a real GelSight.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class MarkerGrid:
    """Marker layout and gel response."""

    rows: int = 7
    cols: int = 9
    pad_width: float = 0.05  # m, extent of the tracked image along TCP x
    pad_height: float = 0.04  # m, along TCP y
    margin: float = 0.08  # fraction of the image free around the grid (as a real tracker)
    sigma: float = 0.008  # m, gel spread kernel
    indentation_gain: float = 3.0e-4  # m of radial travel per N (at r = sigma, before the kernel)
    shear_gain: float = 5.0e-4  # m of travel per N of in-plane force
    max_offset: float = 0.08  # saturation, fraction of image size

    def __post_init__(self) -> None:
        if self.rows < 2 or self.cols < 2:
            raise ValueError(f"tactile grid must be at least 2x2, got {self.rows}x{self.cols}")
        for name in ("pad_width", "pad_height", "sigma", "max_offset"):
            if getattr(self, name) <= 0:
                raise ValueError(f"tactile.{name} must be > 0, got {getattr(self, name)}")

    @property
    def n_markers(self) -> int:
        return self.rows * self.cols

    def rest_positions(self) -> np.ndarray:
        """Marker rest positions ``[rows*cols, 2]`` in pad metres, row-major, centred on the TCP."""
        hw = self.pad_width * (0.5 - self.margin)
        hh = self.pad_height * (0.5 - self.margin)
        xs = np.linspace(-hw, hw, self.cols)
        ys = np.linspace(-hh, hh, self.rows)
        gx, gy = np.meshgrid(xs, ys)
        return np.stack([gx.ravel(), gy.ravel()], axis=1)


class MarkerField:
    """Computes marker offsets ``[n_markers, 2]`` (normalised) from contacts in pad coordinates."""

    def __init__(self, grid: MarkerGrid) -> None:
        self.grid = grid
        self.rest = grid.rest_positions()
        self._scale = np.array([1.0 / grid.pad_width, 1.0 / grid.pad_height])

    def compute(self, uv: np.ndarray, normal: np.ndarray, shear: np.ndarray) -> np.ndarray:
        """Offsets for contacts at ``uv`` [k, 2] (m), normal forces [k] (N, >= 0 pressing
        into the gel) and in-plane forces on the gel ``shear`` [k, 2] (N)."""
        g = self.grid
        out = np.zeros((g.n_markers, 2), dtype=np.float64)
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        if uv.shape[0] == 0:
            return out.astype(np.float32)
        normal = np.clip(np.asarray(normal, dtype=np.float64).reshape(-1), 0.0, None)
        shear = np.asarray(shear, dtype=np.float64).reshape(-1, 2)
        if not (normal.shape[0] == shear.shape[0] == uv.shape[0]):
            raise ValueError(f"contacts disagree in count: uv {uv.shape}, normal {normal.shape}, shear {shear.shape}")
        d = self.rest[:, None, :] - uv[None, :, :]  # [m, k, 2]
        r2 = np.sum(d * d, axis=2)
        k = np.exp(-r2 / (2 * g.sigma**2))  # [m, k]
        radial = (k * normal[None, :])[:, :, None] * d / g.sigma * g.indentation_gain
        drag = (k[:, :, None] * shear[None, :, :]) * g.shear_gain
        out = np.sum(radial + drag, axis=1) * self._scale
        # Smooth saturation of the gel's travel.
        mag = np.linalg.norm(out, axis=1, keepdims=True)
        factor = np.where(mag > 1e-12, g.max_offset * np.tanh(mag / g.max_offset) / np.maximum(mag, 1e-12), 1.0)
        return (out * factor).astype(np.float32)
