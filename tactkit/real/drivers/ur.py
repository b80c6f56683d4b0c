"""Universal Robots e-series through ``ur-rtde``: ``servoL`` streaming at 500 Hz.

``rtde_control.RTDEControlInterface.servoL(pose, speed, acceleration, time, lookahead_time,
gain)`` tracks a TCP pose given as x, y, z and an axis-angle rotation vector (the robot
interpolates over ``time`` = one servo period with the look-ahead filter); ``rtde_receive.RTDEReceiveInterface`` reports ``getActualTCPPose``,
``getActualTCPSpeed``, ``getActualQ`` and ``getActualTCPForce``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from tactkit.clock import Clock, WallClock
from tactkit.real import quat as Q
from tactkit.real.drivers._sdk import import_sdk
from tactkit.real.robot import ROBOTS, ArmState, Robot, RobotCommand, RobotState

log = logging.getLogger(__name__)


@dataclass
class URConfig:
    type_name = "ur"
    host: str = ""  # robot IP
    rate_hz: float = 500.0  # e-series controller rate
    lookahead_time: float = 0.1  # s, servoL smoothing [0.03, 0.2]
    gain: float = 300.0  # servoL proportional gain [100, 2000]
    speed: float = 0.5  # servoL arguments the controller ignores but the API requires
    acceleration: float = 0.5
    wrench_sign: float = 1.0  # multiply getActualTCPForce to get the wrench ON the tool

    def __post_init__(self) -> None:
        if not 0.03 <= self.lookahead_time <= 0.2:
            raise ValueError(f"ur lookahead_time must be in [0.03, 0.2], got {self.lookahead_time}")
        if not 100 <= self.gain <= 2000:
            raise ValueError(f"ur gain must be in [100, 2000], got {self.gain}")


@ROBOTS.register(URConfig, name="ur")
class URRobot(Robot):
    """One UR arm (``"arm"``), no gripper. ``control``/``receive`` override the SDK modules (tests)."""

    arm_names = ("arm",)
    n_joints = 6

    def __init__(self, config: URConfig, control: Any = None, receive: Any = None, clock: Clock | None = None) -> None:
        if not config.host:
            raise ValueError("ur: host is required (e.g. host=192.168.1.10)")
        self.config = config
        self.rate_hz = config.rate_hz
        self.clock = clock or WallClock()
        self._control_mod, self._receive_mod = control, receive
        self.rtde_c: Any = None
        self.rtde_r: Any = None

    def connect(self) -> None:
        control = self._control_mod or import_sdk("rtde_control", "ur")
        receive = self._receive_mod or import_sdk("rtde_receive", "ur")
        self.rtde_c = control.RTDEControlInterface(self.config.host)
        self.rtde_r = receive.RTDEReceiveInterface(self.config.host)
        log.info("ur: %s connected", self.config.host)

    def read_state(self) -> RobotState:
        r = self.rtde_r
        pose = np.asarray(r.getActualTCPPose(), dtype=np.float64)
        t = self.clock.now()
        arm = ArmState(
            tcp_pose=np.concatenate([pose[:3], Q.canonical(Q.exp(pose[3:]))]),
            tcp_velocity=np.asarray(r.getActualTCPSpeed(), dtype=np.float64),
            joint_positions=np.asarray(r.getActualQ(), dtype=np.float64),
            gripper_width=float("nan"),
            wrench=self.config.wrench_sign * np.asarray(r.getActualTCPForce(), dtype=np.float64),
        )
        return RobotState(timestamp=t, arms={"arm": arm})

    def send(self, command: RobotCommand) -> None:
        cmd = command.arms.get("arm")
        if cmd is None:
            return
        p = np.asarray(cmd.tcp_target, dtype=np.float64)
        target = [float(v) for v in p[:3]] + [float(v) for v in Q.log(Q.normalize(p[3:]))]
        cfg = self.config
        self.rtde_c.servoL(target, cfg.speed, cfg.acceleration, 1.0 / cfg.rate_hz, cfg.lookahead_time, cfg.gain)

    def disconnect(self) -> None:
        if self.rtde_c is not None:
            self.rtde_c.servoStop()
            self.rtde_c.stopScript()
            self.rtde_c = None
        if self.rtde_r is not None:
            self.rtde_r.disconnect()
            self.rtde_r = None
