"""Fakes of the vendor SDKs the drivers use: franky 2.0, ur-rtde 1.6, flexivrdk 1.x / 2.0 / 2.1.

Each factory returns module objects with the real SDK's names and signatures that reject
what the real SDK rejects: keyword arguments to positional-only (pybind11 ``argN`` or
``/``) parameters, vectors of the wrong length (``TypeError``, as pybind11's fixed-size
casters do), a string where an enum member is expected, a missing argument, an out-of-range
``servoL`` gain or lookahead (``ValueError``, as ur-rtde's range checks do), a command in the
wrong control mode (``RuntimeError``). Where a fake is stricter than its SDK it says so.

Every call and every property read is recorded in ``module.calls`` as ``(attribute path,
positional count, sorted keywords)`` - ``None`` positional for a read - so tests can require
each of them to appear in the driver's ``SDK_CALLS`` table. The simulated arm tracks commanded
poses at once (an infinitely stiff robot), so ``tactkit robot check --move`` passes on it.
Blocking calls are modelled with ``threading.Event`` gates (``gate`` arguments): a call that
meets a closed gate waits until a test opens it.
"""

from __future__ import annotations

import enum
import functools
import re
import threading
import types
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

START_POSE = np.array([0.5, 0.1, 0.3, 0.0, 1.0, 0.0, 0.0])  # x, y, z, qw, qx, qy, qz (tool down)
FT_BIAS = np.array([1.5, -0.8, 3.0, 0.05, 0.02, -0.01])  # uncalibrated F/T offset, removed by zeroing


class CallLog(list):
    """(path, positional count or None for a read, sorted keywords) per SDK access."""

    def call(self, path: str, args: tuple, kwargs: dict) -> None:
        self.append((path, len(args), tuple(sorted(kwargs))))

    def read(self, path: str) -> None:
        self.append((path, None, ()))


def _incompatible(name: str, why: str) -> TypeError:
    return TypeError(f"{name}(): incompatible function arguments ({why})")


def _vector(name: str, values: Any, n: int) -> list[float]:
    """pybind11's fixed-size list caster: a sequence of exactly ``n`` numbers, else TypeError."""
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise _incompatible(name, f"expected a sequence of {n} numbers, got {values!r}") from None
    if len(out) != n:
        raise _incompatible(name, f"expected {n} values, got {len(out)}")
    return out


def _module(name: str) -> tuple[types.ModuleType, CallLog]:
    mod = types.ModuleType(name)
    log = CallLog()
    mod.calls = log
    return mod, log


def _recorder(log: CallLog):
    def rec(path: str):
        def deco(fn):
            @functools.wraps(fn)
            def wrapper(*args, **kwargs):
                log.call(path, args[1:], kwargs)  # args[0] is self
                return fn(*args, **kwargs)
            return wrapper
        return deco

    def prop(path: str, attr: str, setter: bool = False) -> property:
        def get(self):
            log.read(path)
            return getattr(self, attr)

        def put(self, value):
            log.call(path + "=", (value,), {})
            setattr(self, attr, value)

        return property(get, put if setter else None)

    return rec, prop


def _wait(gate: threading.Event | None, entered: threading.Event) -> None:
    entered.set()
    if gate is not None:
        gate.wait()


# ------------------------------------------------------------------------------------- franky
def make_franky(gripper_gate: threading.Event | None = None, width_gate: threading.Event | None = None,
                wrench: Any = (0.2, -0.1, -1.5, 0.01, 0.0, -0.02)) -> types.ModuleType:
    """franky 2.0. ``O_F_ext_hat_K`` is ``wrench`` (franky's sign: what the robot applies)."""
    mod, log = _module("franky")
    rec, prop = _recorder(log)

    class ReferenceType(enum.Enum):
        Relative = 0
        Absolute = 1

    class Affine:
        @rec("Affine")
        def __init__(self, translation=(0.0, 0.0, 0.0), quaternion=(0.0, 0.0, 0.0, 1.0)) -> None:
            self._t = np.array(_vector("__init__", translation, 3))
            q = np.array(_vector("__init__", quaternion, 4))
            self._q = q / np.linalg.norm(q)

        @classmethod
        def _make(cls, translation, quaternion_xyzw) -> Affine:  # the fake's own, unrecorded
            obj = object.__new__(cls)
            obj._t, obj._q = np.asarray(translation, float), np.asarray(quaternion_xyzw, float)
            return obj

        translation = prop("Affine.translation", "_t")
        quaternion = prop("Affine.quaternion", "_q")

    class Twist:
        def __init__(self, linear, angular) -> None:
            self._l, self._a = np.asarray(linear, float), np.asarray(angular, float)

        linear = prop("Twist.linear", "_l")
        angular = prop("Twist.angular", "_a")

    class RobotPose:
        def __init__(self, ee: Affine) -> None:
            self._ee = ee

        end_effector_pose = prop("RobotPose.end_effector_pose", "_ee")

    class RobotVelocity:
        def __init__(self, twist: Twist) -> None:
            self._twist = twist

        end_effector_twist = prop("RobotVelocity.end_effector_twist", "_twist")

    class CartesianState:
        def __init__(self, pose: RobotPose, velocity: RobotVelocity) -> None:
            self._pose, self._velocity = pose, velocity

        pose = prop("CartesianState.pose", "_pose")
        velocity = prop("CartesianState.velocity", "_velocity")

    class JointState:
        def __init__(self, position) -> None:
            self._position = np.asarray(position, float)

        position = prop("JointState.position", "_position")

    class RobotState:
        def __init__(self, wrench) -> None:
            self._w = np.asarray(wrench, float).reshape(6, 1)  # franky returns [6, 1]

        O_F_ext_hat_K = prop("RobotState.O_F_ext_hat_K", "_w")

    class CartesianMotion:
        @rec("CartesianMotion")
        def __init__(self, target, reference_type=ReferenceType.Absolute, relative_dynamics_factor=1.0,
                     return_when_finished=True, ee_frame=None) -> None:
            if not isinstance(target, Affine):
                raise _incompatible("__init__", f"target must be an Affine / CartesianState, got {type(target).__name__}")
            if not isinstance(reference_type, ReferenceType):
                raise _incompatible("__init__", f"reference_type must be a ReferenceType, got {reference_type!r}")
            self.target, self.reference_type = target, reference_type
            self.return_when_finished = bool(return_when_finished)

    class Robot:
        instances: list = []

        @rec("Robot")
        def __init__(self, fci_hostname: str, relative_dynamics_factor: float = 1.0, **_: Any) -> None:
            self.fci_hostname = fci_hostname
            self._rdf = float(relative_dynamics_factor)
            self.pose = START_POSE.copy()
            self.q = np.linspace(-0.5, 0.5, 7)
            self.external_wrench = np.asarray(wrench, float)
            self.in_control = False
            self.control_loop_starts = 0
            self.motions: list[CartesianMotion] = []
            self.stopped = False
            Robot.instances.append(self)

        def _get_rdf(self) -> float:
            log.read("Robot.relative_dynamics_factor")
            return self._rdf

        def _set_rdf(self, value: float) -> None:
            log.call("Robot.relative_dynamics_factor=", (value,), {})
            if not 0 < float(value) <= 1:
                raise ValueError(f"relative dynamics factor must be in (0, 1], got {value}")
            self._rdf = float(value)

        relative_dynamics_factor = property(_get_rdf, _set_rdf)

        @rec("Robot.recover_from_errors")
        def recover_from_errors(self) -> bool:
            return True

        @property
        def current_cartesian_state(self) -> CartesianState:
            log.read("Robot.current_cartesian_state")
            p = self.pose
            ee = Affine._make(p[:3], [p[4], p[5], p[6], p[3]])
            return CartesianState(RobotPose(ee), RobotVelocity(Twist(np.zeros(3), np.zeros(3))))

        @property
        def current_joint_state(self) -> JointState:
            log.read("Robot.current_joint_state")
            return JointState(self.q + np.sum(self.pose[:3] - START_POSE[:3]))  # joints move with the TCP

        @property
        def state(self) -> RobotState:
            log.read("Robot.state")
            return RobotState(self.external_wrench)

        @rec("Robot.move")
        def move(self, motion, asynchronous: bool = False, limit_rate: bool = False, cutoff_frequency: float = 100.0) -> None:
            if not isinstance(motion, CartesianMotion):
                raise _incompatible("move", f"motion must be a Motion, got {type(motion).__name__}")
            if not self.in_control:
                self.control_loop_starts += 1
            t = motion.target
            self.pose = np.concatenate([t._t, [t._q[3], t._q[0], t._q[1], t._q[2]]])
            self.motions.append(motion)
            # the stiff fake reaches every target at once: a motion that returns when
            # finished ends here, one that holds keeps the control loop running
            self.in_control = not motion.return_when_finished

        @rec("Robot.join_motion")
        def join_motion(self, timeout: float | None = None) -> bool:
            return not self.in_control

        @rec("Robot.stop")
        def stop(self) -> None:
            self.in_control, self.stopped = False, True

    class Gripper:
        instances: list = []

        @rec("Gripper")
        def __init__(self, fci_hostname: str, /) -> None:
            self._width = 0.08
            self.started: list[tuple[float, float]] = []
            self.finished: list[tuple[float, float]] = []
            self.move_entered = threading.Event()
            self.width_entered = threading.Event()
            Gripper.instances.append(self)

        @rec("Gripper.move")
        def move(self, width: float, speed: float) -> bool:
            self.started.append((float(width), float(speed)))
            _wait(gripper_gate, self.move_entered)
            self._width = float(width)
            self.finished.append((float(width), float(speed)))
            return True

        @property
        def width(self) -> float:
            log.read("Gripper.width")
            _wait(width_gate, self.width_entered)
            return self._width

    for obj in (ReferenceType, Affine, Twist, RobotPose, RobotVelocity, CartesianState, JointState, RobotState,
                CartesianMotion, Robot, Gripper):
        setattr(mod, obj.__name__, obj)
    return mod


# ------------------------------------------------------------------------------------- ur-rtde
class URArm:
    """The simulated UR both fake modules talk to: pose as x, y, z + rotation vector."""

    def __init__(self) -> None:
        self.pose = np.array([*START_POSE[:3], *Rotation.from_quat(START_POSE[3:], scalar_first=True).as_rotvec()])
        self.contact_wrench = np.zeros(6)  # base frame, ON the tool
        self.ft_offset = np.zeros(6)
        self.servo: list[tuple] = []
        self.events: list[str] = []


def make_ur(arm: URArm | None = None) -> tuple[types.ModuleType, types.ModuleType, URArm]:
    """(rtde_control, rtde_receive, the simulated arm) of ur-rtde 1.6."""
    arm = arm or URArm()
    control, clog = _module("rtde_control")
    receive, rlog = _module("rtde_receive")
    crec, _ = _recorder(clog)
    rrec, _ = _recorder(rlog)

    class RTDEControlInterface:
        @crec("RTDEControlInterface")
        def __init__(self, hostname: str, frequency: float = -1.0, flags: int = 1, ur_cap_port: int = 50002,
                     rt_priority: int = 0) -> None:
            self.hostname, self.connected = hostname, True

        def _need_connection(self) -> None:
            if not self.connected:
                raise RuntimeError("RTDE control interface is not connected")

        @crec("RTDEControlInterface.servoL")
        def servoL(self, pose, speed, acceleration, time, lookahead_time, gain, /) -> bool:  # noqa: N802
            self._need_connection()
            pose = [float(v) for v in pose]
            if len(pose) != 6:  # stricter than ur-rtde, which would send a malformed command
                raise ValueError(f"servoL pose needs 6 values (x, y, z, rx, ry, rz), got {len(pose)}")
            for name, v, lo, hi in (("speed", speed, 0.0, 3.14), ("acceleration", acceleration, 0.0, 40.0),
                                    ("lookahead_time", lookahead_time, 0.03, 0.2), ("gain", gain, 100.0, 2000.0)):
                if not lo <= v <= hi:
                    raise ValueError(f"{name} {v} is outside [{lo}, {hi}]")
            arm.servo.append((pose, speed, acceleration, time, lookahead_time, gain))
            arm.pose = np.asarray(pose)
            return True

        @crec("RTDEControlInterface.servoStop")
        def servoStop(self, a: float = 10.0) -> bool:  # noqa: N802
            arm.events.append("servoStop")
            return True

        @crec("RTDEControlInterface.stopScript")
        def stopScript(self) -> None:  # noqa: N802
            arm.events.append("stopScript")

        @crec("RTDEControlInterface.zeroFtSensor")
        def zeroFtSensor(self) -> bool:  # noqa: N802
            self._need_connection()
            arm.ft_offset = FT_BIAS + arm.contact_wrench
            arm.events.append("zeroFtSensor")
            return True

        @crec("RTDEControlInterface.disconnect")
        def disconnect(self) -> None:
            self.connected = False
            arm.events.append("control.disconnect")

    class RTDEReceiveInterface:
        @rrec("RTDEReceiveInterface")
        def __init__(self, hostname: str, frequency: float = -1.0, variables: list | None = None,
                     verbose: bool = False, use_upper_range_registers: bool = False, rt_priority: int = 0) -> None:
            self.connected = True

        @rrec("RTDEReceiveInterface.getActualTCPPose")
        def getActualTCPPose(self) -> list[float]:  # noqa: N802
            return [float(v) for v in arm.pose]

        @rrec("RTDEReceiveInterface.getActualTCPSpeed")
        def getActualTCPSpeed(self) -> list[float]:  # noqa: N802
            return [0.0] * 6

        @rrec("RTDEReceiveInterface.getActualQ")
        def getActualQ(self) -> list[float]:  # noqa: N802
            return [float(v) for v in np.linspace(-1, 1, 6) + np.sum(arm.pose[:3])]

        @rrec("RTDEReceiveInterface.getActualTCPForce")
        def getActualTCPForce(self) -> list[float]:  # noqa: N802
            return [float(v) for v in FT_BIAS + arm.contact_wrench - arm.ft_offset]

        @rrec("RTDEReceiveInterface.disconnect")
        def disconnect(self) -> None:
            self.connected = False
            arm.events.append("receive.disconnect")

    control.RTDEControlInterface = RTDEControlInterface
    receive.RTDEReceiveInterface = RTDEReceiveInterface
    return control, receive, arm


# ---------------------------------------------------------------------------------- flexivrdk
def make_flexivrdk(version: str = "1.9.4", gripper_gate: threading.Event | None = None,
                   zero_polls: int = 2) -> types.ModuleType:
    """flexivrdk ``version`` (1.x, 2.0 or 2.1 API). ``zero_polls``: primitive_states() calls
    before ZeroFTSensor reports terminated."""
    major, minor = (int(v) for v in version.split(".")[:2])
    v2 = major >= 2
    mod, log = _module("flexivrdk")
    mod.__version__ = version
    rec, prop = _recorder(log)

    class Mode(enum.Enum):
        UNKNOWN = 0
        IDLE = 1
        NRT_JOINT_IMPEDANCE = 2
        NRT_JOINT_POSITION = 3
        NRT_PLAN_EXECUTION = 4
        NRT_PRIMITIVE_EXECUTION = 5
        NRT_CARTESIAN_MOTION_FORCE = 6

    class JointGroup(enum.Enum):
        UNKNOWN = 0
        ARMS = 2
        ARM_1 = 3
        ARM_2 = 4

    class RobotStates:
        def __init__(self, pose, twist, q, wrench) -> None:
            self._pose, self._twist, self._q, self._wrench = list(pose), list(twist), list(q), list(wrench)

        tcp_pose = prop("RobotStates.tcp_pose", "_pose")
        q = prop("RobotStates.q", "_q")
        if v2:
            tcp_twist = prop("RobotStates.tcp_twist", "_twist")
            tcp_wrench = prop("RobotStates.tcp_wrench", "_wrench")
        else:
            tcp_vel = prop("RobotStates.tcp_vel", "_twist")
            ext_wrench_in_world = prop("RobotStates.ext_wrench_in_world", "_wrench")

    class NrtCartesianCmd:
        @rec("NrtCartesianCmd")
        def __init__(self, pose_d, wrench_d=(0.0,) * 6, twist_d=(0.0,) * 6, max_linear_vel=0.5,
                     max_angular_vel=1.0, max_linear_acc=2.0, max_angular_acc=5.0) -> None:
            kw = {"max_linear_vel": max_linear_vel, "max_angular_vel": max_angular_vel,
                  "max_linear_acc": max_linear_acc, "max_angular_acc": max_angular_acc}
            self.pose_d = _vector("__init__", pose_d, 7)
            self.wrench_d = _vector("__init__", wrench_d, 6)
            self.limits = kw

    class PrimitiveArgs:
        @rec("PrimitiveArgs")
        def __init__(self, pt_name: str, input_params: dict) -> None:
            if not isinstance(pt_name, str) or not isinstance(input_params, dict):
                raise _incompatible("__init__", "expected (str, dict)")
            self.pt_name, self.input_params = pt_name, input_params

    class PrimitiveStates:
        def __init__(self, values: dict) -> None:
            self._values = values

        names_and_values = prop("PrimitiveStates.names_and_values", "_values")

    class Robot:
        instances: list = []

        @rec("Robot")
        def __init__(self, robot_sn: str, network_interface_whitelist=(), verbose: bool = True, lite: bool = False) -> None:
            m = re.fullmatch(r"([A-Za-z][A-Za-z0-9]*)-(\d+)", robot_sn)
            if m is None:
                raise ValueError(f"[flexiv::rdk::Robot] Format of the provided robot serial number [{robot_sn}] is invalid")
            if (major, minor) >= (2, 1) and m.group(1).startswith("Rizon"):
                raise RuntimeError(f"[flexiv::rdk::Robot] Product model [{m.group(1)}] is not supported")
            self.sn = robot_sn
            self._fault, self._enabled, self._ops = True, False, 0
            self.mode = Mode.IDLE
            self.pose = list(START_POSE)
            self.contact_wrench = np.zeros(6)
            self.ft_offset = np.zeros(6)
            self.force_axes: list[bool] | None = None
            self.targets: list[tuple[list[float], dict]] = []
            self._primitive: str | None = None
            self._primitive_polls = 0
            self.events: list = []
            Robot.instances.append(self)

        @rec("Robot.fault")
        def fault(self) -> bool:
            return self._fault

        @rec("Robot.ClearFault")
        def ClearFault(self, timeout_sec: int = 30) -> bool:  # noqa: N802
            self._fault = False
            self.events.append("ClearFault")
            return True

        if (major, minor) < (2, 1):
            @rec("Robot.Enable")
            def Enable(self) -> None:  # noqa: N802
                if self._fault:
                    raise RuntimeError("cannot enable: the robot has a fault")
                self._enabled = True
                self.events.append("Enable")
        else:
            @rec("Robot.ServoOn")
            def ServoOn(self) -> None:  # noqa: N802
                self._enabled = True

        @rec("Robot.operational")
        def operational(self) -> bool:
            self._ops += self._enabled
            return self._ops > 2

        def _need(self, mode: Mode) -> None:
            if self._ops <= 2:
                raise RuntimeError("robot is not operational")
            if self.mode is not mode:
                raise RuntimeError(f"robot is not in the correct control mode ({self.mode.name}, needs {mode.name})")

        @rec("Robot.SwitchMode")
        def SwitchMode(self, mode, /) -> None:  # noqa: N802
            if not isinstance(mode, Mode):
                raise _incompatible("SwitchMode", f"mode must be a flexivrdk.Mode, got {mode!r}")
            if self._ops <= 2:
                raise RuntimeError("robot is not operational")
            self.mode = mode
            self.events.append(("SwitchMode", mode.name))

        if v2:
            @rec("Robot.groups")
            def groups(self) -> list:
                return [JointGroup.ARM_1]

            def _group(self, group) -> None:
                if not isinstance(group, JointGroup):
                    raise _incompatible("function", f"group must be a JointGroup, got {group!r}")
                if group is not JointGroup.ARM_1:
                    raise ValueError(f"{group} is not an existing single-arm joint group")

            @rec("Robot.SetForceControlAxis")
            def SetForceControlAxis(self, group, enabled_axes, max_linear_vel=(1.0, 1.0, 1.0)) -> None:  # noqa: N802
                self._group(group)
                self._set_axes(enabled_axes)
        else:
            @rec("Robot.SetForceControlAxis")
            def SetForceControlAxis(self, enabled_axes, max_linear_vel=(1.0, 1.0, 1.0)) -> None:  # noqa: N802
                self._set_axes(enabled_axes)

        def _set_axes(self, enabled_axes) -> None:
            if len(enabled_axes) != 6 or not all(isinstance(a, bool) for a in enabled_axes):
                raise _incompatible("SetForceControlAxis", f"enabled_axes must be 6 bools, got {enabled_axes!r}")
            self._need(Mode.NRT_CARTESIAN_MOTION_FORCE)
            self.force_axes = list(enabled_axes)
            self.events.append(("SetForceControlAxis", list(enabled_axes)))

        def _states(self) -> RobotStates:
            wrench = FT_BIAS + self.contact_wrench - self.ft_offset
            return RobotStates(self.pose, [0.0] * 6, np.linspace(-1, 1, 7) + np.sum(self.pose[:3]), wrench)

        if v2:
            @rec("Robot.states")
            def states(self) -> dict:
                return {JointGroup.ARM_1: self._states()}
        else:
            @rec("Robot.states")
            def states(self) -> RobotStates:
                return self._states()

        def _track(self, pose: list[float], limits: dict) -> None:
            self._need(Mode.NRT_CARTESIAN_MOTION_FORCE)
            if not all(v > 0 for v in limits.values()):
                raise ValueError(f"motion limits must be positive, got {limits}")
            self.targets.append((pose, limits))
            self.pose = list(pose)

        if v2:
            @rec("Robot.SendCartesianMotionForce")
            def SendCartesianMotionForce(self, cmds, /) -> None:  # noqa: N802
                if not isinstance(cmds, dict) or not all(isinstance(c, NrtCartesianCmd) for c in cmds.values()):
                    raise _incompatible("SendCartesianMotionForce", f"expected dict[JointGroup, NrtCartesianCmd], got {cmds!r}")
                for group, cmd in cmds.items():
                    self._group(group)
                    self._track(cmd.pose_d, cmd.limits)
        else:
            @rec("Robot.SendCartesianMotionForce")
            def SendCartesianMotionForce(self, pose, wrench=(0.0,) * 6, velocity=(0.0,) * 6,  # noqa: N802
                                         max_linear_vel=0.5, max_angular_vel=1.0, max_linear_acc=2.0,
                                         max_angular_acc=5.0) -> None:
                pose = _vector("SendCartesianMotionForce", pose, 7)
                _vector("SendCartesianMotionForce", wrench, 6)
                _vector("SendCartesianMotionForce", velocity, 6)
                self._track(pose, {"max_linear_vel": max_linear_vel, "max_angular_vel": max_angular_vel,
                                   "max_linear_acc": max_linear_acc, "max_angular_acc": max_angular_acc})

        def _start(self, name: str) -> None:
            self._need(Mode.NRT_PRIMITIVE_EXECUTION)
            self._primitive, self._primitive_polls = name, 0
            self.events.append(("ExecutePrimitive", name))

        if v2:
            @rec("Robot.ExecutePrimitive")
            def ExecutePrimitive(self, primitive_args, block_until_started: bool = True) -> None:  # noqa: N802
                if not isinstance(primitive_args, dict) or not all(isinstance(a, PrimitiveArgs) for a in primitive_args.values()):
                    raise _incompatible("ExecutePrimitive", "expected dict[JointGroup, PrimitiveArgs]")
                for group, args in primitive_args.items():
                    self._group(group)
                    self._start(args.pt_name)
        else:
            @rec("Robot.ExecutePrimitive")
            def ExecutePrimitive(self, primitive_name, input_params, block_until_started: bool = True) -> None:  # noqa: N802
                if not isinstance(primitive_name, str) or not isinstance(input_params, dict):
                    raise _incompatible("ExecutePrimitive", "expected (str, dict)")
                self._start(primitive_name)

        def _primitive_values(self) -> dict:
            if self._primitive is None:
                return {}
            self._primitive_polls += 1
            done = self._primitive_polls > zero_polls
            if done and self._primitive == "ZeroFTSensor":
                self.ft_offset = FT_BIAS + self.contact_wrench
            return {"terminated": int(done)}

        if v2:
            @rec("Robot.primitive_states")
            def primitive_states(self) -> dict:
                return {JointGroup.ARM_1: PrimitiveStates(self._primitive_values())}
        else:
            @rec("Robot.primitive_states")
            def primitive_states(self) -> dict:
                return self._primitive_values()

        @rec("Robot.Stop")
        def Stop(self) -> None:  # noqa: N802
            self.events.append("Stop")

    class GripperStates:
        def __init__(self, width: float) -> None:
            self._width = width

        width = prop("GripperStates.width", "_width")

    class Gripper:
        instances: list = []

        @rec("Gripper")
        def __init__(self, robot, /) -> None:
            if not isinstance(robot, Robot):
                raise _incompatible("__init__", "expected a flexivrdk.Robot")
            self.name: str | None = None
            self._width = 0.05
            self.started: list[tuple[float, float, float]] = []
            self.finished: list[tuple[float, float, float]] = []
            self.move_entered = threading.Event()
            Gripper.instances.append(self)

        @rec("Gripper.Enable")
        def Enable(self, name: str, /) -> None:  # noqa: N802
            self.name = name

        @rec("Gripper.Move")
        def Move(self, width: float, velocity: float, force_limit: float, /) -> None:  # noqa: N802
            if self.name is None:
                raise RuntimeError("no gripper is enabled")
            self.started.append((float(width), float(velocity), float(force_limit)))
            _wait(gripper_gate, self.move_entered)
            self._width = float(width)
            self.finished.append((float(width), float(velocity), float(force_limit)))

        @rec("Gripper.states")
        def states(self) -> GripperStates:
            return GripperStates(self._width)

    for obj in (Mode, RobotStates, Robot, GripperStates, Gripper):
        setattr(mod, obj.__name__, obj)
    if v2:
        for obj in (JointGroup, NrtCartesianCmd, PrimitiveArgs, PrimitiveStates):
            setattr(mod, obj.__name__, obj)
    return mod
