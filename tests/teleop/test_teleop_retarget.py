import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from teleop_fakes import HOME, FakeArmRobot, hand, pose_msg

from tactkit.teleop.retarget import RetargetConfig, Retargeter, quat_wxyz_to_rot, rot_to_quat_wxyz


def _step(rt, robot, seq, **hand_kw):
    cmd = rt.update(pose_msg(seq, right=hand(**hand_kw)), robot.read_state().arms, now=seq * 0.01)
    if cmd is not None:
        robot.send(cmd)
    return cmd


def test_clutch_relative_motion_and_origins():
    robot = FakeArmRobot()
    rt = Retargeter(RetargetConfig(translation_scale=2.0), ("arm",))
    # hand far from robot, clutch released: nothing moves
    assert _step(rt, robot, 0, pos=(1.0, 1.0, 1.0)) is None
    # engage: first command is exactly the current robot pose (no jump)
    cmd = _step(rt, robot, 1, pos=(1.0, 1.0, 1.0), grip=1.0)
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target, HOME, atol=1e-12)
    # move the hand 1 cm in +x: robot moves 2 cm (scale 2)
    cmd = _step(rt, robot, 2, pos=(1.01, 1.0, 1.0), grip=1.0)
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target[:3], HOME[:3] + [0.02, 0, 0], atol=1e-12)
    # release: no command; move the hand back while released: robot stays
    assert _step(rt, robot, 3, pos=(1.01, 1.0, 1.0), grip=0.0) is None
    assert _step(rt, robot, 4, pos=(0.0, 0.0, 0.0), grip=0.0) is None
    np.testing.assert_allclose(robot.pose()[:3], HOME[:3] + [0.02, 0, 0])
    # re-engage at the new hand position: new origins, no jump; then +1 cm z -> +2 cm
    cmd = _step(rt, robot, 5, pos=(0.0, 0.0, 0.0), grip=0.9)
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target[:3], HOME[:3] + [0.02, 0, 0], atol=1e-12)
    cmd = _step(rt, robot, 6, pos=(0.0, 0.0, 0.01), grip=0.9)
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target[:3], HOME[:3] + [0.02, 0, 0.02], atol=1e-12)


def test_hysteresis_and_disarm_after_reset():
    robot = FakeArmRobot()
    rt = Retargeter(RetargetConfig(), ("arm",))
    # trigger already held at connect: must not engage until released once
    assert _step(rt, robot, 0, grip=1.0) is None
    assert _step(rt, robot, 1, grip=1.0, pos=(0.1, 0, 0)) is None
    assert _step(rt, robot, 2, grip=0.0) is None
    assert _step(rt, robot, 3, grip=0.5) is None  # between thresholds: not engaged yet
    assert _step(rt, robot, 4, grip=0.7) is not None  # engaged
    assert _step(rt, robot, 5, grip=0.5) is not None  # still engaged (above release threshold)
    rt.reset()  # e.g. stream lost
    assert _step(rt, robot, 6, grip=1.0, pos=(0.2, 0, 0)) is None
    np.testing.assert_allclose(robot.pose(), HOME)


def test_6dof_rotation_is_relative():
    robot = FakeArmRobot()
    rt = Retargeter(RetargetConfig(), ("arm",))
    q0 = rot_to_quat_wxyz(Rotation.from_euler("z", 30, degrees=True))
    _step(rt, robot, 0)
    _step(rt, robot, 1, quat=q0, grip=1.0)
    q1 = rot_to_quat_wxyz(Rotation.from_euler("z", 50, degrees=True))
    cmd = _step(rt, robot, 2, quat=q1, grip=1.0)
    got = quat_wxyz_to_rot(cmd.arms["arm"].tcp_target[3:])
    want = Rotation.from_euler("z", 20, degrees=True) * quat_wxyz_to_rot(HOME[3:])
    assert (got.inv() * want).magnitude() < 1e-9


def test_translation_mode_fixed_orientation():
    robot = FakeArmRobot()
    fixed = [0.0, 0.0, 1.0, 0.0]
    rt = Retargeter(RetargetConfig(mode="translation", fixed_orientation=fixed), ("arm",))
    _step(rt, robot, 0)
    q1 = rot_to_quat_wxyz(Rotation.from_euler("x", 40, degrees=True))
    cmd = _step(rt, robot, 1, quat=q1, grip=1.0, pos=(0, 0.05, 0))
    cmd = _step(rt, robot, 2, quat=(1.0, 0.0, 0.0, 0.0), grip=1.0, pos=(0, 0.06, 0))
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target[3:], fixed, atol=1e-12)
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target[:3], HOME[:3] + [0, 0.01, 0], atol=1e-12)


def test_calibration_transform_rotates_motion():
    robot = FakeArmRobot()
    # headset frame rotated +90 deg about z relative to the base: headset +x = base +y
    q = rot_to_quat_wxyz(Rotation.from_euler("z", 90, degrees=True))
    rt = Retargeter(RetargetConfig(calibration=[1.0, 2.0, 3.0, *q]), ("arm",))
    _step(rt, robot, 0)
    _step(rt, robot, 1, grip=1.0)
    cmd = _step(rt, robot, 2, grip=1.0, pos=(0.03, 0.0, 0.0))
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target[:3], HOME[:3] + [0, 0.03, 0], atol=1e-12)


def test_gripper_from_index_trigger():
    robot = FakeArmRobot()
    rt = Retargeter(RetargetConfig(gripper_open_width=0.08, gripper_closed_width=0.01), ("arm",))
    _step(rt, robot, 0)
    assert _step(rt, robot, 1, grip=1.0, index=0.0).arms["arm"].gripper_width == pytest.approx(0.08)
    assert _step(rt, robot, 2, grip=1.0, index=1.0).arms["arm"].gripper_width == pytest.approx(0.01)
    assert _step(rt, robot, 3, grip=1.0, index=0.5).arms["arm"].gripper_width == pytest.approx(0.045)


def test_dual_arm_each_hand_drives_its_arm():
    robot = FakeArmRobot(("left", "right"))
    rt = Retargeter(RetargetConfig(mode="dual"), ("left", "right"))
    st = robot.read_state().arms
    rt.update(pose_msg(0, right=hand(), left=hand()), st, 0.0)
    cmd = rt.update(pose_msg(1, right=hand(grip=1.0), left=hand()), st, 0.01)
    assert set(cmd.arms) == {"right"}
    cmd = rt.update(pose_msg(2, right=hand(grip=1.0, pos=(0, 0, 0.01)), left=hand(grip=1.0)), st, 0.02)
    assert set(cmd.arms) == {"left", "right"}
    np.testing.assert_allclose(cmd.arms["right"].tcp_target[:3], HOME[:3] + [0, 0, 0.01], atol=1e-12)
    np.testing.assert_allclose(cmd.arms["left"].tcp_target[:3], HOME[:3], atol=1e-12)


def test_lost_tracking_disengages():
    robot = FakeArmRobot()
    rt = Retargeter(RetargetConfig(), ("arm",))
    _step(rt, robot, 0)
    assert _step(rt, robot, 1, grip=1.0) is not None
    h = hand(grip=1.0)
    h.tracked = False
    assert rt.update(pose_msg(2, right=h), robot.read_state().arms, 0.02) is None
    assert rt.engaged == {"arm": False}


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="mode"):
        RetargetConfig(mode="7dof")
    with pytest.raises(ValueError, match="calibration"):
        RetargetConfig(calibration=[0, 0, 0])
    with pytest.raises(ValueError, match="dual"):
        Retargeter(RetargetConfig(mode="dual"), ("arm",))
    with pytest.raises(ValueError, match="one arm"):
        Retargeter(RetargetConfig(), ("left", "right"))
