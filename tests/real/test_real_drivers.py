"""Drivers against fakes of their SDKs' interfaces (same call names and signatures)."""

from __future__ import annotations

import types

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from tactkit.real.drivers import (
    FlexivConfig,
    FlexivRobot,
    FrankaConfig,
    FrankaRobot,
    URConfig,
    URRobot,
)
from tactkit.real.robot import ROBOTS, ArmCommand, RobotCommand

POSE = np.array([0.5, 0.1, 0.3, 0.0, 1.0, 0.0, 0.0])  # x, y, z, qw, qx, qy, qz
WRENCH = [1.0, -2.0, 15.0, 0.1, 0.2, 0.3]


# ---------------------------------------------------------------- flexivrdk fake
class _FlexivStates:
    tcp_pose = list(POSE)
    tcp_vel = [0.01, 0, 0, 0, 0, 0]
    q = [0.0] * 7
    ext_wrench_in_world = WRENCH


class FakeFlexivRobot:
    def __init__(self, serial_number: str) -> None:
        self.sn, self.calls, self._fault, self._ops = serial_number, [], True, 0

    def fault(self) -> bool:
        return self._fault

    def ClearFault(self, timeout_sec: int = 30) -> bool:  # noqa: N802
        self.calls.append("ClearFault")
        self._fault = False
        return True

    def Enable(self) -> None:  # noqa: N802
        self.calls.append("Enable")

    def operational(self, verbose: bool = True) -> bool:
        self._ops += 1
        return self._ops > 2

    def SwitchMode(self, mode) -> None:  # noqa: N802
        self.calls.append(("SwitchMode", mode))

    def SetForceControlAxis(self, enabled_axes, max_linear_vel=None) -> None:  # noqa: N802
        self.calls.append(("SetForceControlAxis", list(enabled_axes)))

    def states(self) -> _FlexivStates:
        return _FlexivStates()

    def SendCartesianMotionForce(self, pose, wrench=None, velocity=None, max_linear_vel=0.5,  # noqa: N802
                                 max_angular_vel=1.0, max_linear_acc=2.0, max_angular_acc=5.0) -> None:
        self.calls.append(("SendCartesianMotionForce", list(pose), list(wrench), max_linear_vel, max_angular_vel))

    def Stop(self) -> None:  # noqa: N802
        self.calls.append("Stop")


class FakeFlexivGripper:
    def __init__(self, robot) -> None:
        self.robot, self.moves, self.name = robot, [], None

    def Enable(self, name: str) -> None:  # noqa: N802
        self.name = name

    def Move(self, width: float, velocity: float, force_limit: float = 0) -> None:  # noqa: N802
        self.moves.append((width, velocity, force_limit))

    def states(self):
        return types.SimpleNamespace(width=0.05, force=0.0)


flexivrdk = types.SimpleNamespace(
    Robot=FakeFlexivRobot, Gripper=FakeFlexivGripper,
    Mode=types.SimpleNamespace(NRT_CARTESIAN_MOTION_FORCE="NRT_CARTESIAN_MOTION_FORCE"),
)


def test_flexiv_driver_enables_streams_and_stops():
    robot = FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", gripper_name="Flexiv-GN01"), sdk=flexivrdk)
    robot.connect()
    fr = robot.robot
    assert fr.sn == "Rizon4-123456"
    assert fr.calls[:3] == ["ClearFault", "Enable", ("SwitchMode", "NRT_CARTESIAN_MOTION_FORCE")]
    assert ("SetForceControlAxis", [False] * 6) in fr.calls
    state = robot.read_state().arms["arm"]
    np.testing.assert_array_equal(state.tcp_pose, POSE)
    np.testing.assert_array_equal(state.wrench, WRENCH)
    assert state.gripper_width == 0.05
    target = POSE + np.array([0.01, 0, 0, 0, 0, 0, 0])
    robot.send(RobotCommand(0.0, {"arm": ArmCommand(target, gripper_width=0.03, gripper_force=15.0)}))
    robot.send(RobotCommand(0.01, {"arm": ArmCommand(target, gripper_width=0.0301)}))  # within deadband
    name, pose, wrench, vmax, wmax = fr.calls[-1]
    assert name == "SendCartesianMotionForce" and pose == list(target) and wrench == [0.0] * 6
    assert (vmax, wmax) == (0.5, 1.0)
    assert robot.gripper.moves == [(0.03, 0.1, 15.0)]
    robot.disconnect()
    assert fr.calls[-1] == "Stop"


def test_flexiv_config_is_checked_and_registered():
    with pytest.raises(ValueError, match="serial_number"):
        FlexivRobot(FlexivConfig())
    with pytest.raises(ValueError, match="rate_hz"):
        FlexivConfig(serial_number="x", rate_hz=500)
    assert isinstance(ROBOTS.build(FlexivConfig(serial_number="x"), sdk=flexivrdk), FlexivRobot)
    assert ROBOTS.config_class("flexiv") is FlexivConfig


def test_missing_sdk_names_the_extra():
    robot = FlexivRobot(FlexivConfig(serial_number="x"))
    with pytest.raises(ImportError, match=r"tactkit\[flexiv\]"):
        robot.connect()


# ---------------------------------------------------------------- franky fake
class Affine:
    def __init__(self, translation=(0, 0, 0), quaternion=(0, 0, 0, 1)) -> None:
        self.translation, self.quaternion = np.asarray(translation, float), np.asarray(quaternion, float)


class CartesianMotion:
    def __init__(self, target, reference_type=None, relative_dynamics_factor=1.0) -> None:
        self.target, self.reference_type = target, reference_type


class FakeFrankyRobot:
    def __init__(self, fci_hostname: str) -> None:
        self.host, self.moves, self.relative_dynamics_factor, self.recovered = fci_hostname, [], 1.0, False
        ee = Affine(POSE[:3], [POSE[4], POSE[5], POSE[6], POSE[3]])
        twist = types.SimpleNamespace(linear=np.array([0.01, 0, 0]), angular=np.zeros(3))
        self.current_cartesian_state = types.SimpleNamespace(
            pose=types.SimpleNamespace(end_effector_pose=ee),
            velocity=types.SimpleNamespace(end_effector_twist=twist),
        )
        self.current_joint_state = types.SimpleNamespace(position=np.zeros(7))
        self.state = types.SimpleNamespace(O_F_ext_hat_K=np.array(WRENCH))

    def recover_from_errors(self) -> None:
        self.recovered = True

    def move(self, motion, asynchronous: bool = False) -> None:
        self.moves.append((motion, asynchronous))

    def join_motion(self, timeout=None) -> bool:
        return True


class FakeFrankyGripper:
    def __init__(self, fci_hostname: str) -> None:
        self.width, self.moves = 0.08, []

    def move_async(self, width: float, speed: float):
        self.moves.append((width, speed))


franky = types.SimpleNamespace(
    Robot=FakeFrankyRobot, Gripper=FakeFrankyGripper, Affine=Affine, CartesianMotion=CartesianMotion,
    ReferenceType=types.SimpleNamespace(Absolute="Absolute", Relative="Relative"),
)


def test_franka_driver_streams_asynchronous_absolute_motions():
    robot = FrankaRobot(FrankaConfig(host="172.16.0.2", relative_dynamics_factor=0.2), sdk=franky)
    robot.connect()
    fr = robot.robot
    assert fr.recovered and fr.relative_dynamics_factor == 0.2
    state = robot.read_state().arms["arm"]
    np.testing.assert_allclose(state.tcp_pose, POSE)  # x,y,z,w quaternion converted to w,x,y,z
    np.testing.assert_allclose(state.wrench, -np.array(WRENCH))
    target = POSE.copy()
    target[3:] = Rotation.from_euler("x", 170, degrees=True).as_quat(scalar_first=True)
    robot.send(RobotCommand(0.0, {"arm": ArmCommand(target, gripper_width=0.02)}))
    motion, asynchronous = fr.moves[-1]
    assert asynchronous and motion.reference_type == "Absolute"
    np.testing.assert_allclose(motion.target.translation, target[:3])
    np.testing.assert_allclose(motion.target.quaternion, [*target[4:], target[3]])
    assert robot.gripper.moves == [(0.02, 0.05)]
    robot.disconnect()
    assert robot.robot is None and len(fr.moves) == 2  # a final hold at the measured pose


# ---------------------------------------------------------------- ur_rtde fake
class FakeRTDEControl:
    def __init__(self, hostname: str, frequency: float = -1.0, flags: int = 0) -> None:
        self.host, self.servo, self.stopped = hostname, [], []

    def servoL(self, pose, speed, acceleration, time, lookahead_time, gain) -> bool:  # noqa: N802
        self.servo.append((list(pose), speed, acceleration, time, lookahead_time, gain))
        return True

    def servoStop(self, a: float = 10.0) -> bool:  # noqa: N802
        self.stopped.append("servoStop")
        return True

    def stopScript(self) -> None:  # noqa: N802
        self.stopped.append("stopScript")


class FakeRTDEReceive:
    def __init__(self, hostname: str, frequency: float = -1.0) -> None:
        self.rotvec = Rotation.from_quat(POSE[3:], scalar_first=True).as_rotvec()
        self.disconnected = False

    def getActualTCPPose(self):  # noqa: N802
        return [*POSE[:3], *self.rotvec]

    def getActualTCPSpeed(self):  # noqa: N802
        return [0.0] * 6

    def getActualQ(self):  # noqa: N802
        return [0.0] * 6

    def getActualTCPForce(self):  # noqa: N802
        return list(WRENCH)

    def disconnect(self) -> None:
        self.disconnected = True


def test_ur_driver_servol_with_axis_angle():
    robot = URRobot(
        URConfig(host="10.0.0.2"),
        control=types.SimpleNamespace(RTDEControlInterface=FakeRTDEControl),
        receive=types.SimpleNamespace(RTDEReceiveInterface=FakeRTDEReceive),
    )
    robot.connect()
    state = robot.read_state().arms["arm"]
    np.testing.assert_allclose(state.tcp_pose, POSE, atol=1e-12)
    np.testing.assert_array_equal(state.wrench, WRENCH)
    target = POSE.copy()
    target[3:] = Rotation.from_rotvec([0.1, -0.2, 0.3]).as_quat(scalar_first=True)
    robot.send(RobotCommand(0.0, {"arm": ArmCommand(target)}))
    pose, speed, acc, t, lookahead, gain = robot.rtde_c.servo[-1]
    np.testing.assert_allclose(pose, [*target[:3], 0.1, -0.2, 0.3], atol=1e-12)
    assert t == pytest.approx(1 / 500) and lookahead == 0.1 and gain == 300.0
    c, r = robot.rtde_c, robot.rtde_r
    robot.disconnect()
    assert c.stopped == ["servoStop", "stopScript"] and r.disconnected
    with pytest.raises(ValueError, match="gain"):
        URConfig(host="x", gain=5000)
