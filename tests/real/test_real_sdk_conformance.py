"""Each driver's SDK_CALLS table against the real SDK (when importable) and against the code.

Two halves close the loop: (1) every call the driver makes, recorded on a strict fake of its
SDK, is in its table; (2) every table entry exists in the installed SDK and the SDK's own
signature accepts it as the driver makes it. CI installs franky-control and ur-rtde and sets
``TACTKIT_REQUIRE_SDKS=franka,ur`` so those two cannot silently skip; flexivrdk has no wheel
for Python 3.11 and is checked where it installs (3.10 / 3.12).
"""

from __future__ import annotations

import importlib
import os
import types

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sdk_fakes import START_POSE, make_flexivrdk, make_franky, make_ur

from tactkit.real import quat as Q
from tactkit.real.drivers import (
    FlexivConfig,
    FlexivRobot,
    FrankaConfig,
    FrankaRobot,
    URConfig,
    URRobot,
)
from tactkit.real.drivers import flexiv as flexiv_driver
from tactkit.real.drivers import franka as franka_driver
from tactkit.real.drivers import ur as ur_driver
from tactkit.real.drivers._conformance import SdkCall, binds, check_calls, docstring_signatures
from tactkit.real.robot import ArmCommand, RobotCommand

REQUIRED = {s.strip() for s in os.environ.get("TACTKIT_REQUIRE_SDKS", "").split(",") if s.strip()}


def sdk_or_skip(module: str, extra: str) -> types.ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        if extra in REQUIRED:
            pytest.fail(f"TACTKIT_REQUIRE_SDKS requires {module!r} ({extra}) but it does not import: {exc}")
        pytest.skip(f"{module} not installed (pip install \"tactkit[{extra}]\"): its conformance is not checked here")


def _exercise(robot) -> None:
    """Every driver path: connect, read, stream (with a gripper move), disconnect."""
    robot.connect()
    robot.read_state()
    target = START_POSE.copy()
    target[2] += 0.001
    robot.send(RobotCommand(0.0, {"arm": ArmCommand(target, 0.02, 10.0)}))
    jobs = getattr(robot, "gripper_jobs", None)
    if jobs is not None:
        assert jobs.wait_idle(10.0)
    poller = getattr(robot, "gripper_width", None)
    if poller is not None:  # let the poller read at least once
        for _ in range(10_000):
            if poller.reads:
                break
            poller._stop.wait(0.001)
    robot.read_state()
    robot.disconnect()


def _recorded(*modules) -> set[tuple]:
    out = set()
    for mod in modules:
        for path, n, kws in mod.calls:
            if path.endswith("="):  # a property assignment
                out.add((mod.__name__, path[:-1], None, (), True))
            else:
                out.add((mod.__name__, path, n, tuple(sorted(kws)), False))
    return out


def _table(calls) -> set[tuple]:
    return {(c.module, c.attribute, c.positional, tuple(sorted(c.keywords)), c.write) for c in calls}


# -------------------------------------------------- (1) the code makes only the calls in its table
def test_franka_driver_calls_are_all_in_its_table():
    sdk = make_franky()
    _exercise(FrankaRobot(FrankaConfig(host="172.16.0.2"), sdk=sdk))
    missing = _recorded(sdk) - _table(franka_driver.SDK_CALLS)
    assert not missing, f"calls the driver makes but its SDK_CALLS table lacks: {sorted(missing, key=str)}"


@pytest.mark.parametrize("version", ["1.9.4", "2.0.0"])
def test_flexiv_driver_calls_are_all_in_its_table(version):
    sdk = make_flexivrdk(version)
    _exercise(FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", gripper_name="Flexiv-GN01"), sdk=sdk))
    missing = _recorded(sdk) - _table(flexiv_driver.sdk_calls(sdk))
    assert not missing, f"calls the driver makes but its table lacks: {sorted(missing, key=str)}"


def test_ur_driver_calls_are_all_in_its_table():
    control, receive, _ = make_ur()
    _exercise(URRobot(URConfig(host="10.0.0.2"), control=control, receive=receive))
    missing = _recorded(control, receive) - _table(ur_driver.SDK_CALLS)
    assert not missing, f"calls the driver makes but its SDK_CALLS table lacks: {sorted(missing, key=str)}"


def test_the_fakes_accept_every_table_entry():
    """The checker reads plain-Python signatures too, and the fakes implement the tables."""
    control, receive, _ = make_ur()
    assert check_calls(franka_driver.SDK_CALLS, {"franky": make_franky()}) == []
    assert check_calls(ur_driver.SDK_CALLS, {"rtde_control": control, "rtde_receive": receive}) == []
    for version in ("1.9.4", "2.0.0"):
        sdk = make_flexivrdk(version)
        assert check_calls(flexiv_driver.sdk_calls(sdk), {"flexivrdk": sdk}) == []


# -------------------------------------------------- the checker itself can fail
PYBIND_DOC = """servoL(self: rtde_control.RTDEControlInterface, arg0: list[float], arg1: float, arg2: float, \
arg3: float, arg4: float, arg5: float) -> bool

Servo to position (linear in tool-space)
"""

OVERLOADED_DOC = """move(*args, **kwargs)
Overloaded function.

1. move(self: franky._franky._RobotInternal, motion: franky._franky.BaseCartesianPoseMotion, asynchronous: bool = False, \
limit_rate: bool = False, cutoff_frequency: typing.SupportsFloat | typing.SupportsIndex = 100.0) -> None

Execute the given motion.

2. move(self: franky._franky._RobotInternal, motion: franky._franky.BaseJointPositionMotion, asynchronous: bool = False) -> None
"""


def test_signature_checker_rejects_what_pybind11_rejects():
    (servo,) = docstring_signatures(types.SimpleNamespace(__doc__=PYBIND_DOC), "servoL")
    assert binds(servo, 7, ()) is None  # self + 6
    assert "positional" in binds(servo, 8, ())
    assert "requires arg5" in binds(servo, 6, ())
    assert "keyword argument 'gain'" in binds(servo, 6, ("gain",))  # argN are positional-only
    overloads = docstring_signatures(types.SimpleNamespace(__doc__=OVERLOADED_DOC), "move")
    assert len(overloads) == 2
    assert any(binds(p, 2, ("asynchronous",)) is None for p in overloads)
    assert all(binds(p, 2, ("asynchronus",)) is not None for p in overloads)

    class Interface:
        def servoL(self, pose, speed, acceleration, time, lookahead_time, /):  # noqa: N802 - one parameter short
            return True

    mod = types.SimpleNamespace(RTDEControlInterface=Interface, __name__="rtde_control")
    problems = check_calls([SdkCall("rtde_control", "RTDEControlInterface.servoL", 6),
                            SdkCall("rtde_control", "RTDEControlInterface.zeroFtSensor", 0),
                            SdkCall("rtde_control", "RTDEControlInterface.servoL", 5, ("gain",))], {"rtde_control": mod})
    assert len(problems) == 3
    assert "at most 6 positional" in problems[0]
    assert "no attribute 'zeroFtSensor'" in problems[1]
    assert "no keyword argument 'gain'" in problems[2]


# -------------------------------------------------- (2) the table against the real SDKs
def test_franky_accepts_every_call_the_driver_makes():
    franky = sdk_or_skip("franky", "franka")
    assert check_calls(franka_driver.SDK_CALLS, {"franky": franky}) == []
    # and the check reads franky's real signatures: calls it would reject are reported
    wrong = [SdkCall("franky", "Robot.move", 1, ("asynchronus",)), SdkCall("franky", "Gripper.move", 3),
             SdkCall("franky", "CartesianMotion", 2, ("return_when_done",)), SdkCall("franky", "Robot.current_pose_xyzw")]
    assert len(check_calls(wrong, {"franky": franky})) == len(wrong)


def test_franky_affine_from_a_wxyz_target_through_the_real_types():
    franky = sdk_or_skip("franky", "franka")
    rng = np.random.default_rng(0)
    quats = [START_POSE[3:], [1.0, 0, 0, 0], *Rotation.random(6, random_state=1).as_quat(scalar_first=True)]
    for q in quats:
        pose = np.concatenate([rng.uniform(-0.5, 0.5, 3), q])
        affine = franka_driver.affine_from_pose(franky, pose)
        matrix = np.asarray(affine.matrix)
        np.testing.assert_allclose(matrix[:3, 3], pose[:3], atol=1e-12)
        np.testing.assert_allclose(matrix[:3, :3], Rotation.from_quat(q, scalar_first=True).as_matrix(), atol=1e-9)
        back = franka_driver.pose_from_affine(affine)
        np.testing.assert_allclose(back[:3], pose[:3], atol=1e-12)
        assert Q.angle(back[3:], np.asarray(q, float)) < 1e-9
        motion = franky.CartesianMotion(affine, franky.ReferenceType.Absolute, return_when_finished=False)
        assert motion is not None


def test_ur_rtde_accepts_every_call_the_driver_makes():
    control = sdk_or_skip("rtde_control", "ur")
    receive = sdk_or_skip("rtde_receive", "ur")
    assert check_calls(ur_driver.SDK_CALLS, {"rtde_control": control, "rtde_receive": receive}) == []
    # servoL's binding is positional-only (arg0..arg5): the keyword call the old fake allowed is reported
    wrong = [SdkCall("rtde_control", "RTDEControlInterface.servoL", 4, ("lookahead_time", "gain")),
             SdkCall("rtde_control", "RTDEControlInterface.servoL", 5)]
    assert len(check_calls(wrong, {"rtde_control": control})) == len(wrong)


def test_flexivrdk_accepts_every_call_the_driver_makes():
    sdk = sdk_or_skip("flexivrdk", "flexiv")
    if not hasattr(sdk.Robot, "Enable"):  # RDK >= 2.1: no Rizon support; the driver must say so
        with pytest.raises(ValueError, match="flexivrdk>=1.6,<2.1"):
            flexiv_driver.rdk_generation(sdk)
        return
    assert check_calls(flexiv_driver.sdk_calls(sdk), {"flexivrdk": sdk}) == []
    if flexiv_driver.rdk_generation(sdk) == 2:
        cmd = sdk.NrtCartesianCmd([float(v) for v in START_POSE], max_linear_vel=0.3, max_angular_vel=1.0,
                                  max_linear_acc=2.0, max_angular_acc=5.0)
        np.testing.assert_allclose(cmd.pose_d, START_POSE)
        with pytest.raises(TypeError):
            sdk.NrtCartesianCmd([float(v) for v in START_POSE[:6]])
        assert sdk.PrimitiveArgs("ZeroFTSensor", {}).pt_name == "ZeroFTSensor"


# -------------------------------------------------- UR rotation vectors (ur-rtde has no rotation type)
@pytest.mark.parametrize("angle", [np.pi - 1e-9, np.pi - 1e-6, np.pi, np.pi + 1e-6, 1e-9, 0.0, 2.0])
def test_ur_rotation_vector_round_trip_near_pi(angle):
    for axis in ([1, 0, 0], [0, 0, 1], [1, -2, 0.5]):
        axis = np.asarray(axis, float) / np.linalg.norm(axis)
        rot = Rotation.from_rotvec(angle * axis)
        pose = np.concatenate([[0.4, -0.1, 0.2], rot.as_quat(scalar_first=True)])
        servo = ur_driver.servo_pose(pose)
        assert len(servo) == 6 and np.linalg.norm(servo[3:]) <= np.pi + 1e-12  # the shortest rotation
        np.testing.assert_allclose(Rotation.from_rotvec(servo[3:]).as_matrix(), rot.as_matrix(), atol=1e-9)
        # what the robot reports back (it may flip the vector's sign at pi) reads the same orientation
        for reported in (servo[3:], -np.asarray(servo[3:]) if abs(np.linalg.norm(servo[3:]) - np.pi) < 1e-5 else servo[3:]):
            back = ur_driver.pose_from_ur([*servo[:3], *reported])
            assert Q.angle(back[3:], pose[3:]) < 1e-5
            assert back[3] >= 0  # canonical
