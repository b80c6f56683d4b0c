"""The dataset schema: key names, what one recorded stream holds, and robot samples as keys.

A store's attributes hold a :class:`StreamSpec` per key. Keys follow the LeRobot convention:
``observation.images.<camera>``, ``observation.state.<name>``,
``observation.tactile.<sensor>.marker_offset``, ``observation.wrench``, ``action.<name>``.
For multi-arm robots the arm name goes before the quantity: ``observation.state.left.tcp_pose``,
``observation.wrench.left``, ``action.right.gripper_width``.

This module is the one place that names things: recording (teleop), simulation (demos) and the
controller (observation windows) all build keys, stream specs and per-sample values with the
functions below, from the :class:`ArmFeatures` a robot declares (``Robot.arm_features()``) and
the streams its sensors declare (``Sensor.streams()``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class StreamSpec:
    dtype: str  # numpy dtype name, e.g. "uint8", "float32"
    shape: tuple[int, ...]  # per-sample shape, e.g. (240, 320, 3)
    rate_hz: float  # nominal rate
    units: str = ""  # e.g. "m", "N", "rgb", "normalised"
    names: tuple[str, ...] = field(default_factory=tuple)  # element names for 1-D streams

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "names", tuple(self.names))
        np.dtype(self.dtype)  # raises on an unknown dtype
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")

    @property
    def is_image(self) -> bool:
        return self.dtype == "uint8" and len(self.shape) == 3 and self.shape[-1] in (1, 3, 4)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["names"] = list(self.names)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StreamSpec:
        return cls(
            dtype=d["dtype"],
            shape=tuple(d["shape"]),
            rate_hz=float(d["rate_hz"]),
            units=d.get("units", ""),
            names=tuple(d.get("names", ())),
        )


#: 7-D pose element names (position + quaternion w, x, y, z)
POSE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz")
#: 6-D wrench element names
WRENCH_NAMES = ("fx", "fy", "fz", "tx", "ty", "tz")


#: per-arm robot-state quantities recorded as ``observation.state.[<arm>.]<quantity>``
STATE_QUANTITIES = ("tcp_pose", "tcp_velocity", "joint_positions", "gripper_width")
#: commanded quantities (``action.[<arm>.]<quantity>``) and their sizes
ACTION_SIZES = {"tcp_pose": 7, "gripper_width": 1}
VELOCITY_NAMES = ("vx", "vy", "vz", "wx", "wy", "wz")


def arm_key(prefix: str, arm: str, quantity: str, multi_arm: bool) -> str:
    """``prefix.quantity`` for a single-arm robot, ``prefix.<arm>.quantity`` for several."""
    return f"{prefix}.{arm}.{quantity}" if multi_arm else f"{prefix}.{quantity}"


def state_key(arm: str, quantity: str, multi_arm: bool) -> str:
    return arm_key("observation.state", arm, quantity, multi_arm)


def action_key(arm: str, quantity: str, multi_arm: bool) -> str:
    return arm_key("action", arm, quantity, multi_arm)


def wrench_key(arm: str, multi_arm: bool) -> str:
    """``observation.wrench`` (one arm) or ``observation.wrench.<arm>``."""
    return f"observation.wrench.{arm}" if multi_arm else "observation.wrench"


def tactile_key(sensor: str) -> str:
    return f"observation.tactile.{sensor}.marker_offset"


def image_key(camera: str) -> str:
    return f"observation.images.{camera}"


#: a task's low-dimensional scene description (object poses, shapes), LeRobot's name for it
ENVIRONMENT_STATE_KEY = "observation.environment_state"


@dataclass(frozen=True)
class ArmFeatures:
    """What one arm of a robot reports: its name, its number of joints, and whether its tool
    is a gripper (a wiping pad or a blade has none: the controller sends it no gripper command)."""

    name: str
    n_joints: int = 7
    has_gripper: bool = True


def arm_features(names: Iterable[str], n_joints: int = 7, has_gripper: bool = True) -> tuple[ArmFeatures, ...]:
    return tuple(ArmFeatures(n, n_joints, has_gripper) for n in names)


def robot_state_streams(arms: Sequence[ArmFeatures], rate_hz: float, wrench: bool = True) -> dict[str, StreamSpec]:
    """Stream specs of the robot state sampled at ``rate_hz``: pose, velocity, joints, gripper
    and (``wrench``) the wrist wrench of every arm."""
    multi = len(arms) > 1
    specs: dict[str, StreamSpec] = {}
    for a in arms:
        specs[state_key(a.name, "tcp_pose", multi)] = StreamSpec("float32", (7,), rate_hz, "m,quat", POSE_NAMES)
        specs[state_key(a.name, "tcp_velocity", multi)] = StreamSpec("float32", (6,), rate_hz, "m/s,rad/s",
                                                                     VELOCITY_NAMES)
        specs[state_key(a.name, "joint_positions", multi)] = StreamSpec(
            "float32", (a.n_joints,), rate_hz, "rad", tuple(f"q{i}" for i in range(1, a.n_joints + 1)))
        specs[state_key(a.name, "gripper_width", multi)] = StreamSpec("float32", (1,), rate_hz, "m", ("width",))
        if wrench:
            specs[wrench_key(a.name, multi)] = StreamSpec("float32", (6,), rate_hz, "N,N*m", WRENCH_NAMES)
    return specs


def action_streams(arms: Sequence[ArmFeatures], rate_hz: float) -> dict[str, StreamSpec]:
    """Stream specs of the commanded targets (pose and gripper of every arm)."""
    multi = len(arms) > 1
    specs: dict[str, StreamSpec] = {}
    for a in arms:
        specs[action_key(a.name, "tcp_pose", multi)] = StreamSpec("float32", (7,), rate_hz, "m,quat", POSE_NAMES)
        specs[action_key(a.name, "gripper_width", multi)] = StreamSpec("float32", (1,), rate_hz, "m", ("width",))
    return specs


def recording_streams(arms: Sequence[ArmFeatures], sensor_streams: Mapping[str, StreamSpec], *,
                      state_rate_hz: float, action_rate_hz: float) -> dict[str, StreamSpec]:
    """Every stream a recording of this robot and these sensors holds: the sensors' own, the
    robot state (the wrench from the robot only where no sensor provides it) and the actions."""
    specs = dict(sensor_streams)
    for key, spec in robot_state_streams(arms, state_rate_hz).items():
        specs.setdefault(key, spec)
    specs.update(action_streams(arms, action_rate_hz))
    return specs


class ArmStateLike(Protocol):
    """What :func:`state_sample` reads of one arm (``tactkit.real.robot.ArmState``)."""

    tcp_pose: Any
    tcp_velocity: Any
    joint_positions: Any
    gripper_width: float
    wrench: Any


def state_sample(arms: Mapping[str, ArmStateLike], skip: Iterable[str] = ()) -> dict[str, np.ndarray]:
    """One robot state as ``{key: float32 value}`` with the keys of :func:`robot_state_streams`
    (``skip``: keys another source provides, e.g. a wrench from a force/torque sensor)."""
    multi = len(arms) > 1
    skip = set(skip)
    out: dict[str, np.ndarray] = {}
    for name, a in arms.items():
        values = {
            state_key(name, "tcp_pose", multi): a.tcp_pose,
            state_key(name, "tcp_velocity", multi): a.tcp_velocity,
            state_key(name, "joint_positions", multi): a.joint_positions,
            state_key(name, "gripper_width", multi): [a.gripper_width],
            wrench_key(name, multi): a.wrench,
        }
        for key, v in values.items():
            if key not in skip:
                out[key] = np.asarray(v, dtype=np.float32).reshape(-1)
    return out


def command_sample(arms: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """A robot command's targets (``{arm: ArmCommand}``) as ``{action key: float32 value}``;
    an arm whose gripper target is None records no gripper sample."""
    multi = len(arms) > 1
    out: dict[str, np.ndarray] = {}
    for name, c in arms.items():
        out[action_key(name, "tcp_pose", multi)] = np.asarray(c.tcp_target, dtype=np.float32).reshape(7)
        if c.gripper_width is not None:
            out[action_key(name, "gripper_width", multi)] = np.asarray([c.gripper_width], dtype=np.float32)
    return out
