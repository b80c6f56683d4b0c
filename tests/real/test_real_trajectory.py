import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from tactkit.real.trajectory import PoseTrajectory, pose_distance


def _pose(xyz, rotvec=(0.0, 0.0, 0.0)) -> np.ndarray:
    q = Rotation.from_rotvec(rotvec).as_quat(scalar_first=True)
    return np.concatenate([np.asarray(xyz, float), q])


def _same_pose(a, b, tol=1e-9) -> bool:
    d, ang = pose_distance(a, b)
    return d < tol and ang < tol


def test_hits_waypoints_and_interpolates_linearly_and_by_slerp():
    a = _pose([0, 0, 0])
    b = _pose([1, 2, 0], [0, 0, np.pi / 2])
    traj = PoseTrajectory([0.0, 1.0], np.stack([a, b]))
    assert _same_pose(traj(0.0), a) and _same_pose(traj(1.0), b)
    mid = traj(0.25)
    np.testing.assert_allclose(mid[:3], [0.25, 0.5, 0.0])
    # slerp: a quarter of the way through a 90 deg yaw is 22.5 deg
    angle = Rotation.from_quat(mid[3:], scalar_first=True).magnitude()
    assert angle == pytest.approx(np.pi / 8)


def test_holds_outside_the_time_span_instead_of_extrapolating():
    a, b = _pose([0, 0, 0]), _pose([0.1, 0, 0])
    traj = PoseTrajectory([1.0, 2.0], np.stack([a, b]))
    assert _same_pose(traj(0.0), a)
    assert _same_pose(traj(5.0), b)
    assert _same_pose(traj(1e6), b)


def test_rejects_bad_waypoints():
    with pytest.raises(ValueError, match="strictly increasing"):
        PoseTrajectory([0.0, 0.0], np.stack([_pose([0, 0, 0])] * 2))
    with pytest.raises(ValueError, match="7 elements"):
        PoseTrajectory([0.0], np.zeros((1, 6)))
    with pytest.raises(ValueError, match="finite"):
        PoseTrajectory([0.0], np.full((1, 7), np.nan))


def test_new_target_starts_from_commanded_pose_without_jump():
    traj = PoseTrajectory.hold(_pose([0, 0, 0]), 0.0)
    traj = traj.schedule_waypoint(_pose([0.1, 0, 0]), time=1.0, now=0.0)
    commanded = traj(0.5)
    # retarget halfway: the pose at "now" must not change
    traj2 = traj.schedule_waypoint(_pose([0, 0.1, 0]), time=1.5, now=0.5)
    assert _same_pose(traj2(0.5), commanded)
    assert _same_pose(traj2(1.5), _pose([0, 0.1, 0]))
    # the old target beyond the retarget time is gone
    assert traj2.end_time == 1.5


def test_speed_limits_stretch_the_arrival_time():
    traj = PoseTrajectory.hold(_pose([0, 0, 0]), 0.0)
    far = _pose([0.5, 0, 0], [0, 0, 1.0])
    t1 = traj.schedule_waypoint(far, time=0.1, now=0.0, max_pos_speed=0.25, max_rot_speed=10.0)
    assert t1.end_time == pytest.approx(2.0)  # 0.5 m at 0.25 m/s
    t2 = traj.schedule_waypoint(far, time=0.1, now=0.0, max_pos_speed=10.0, max_rot_speed=0.5)
    assert t2.end_time == pytest.approx(2.0)  # 1 rad at 0.5 rad/s


poses = st.tuples(
    st.tuples(*[st.floats(-1, 1)] * 3), st.tuples(*[st.floats(-np.pi / 2, np.pi / 2)] * 3)
).map(lambda pr: _pose(pr[0], pr[1]))


@settings(max_examples=60, deadline=None)
@given(
    targets=st.lists(st.tuples(poses, st.floats(0.0, 0.3), st.floats(0.001, 0.1)), min_size=1, max_size=8),
    vmax=st.floats(0.05, 2.0),
    wmax=st.floats(0.1, 4.0),
)
def test_streamed_targets_never_jump_and_respect_speed_limits(targets, vmax, wmax):
    traj = PoseTrajectory.hold(_pose([0, 0, 0]), 0.0)
    now = 0.0
    for pose, lead, gap in targets:
        before = traj(now)
        traj = traj.schedule_waypoint(pose, now + lead, now, vmax, wmax)
        assert _same_pose(traj(now), before, tol=1e-7)  # continuity at retarget
        # speed between consecutive samples up to the next retarget stays within limits
        ts = np.linspace(now, now + gap, 9)
        samples = traj(ts)
        for p0, p1, dt in zip(samples[:-1], samples[1:], np.diff(ts)):
            d, ang = pose_distance(p0, p1)
            assert d <= vmax * dt * (1 + 1e-6) + 1e-12
            assert ang <= wmax * dt * (1 + 1e-6) + 1e-9
            assert abs(np.linalg.norm(p1[3:]) - 1.0) < 1e-9
        now += gap
    # after the last waypoint it holds the last target exactly
    assert _same_pose(traj(traj.end_time + 10.0), targets[-1][0], tol=1e-9)


def test_command_shaper_bounds_acceleration_and_reaches_the_target():
    from tactkit.real import quat as Q
    from tactkit.real.trajectory import CommandShaper

    start = np.r_[0.5, 0.0, 0.2, 1.0, 0.0, 0.0, 0.0]
    target = np.r_[0.52, 0.01, 0.19, Q.exp(np.array([0.0, 0.0, 0.3]))]
    shaper = CommandShaper(start, 0.0, 0.3, 1.5, 10.0, 30.0)
    dt, poses = 0.002, []
    for k in range(1, 400):
        poses.append(shaper(target, k * dt))
    poses = np.array(poses)
    vel = np.diff(poses[:, :3], axis=0) / dt
    acc = np.linalg.norm(np.diff(vel, axis=0), axis=1) / dt
    assert acc.max() <= 10.0 * (1 + 1e-6) and np.linalg.norm(vel, axis=1).max() <= 0.3 * (1 + 1e-9)
    np.testing.assert_allclose(poses[-1][:3], target[:3], atol=1e-9)
    assert Q.angle(poses[-1][3:], target[3:]) < 1e-9
    with pytest.raises(ValueError, match="limits"):
        CommandShaper(start, 0.0, 0.3, 1.5, 0.0, 30.0)


@pytest.mark.parametrize("design", ["controller", "robot_process"])
@pytest.mark.parametrize("fraction", [0.5, 0.0])
def test_shaped_waypoint_stream_never_trips_the_safety_filter(fraction, design):
    """A jittery 12 Hz waypoint stream (a chunk-executing policy) through the controller's
    interpolation: with the shaper the safety filter's acceleration limit never binds; without
    it (fraction 0, the old behaviour) it binds at waypoint changes. Both designs: the follower
    inside the controller (lockstep and threaded runtimes) and the follower as the robot
    process builds it (``tactkit.real.robot_process._robot_loop``)."""
    from tactkit.real.controller import ControllerConfig, ControllerCore
    from tactkit.real.follower import ArmTarget, CommandFollower
    from tactkit.real.robot import ArmState, RobotState
    from tactkit.real.safety import SafetyConfig

    class Still:
        obs_keys, n_obs_steps, action_keys, fast_keys, dt = (), 1, ("action.tcp_pose",), (), 1 / 12

        def reset(self):
            pass

    cfg = ControllerConfig(command_accel_fraction=fraction, safety=SafetyConfig(max_linear_accel=20.0,
                                                                                  max_angular_accel=60.0))
    pose = np.r_[0.5, 0.0, 0.1, 0.0, 1.0, 0.0, 0.0]
    state = RobotState(0.0, {"arm": ArmState(pose, np.zeros(6), np.zeros(7), 0.0, np.zeros(6))})
    if design == "controller":
        core = ControllerCore(Still(), ("arm",), cfg)
        core.start(state, 0.0)
        follower, tick = core.follower, core.robot_tick
    else:
        follower = CommandFollower(("arm",), cfg)
        follower.start(state, 0.0)
        tick = follower.tick
    rng = np.random.default_rng(0)
    limited = 0
    for k in range(1, 1000):
        now = k * 0.002
        if k % 42 == 1:  # a new waypoint every 1/12 s: the path plus 1 mm of jitter
            wp = pose.copy()
            wp[:3] += [0.03 * now, 0.0, -0.01 * now] + rng.normal(0, 0.001, 3)
            follower.schedule({"arm": ArmTarget(wp)}, now + 1 / 12, now, None)
        tick(state, now)
        limited += bool(follower.safety.report.violations.get("arm"))
    assert (limited == 0) if fraction > 0 else (limited > 5), limited
