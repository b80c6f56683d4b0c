"""Universal Robots e-series through ``ur-rtde`` (1.6): ``servoL`` streaming at 500 Hz.

``rtde_control.RTDEControlInterface.servoL(pose, speed, acceleration, time, lookahead_time,
gain)`` - positional-only in the Python binding - tracks a TCP pose given as x, y, z and an
axis-angle rotation vector; the controller interpolates over ``time`` = one servo period
with the look-ahead filter. ur-rtde itself rejects (``ValueError``) a lookahead outside
[0.03, 0.2] s or a gain outside [100, 2000]; the config checks both up front.

``rtde_receive.RTDEReceiveInterface`` reports ``getActualTCPPose`` (rotation vector),
``getActualTCPSpeed``, ``getActualQ`` and ``getActualTCPForce``. The last is RTDE's
``actual_TCP_force``: the generalised external force at the TCP, payload compensated,
**expressed in the robot base frame** (not the tool frame), acting ON the tool - pressing
the tool down onto a table reads fz > 0 whatever the tool's orientation. That is the tactkit
convention, so ``wrench_sign = 1`` and no rotation is applied. On e-series arms the built-in
F/T sensor drifts; ``zero_ft_sensor`` (default on) calls ``zeroFtSensor()`` at connect, so
the reading at rest is ~0 (nothing may touch the tool then).

``disconnect`` stops servoing (``servoStop``), ends the control script (``stopScript``) and
closes both RTDE connections (``disconnect``), so the robot is free for the pendant or the
next process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from tactkit.clock import Clock, WallClock
from tactkit.real import quat as Q
from tactkit.real.drivers._conformance import SdkCall, check_calls
from tactkit.real.drivers._sdk import import_sdk, sdk_version
from tactkit.real.robot import ROBOTS, ArmState, Robot, RobotCommand, RobotState

log = logging.getLogger(__name__)

#: every ur-rtde symbol the driver uses, as it uses it
SDK_CALLS: tuple[SdkCall, ...] = tuple(
    SdkCall(module, *entry)
    for module, entries in {
        "rtde_control": [
            ("RTDEControlInterface", 1),
            ("RTDEControlInterface.zeroFtSensor", 0),
            ("RTDEControlInterface.servoL", 6),
            ("RTDEControlInterface.servoStop", 0),
            ("RTDEControlInterface.stopScript", 0),
            ("RTDEControlInterface.disconnect", 0),
        ],
        "rtde_receive": [
            ("RTDEReceiveInterface", 1),
            ("RTDEReceiveInterface.getActualTCPPose", 0),
            ("RTDEReceiveInterface.getActualTCPSpeed", 0),
            ("RTDEReceiveInterface.getActualQ", 0),
            ("RTDEReceiveInterface.getActualTCPForce", 0),
            ("RTDEReceiveInterface.disconnect", 0),
        ],
    }.items()
    for entry in entries
)


@dataclass
class URConfig:
    type_name = "ur"
    host: str = ""  # robot IP
    rate_hz: float = 500.0  # e-series controller rate
    lookahead_time: float = 0.1  # s, servoL smoothing [0.03, 0.2]
    gain: float = 300.0  # servoL proportional gain [100, 2000]
    speed: float = 0.5  # servoL arguments the controller ignores but the API requires
    acceleration: float = 0.5
    wrench_sign: float = 1.0  # multiply getActualTCPForce (base frame, ON the tool) to get the wrench ON the tool
    zero_ft_sensor: bool = True  # zeroFtSensor() at connect (nothing may touch the tool)

    def __post_init__(self) -> None:
        if not 0.03 <= self.lookahead_time <= 0.2:
            raise ValueError(f"ur lookahead_time must be in [0.03, 0.2], got {self.lookahead_time}")
        if not 100 <= self.gain <= 2000:
            raise ValueError(f"ur gain must be in [100, 2000], got {self.gain}")


def servo_pose(pose: np.ndarray) -> list[float]:
    """servoL target (x, y, z, rx, ry, rz) from a tactkit pose (x, y, z, qw, qx, qy, qz).

    The rotation vector has norm <= pi (the shortest rotation); at exactly pi either sign
    is the same orientation.
    """
    p = np.asarray(pose, dtype=np.float64)
    return [float(v) for v in p[:3]] + [float(v) for v in Q.log(Q.canonical(Q.normalize(p[3:])))]


def pose_from_ur(ur_pose: Any) -> np.ndarray:
    """tactkit pose from a UR pose (x, y, z, rx, ry, rz)."""
    p = np.asarray(ur_pose, dtype=np.float64)
    return np.concatenate([p[:3], Q.canonical(Q.exp(p[3:]))])


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

    def _modules(self) -> tuple[Any, Any]:
        self._control_mod = self._control_mod or import_sdk("rtde_control", "ur")
        self._receive_mod = self._receive_mod or import_sdk("rtde_receive", "ur")
        return self._control_mod, self._receive_mod

    def check_sdk(self) -> tuple[str, list[str]]:
        """(SDK name and version, problems with the calls this driver makes into it)."""
        control, receive = self._modules()
        label = f"ur-rtde {sdk_version(control, 'ur-rtde')}"
        return label, check_calls(SDK_CALLS, {"rtde_control": control, "rtde_receive": receive})

    def connect(self) -> None:
        control, receive = self._modules()
        self.rtde_c = control.RTDEControlInterface(self.config.host)
        self.rtde_r = receive.RTDEReceiveInterface(self.config.host)
        if self.config.zero_ft_sensor:
            log.warning("ur: zeroing the force/torque sensor - nothing may touch the tool")
            if not self.rtde_c.zeroFtSensor():
                self.disconnect()
                raise RuntimeError("ur: zeroFtSensor() failed (is the control script running? see the pendant log)")
        log.info("ur: %s connected", self.config.host)

    def read_state(self) -> RobotState:
        r = self.rtde_r
        pose = pose_from_ur(r.getActualTCPPose())
        t = self.clock.now()
        arm = ArmState(
            tcp_pose=pose,
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
        cfg = self.config
        self.rtde_c.servoL(
            servo_pose(cmd.tcp_target), cfg.speed, cfg.acceleration, 1.0 / cfg.rate_hz, cfg.lookahead_time, cfg.gain
        )

    def disconnect(self) -> None:
        c, r = self.rtde_c, self.rtde_r
        self.rtde_c = self.rtde_r = None
        try:
            if c is not None:
                try:
                    c.servoStop()
                    c.stopScript()
                finally:
                    c.disconnect()
        finally:
            if r is not None:
                r.disconnect()
