"""Building bridge -> headset feedback: arrow fields from marker offsets, force arrows, JPEGs.

A tactile sensor reports ``observation.tactile.<sensor>.marker_offset``: (N, 2) marker
displacements normalised by the tactile image size. The headset draws each marker as an
arrow in the sensor frame (m): from its rest position on the pad to its displaced position.
Rest positions are a ``rows x cols`` grid over the pad (``pad_size_m``), row-major, the order
marker trackers report in; displacement = offset * pad size.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tactkit.real.robot import RobotState
from tactkit.teleop.protocol import ArmFeedback, ArrowField, CameraFrame, ForceArrow, Pose

TACTILE_PREFIX = "observation.tactile."
TACTILE_SUFFIX = ".marker_offset"
IMAGE_PREFIX = "observation.images."


@dataclass
class FeedbackConfig:
    rate_hz: float = 30.0
    camera_rate_hz: float = 10.0
    jpeg_quality: int = 80
    tactile_scale: float = 5.0  # headset magnifies marker displacement by this for display
    force_scale: float = 0.01  # m of arrow per N
    pad_size_m: list[float] = field(default_factory=lambda: [0.024, 0.018])  # width (x), height (y)
    marker_grid: list[int] = field(default_factory=lambda: [7, 9])  # rows, cols
    max_sample_age_s: float = 0.5  # older tactile/camera samples are not sent

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.camera_rate_hz < 0:
            raise ValueError("feedback.rate_hz must be > 0 and feedback.camera_rate_hz >= 0")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"feedback.jpeg_quality={self.jpeg_quality} must be in [1, 100]")


def marker_rest_positions(n: int, config: FeedbackConfig) -> np.ndarray:
    """(n, 3) rest positions in the sensor frame: a centred grid over the pad, z = 0."""
    rows, cols = config.marker_grid
    if rows * cols != n:
        # unknown layout: the most square grid that holds n markers
        cols = int(np.ceil(np.sqrt(n)))
        rows = int(np.ceil(n / cols))
    w, h = config.pad_size_m
    xs = (np.arange(cols) + 0.5) / cols * w - w / 2
    ys = (np.arange(rows) + 0.5) / rows * h - h / 2
    gx, gy = np.meshgrid(xs, ys)
    rest = np.stack([gx.ravel(), gy.ravel(), np.zeros(rows * cols)], axis=1)[:n]
    return rest


def arrow_field(sensor: str, offsets: np.ndarray, capture_time: float, config: FeedbackConfig,
                rest: np.ndarray | None = None) -> ArrowField:
    """Arrow field of one sensor from its (N, 2) normalised marker offsets."""
    offsets = np.asarray(offsets, dtype=np.float64).reshape(-1, 2)
    if rest is None:
        rest = marker_rest_positions(len(offsets), config)
    disp = rest.copy()
    disp[:, 0] += offsets[:, 0] * config.pad_size_m[0]
    disp[:, 1] += offsets[:, 1] * config.pad_size_m[1]
    return ArrowField(
        sensor=sensor,
        rest=[tuple(r) for r in rest.tolist()],
        displaced=[tuple(d) for d in disp.tolist()],
        scale=config.tactile_scale,
        capture_time=float(capture_time),
    )


def arm_feedback(state: RobotState, engaged: dict[str, bool]) -> list[ArmFeedback]:
    out = []
    for name, arm in state.arms.items():
        p = [float(x) for x in arm.tcp_pose]
        out.append(ArmFeedback(name=name, tcp=Pose(pos=tuple(p[:3]), quat=tuple(p[3:7])),
                               gripper_width=float(arm.gripper_width), engaged=engaged.get(name, False)))
    return out


def force_arrows(state: RobotState, config: FeedbackConfig) -> list[ForceArrow]:
    return [
        ForceArrow(arm=name, start=tuple(float(x) for x in arm.tcp_pose[:3]),
                   force=tuple(float(x) for x in arm.wrench[:3]), scale=config.force_scale,
                   capture_time=state.timestamp)
        for name, arm in state.arms.items()
    ]


def encode_jpeg(name: str, image: np.ndarray, capture_time: float, quality: int) -> CameraFrame:
    """JPEG-encode an RGB uint8 image (OpenCV wants BGR)."""
    import cv2

    img = np.ascontiguousarray(image[..., ::-1]) if image.ndim == 3 and image.shape[-1] == 3 else image
    ok, buf = cv2.imencode(".jpg", img, [int(cv2.IMWRITE_JPEG_QUALITY), int(quality)])
    if not ok:
        raise ValueError(f"camera {name}: JPEG encoding failed for image of shape {image.shape}")
    return CameraFrame(name=name, jpeg=buf.tobytes(), capture_time=float(capture_time))


def sensor_name(key: str) -> tuple[str, str] | None:
    """('tactile', name) / ('camera', name) for a stream key, else None."""
    if key.startswith(TACTILE_PREFIX) and key.endswith(TACTILE_SUFFIX):
        return "tactile", key[len(TACTILE_PREFIX):-len(TACTILE_SUFFIX)]
    if key.startswith(IMAGE_PREFIX):
        return "camera", key[len(IMAGE_PREFIX):]
    return None
