"""Cameras: OpenCV (UVC / V4L2), Intel RealSense (optional ``pyrealsense2``), and a synthetic one.

A *frame source* opens a device and returns ``(capture_time, BGR image)``; :class:`CameraSensor`
runs one on a capture thread (see :mod:`tactkit.sensors.threaded`). The tactile sensor reuses
the same sources with a marker tracker on top.

Timestamps: on Linux, V4L2 stamps each buffer with ``CLOCK_MONOTONIC`` at capture, which is
the tactkit wall clock's domain, and OpenCV exposes it as ``CAP_PROP_POS_MSEC``; it is used
when plausible, otherwise ``receive time - latency_s``. RealSense frames in the ``global_time``
/ ``system_time`` domains are host epoch milliseconds and are mapped onto the monotonic clock.
"""

from __future__ import annotations

import glob
import importlib
import logging
import os
import time
from dataclasses import dataclass
from typing import ClassVar, Protocol

import numpy as np

from tactkit.clock import Clock
from tactkit.sensors.base import SENSORS
from tactkit.sensors.threaded import Reading, ThreadedSensor
from tactkit.store.schema import image_key

log = logging.getLogger(__name__)


class FrameSource(Protocol):
    def open(self) -> None: ...

    def read(self) -> tuple[float, np.ndarray] | None: ...

    def close(self) -> None: ...


# ---------------------------------------------------------------------------- OpenCV / UVC
def list_v4l2_devices() -> list[tuple[int, str]]:
    """``(index, name)`` of the V4L2 video nodes (Linux; empty elsewhere)."""
    out = []
    for path in sorted(glob.glob("/sys/class/video4linux/video*/name")):
        idx = int(path.split("/")[-2].removeprefix("video"))
        with open(path) as f:
            out.append((idx, f.read().strip()))
    return sorted(out)


def resolve_device(device: int | str) -> int | str:
    """A camera index, ``/dev/videoN`` path, or (part of) a device name such as ``"GelSight Mini"``.

    Any other existing path (a recorded video file) or URL is passed to OpenCV as is.
    """
    if isinstance(device, int):
        return device
    if device.isdigit():
        return int(device)
    if os.path.exists(device) or "://" in device:
        return device
    devices = list_v4l2_devices()
    matches = [i for i, name in devices if device.lower() in name.lower()]
    if not matches:
        found = ", ".join(f"{i}: {n}" for i, n in devices) or "no video devices"
        raise FileNotFoundError(f"no camera named {device!r} (found: {found})")
    return matches[0]  # UVC devices expose the capture node first


@dataclass
class OpenCVCameraConfig:
    """A UVC camera read with OpenCV; ``device`` is an index, a /dev path or a name."""

    type_name: ClassVar[str] = "opencv_camera"
    name: str = "wrist"
    device: int | str = 0
    width: int = 640
    height: int = 480
    fps: float = 30.0
    exposure: float | None = None  # device units (V4L2: 100 us); None = auto exposure
    fourcc: str | None = "MJPG"  # compressed USB transfer reaches higher fps
    latency_s: float = 0.03  # used when the device gives no timestamp
    stale_after_s: float = 0.5

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.fps <= 0:
            raise ValueError(f"camera {self.name}: width, height and fps must be > 0")
        if self.fourcc is not None and len(self.fourcc) != 4:
            raise ValueError(f"camera {self.name}: fourcc must be 4 characters, got {self.fourcc!r}")

    @property
    def key(self) -> str:
        return image_key(self.name)


class OpenCVFrameSource:
    """``cv2.VideoCapture`` with resolution / fps / exposure applied and verified."""

    def __init__(self, cfg: OpenCVCameraConfig, clock: Clock) -> None:
        self.cfg, self.clock = cfg, clock
        self.cap = None
        self._mono_ts: bool | None = None

    def open(self) -> None:
        import cv2

        dev = resolve_device(self.cfg.device)
        v4l2 = os.path.exists("/sys/class/video4linux") and (
            isinstance(dev, int) or str(dev).startswith("/dev/")
        )
        cap = cv2.VideoCapture(dev, cv2.CAP_V4L2 if v4l2 else cv2.CAP_ANY)  # files / URLs: any backend
        if not cap.isOpened():
            raise ConnectionError(f"camera {self.cfg.name}: could not open device {self.cfg.device!r}")
        if self.cfg.fourcc:
            cap.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter_fourcc(*self.cfg.fourcc))
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.cfg.width)
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.cfg.height)
        cap.set(cv2.CAP_PROP_FPS, self.cfg.fps)
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # latest frame, not a queue
        if self.cfg.exposure is not None:
            cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual
            cap.set(cv2.CAP_PROP_EXPOSURE, float(self.cfg.exposure))
        got = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if got != (self.cfg.width, self.cfg.height):
            log.warning("camera %s: asked %dx%d, device gives %dx%d", self.cfg.name,
                        self.cfg.width, self.cfg.height, *got)
        self.cap = cap

    def read(self) -> tuple[float, np.ndarray] | None:
        import cv2

        ok, frame = self.cap.read()
        now = self.clock.now()
        if not ok or frame is None:
            raise ConnectionError(f"camera {self.cfg.name}: read failed (unplugged?)")
        ts = self.cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if self._mono_ts is None:
            # V4L2 buffer stamps are CLOCK_MONOTONIC: trust them only if they look like it.
            self._mono_ts = 0.0 <= now - ts < 1.0 and abs(time.monotonic() - now) < 1e-2
        return (ts if self._mono_ts else now - self.cfg.latency_s), frame

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


# ---------------------------------------------------------------------------- RealSense
@dataclass
class RealSenseConfig:
    """Intel RealSense colour (+ aligned depth) via ``pyrealsense2`` (``pip install tactkit[realsense]``)."""

    type_name: ClassVar[str] = "realsense"
    name: str = "external"
    serial: str | None = None  # None: the first device
    width: int = 640
    height: int = 480
    fps: int = 30
    exposure: float | None = None  # us; None = auto exposure
    depth: bool = False  # also stream depth aligned to colour (uint16, mm scale of the device)
    timeout_ms: int = 1000
    latency_s: float = 0.03  # used for hardware-clock timestamps, which are not host-comparable
    stale_after_s: float = 0.5

    @property
    def key(self) -> str:
        return image_key(self.name)

    @property
    def depth_key(self) -> str:
        return image_key(f"{self.name}_depth")


# ---------------------------------------------------------------------------- synthetic
@dataclass
class SyntheticCameraConfig:
    """A camera without hardware: a textured scene with a moving block, rendered at ``fps``."""

    type_name: ClassVar[str] = "synthetic_camera"
    name: str = "wrist"
    width: int = 320
    height: int = 240
    fps: float = 30.0
    stop_after_frames: int | None = None  # simulate a device that stops delivering
    stale_after_s: float = 0.5

    @property
    def key(self) -> str:
        return image_key(self.name)


class PacedSource:
    """Base for synthetic sources: frames paced at ``fps`` on the clock; may stall on purpose."""

    def __init__(self, fps: float, clock: Clock, stop_after_frames: int | None = None) -> None:
        self.period = 1.0 / fps
        self.clock = clock
        self.stop_after = stop_after_frames
        self.frame_index = 0
        self.t0 = 0.0
        self._closed = False

    def open(self) -> None:
        self.t0 = self.clock.now()
        self.frame_index = 0
        self._closed = False

    def _pace(self) -> float | None:
        if self.stop_after is not None and self.frame_index >= self.stop_after:
            time.sleep(0.05)  # a stalled device: nothing arrives
            return None
        deadline = self.t0 + self.frame_index * self.period
        behind = self.clock.now() - deadline
        if behind > self.period:  # fell behind (slow machine): skip frames, never stamp stale times
            skip = int(behind / self.period)
            self.frame_index += skip
            deadline += skip * self.period
        self.clock.sleep_until(deadline)
        self.frame_index += 1
        return deadline

    def close(self) -> None:
        self._closed = True


class SyntheticCameraSource(PacedSource):
    def __init__(self, cfg: SyntheticCameraConfig, clock: Clock) -> None:
        super().__init__(cfg.fps, clock, cfg.stop_after_frames)
        self.cfg = cfg
        yy, xx = np.mgrid[0 : cfg.height, 0 : cfg.width]
        checker = ((xx // 20 + yy // 20) % 2).astype(np.uint8)
        self.base = np.stack([60 + 80 * checker, 90 + 40 * checker, 120 + 20 * checker], axis=2).astype(np.uint8)

    def read(self) -> tuple[float, np.ndarray] | None:
        t = self._pace()
        if t is None:
            return None
        img = self.base.copy()
        h, w = img.shape[:2]
        cx = int(w / 2 + 0.3 * w * np.sin(2 * np.pi * 0.25 * (t - self.t0)))
        img[h // 3 : 2 * h // 3, max(cx - w // 10, 0) : cx + w // 10] = (40, 40, 200)
        return t, img


# ---------------------------------------------------------------------------- sensors
class CameraSensor(ThreadedSensor):
    """A camera on a capture thread: one ``observation.images.<name>`` uint8 HxWx3 stream."""

    def __init__(self, config: OpenCVCameraConfig | SyntheticCameraConfig, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        if isinstance(config, OpenCVCameraConfig):
            self.source: FrameSource = OpenCVFrameSource(config, self.clock)
        else:
            self.source = SyntheticCameraSource(config, self.clock)

    def streams(self) -> dict:
        from tactkit.store.schema import StreamSpec

        c = self.config
        return {c.key: StreamSpec("uint8", (c.height, c.width, 3), float(c.fps), "bgr")}

    def _open(self) -> None:
        self.source.open()

    def _read(self) -> Reading | None:
        got = self.source.read()
        if got is None:
            return None
        return Reading(got[0], {self.config.key: got[1]})

    def _close(self) -> None:
        self.source.close()


SENSORS.register(OpenCVCameraConfig)(CameraSensor)
SENSORS.register(SyntheticCameraConfig)(CameraSensor)


@SENSORS.register(RealSenseConfig)
class RealSenseCamera(ThreadedSensor):
    """RealSense colour (and optionally aligned depth) through ``pyrealsense2``, imported lazily."""

    config: RealSenseConfig

    def __init__(self, config: RealSenseConfig, clock: Clock | None = None) -> None:
        super().__init__(config, clock)
        self.rs = None
        self.pipeline = None
        self.align = None
        self._last_frame_number: int | None = None

    def streams(self) -> dict:
        from tactkit.store.schema import StreamSpec

        c = self.config
        out = {c.key: StreamSpec("uint8", (c.height, c.width, 3), float(c.fps), "bgr")}
        if c.depth:
            out[c.depth_key] = StreamSpec("uint16", (c.height, c.width), float(c.fps), "depth_units")
        return out

    def _open(self) -> None:
        try:
            rs = importlib.import_module("pyrealsense2")
        except ImportError as exc:
            raise ImportError("RealSense needs pyrealsense2: pip install 'tactkit[realsense]'") from exc
        c = self.config
        pipeline, cfg = rs.pipeline(), rs.config()
        if c.serial:
            cfg.enable_device(c.serial)
        cfg.enable_stream(rs.stream.color, c.width, c.height, rs.format.bgr8, c.fps)
        if c.depth:
            cfg.enable_stream(rs.stream.depth, c.width, c.height, rs.format.z16, c.fps)
        profile = pipeline.start(cfg)
        if c.exposure is not None:
            color_sensor = profile.get_device().first_color_sensor()
            color_sensor.set_option(rs.option.enable_auto_exposure, 0)
            color_sensor.set_option(rs.option.exposure, float(c.exposure))
        self.rs, self.pipeline = rs, pipeline
        self.align = rs.align(rs.stream.color) if c.depth else None
        self._last_frame_number = None

    def _capture_time(self, frame: object, now: float) -> float:
        rs = self.rs
        domain = frame.get_frame_timestamp_domain()
        if domain in (rs.timestamp_domain.global_time, rs.timestamp_domain.system_time):
            # host epoch milliseconds -> tactkit monotonic clock
            return now - (time.time() - frame.get_timestamp() / 1000.0)
        return now - self.config.latency_s

    def _read(self) -> Reading | None:
        frames = self.pipeline.wait_for_frames(self.config.timeout_ms)
        now = self.clock.now()
        if self.align is not None:
            frames = self.align.process(frames)
        color = frames.get_color_frame()
        if not color:
            return None
        n = int(color.get_frame_number())
        dropped = 0
        if self._last_frame_number is not None and n > self._last_frame_number + 1:
            dropped = n - self._last_frame_number - 1
        self._last_frame_number = n
        values = {self.config.key: np.asanyarray(color.get_data()).copy()}
        if self.config.depth:
            depth = frames.get_depth_frame()
            if depth:
                values[self.config.depth_key] = np.asanyarray(depth.get_data()).copy()
        return Reading(self._capture_time(color, now), values, dropped)

    def _close(self) -> None:
        if self.pipeline is not None:
            self.pipeline.stop()
            self.pipeline = None


def list_realsense_devices() -> list[tuple[str, str]]:
    """``(serial, name)`` of connected RealSense devices (empty without ``pyrealsense2``)."""
    try:
        rs = importlib.import_module("pyrealsense2")
    except ImportError:
        return []
    out = []
    for dev in rs.context().query_devices():
        out.append((dev.get_info(rs.camera_info.serial_number), dev.get_info(rs.camera_info.name)))
    return out
