"""Franka Panda / FR3 through ``franky`` (PyPI ``franky-control``).

franky runs libfranka's 1 kHz loop in C++ with a Ruckig trajectory generator; a Cartesian
motion started with ``robot.move(motion, asynchronous=True)`` *replaces* the running one, so
streaming targets at 50-200 Hz is the intended use. States come from
``robot.current_cartesian_state`` (end-effector ``Affine`` with ``translation`` and
``quaternion`` as x, y, z, w; ``end_effector_twist``), ``robot.current_joint_state`` and
``robot.state.O_F_ext_hat_K`` (external wrench in the base frame).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tactkit.real.drivers._sdk import SdkArm
from tactkit.real.robot import ROBOTS, ArmCommand, ArmState, RobotCommand, RobotState

log = logging.getLogger(__name__)


@dataclass
class FrankaConfig:
    type_name = "franka"
    host: str = ""  # FCI address, e.g. "172.16.0.2"
    rate_hz: float = 100.0  # asynchronous target updates per second
    relative_dynamics_factor: float = 0.1  # fraction of Franka's velocity/acceleration/jerk limits
    gripper: bool = True
    gripper_speed: float = 0.05  # m/s
    gripper_width_deadband: float = 5e-4  # m
    wrench_sign: float = -1.0  # O_F_ext_hat_K is the wrench the robot applies; negate for ON the tool

    def __post_init__(self) -> None:
        if not 0 < self.relative_dynamics_factor <= 1:
            raise ValueError(f"franka relative_dynamics_factor must be in (0, 1], got {self.relative_dynamics_factor}")


@ROBOTS.register(FrankaConfig, name="franka")
class FrankaRobot(SdkArm):
    """One Franka arm (``"arm"``). ``sdk`` overrides the ``franky`` module (tests)."""

    sdk_module = "franky"
    extra = "franka"
    address_field = "host"
    address_example = "172.16.0.2"

    def connect(self) -> None:
        self._load_sdk()
        sdk, cfg = self._sdk, self.config
        self.robot = sdk.Robot(cfg.host)
        self.robot.recover_from_errors()
        self.robot.relative_dynamics_factor = cfg.relative_dynamics_factor
        if cfg.gripper:
            self.gripper = sdk.Gripper(cfg.host)
        log.info("franka: %s connected", cfg.host)

    def read_state(self) -> RobotState:
        cs = self.robot.current_cartesian_state
        t = self.clock.now()
        ee = cs.pose.end_effector_pose
        qx, qy, qz, qw = (float(v) for v in ee.quaternion)
        twist = cs.velocity.end_effector_twist
        arm = ArmState(
            tcp_pose=np.concatenate([np.asarray(ee.translation, dtype=np.float64), [qw, qx, qy, qz]]),
            tcp_velocity=np.concatenate([np.asarray(twist.linear, np.float64), np.asarray(twist.angular, np.float64)]),
            joint_positions=np.asarray(self.robot.current_joint_state.position, dtype=np.float64),
            gripper_width=float(self.gripper.width) if self.gripper is not None else float("nan"),
            wrench=self.config.wrench_sign * np.asarray(self.robot.state.O_F_ext_hat_K, dtype=np.float64),
        )
        return RobotState(timestamp=t, arms={"arm": arm})

    def send(self, command: RobotCommand) -> None:
        cmd = command.arms.get("arm")
        if cmd is None:
            return
        sdk, cfg = self._sdk, self.config
        p = np.asarray(cmd.tcp_target, dtype=np.float64)
        affine = sdk.Affine([float(v) for v in p[:3]], [float(p[4]), float(p[5]), float(p[6]), float(p[3])])
        self.robot.move(sdk.CartesianMotion(affine, sdk.ReferenceType.Absolute), asynchronous=True)
        if self.gripper is not None and cmd.gripper_width is not None:
            if self._last_width is None or abs(cmd.gripper_width - self._last_width) > cfg.gripper_width_deadband:
                self.gripper.move_async(float(cmd.gripper_width), cfg.gripper_speed)
                self._last_width = float(cmd.gripper_width)

    def disconnect(self) -> None:
        if self.robot is not None:
            state = self.read_state().arms["arm"].tcp_pose
            self.send(RobotCommand(self.clock.now(), {"arm": ArmCommand(state)}))
            self.robot.join_motion(timeout=2.0)
            self.robot = None

