"""Franka Panda / FR3 through ``franky`` (PyPI ``franky-control`` 2.x).

franky runs libfranka's 1 kHz loop in C++ with a Ruckig trajectory generator; a Cartesian
motion started with ``robot.move(motion, asynchronous=True)`` *replaces* the running one, so
streaming targets at 50-200 Hz is the intended use.

``CartesianMotion(..., return_when_finished=False)``: franky's default (``True``) ends a
motion as soon as its target is reached. In a target stream that happens whenever the arm
catches up (always, while holding still): the control loop then stops, every state access
becomes a blocking ``readOnce`` network read, and the next ``move`` must start a new control
loop. With ``False`` each motion keeps holding its target until the next one takes over, the
arm stays under control between targets and state reads come from the running loop.
:meth:`FrankaRobot.disconnect` sends a last hold with ``return_when_finished=True`` so the
motion ends and ``join_motion`` returns.

The gripper is slow and its calls block: ``Gripper.move_async`` first waits for the previous
gripper move to finish, and ``Gripper.width`` is a network read. Both run off the robot loop:
moves on a :class:`~tactkit.real.drivers._worker.LatestWins` worker (the newest width wins),
the width on a :class:`~tactkit.real.drivers._worker.Poller` (``gripper_poll_hz``).

States: ``robot.current_cartesian_state`` (end-effector ``Affine`` with ``translation`` and
``quaternion`` as x, y, z, w; ``end_effector_twist``), ``robot.current_joint_state`` and
``robot.state.O_F_ext_hat_K`` - the external wrench in the base frame with franky's sign:
forces the robot applies to the environment are positive, so ``wrench_sign = -1`` gives the
wrench ON the tool (pressing down reads fz > 0).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from tactkit.real.drivers._conformance import SdkCall
from tactkit.real.drivers._sdk import SdkArm
from tactkit.real.drivers._worker import LatestWins, Poller
from tactkit.real.robot import ROBOTS, ArmState, RobotCommand, RobotState

log = logging.getLogger(__name__)

#: every franky symbol the driver uses, as it uses it (checked against the installed SDK by
#: ``tests/real/test_real_sdk_conformance.py`` and ``tactkit robot check``)
SDK_CALLS: tuple[SdkCall, ...] = tuple(
    SdkCall("franky", *entry)
    for entry in [
        ("Robot", 1),
        ("Robot.recover_from_errors", 0),
        ("Robot.relative_dynamics_factor", None, (), True),
        ("Robot.current_cartesian_state",),
        ("CartesianState.pose",),
        ("CartesianState.velocity",),
        ("RobotPose.end_effector_pose",),
        ("RobotVelocity.end_effector_twist",),
        ("Affine.translation",),
        ("Affine.quaternion",),
        ("Twist.linear",),
        ("Twist.angular",),
        ("Robot.current_joint_state",),
        ("JointState.position",),
        ("Robot.state",),
        ("RobotState.O_F_ext_hat_K",),
        ("Affine", 2),
        ("ReferenceType.Absolute",),
        ("CartesianMotion", 2, ("return_when_finished",)),
        ("Robot.move", 1, ("asynchronous",)),
        ("Robot.join_motion", 0, ("timeout",)),
        ("Robot.stop", 0),
        ("Gripper", 1),
        ("Gripper.move", 2),
        ("Gripper.width",),
    ]
)


@dataclass
class FrankaConfig:
    type_name = "franka"
    host: str = ""  # FCI address, e.g. "172.16.0.2"
    rate_hz: float = 100.0  # asynchronous target updates per second
    relative_dynamics_factor: float = 0.1  # fraction of Franka's velocity/acceleration/jerk limits
    gripper: bool = True
    gripper_speed: float = 0.05  # m/s
    gripper_width_deadband: float = 5e-4  # m
    gripper_poll_hz: float = 20.0  # width reads per second (each one is a network round trip)
    wrench_sign: float = -1.0  # O_F_ext_hat_K is the wrench the robot applies; negate for ON the tool
    stop_timeout: float = 2.0  # s to wait for the final hold on disconnect

    def __post_init__(self) -> None:
        if not 0 < self.relative_dynamics_factor <= 1:
            raise ValueError(f"franka relative_dynamics_factor must be in (0, 1], got {self.relative_dynamics_factor}")
        if not self.gripper_poll_hz > 0:
            raise ValueError(f"franka gripper_poll_hz must be > 0, got {self.gripper_poll_hz}")


def affine_from_pose(sdk: Any, pose: np.ndarray) -> Any:
    """franky ``Affine`` from a tactkit pose (x, y, z, qw, qx, qy, qz); franky wants x, y, z, w."""
    p = np.asarray(pose, dtype=np.float64)
    return sdk.Affine([float(v) for v in p[:3]], [float(p[4]), float(p[5]), float(p[6]), float(p[3])])


def pose_from_affine(affine: Any) -> np.ndarray:
    """tactkit pose (x, y, z, qw, qx, qy, qz) from a franky ``Affine``."""
    qx, qy, qz, qw = (float(v) for v in np.asarray(affine.quaternion, dtype=np.float64).ravel())
    return np.concatenate([np.asarray(affine.translation, dtype=np.float64).ravel(), [qw, qx, qy, qz]])


@ROBOTS.register(FrankaConfig, name="franka")
class FrankaRobot(SdkArm):
    """One Franka arm (``"arm"``). ``sdk`` overrides the ``franky`` module (tests)."""

    sdk_module = "franky"
    extra = "franka"
    address_field = "host"
    address_example = "172.16.0.2"
    sdk_dist = "franky-control"

    def __init__(self, config: FrankaConfig, sdk: Any = None, clock: Any = None) -> None:
        super().__init__(config, sdk, clock)
        self.gripper_jobs: LatestWins | None = None
        self.gripper_width: Poller | None = None
        self._last_width: float | None = None

    def sdk_calls(self, sdk: Any) -> tuple[SdkCall, ...]:
        return SDK_CALLS

    def connect(self) -> None:
        self._load_sdk()
        sdk, cfg = self._sdk, self.config
        self.robot = sdk.Robot(cfg.host)
        self.robot.recover_from_errors()
        self.robot.relative_dynamics_factor = cfg.relative_dynamics_factor
        if cfg.gripper:
            self.gripper = gripper = sdk.Gripper(cfg.host)
            self.gripper_jobs = LatestWins("franka-gripper")
            self.gripper_width = Poller("franka-gripper-width", lambda: gripper.width, 1.0 / cfg.gripper_poll_hz)
        log.info("franka: %s connected", cfg.host)

    def read_state(self) -> RobotState:
        cs = self.robot.current_cartesian_state
        t = self.clock.now()
        twist = cs.velocity.end_effector_twist
        arm = ArmState(
            tcp_pose=pose_from_affine(cs.pose.end_effector_pose),
            tcp_velocity=np.concatenate([np.asarray(twist.linear, np.float64), np.asarray(twist.angular, np.float64)]),
            joint_positions=np.asarray(self.robot.current_joint_state.position, dtype=np.float64),
            gripper_width=self.gripper_width.value if self.gripper_width is not None else float("nan"),
            wrench=self.config.wrench_sign * np.asarray(self.robot.state.O_F_ext_hat_K, dtype=np.float64).ravel(),
        )
        return RobotState(timestamp=t, arms={"arm": arm})

    def _move_to(self, pose: np.ndarray, hold: bool) -> None:
        sdk = self._sdk
        motion = sdk.CartesianMotion(
            affine_from_pose(sdk, pose), sdk.ReferenceType.Absolute, return_when_finished=not hold
        )
        self.robot.move(motion, asynchronous=True)

    def send(self, command: RobotCommand) -> None:
        cmd = command.arms.get("arm")
        if cmd is None:
            return
        self._move_to(cmd.tcp_target, hold=True)
        if self.gripper_jobs is not None and cmd.gripper_width is not None:
            width = float(cmd.gripper_width)
            if self._last_width is None or abs(width - self._last_width) > self.config.gripper_width_deadband:
                self.gripper_jobs.submit(functools.partial(self.gripper.move, width, self.config.gripper_speed))
                self._last_width = width

    def disconnect(self) -> None:
        if self.robot is not None:
            try:
                # a final target that ends the motion: hold where the arm is, then let go
                self._move_to(self.read_state().arms["arm"].tcp_pose, hold=False)
                if not self.robot.join_motion(timeout=self.config.stop_timeout):
                    log.warning("franka: final hold did not finish in %.1f s; stopping", self.config.stop_timeout)
                    self.robot.stop()
            finally:
                self.robot = None
        for worker in (self.gripper_jobs, self.gripper_width):
            if worker is not None and not worker.close(timeout=self.config.stop_timeout):
                log.warning("franka: %s still blocked in the SDK at disconnect", worker.name)
        self.gripper_jobs = self.gripper_width = None
        self.gripper = None
