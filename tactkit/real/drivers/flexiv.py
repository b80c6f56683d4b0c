"""Flexiv Rizon through ``flexivrdk`` (RDK 1.x Python API), as the RDP paper used.

The robot runs Flexiv's unified motion-force controller in ``NRT_CARTESIAN_MOTION_FORCE``
mode with every axis motion-controlled; the controller streams TCP targets at up to 100 Hz
(``SendCartesianMotionForce``), and the robot's own real-time loop interpolates between them
under the velocity/acceleration limits configured here. States come from ``robot.states()``
(``tcp_pose`` as x, y, z, qw, qx, qy, qz, ``tcp_vel``, ``q``, ``ext_wrench_in_world``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from tactkit.real.drivers._sdk import SdkArm
from tactkit.real.robot import ROBOTS, ArmState, RobotCommand, RobotState

log = logging.getLogger(__name__)


@dataclass
class FlexivConfig:
    type_name = "flexiv"
    serial_number: str = ""  # e.g. "Rizon4-062468"
    rate_hz: float = 100.0  # NRT streaming rate (the RDK accepts up to 100 Hz in NRT modes)
    max_linear_vel: float = 0.5  # m/s, the robot-side interpolator's limits
    max_angular_vel: float = 1.0  # rad/s
    max_linear_acc: float = 2.0  # m/s^2
    max_angular_acc: float = 5.0  # rad/s^2
    gripper_name: str | None = None  # e.g. "Flexiv-GN01"; None = no gripper
    gripper_velocity: float = 0.1  # m/s
    gripper_width_deadband: float = 5e-4  # m; smaller width changes are not re-sent
    wrench_sign: float = 1.0  # multiply ext_wrench_in_world to get the wrench ON the tool
    enable_timeout: float = 30.0  # s to become operational after Enable()

    def __post_init__(self) -> None:
        if not 0 < self.rate_hz <= 100:
            raise ValueError(f"flexiv rate_hz must be in (0, 100] for NRT streaming, got {self.rate_hz}")


@ROBOTS.register(FlexivConfig, name="flexiv")
class FlexivRobot(SdkArm):
    """One Rizon arm (``"arm"``). ``sdk`` overrides the ``flexivrdk`` module (tests)."""

    sdk_module = "flexivrdk"
    extra = "flexiv"
    address_field = "serial_number"
    address_example = "Rizon4-062468"

    def connect(self) -> None:
        self._load_sdk()
        sdk, cfg = self._sdk, self.config
        self.robot = robot = sdk.Robot(cfg.serial_number)
        if robot.fault():
            log.warning("flexiv: clearing fault")
            if not robot.ClearFault():
                raise RuntimeError("flexiv: the robot is in a fault state that cannot be cleared")
        robot.Enable()
        deadline = time.monotonic() + cfg.enable_timeout
        while not robot.operational():
            if time.monotonic() > deadline:
                raise RuntimeError(f"flexiv: not operational {cfg.enable_timeout} s after Enable()")
            time.sleep(0.05)
        robot.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
        robot.SetForceControlAxis([False] * 6)  # pure motion control on every axis
        if cfg.gripper_name:
            self.gripper = sdk.Gripper(robot)
            self.gripper.Enable(cfg.gripper_name)
        log.info("flexiv: %s connected", cfg.serial_number)

    def read_state(self) -> RobotState:
        s = self.robot.states()
        t = self.clock.now()
        width = float(self.gripper.states().width) if self.gripper is not None else float("nan")
        arm = ArmState(
            tcp_pose=np.asarray(s.tcp_pose, dtype=np.float64),
            tcp_velocity=np.asarray(s.tcp_vel, dtype=np.float64),
            joint_positions=np.asarray(s.q, dtype=np.float64),
            gripper_width=width,
            wrench=self.config.wrench_sign * np.asarray(s.ext_wrench_in_world, dtype=np.float64),
        )
        return RobotState(timestamp=t, arms={"arm": arm})

    def send(self, command: RobotCommand) -> None:
        cmd = command.arms.get("arm")
        if cmd is None:
            return
        cfg = self.config
        self.robot.SendCartesianMotionForce(
            [float(x) for x in cmd.tcp_target],
            [0.0] * 6,
            max_linear_vel=cfg.max_linear_vel,
            max_angular_vel=cfg.max_angular_vel,
            max_linear_acc=cfg.max_linear_acc,
            max_angular_acc=cfg.max_angular_acc,
        )
        if self.gripper is not None and cmd.gripper_width is not None:
            if self._last_width is None or abs(cmd.gripper_width - self._last_width) > cfg.gripper_width_deadband:
                force = cmd.gripper_force if cmd.gripper_force is not None else 20.0
                self.gripper.Move(float(cmd.gripper_width), cfg.gripper_velocity, float(force))
                self._last_width = float(cmd.gripper_width)

    def disconnect(self) -> None:
        if self.robot is not None:
            self.robot.Stop()
            self.robot = None
