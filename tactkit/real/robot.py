"""The ``Robot`` interface every arm implements: real drivers and the PyBullet one alike.

A robot owns one or more arms, named (``"arm"`` for a single-arm robot, ``"left"`` /
``"right"`` for a bimanual one). State and commands are per arm. Poses are position (m) +
quaternion (w, x, y, z) in the robot base frame; velocities are (vx, vy, vz, wx, wy, wz);
wrenches are (fx, fy, fz, tx, ty, tz) in newtons / newton-metres, measured at the wrist
force/torque sensor and expressed in the base frame, tool gravity compensated.

Implementations register by config type (see :mod:`tactkit.registry`)::

    @ROBOTS.register(FrankaConfig)
    class FrankaRobot(Robot): ...
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import numpy as np

from tactkit.registry import Registry
from tactkit.store.schema import ArmFeatures, arm_features


@dataclass
class ArmState:
    """Measured state of one arm at ``RobotState.timestamp``."""

    tcp_pose: np.ndarray  # (7,) x, y, z, qw, qx, qy, qz
    tcp_velocity: np.ndarray  # (6,) linear m/s, angular rad/s
    joint_positions: np.ndarray  # (n_joints,) rad
    gripper_width: float  # m
    wrench: np.ndarray  # (6,) N, N·m, base frame, tool gravity compensated


@dataclass
class RobotState:
    timestamp: float  # capture time, tactkit clock domain (s)
    arms: dict[str, ArmState]


@dataclass
class ArmCommand:
    """Target for one arm: a Cartesian pose the impedance controller tracks, and the gripper."""

    tcp_target: np.ndarray  # (7,) x, y, z, qw, qx, qy, qz
    gripper_width: float | None = None  # m; None keeps the current gripper command
    gripper_force: float | None = None  # N, grasp force limit; None = driver default


@dataclass
class RobotCommand:
    timestamp: float  # time the command was issued (tactkit clock domain)
    arms: dict[str, ArmCommand] = field(default_factory=dict)


class Robot(abc.ABC):
    """A robot with ``connect / read_state / send / disconnect``, LeRobot-style.

    ``send`` must not block for longer than one robot period; drivers stream the latest
    command to the vendor's real-time interface.
    """

    #: arm names, e.g. ("arm",) or ("left", "right")
    arm_names: tuple[str, ...] = ("arm",)
    #: nominal rate (Hz) at which the robot accepts commands
    rate_hz: float = 500.0
    #: joints per arm (the length of ``ArmState.joint_positions``)
    n_joints: int = 7

    def arm_features(self) -> tuple[ArmFeatures, ...]:
        """What each arm reports (``tactkit.store.schema``): recording and the controller name
        the robot's streams from these."""
        return arm_features(self.arm_names, self.n_joints)

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def read_state(self) -> RobotState: ...

    @abc.abstractmethod
    def send(self, command: RobotCommand) -> None: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self) -> Robot:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


#: Robot implementations by config type.
ROBOTS: Registry[Robot] = Registry("robot")
