"""Synthetic marker-gel images with known marker positions (tests, benchmarks, demo devices).

Renders what a GelSight-Mini-style camera sees: a bright gel lit unevenly by coloured LEDs,
with a grid of dark markers, each drawn anti-aliased at a sub-pixel position. Displacement
fields (shear, rotation, radial indentation) move the markers by known amounts, so a tracker's
output can be scored against ground truth. Blur, sensor noise, lighting gradients and dropped
(vanished) markers make it realistic enough to matter.

Coordinates are pixels ``(x, y)`` with pixel ``(row i, col j)`` centred at ``(j, i)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIELD_KINDS = ("none", "shear", "rotation", "indentation", "shear_rotation")


@dataclass
class MarkerImageSpec:
    """Geometry and appearance of a synthetic marker-gel image."""

    width: int = 640
    height: int = 480
    rows: int = 7
    cols: int = 9
    margin: float = 0.08  # fraction of the image left free around the grid
    marker_radius: float = 6.0  # px
    darkness: float = 0.65  # fraction of local brightness a marker removes
    edge_px: float = 1.2  # anti-aliased edge width
    brightness: float = 170.0  # mean grey level of the gel

    def __post_init__(self) -> None:
        if self.rows < 2 or self.cols < 2:
            raise ValueError(f"grid must be at least 2x2, got {self.rows}x{self.cols}")
        if self.width < 32 or self.height < 32:
            raise ValueError(f"image must be at least 32x32, got {self.width}x{self.height}")

    @property
    def spacing(self) -> float:
        """Smaller of the two grid pitches in px."""
        sx = self.width * (1 - 2 * self.margin) / (self.cols - 1)
        sy = self.height * (1 - 2 * self.margin) / (self.rows - 1)
        return float(min(sx, sy))


def grid_positions(spec: MarkerImageSpec) -> np.ndarray:
    """Rest positions ``[rows*cols, 2]`` (x, y px), row-major from the top-left marker."""
    xs = np.linspace(spec.width * spec.margin, spec.width * (1 - spec.margin), spec.cols)
    ys = np.linspace(spec.height * spec.margin, spec.height * (1 - spec.margin), spec.rows)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)


def displacement_field(
    kind: str,
    rest: np.ndarray,
    magnitude: float,
    center: tuple[float, float] | None = None,
    angle: float = 0.3,
) -> np.ndarray:
    """Displacement ``[N, 2]`` px of markers at ``rest`` whose largest element has norm ``magnitude``.

    ``shear``: uniform along ``angle`` (rad); ``rotation``: rigid rotation about ``center``;
    ``indentation``: radial outward bulge (Gaussian profile) around ``center``;
    ``shear_rotation``: half of each.
    """
    rest = np.asarray(rest, dtype=np.float64)
    c = rest.mean(axis=0) if center is None else np.asarray(center, dtype=np.float64)
    rel = rest - c
    if kind == "none" or magnitude == 0:
        return np.zeros_like(rest)
    if kind == "shear":
        d = np.tile([np.cos(angle), np.sin(angle)], (len(rest), 1))
    elif kind == "rotation":
        d = np.stack([-rel[:, 1], rel[:, 0]], axis=1)  # small-angle tangential field
    elif kind == "indentation":
        r = np.linalg.norm(rel, axis=1, keepdims=True)
        r0 = 0.35 * np.ptp(rest[:, 0])
        d = rel / r0 * np.exp(-0.5 * (r / r0) ** 2)
    elif kind == "shear_rotation":
        shear = displacement_field("shear", rest, magnitude / 2, c, angle)
        rot = displacement_field("rotation", rest, magnitude / 2, c, angle)
        return shear + rot
    else:
        raise ValueError(f"unknown displacement field {kind!r}; known: {', '.join(FIELD_KINDS)}")
    peak = np.linalg.norm(d, axis=1).max()
    return d * (magnitude / peak) if peak > 0 else d


def lighting(spec: MarkerImageSpec, gradient: float, rng: np.random.Generator | None = None) -> np.ndarray:
    """Background ``[H, W, 3]`` float: gel brightness with per-channel linear LED gradients.

    ``gradient`` is the relative brightness change across the image (0.3 = +-15%).
    """
    h, w = spec.height, spec.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w - 0.5, yy / h - 0.5
    bg = np.empty((h, w, 3), dtype=np.float32)
    angles = (0.0, 2.1, 4.2) if rng is None else rng.uniform(0, 2 * np.pi, 3)
    tints = (0.9, 1.0, 1.1)
    for ch in range(3):
        a = angles[ch]
        bg[..., ch] = spec.brightness * tints[ch] * (1 + gradient * (np.cos(a) * u + np.sin(a) * v))
    return bg


def render(
    spec: MarkerImageSpec,
    positions: np.ndarray,
    visible: np.ndarray | None = None,
    *,
    blur_sigma: float = 0.0,
    noise_sigma: float = 0.0,
    gradient: float = 0.0,
    rng: np.random.Generator | None = None,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """BGR ``uint8`` image with a dark marker centred at each visible ``positions[i]`` (x, y px)."""
    import cv2

    bg = lighting(spec, gradient, rng) if background is None else background
    h, w = spec.height, spec.width
    dark = np.zeros((h, w), dtype=np.float32)
    r, e = spec.marker_radius, spec.edge_px
    half = int(np.ceil(r + 2 * e + 1))
    offs = np.arange(-half, half + 1, dtype=np.float32)
    pos = np.asarray(positions, dtype=np.float64)
    vis = np.ones(len(pos), dtype=bool) if visible is None else np.asarray(visible, dtype=bool)
    for (x, y), v in zip(pos, vis):
        if not v:
            continue
        cx, cy = int(round(x)), int(round(y))
        x0, x1 = max(cx - half, 0), min(cx + half + 1, w)
        y0, y1 = max(cy - half, 0), min(cy + half + 1, h)
        if x0 >= x1 or y0 >= y1:
            continue
        dx = (cx + offs[x0 - cx + half : x1 - cx + half]) - np.float32(x)
        dy = (cy + offs[y0 - cy + half : y1 - cy + half]) - np.float32(y)
        dist = np.sqrt(dx[None, :] ** 2 + dy[:, None] ** 2)
        cover = np.clip((r - dist) / e + 0.5, 0.0, 1.0)
        np.maximum(dark[y0:y1, x0:x1], cover, out=dark[y0:y1, x0:x1])
    img = bg * (1.0 - spec.darkness * dark)[..., None]
    if blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), blur_sigma)
    if noise_sigma > 0:
        rng = rng or np.random.default_rng()
        img = img + rng.normal(0.0, noise_sigma, img.shape).astype(np.float32)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


@dataclass
class SyntheticFrame:
    image: np.ndarray  # BGR uint8
    positions: np.ndarray  # true marker positions [N, 2] px
    visible: np.ndarray  # [N] bool, False for dropped markers


class SyntheticMarkerSequence:
    """A press-and-shear episode: rest, then a displacement field ramping to ``magnitude`` and back.

    Frame ``t`` of ``n_frames`` has displacement ``field * sin(pi * t / (n_frames - 1))``, so the
    first and last frames are at rest. A fresh random subset of ``drop_fraction`` of the markers
    vanishes in each contact frame (never in the first, rest frame).
    """

    def __init__(
        self,
        spec: MarkerImageSpec | None = None,
        kind: str = "shear",
        magnitude: float = 15.0,
        n_frames: int = 30,
        *,
        blur_sigma: float = 1.0,
        noise_sigma: float = 3.0,
        gradient: float = 0.3,
        drop_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.spec = spec or MarkerImageSpec()
        self.rest = grid_positions(self.spec)
        self.field = displacement_field(kind, self.rest, magnitude)
        self.n_frames = int(n_frames)
        self.blur_sigma, self.noise_sigma, self.drop_fraction = blur_sigma, noise_sigma, drop_fraction
        self._rng = np.random.default_rng(seed)
        self._background = lighting(self.spec, gradient, self._rng)

    def __len__(self) -> int:
        return self.n_frames

    def displacement(self, t: int) -> np.ndarray:
        phase = np.sin(np.pi * t / max(self.n_frames - 1, 1))
        return self.field * phase

    def frame(self, t: int) -> SyntheticFrame:
        pos = self.rest + self.displacement(t)
        visible = np.ones(len(pos), dtype=bool)
        if t > 0 and self.drop_fraction > 0:
            n_drop = int(round(self.drop_fraction * len(pos)))
            visible[self._rng.choice(len(pos), n_drop, replace=False)] = False
        img = render(
            self.spec, pos, visible, blur_sigma=self.blur_sigma, noise_sigma=self.noise_sigma,
            rng=self._rng, background=self._background,
        )
        return SyntheticFrame(img, pos, visible)

    def __iter__(self):
        for t in range(self.n_frames):
            yield self.frame(t)
