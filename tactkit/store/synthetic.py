"""Synthetic multi-rate sensor data with the shapes and rates of the real rig.

Used by ``tactkit demo`` and the store benchmarks: 2 cameras 240x320 RGB @ 30 Hz,
2 tactile marker fields 63x2 @ 60 Hz, wrench and robot state @ 500 Hz, actions @ 500 Hz.
Camera frames look like camera frames (smooth shading, a moving object, sensor noise) so
compression figures mean something; they come from a pre-rendered pool to keep producers cheap.
"""

from __future__ import annotations

import numpy as np

from tactkit.store.schema import POSE_NAMES, WRENCH_NAMES, StreamSpec

CAMERAS = ("wrist", "external")
TACTILE = ("left", "right")


def rig_streams(image_hw: tuple[int, int] = (240, 320)) -> dict[str, StreamSpec]:
    """The stream schema of the visual-tactile rig (canonical keys, SI units)."""
    h, w = image_hw
    streams: dict[str, StreamSpec] = {}
    for cam in CAMERAS:
        streams[f"observation.images.{cam}"] = StreamSpec("uint8", (h, w, 3), 30.0, "rgb")
    for s in TACTILE:
        streams[f"observation.tactile.{s}.marker_offset"] = StreamSpec("float32", (63, 2), 60.0, "normalised")
    streams["observation.wrench"] = StreamSpec("float32", (6,), 500.0, "N, N*m", WRENCH_NAMES)
    streams["observation.state.tcp_pose"] = StreamSpec("float64", (7,), 500.0, "m", POSE_NAMES)
    streams["observation.state.tcp_velocity"] = StreamSpec("float64", (6,), 500.0, "m/s, rad/s")
    streams["observation.state.joint_positions"] = StreamSpec("float64", (7,), 500.0, "rad")
    streams["observation.state.gripper_width"] = StreamSpec("float32", (1,), 500.0, "m")
    streams["action.tcp_pose"] = StreamSpec("float64", (7,), 500.0, "m", POSE_NAMES)
    streams["action.gripper_width"] = StreamSpec("float32", (1,), 500.0, "m")
    return streams


def camera_frame(i: int, h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """A camera-like uint8 frame: shaded background, a moving box, Gaussian sensor noise."""
    rng = np.random.default_rng(seed * 100_003 + i)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([128 + 60 * np.sin(x / 40 + i * 0.1), 100 + 50 * np.cos(y / 30 + seed),
                    90 + 0.3 * x + 0.2 * y], -1)
    c = int(w / 4 + (w / 4) * np.sin(i * 0.05))
    img[h // 4: h // 2, c: c + w // 4] = [200, 40, 40]
    img += rng.normal(0, 3, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


class SyntheticRig:
    """Deterministic samples for :func:`rig_streams` keys as a function of (key, time)."""

    def __init__(self, streams: dict[str, StreamSpec], seed: int = 0, frame_pool: int = 30) -> None:
        self.streams = streams
        self.seed = seed
        self._frames: dict[str, list[np.ndarray]] = {}
        for j, (key, spec) in enumerate(streams.items()):
            if spec.is_image:
                h, w = spec.shape[:2]
                self._frames[key] = [camera_frame(i, h, w, seed + j) for i in range(frame_pool)]
        base = np.random.default_rng(seed)
        self._markers = base.uniform(0, 1, size=(63, 2)).astype(np.float32)

    def sample(self, key: str, i: int, t: float) -> np.ndarray:
        """Sample number ``i`` of stream ``key`` at time ``t`` (seconds since start)."""
        spec = self.streams[key]
        if key in self._frames:
            pool = self._frames[key]
            return pool[i % len(pool)]
        if key.endswith("marker_offset"):
            return (self._markers + 0.01 * np.sin(t + self._markers)).astype(np.float32)
        if key.endswith("tcp_pose"):
            a = 0.3 * t
            return np.array([0.4 + 0.05 * np.sin(a), 0.05 * np.cos(a), 0.2,
                             np.cos(a / 2), 0.0, 0.0, np.sin(a / 2)])
        if key.endswith("wrench"):
            return (np.array([0.1, -0.2, 5.0, 0.01, 0.0, 0.02]) * (1 + 0.1 * np.sin(7 * t))).astype(np.float32)
        n = int(np.prod(spec.shape))
        return (np.sin(t + np.arange(n)) * 0.01).reshape(spec.shape).astype(spec.dtype)


def record_synthetic_episode(store, seconds: float, seed: int = 0, task: str = "synthetic",
                             start_time: float = 0.0):
    """Record ``seconds`` of rig data as fast as possible (timestamps on a nominal grid)."""
    rig = SyntheticRig(store.streams, seed=seed)
    rec = store.begin_episode(task=task, metadata={"source": "synthetic", "seed": seed},
                              calibration={"tactile_image_size": [240, 320]}, start_time=start_time)
    with rec:
        for key, spec in store.streams.items():
            n = int(round(seconds * spec.rate_hz))
            ts = start_time + np.arange(n) / spec.rate_hz
            block = np.stack([rig.sample(key, i, t - start_time) for i, t in enumerate(ts)]) if n else \
                np.zeros((0, *spec.shape), spec.dtype)
            rec.append_many(key, ts, block)
    return store.episode(-1)
