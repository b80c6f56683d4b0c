"""Drivers against strict fakes of their SDKs (same names, signatures and rejections)."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from sdk_fakes import FT_BIAS, START_POSE, make_flexivrdk, make_franky, make_ur

from tactkit.real.drivers import (
    FlexivConfig,
    FlexivRobot,
    FrankaConfig,
    FrankaRobot,
    URConfig,
    URRobot,
)
from tactkit.real.drivers._worker import LatestWins
from tactkit.real.robot import ROBOTS, ArmCommand, RobotCommand


def _cmd(pose, width=None, force=None, t=0.0) -> RobotCommand:
    return RobotCommand(t, {"arm": ArmCommand(np.asarray(pose, float), width, force)})


def _until(pred, what: str, timeout: float = 10.0) -> None:
    """Wait for another thread's progress (a generous bound: only a hang fails)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.001)


# ------------------------------------------------------------------------------------- flexiv
@pytest.mark.parametrize("version", ["1.9.4", "2.0.0"])
def test_flexiv_connects_zeroes_the_sensor_streams_and_stops(version):
    sdk = make_flexivrdk(version)
    robot = FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", gripper_name="Flexiv-GN01"), sdk=sdk)
    robot.connect()
    fr = robot.robot
    assert fr.sn == "Rizon4-123456"
    assert fr.events == [
        "ClearFault", "Enable",
        ("SwitchMode", "NRT_PRIMITIVE_EXECUTION"), ("ExecutePrimitive", "ZeroFTSensor"),
        ("SwitchMode", "NRT_CARTESIAN_MOTION_FORCE"), ("SetForceControlAxis", [False] * 6),
    ]
    state = robot.read_state().arms["arm"]
    np.testing.assert_array_equal(state.tcp_pose, START_POSE)
    np.testing.assert_allclose(state.wrench, 0.0, atol=1e-12)  # the bias was zeroed
    fr.contact_wrench = np.array([0.0, 0.0, 12.0, 0.0, 0.0, 0.0])  # pressing down: ON the tool, world frame
    np.testing.assert_allclose(robot.read_state().arms["arm"].wrench, [0, 0, 12.0, 0, 0, 0], atol=1e-12)
    assert state.gripper_width == 0.05
    target = START_POSE + np.array([0.01, 0, 0, 0, 0, 0, 0])
    for k, (width, force) in enumerate([(0.03, 15.0), (0.0301, None), (0.06, None)]):
        robot.send(_cmd(target, width, force, t=0.01 * k))  # 0.0301: within the deadband, not re-sent
        assert robot.gripper_jobs.wait_idle(5.0)  # (no force given: the configured default)
    pose, limits = fr.targets[-1]
    assert pose == list(target) and len(fr.targets) == 3
    assert limits == {"max_linear_vel": 0.5, "max_angular_vel": 1.0, "max_linear_acc": 2.0, "max_angular_acc": 5.0}
    assert robot.gripper.finished == [(0.03, 0.1, 15.0), (0.06, 0.1, 20.0)]
    robot.disconnect()
    assert fr.events[-1] == "Stop" and robot.robot is None


def test_flexiv_zeroing_is_configurable():
    sdk = make_flexivrdk("2.0.0")
    robot = FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", zero_ft_sensor=False), sdk=sdk)
    robot.connect()
    assert not any(isinstance(e, tuple) and e[0] == "ExecutePrimitive" for e in robot.robot.events)
    np.testing.assert_allclose(robot.read_state().arms["arm"].wrench, FT_BIAS)  # uncalibrated offset remains


def test_flexiv_zeroing_times_out_with_a_clear_error():
    sdk = make_flexivrdk("1.9.4", zero_polls=10**9)
    robot = FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", zero_ft_timeout=0.2), sdk=sdk)
    with pytest.raises(RuntimeError, match="ZeroFTSensor"):
        robot.connect()


def test_flexiv_refuses_rdk_2_1_which_dropped_rizon():
    sdk = make_flexivrdk("2.1.0")
    with pytest.raises(RuntimeError, match=r"Product model \[Rizon4\] is not supported"):
        sdk.Robot("Rizon4-123456")  # what the real 2.1.0 does (verified against the wheel)
    robot = FlexivRobot(FlexivConfig(serial_number="Rizon4-123456"), sdk=sdk)
    with pytest.raises(ValueError, match=r"2\.1.*flexivrdk>=1.6,<2.1"):
        robot.connect()


def test_flexiv_v2_unknown_joint_group_names_the_groups():
    robot = FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", joint_group="ARM_2"), sdk=make_flexivrdk("2.0.0"))
    with pytest.raises(ValueError, match=r"joint_group='ARM_2'.*ARM_1"):
        robot.connect()


def test_flexiv_fakes_reject_what_the_sdk_rejects():
    for version in ("1.9.4", "2.0.0"):
        sdk = make_flexivrdk(version)
        r = sdk.Robot("Rizon4-123456")
        r.ClearFault()
        r.Enable()
        while not r.operational():
            pass
        with pytest.raises(TypeError, match="incompatible"):
            r.SwitchMode("NRT_CARTESIAN_MOTION_FORCE")  # a string is not a Mode
        with pytest.raises(TypeError):
            r.SwitchMode(mode=sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)  # positional-only (arg0 in 1.6 / 2.0)
        g = sdk.Gripper(r)
        g.Enable("Flexiv-GN01")
        with pytest.raises(TypeError):
            g.Move(0.02, 0.1)  # force_limit has no default
        if version.startswith("1"):
            with pytest.raises(RuntimeError, match="control mode"):
                r.SendCartesianMotionForce(list(START_POSE))  # still IDLE
            r.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
            with pytest.raises(TypeError, match="expected 7"):
                r.SendCartesianMotionForce(list(START_POSE[:6]))
            with pytest.raises(TypeError, match="expected 6"):
                r.SendCartesianMotionForce(list(START_POSE), [0.0] * 5)
            with pytest.raises(TypeError):
                r.SetForceControlAxis(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE, [False] * 6)  # 1.x takes no group
        else:
            with pytest.raises(TypeError, match="expected 7"):
                sdk.NrtCartesianCmd(list(START_POSE[:6]))
            r.SwitchMode(sdk.Mode.NRT_CARTESIAN_MOTION_FORCE)
            with pytest.raises(TypeError):
                r.SetForceControlAxis([False] * 6)  # 2.0 needs the group first
            with pytest.raises(TypeError, match="dict"):
                r.SendCartesianMotionForce(list(START_POSE))
    with pytest.raises(ValueError, match="Format"):
        make_flexivrdk("1.9.4").Robot("Rizon4 123456")


def test_flexiv_config_is_checked_and_registered():
    with pytest.raises(ValueError, match="serial_number"):
        FlexivRobot(FlexivConfig())
    with pytest.raises(ValueError, match="rate_hz"):
        FlexivConfig(serial_number="x", rate_hz=500)
    with pytest.raises(ValueError, match="max_linear_vel"):
        FlexivConfig(serial_number="x", max_linear_vel=0.0)
    assert isinstance(ROBOTS.build(FlexivConfig(serial_number="x"), sdk=make_flexivrdk()), FlexivRobot)
    assert ROBOTS.config_class("flexiv") is FlexivConfig


@pytest.mark.parametrize("build, module, extra", [
    (lambda: FlexivRobot(FlexivConfig(serial_number="Rizon4-1")), "flexivrdk", "flexiv"),
    (lambda: FrankaRobot(FrankaConfig(host="172.16.0.2")), "franky", "franka"),
    (lambda: URRobot(URConfig(host="10.0.0.2")), "rtde_control", "ur"),
])
def test_missing_sdk_names_the_extra(monkeypatch, build, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed, even where it is
    with pytest.raises(ImportError, match=rf"pip install \"tactkit\[{extra}\]\"") as info:
        build().connect()
    if extra == "flexiv":
        assert "3.10 and 3.12" in str(info.value) and "this is Python" in str(info.value)


# ------------------------------------------------------------------------------------- franka
def test_franka_streams_holding_motions_and_converts_state():
    sdk = make_franky(wrench=(0.0, 0.0, -5.0, 0.0, 0.0, 0.0))
    robot = FrankaRobot(FrankaConfig(host="172.16.0.2", relative_dynamics_factor=0.2, gripper=False), sdk=sdk)
    robot.connect()
    fr = robot.robot
    assert fr.relative_dynamics_factor == 0.2
    state = robot.read_state().arms["arm"]
    np.testing.assert_allclose(state.tcp_pose, START_POSE)  # franky's x,y,z,w converted to w,x,y,z
    np.testing.assert_allclose(state.wrench, [0, 0, 5.0, 0, 0, 0])  # franky's -5 N (robot pushes down) is +5 ON the tool
    assert state.wrench.shape == (6,) and np.isnan(state.gripper_width)
    for k in range(5):
        target = START_POSE.copy()
        target[2] += 0.001 * k
        target[3:] = Rotation.from_euler("x", 170 + k, degrees=True).as_quat(scalar_first=True)
        robot.send(_cmd(target, t=0.01 * k))
    motion = fr.motions[-1]
    assert motion.reference_type is sdk.ReferenceType.Absolute and not motion.return_when_finished
    np.testing.assert_allclose(motion.target._t, target[:3])
    np.testing.assert_allclose(motion.target._q, [*target[4:], target[3]])
    np.testing.assert_allclose(robot.read_state().arms["arm"].tcp_pose[:3], target[:3])
    # streaming with return_when_finished=False keeps one control loop for the whole stream;
    # franky's default would end the motion at every reached target and restart the loop
    assert fr.control_loop_starts == 1 and fr.in_control
    robot.disconnect()
    assert robot.robot is None
    # the final hold ends the motion, so join_motion returns without a stop()
    assert fr.motions[-1].return_when_finished and not fr.in_control and not fr.stopped


def test_franka_gripper_calls_never_block_send_and_the_newest_width_wins():
    move_gate, width_gate = threading.Event(), threading.Event()
    sdk = make_franky(gripper_gate=move_gate, width_gate=width_gate)
    robot = FrankaRobot(FrankaConfig(host="172.16.0.2"), sdk=sdk)
    robot.connect()
    gripper = robot.gripper
    _until(gripper.width_entered.is_set, "the width poller to enter Gripper.width")
    # the width read is blocked in the SDK: read_state still returns, without a width yet
    assert np.isnan(robot.read_state().arms["arm"].gripper_width)
    robot.send(_cmd(START_POSE, 0.02))
    _until(gripper.move_entered.is_set, "the worker to enter Gripper.move")
    for k, width in enumerate([0.03, 0.04, 0.05]):  # while the first move is blocked
        robot.send(_cmd(START_POSE, width, t=0.01 * (k + 1)))
    # every send() returned although the SDK call it queued behind has not been released
    assert not move_gate.is_set() and len(robot.robot.motions) == 4
    assert gripper.started == [(0.02, 0.05)] and gripper.finished == []
    move_gate.set()
    assert robot.gripper_jobs.wait_idle(5.0)
    assert gripper.finished == [(0.02, 0.05), (0.05, 0.05)]  # 0.03 and 0.04 were superseded
    assert robot.gripper_jobs.replaced == 2
    width_gate.set()
    _until(lambda: robot.read_state().arms["arm"].gripper_width == 0.05, "the polled width")
    robot.disconnect()


def test_franka_worker_survives_a_failing_gripper_call(caplog):
    worker = LatestWins("test-worker")
    calls = []

    def fail():
        calls.append("fail")
        raise RuntimeError("gripper CommandException")

    worker.submit(fail)
    worker.wait_idle(5.0)
    worker.submit(lambda: calls.append("ok"))
    worker.wait_idle(5.0)
    assert calls == ["fail", "ok"] and isinstance(worker.last_error, RuntimeError)
    assert "gripper CommandException" in caplog.text
    assert worker.close()
    with pytest.raises(RuntimeError, match="closed"):
        worker.submit(lambda: None)


def test_franky_fakes_reject_what_the_sdk_rejects():
    sdk = make_franky()
    with pytest.raises(TypeError, match="expected 3"):
        sdk.Affine([0.1, 0.2], [0, 0, 0, 1])
    with pytest.raises(TypeError, match="expected 4"):
        sdk.Affine([0.1, 0.2, 0.3], [1, 0, 0])
    affine = sdk.Affine([0.1, 0.2, 0.3], [0, 0, 0, 1])
    with pytest.raises(TypeError, match="ReferenceType"):
        sdk.CartesianMotion(affine, "Absolute")
    with pytest.raises(TypeError):
        sdk.Gripper(fci_hostname="172.16.0.2")  # positional-only
    robot = sdk.Robot("172.16.0.2")
    with pytest.raises(ValueError, match="relative dynamics"):
        robot.relative_dynamics_factor = 1.5


# ------------------------------------------------------------------------------------- ur
def _ur(**cfg):
    control, receive, arm = make_ur()
    return URRobot(URConfig(host="10.0.0.2", **cfg), control=control, receive=receive), arm


def test_ur_zeroes_the_sensor_servoes_with_rotation_vectors_and_disconnects():
    robot, arm = _ur()
    robot.connect()
    assert arm.events == ["zeroFtSensor"]
    state = robot.read_state().arms["arm"]
    np.testing.assert_allclose(state.tcp_pose, START_POSE, atol=1e-12)
    np.testing.assert_allclose(state.wrench, 0.0, atol=1e-12)
    target = START_POSE.copy()
    target[3:] = Rotation.from_rotvec([0.1, -0.2, 0.3]).as_quat(scalar_first=True)
    robot.send(_cmd(target))
    pose, speed, acc, t, lookahead, gain = arm.servo[-1]
    np.testing.assert_allclose(pose, [*target[:3], 0.1, -0.2, 0.3], atol=1e-12)
    assert t == pytest.approx(1 / 500) and lookahead == 0.1 and gain == 300.0
    robot.disconnect()
    assert arm.events[1:] == ["servoStop", "stopScript", "control.disconnect", "receive.disconnect"]
    assert robot.rtde_c is None and robot.rtde_r is None


def test_ur_zeroing_is_configurable():
    robot, arm = _ur(zero_ft_sensor=False)
    robot.connect()
    assert "zeroFtSensor" not in arm.events
    np.testing.assert_allclose(robot.read_state().arms["arm"].wrench, FT_BIAS)


def test_ur_tcp_force_is_read_in_the_base_frame_whatever_the_tool_orientation():
    """getActualTCPForce is base-frame: a push straight down on the tool reads +z in every
    tool orientation, and the driver passes it through unrotated."""
    robot, arm = _ur()
    robot.connect()
    push = np.array([0.0, 0.0, 10.0, 0.0, 0.0, 0.0])  # table pushing the tool up = ON the tool, +z base
    for rotvec in ([np.pi, 0, 0], [0, np.pi / 2, 0], [0.3, -0.4, 1.2]):
        arm.pose[3:] = rotvec
        arm.contact_wrench = push
        state = robot.read_state().arms["arm"]
        np.testing.assert_allclose(state.wrench, push, atol=1e-12)
        np.testing.assert_allclose(Rotation.from_quat(state.tcp_pose[3:], scalar_first=True).as_rotvec(), rotvec,
                                   atol=1e-9)


def test_ur_fake_servol_is_positional_only_and_range_checked():
    control, _, _ = make_ur()
    c = control.RTDEControlInterface("10.0.0.2")
    pose = [0.5, 0.1, 0.3, 3.0, 0.0, 0.0]
    with pytest.raises(TypeError):
        c.servoL(pose, 0.5, 0.5, 0.002, lookahead_time=0.1, gain=300)  # the binding names them arg0..arg5
    with pytest.raises(ValueError, match="gain"):
        c.servoL(pose, 0.5, 0.5, 0.002, 0.1, 5000.0)
    with pytest.raises(ValueError, match="lookahead"):
        c.servoL(pose, 0.5, 0.5, 0.002, 0.5, 300.0)
    with pytest.raises(ValueError, match="6 values"):
        c.servoL(pose[:5], 0.5, 0.5, 0.002, 0.1, 300.0)
    with pytest.raises(ValueError, match="gain"):
        URConfig(host="x", gain=5000)
