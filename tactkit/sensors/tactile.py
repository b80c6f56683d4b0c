"""Tactile sensors: a camera looking at a marker gel + the marker tracker.

:class:`TactileSensor` reads frames from a camera source on its capture thread, tracks the
markers and publishes ``observation.tactile.<name>.marker_offset`` (float32 ``[rows*cols, 2]``,
normalised by the image size), optionally also the tactile image. The first
``tracker.rest_frames`` frames after connect are the rest reference, so connect with the gel
untouched; :meth:`TactileSensor.rezero` re-zeros on request.

Device types: ``gelsight`` (GelSight Mini or any UVC marker-gel camera, opened by index or
name) and ``synthetic_tactile`` (rendered markers pressed and sheared in a loop, for demos and
tests on machines without the sensor).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from tactkit.clock import Clock
from tactkit.sensors.base import SENSORS
from tactkit.sensors.cameras import OpenCVCameraConfig, OpenCVFrameSource, PacedSource
from tactkit.sensors.synthetic import (
    FIELD_KINDS,
    MarkerImageSpec,
    displacement_field,
    grid_positions,
    lighting,
    render,
)
from tactkit.sensors.threaded import Reading, ThreadedSensor
from tactkit.sensors.tracker import MarkerTracker, TrackerConfig, TrackResult
from tactkit.store.schema import tactile_key


@dataclass
class GelSightConfig:
    """GelSight Mini (or another UVC marker-gel camera) + marker tracker."""

    type_name: ClassVar[str] = "gelsight"
    name: str = "left"
    device: int | str = "GelSight Mini"  # index, /dev path, or (part of) the V4L2 name
    width: int = 640  # capture size requested from the camera
    height: int = 480
    fps: float = 25.0
    exposure: float | None = None
    crop_fraction: float = 0.0  # cut this fraction of each border (gel edge, housing)
    output_size: tuple[int, int] | None = None  # (w, h) the cropped image is resized to
    publish_image: bool = False  # also publish observation.tactile.<name>.image
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    stale_after_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0 <= self.crop_fraction < 0.5:
            raise ValueError(f"tactile {self.name}: crop_fraction must be in [0, 0.5), got {self.crop_fraction}")

    def image_size(self) -> tuple[int, int]:
        if self.output_size is not None:
            return tuple(self.output_size)  # type: ignore[return-value]
        cw = self.width - 2 * int(self.width * self.crop_fraction)
        ch = self.height - 2 * int(self.height * self.crop_fraction)
        return cw, ch


@dataclass
class SyntheticTactileConfig:
    """A rendered marker gel pressed and sheared in a loop (no hardware needed)."""

    type_name: ClassVar[str] = "synthetic_tactile"
    name: str = "left"
    width: int = 320
    height: int = 240
    fps: float = 30.0
    motion: str = "shear_rotation"  # displacement field, one of synthetic.FIELD_KINDS
    magnitude_px: float = 8.0  # peak marker displacement
    period_s: float = 2.0  # one press-shear-release cycle
    rest_s: float = 0.3  # untouched at the start (the tracker's rest reference)
    noise_sigma: float = 2.0
    blur_sigma: float = 0.8
    gradient: float = 0.3
    marker_radius: float = 3.5
    markers: tuple[int, int] | None = None  # grid printed on the simulated gel; None: tracker.grid
    drop_fraction: float = 0.0
    publish_image: bool = False
    stop_after_frames: int | None = None  # simulate a device that stops delivering
    seed: int = 0
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    stale_after_s: float = 0.5

    def __post_init__(self) -> None:
        if self.motion not in FIELD_KINDS:
            raise ValueError(f"tactile {self.name}: motion must be one of {list(FIELD_KINDS)}, got {self.motion!r}")
        if self.period_s <= 0 or self.fps <= 0:
            raise ValueError(f"tactile {self.name}: period_s and fps must be > 0")

    def image_size(self) -> tuple[int, int]:
        return self.width, self.height


class SyntheticTactileSource(PacedSource):
    """Frames of :mod:`tactkit.sensors.synthetic` markers moving with a known field."""

    def __init__(self, cfg: SyntheticTactileConfig, clock: Clock) -> None:
        super().__init__(cfg.fps, clock, cfg.stop_after_frames)
        rows, cols = cfg.markers or cfg.tracker.grid
        self.cfg = cfg
        self.spec = MarkerImageSpec(cfg.width, cfg.height, rows, cols, marker_radius=cfg.marker_radius)
        self.rest = grid_positions(self.spec)
        self.field = displacement_field(cfg.motion, self.rest, cfg.magnitude_px)
        rng = np.random.default_rng(cfg.seed)
        self.rng = rng
        self.light = lighting(self.spec, cfg.gradient, rng)
        # Pre-drawn sensor noise: drawing 320x240x3 normals per frame would cost more than tracking.
        self.noise = [rng.normal(0, cfg.noise_sigma, (cfg.height, cfg.width, 3)).astype(np.float32)
                      for _ in range(8)] if cfg.noise_sigma > 0 else []
        self.truth: np.ndarray = self.rest.copy()

    def displacement(self, t: float) -> np.ndarray:
        s = t - self.t0 - self.cfg.rest_s
        if s <= 0:
            return np.zeros_like(self.rest)
        return self.field * np.sin(np.pi * s / self.cfg.period_s) ** 2

    def read(self) -> tuple[float, np.ndarray] | None:
        t = self._pace()
        if t is None:
            return None
        pos = self.rest + self.displacement(t)
        visible = np.ones(len(pos), dtype=bool)
        if self.cfg.drop_fraction > 0 and t - self.t0 > self.cfg.rest_s:
            n = int(round(self.cfg.drop_fraction * len(pos)))
            visible[self.rng.choice(len(pos), n, replace=False)] = False
        img = render(self.spec, pos, visible, blur_sigma=self.cfg.blur_sigma, background=self.light)
        if self.noise:
            noisy = img.astype(np.float32) + self.noise[self.frame_index % len(self.noise)]
            img = np.clip(noisy + 0.5, 0, 255).astype(np.uint8)
        self.truth = pos
        return t, img


class TactileSensor(ThreadedSensor):
    """Camera + :class:`MarkerTracker` on one capture thread."""

    def __init__(self, config: GelSightConfig | SyntheticTactileConfig, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.tracker = MarkerTracker(config.tracker)
        self.last_result: TrackResult | None = None
        self.last_image: np.ndarray | None = None
        if isinstance(config, GelSightConfig):
            cam = OpenCVCameraConfig(
                name=config.name, device=config.device, width=config.width, height=config.height,
                fps=config.fps, exposure=config.exposure,
            )
            self.source = OpenCVFrameSource(cam, self.clock)
        else:
            self.source = SyntheticTactileSource(config, self.clock)

    @property
    def offset_key(self) -> str:
        return tactile_key(self.config.name)

    @property
    def image_key(self) -> str:
        return f"observation.tactile.{self.config.name}.image"

    def streams(self) -> dict:
        from tactkit.store.schema import StreamSpec

        c = self.config
        out = {self.offset_key: StreamSpec("float32", (c.tracker.n_markers, 2), float(c.fps), "normalised")}
        if c.publish_image:
            w, h = c.image_size()
            out[self.image_key] = StreamSpec("uint8", (h, w, 3), float(c.fps), "bgr")
        return out

    def rezero(self) -> None:
        """Take the next frame's marker positions as the new rest (e.g. after a grasp settles)."""
        self.tracker.rezero()

    def reset_reference(self) -> None:
        """Re-detect the grid from scratch on the next frames (gel must be untouched)."""
        self.tracker.reset()

    def rest_positions(self) -> np.ndarray | None:
        """Rest marker positions ``[N, 2]`` normalised by the image size (``None`` before the reference)."""
        return self.tracker.rest_normalised if self.tracker.ready else None

    def _prepare(self, img: np.ndarray) -> np.ndarray:
        c = self.config
        if isinstance(c, GelSightConfig):
            import cv2

            if c.crop_fraction > 0:
                h, w = img.shape[:2]
                bx, by = int(w * c.crop_fraction), int(h * c.crop_fraction)
                img = img[by : h - by, bx : w - bx]
            if c.output_size is not None:
                img = cv2.resize(img, tuple(c.output_size), interpolation=cv2.INTER_AREA)
        return img

    def _open(self) -> None:
        self.source.open()

    def _read(self) -> Reading | None:
        got = self.source.read()
        if got is None:
            return None
        capture_time, img = got
        img = self._prepare(img)
        result = self.tracker.update(img)  # ValueError (wrong grid) -> reported as an error
        self.last_image = img
        if result is None:
            return None  # still capturing the rest reference
        self.last_result = result
        values = {self.offset_key: result.offsets}
        if self.config.publish_image:
            values[self.image_key] = img
        return Reading(capture_time, values)

    def _close(self) -> None:
        self.source.close()

    def wait_ready(self, timeout: float = 5.0) -> bool:
        """Block until the rest reference exists (tools/tests); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.tracker.ready and self.last_result is not None:
                return True
            time.sleep(0.01)
        return False


SENSORS.register(GelSightConfig)(TactileSensor)
SENSORS.register(SyntheticTactileConfig)(TactileSensor)
