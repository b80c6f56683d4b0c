"""Flexiv Rizon through ``flexivrdk``: RDK 1.6-1.9 and 2.0, behind one adapter.

Supported SDK range: ``flexivrdk>=1.6,<2.1``. RDK 2.1 dropped the Rizon product line
(``Robot("Rizon4-...")`` raises "Product model [Rizon4] is not supported"; 2.1 drives
Enlight / MICO robots only), so the driver refuses it with that explanation. flexivrdk
publishes wheels for CPython 3.10 and 3.12 (and 3.13 for 1.9.0 only) - none for 3.11.

The robot runs Flexiv's unified motion-force controller in ``NRT_CARTESIAN_MOTION_FORCE``
mode with every axis motion-controlled; the controller streams TCP targets at up to 100 Hz
and the robot's own real-time loop interpolates between them under the velocity /
acceleration limits configured here. The two API generations differ in shape only:

============================  ==================================  ==========================================
                              RDK 1.x                             RDK 2.0
============================  ==================================  ==========================================
states                        ``states()`` -> ``RobotStates``      ``states()[group]`` (``dict[JointGroup, ...]``)
TCP twist / external wrench   ``tcp_vel`` / ``ext_wrench_in_world``  ``tcp_twist`` / ``tcp_wrench``
force-control axes            ``SetForceControlAxis(axes)``        ``SetForceControlAxis(group, axes)``
Cartesian target              ``SendCartesianMotionForce(pose,     ``SendCartesianMotionForce({group:
                              wrench, max_linear_vel=...)``        NrtCartesianCmd(pose, max_linear_vel=...)})``
primitive (``ZeroFTSensor``)  ``ExecutePrimitive(name, params)``   ``ExecutePrimitive({group: PrimitiveArgs(...)})``
============================  ==================================  ==========================================

Both report the external wrench applied ON the TCP, in the world (base) frame, which is the
tactkit convention (``wrench_sign = 1``). ``zero_ft_sensor`` runs Flexiv's ``ZeroFTSensor``
primitive at connect, as Flexiv's own examples do before force-sensitive work: nothing may
touch the tool while it runs. ``Gripper.Move`` blocks until the request is delivered, so
gripper moves run on a latest-wins worker off the robot loop.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from tactkit.real.drivers._conformance import SdkCall
from tactkit.real.drivers._sdk import SdkArm
from tactkit.real.drivers._worker import LatestWins
from tactkit.real.robot import ROBOTS, ArmState, RobotCommand, RobotState

log = logging.getLogger(__name__)

_LIMITS = ("max_linear_vel", "max_angular_vel", "max_linear_acc", "max_angular_acc")


def _table(*entries: tuple) -> tuple[SdkCall, ...]:
    return tuple(SdkCall("flexivrdk", *e) for e in entries)


_COMMON = (
    ("Robot", 1),
    ("Robot.fault", 0),
    ("Robot.ClearFault", 0),
    ("Robot.Enable", 0),
    ("Robot.operational", 0),
    ("Robot.SwitchMode", 1),
    ("Mode.NRT_CARTESIAN_MOTION_FORCE",),
    ("Mode.NRT_PRIMITIVE_EXECUTION",),
    ("Robot.states", 0),
    ("RobotStates.tcp_pose",),
    ("RobotStates.q",),
    ("Robot.primitive_states", 0),
    ("Robot.Stop", 0),
    ("Gripper", 1),
    ("Gripper.Enable", 1),
    ("Gripper.Move", 3),
    ("Gripper.states", 0),
    ("GripperStates.width",),
)

#: every flexivrdk 1.x symbol the driver uses, as it uses it
SDK_CALLS_V1: tuple[SdkCall, ...] = _table(
    *_COMMON,
    ("RobotStates.tcp_vel",),
    ("RobotStates.ext_wrench_in_world",),
    ("Robot.SetForceControlAxis", 1),
    ("Robot.SendCartesianMotionForce", 2, _LIMITS),
    ("Robot.ExecutePrimitive", 2),
)

#: every flexivrdk 2.0 symbol the driver uses, as it uses it
SDK_CALLS_V2: tuple[SdkCall, ...] = _table(
    *_COMMON,
    ("Robot.groups", 0),
    ("JointGroup.ARM_1",),
    ("RobotStates.tcp_twist",),
    ("RobotStates.tcp_wrench",),
    ("Robot.SetForceControlAxis", 2),
    ("NrtCartesianCmd", 1, _LIMITS),
    ("Robot.SendCartesianMotionForce", 1),
    ("PrimitiveArgs", 2),
    ("Robot.ExecutePrimitive", 1),
    ("PrimitiveStates.names_and_values",),
)

UNSUPPORTED_RDK = (
    "flexivrdk {version} has no Robot.Enable: RDK >= 2.1 dropped Rizon arms "
    "(Robot('Rizon4-...') raises 'Product model [Rizon4] is not supported'); "
    "install a supported one: pip install \"flexivrdk>=1.6,<2.1\""
)


def rdk_generation(sdk: Any) -> int:
    """1 or 2 (the API shape of ``sdk``); ValueError for an RDK that cannot drive a Rizon."""
    if not hasattr(sdk, "JointGroup"):
        return 1
    if not hasattr(sdk.Robot, "Enable"):
        raise ValueError(UNSUPPORTED_RDK.format(version=getattr(sdk, "__version__", "(unknown version)")))
    return 2


def sdk_calls(sdk: Any) -> tuple[SdkCall, ...]:
    """The table for the RDK generation of ``sdk``."""
    return SDK_CALLS_V1 if rdk_generation(sdk) == 1 else SDK_CALLS_V2


@dataclass
class FlexivConfig:
    type_name = "flexiv"
    serial_number: str = ""  # e.g. "Rizon4-062468"
    rate_hz: float = 100.0  # NRT streaming rate (the RDK accepts up to 100 Hz in NRT modes)
    max_linear_vel: float = 0.5  # m/s, the robot-side interpolator's limits
    max_angular_vel: float = 1.0  # rad/s
    max_linear_acc: float = 2.0  # m/s^2
    max_angular_acc: float = 5.0  # rad/s^2
    joint_group: str = "ARM_1"  # RDK 2.0 only: the JointGroup member of this arm
    gripper_name: str | None = None  # e.g. "Flexiv-GN01"; None = no gripper
    gripper_velocity: float = 0.1  # m/s
    gripper_force: float = 20.0  # N, force limit when a command gives none
    gripper_width_deadband: float = 5e-4  # m; smaller width changes are not re-sent
    wrench_sign: float = 1.0  # multiply the RDK's external wrench to get the wrench ON the tool
    zero_ft_sensor: bool = True  # run the ZeroFTSensor primitive at connect (nothing may touch the tool)
    zero_ft_timeout: float = 15.0  # s for the zeroing primitive to terminate
    enable_timeout: float = 30.0  # s to become operational after Enable()

    def __post_init__(self) -> None:
        if not 0 < self.rate_hz <= 100:
            raise ValueError(f"flexiv rate_hz must be in (0, 100] for NRT streaming, got {self.rate_hz}")
        for name in _LIMITS + ("gripper_velocity", "gripper_force", "zero_ft_timeout", "enable_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"flexiv {name} must be > 0, got {getattr(self, name)}")


class _Rdk1:
    """RDK 1.x calls."""

    def __init__(self, sdk: Any, robot: Any, cfg: FlexivConfig) -> None:
        self.sdk, self.robot, self.cfg = sdk, robot, cfg

    def motion_only(self) -> None:
        self.robot.SetForceControlAxis([False] * 6)

    def states(self) -> tuple[Any, Any, Any, Any]:
        s = self.robot.states()
        return s.tcp_pose, s.tcp_vel, s.q, s.ext_wrench_in_world

    def send(self, pose: list[float]) -> None:
        limits = {k: getattr(self.cfg, k) for k in _LIMITS}
        self.robot.SendCartesianMotionForce(pose, [0.0] * 6, **limits)

    def start_primitive(self, name: str) -> None:
        self.robot.ExecutePrimitive(name, {})

    def primitive_state(self, key: str) -> Any:
        return self.robot.primitive_states().get(key)


class _Rdk2:
    """RDK 2.0 calls: everything per joint group."""

    def __init__(self, sdk: Any, robot: Any, cfg: FlexivConfig) -> None:
        self.sdk, self.robot, self.cfg = sdk, robot, cfg
        self.group = getattr(sdk.JointGroup, cfg.joint_group, None)
        groups = list(robot.groups())
        if self.group is None or self.group not in groups:
            names = ", ".join(getattr(g, "name", str(g)) for g in groups)
            raise ValueError(f"flexiv: joint_group={cfg.joint_group!r} is not a group of this robot (it has: {names})")

    def motion_only(self) -> None:
        self.robot.SetForceControlAxis(self.group, [False] * 6)

    def states(self) -> tuple[Any, Any, Any, Any]:
        s = self.robot.states()[self.group]
        return s.tcp_pose, s.tcp_twist, s.q, s.tcp_wrench

    def send(self, pose: list[float]) -> None:
        limits = {k: getattr(self.cfg, k) for k in _LIMITS}
        self.robot.SendCartesianMotionForce({self.group: self.sdk.NrtCartesianCmd(pose, **limits)})

    def start_primitive(self, name: str) -> None:
        self.robot.ExecutePrimitive({self.group: self.sdk.PrimitiveArgs(name, {})})

    def primitive_state(self, key: str) -> Any:
        states = self.robot.primitive_states().get(self.group)
        return None if states is None else states.names_and_values.get(key)


@ROBOTS.register(FlexivConfig, name="flexiv")
class FlexivRobot(SdkArm):
    """One Rizon arm (``"arm"``). ``sdk`` overrides the ``flexivrdk`` module (tests)."""

    sdk_module = "flexivrdk"
    extra = "flexiv"
    address_field = "serial_number"
    address_example = "Rizon4-062468"
    sdk_dist = "flexivrdk"
    install_hint = "flexivrdk has wheels for Python 3.10 and 3.12 (1.9.0 also 3.13), none for 3.11"

    def __init__(self, config: FlexivConfig, sdk: Any = None, clock: Any = None) -> None:
        super().__init__(config, sdk, clock)
        self.rdk: _Rdk1 | _Rdk2 | None = None
        self.gripper_jobs: LatestWins | None = None
        self._last_width: float | None = None

    def sdk_calls(self, sdk: Any) -> tuple[SdkCall, ...]:
        return sdk_calls(sdk)

    def connect(self) -> None:
        self._load_sdk()
        sdk, cfg = self._sdk, self.config
        generation = rdk_generation(sdk)
        self.robot = robot = sdk.Robot(cfg.serial_number)
        if robot.fault():
            log.warning("flexiv: clearing fault")
            if not robot.ClearFault():
                raise RuntimeError("flexiv: the robot is in a fault state that cannot be cleared")
        robot.Enable()
        self._wait(robot.operational, cfg.enable_timeout, "to become operational after Enable() (E-stop released?)")
        self.rdk = (_Rdk1 if generation == 1 else _Rdk2)(sdk, robot, cfg)
        if cfg.zero_ft_sensor:
            self.zero_ft_sensor()
        robot.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
        self.rdk.motion_only()  # pure motion control on every axis
        if cfg.gripper_name:
            self.gripper = sdk.Gripper(robot)
            self.gripper.Enable(cfg.gripper_name)
            self.gripper_jobs = LatestWins("flexiv-gripper")
        log.info("flexiv: %s connected (RDK %s API)", cfg.serial_number, generation)

    def zero_ft_sensor(self) -> None:
        """Run the ``ZeroFTSensor`` primitive and wait for it to terminate."""
        log.warning("flexiv: zeroing the force/torque sensor - nothing may touch the tool")
        self.robot.SwitchMode(self._sdk.Mode.NRT_PRIMITIVE_EXECUTION)
        self.rdk.start_primitive("ZeroFTSensor")
        self._wait(lambda: bool(self.rdk.primitive_state("terminated")), self.config.zero_ft_timeout,
                   "for the ZeroFTSensor primitive to terminate")

    @staticmethod
    def _wait(done: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise RuntimeError(f"flexiv: waited {timeout} s {what}")
            time.sleep(0.05)

    def read_state(self) -> RobotState:
        pose, twist, q, wrench = self.rdk.states()
        t = self.clock.now()
        width = float(self.gripper.states().width) if self.gripper is not None else float("nan")
        arm = ArmState(
            tcp_pose=np.asarray(pose, dtype=np.float64),
            tcp_velocity=np.asarray(twist, dtype=np.float64),
            joint_positions=np.asarray(q, dtype=np.float64),
            gripper_width=width,
            wrench=self.config.wrench_sign * np.asarray(wrench, dtype=np.float64),
        )
        return RobotState(timestamp=t, arms={"arm": arm})

    def send(self, command: RobotCommand) -> None:
        cmd = command.arms.get("arm")
        if cmd is None:
            return
        cfg = self.config
        self.rdk.send([float(x) for x in cmd.tcp_target])
        if self.gripper_jobs is not None and cmd.gripper_width is not None:
            width = float(cmd.gripper_width)
            if self._last_width is None or abs(width - self._last_width) > cfg.gripper_width_deadband:
                force = float(cmd.gripper_force) if cmd.gripper_force is not None else cfg.gripper_force
                self.gripper_jobs.submit(functools.partial(self.gripper.Move, width, cfg.gripper_velocity, force))
                self._last_width = width

    def disconnect(self) -> None:
        if self.gripper_jobs is not None:
            self.gripper_jobs.close()
            self.gripper_jobs = None
        if self.robot is not None:
            self.robot.Stop()
            self.robot = None
        self.gripper = None
