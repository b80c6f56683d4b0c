import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from tactkit.real.robot import ArmCommand, ArmState, RobotCommand, RobotState
from tactkit.real.safety import SafetyConfig, SafetyFilter

CFG = SafetyConfig(
    workspace_min=(0.2, -0.4, 0.05),
    workspace_max=(0.8, 0.4, 0.6),
    max_linear_speed=0.5,
    max_angular_speed=2.0,
    max_linear_accel=10.0,
    max_angular_accel=40.0,
    max_force=50.0,
    max_torque=8.0,
    gripper_width_range=(0.0, 0.08),
    max_gripper_force=30.0,
)
CENTER = np.array([0.5, 0.0, 0.3])


def _state(pose, t=0.0, vel=None, wrench=None) -> RobotState:
    arm = ArmState(
        tcp_pose=np.asarray(pose, float),
        tcp_velocity=np.zeros(6) if vel is None else np.asarray(vel, float),
        joint_positions=np.zeros(7),
        gripper_width=0.04,
        wrench=np.zeros(6) if wrench is None else np.asarray(wrench, float),
    )
    return RobotState(timestamp=t, arms={"arm": arm})


def _cmd(pose, t, width=0.04, force=10.0) -> RobotCommand:
    return RobotCommand(timestamp=t, arms={"arm": ArmCommand(np.asarray(pose, float), width, force)})


def _pose(pos, rot: Rotation) -> np.ndarray:
    return np.concatenate([pos, rot.as_quat(scalar_first=True)])


unit3 = st.tuples(*[st.floats(-1, 1)] * 3).filter(lambda v: np.linalg.norm(v) > 0.1).map(
    lambda v: np.asarray(v) / np.linalg.norm(v)
)
frac_in = st.floats(0.0, 0.99)
dts = st.floats(0.001, 0.05)
rot0 = st.tuples(*[st.floats(-1.0, 1.0)] * 3).map(lambda r: Rotation.from_rotvec(r))


@settings(max_examples=150, deadline=None)
@given(u=unit3, w=unit3, fv=frac_in, fw=frac_in, fa=frac_in, fwa=frac_in, u2=unit3, w2=unit3,
       dt=st.floats(0.001, 0.02),
       r0=rot0, ff=frac_in, ft=frac_in, fg=frac_in, sign=st.sampled_from([-1.0, 1.0]))
def test_commands_inside_every_limit_pass_bit_exact(u, w, fv, fw, fa, fwa, u2, w2, dt, r0, ff, ft, fg, sign):
    # speeds up to half the limit; accelerating for dt <= 0.02 s adds < 0.45 of it
    v = sign * u * fv * CFG.max_linear_speed * 0.5
    om = sign * w * fw * CFG.max_angular_speed * 0.5
    wrench = np.concatenate([sign * u2 * ff * CFG.max_force, w2 * ft * CFG.max_torque])
    f = SafetyFilter(CFG)
    state = _state(_pose(CENTER, r0), 0.0, np.concatenate([v, om]), wrench)
    # first command: constant velocity (zero acceleration)
    p1, r1 = CENTER + v * dt, Rotation.from_rotvec(om * dt) * r0
    c1 = _cmd(_pose(p1, r1), dt, width=fg * 0.08, force=fg * CFG.max_gripper_force)
    o1 = f.filter(c1, state)
    assert not f.report.any
    assert np.array_equal(o1.arms["arm"].tcp_target, c1.arms["arm"].tcp_target)
    assert o1.arms["arm"].gripper_width == c1.arms["arm"].gripper_width
    assert o1.arms["arm"].gripper_force == c1.arms["arm"].gripper_force
    # second command: accelerate just inside the limit (and stay under the speed limit)
    v2 = v + u2 * fa * CFG.max_linear_accel * dt
    om2 = om + w2 * fwa * CFG.max_angular_accel * dt
    p2, r2 = p1 + v2 * dt, Rotation.from_rotvec(om2 * dt) * r1
    c2 = _cmd(_pose(p2, r2), 2 * dt)
    o2 = f.filter(c2, state)
    assert not f.report.any, f.report.violations
    assert np.array_equal(o2.arms["arm"].tcp_target, c2.arms["arm"].tcp_target)


@settings(max_examples=80, deadline=None)
@given(axis=st.integers(0, 2), sign=st.sampled_from([-1.0, 1.0]), frac=st.floats(0.0, 1.0), dt=dts)
def test_workspace_just_outside_is_clipped_to_the_wall(axis, sign, frac, dt):
    # 1e-4 inside the wall, moving out by `over` beyond it within one step, and already at that
    # velocity: only the workspace binds (every example: `over` is drawn below the speed limit)
    over = 1e-6 + frac * (min(0.01, 0.999 * CFG.max_linear_speed * dt - 1e-4) - 1e-6)
    lo, hi = np.array(CFG.workspace_min), np.array(CFG.workspace_max)
    start = CENTER.copy()
    start[axis] = (hi if sign > 0 else lo)[axis] - sign * 1e-4
    target = start.copy()
    target[axis] = (hi if sign > 0 else lo)[axis] + sign * over
    step = abs(target[axis] - start[axis])
    vel = np.zeros(6)
    vel[axis] = sign * step / dt  # moving that way already: no acceleration
    assert step / dt <= CFG.max_linear_speed
    f = SafetyFilter(CFG)
    q = Rotation.identity()
    out = f.filter(_cmd(_pose(target, q), dt), _state(_pose(start, q), 0.0, vel))
    pos = out.arms["arm"].tcp_target[:3]
    assert "workspace" in f.report.violations["arm"]
    assert np.all(pos >= lo) and np.all(pos <= hi)
    assert pos[axis] == (hi if sign > 0 else lo)[axis]
    others = [i for i in range(3) if i != axis]
    assert np.array_equal(pos[others], target[others])


@settings(max_examples=100, deadline=None)
@given(u=unit3, over=st.floats(1.001, 3.0), dt=dts, sign=st.sampled_from([-1.0, 1.0]), angular=st.booleans())
def test_speed_just_over_the_limit_comes_out_at_the_limit(u, over, dt, sign, angular):
    f = SafetyFilter(CFG)
    vmax = CFG.max_angular_speed if angular else CFG.max_linear_speed
    vel = sign * u * vmax * over
    state_vel = np.concatenate([np.zeros(3), vel]) if angular else np.concatenate([vel, np.zeros(3)])
    if angular:
        target = _pose(CENTER, Rotation.from_rotvec(vel * dt))
    else:
        target = _pose(CENTER + vel * dt, Rotation.identity())
    # the state already moves at the commanded velocity, so only the speed limit binds
    out = f.filter(_cmd(target, dt), _state(_pose(CENTER, Rotation.identity()), 0.0, state_vel))
    o = out.arms["arm"].tcp_target
    if angular:
        speed = Rotation.from_quat(o[3:], scalar_first=True).magnitude() / dt
        assert "angular_rate" in f.report.violations["arm"]
    else:
        speed = np.linalg.norm(o[:3] - CENTER) / dt
        assert "linear_rate" in f.report.violations["arm"]
    assert speed <= vmax * (1 + 1e-9)
    assert speed >= vmax * (1 - 1e-6)  # compliant, not more conservative than needed


def _check_acceleration_limited(u, frac, dt, sign, angular):
    f = SafetyFilter(CFG)
    amax = CFG.max_angular_accel if angular else CFG.max_linear_accel
    vmax = CFG.max_angular_speed if angular else CFG.max_linear_speed
    # from rest, `over` x the acceleration limit, drawn so the speed stays under its limit (for
    # every example: dt <= 0.04 leaves vmax / (amax * dt) >= 1.25 on both CFG axes)
    over = 1.001 + frac * (min(3.0, 0.999 * vmax / (amax * dt)) - 1.001)
    vel = sign * u * amax * dt * over
    assert np.linalg.norm(vel) <= vmax
    target = _pose(CENTER, Rotation.from_rotvec(vel * dt)) if angular else _pose(CENTER + vel * dt, Rotation.identity())
    out = f.filter(_cmd(target, dt), _state(_pose(CENTER, Rotation.identity()), 0.0))
    o = out.arms["arm"].tcp_target
    moved = Rotation.from_quat(o[3:], scalar_first=True).as_rotvec() if angular else o[:3] - CENTER
    accel = np.linalg.norm(moved / dt) / dt
    assert ("angular_rate" if angular else "linear_rate") in f.report.violations["arm"]
    assert accel <= amax * (1 + 1e-9)
    # compliant: the filter uses the whole acceleration limit, not a harder brake
    assert accel >= amax * (1 - 1e-6)
    # moves the commanded way
    np.testing.assert_allclose(moved / np.linalg.norm(moved), vel / np.linalg.norm(vel), atol=1e-6)


@settings(max_examples=100, deadline=None)
@given(u=unit3, frac=st.floats(0.0, 1.0), dt=st.floats(0.001, 0.04), sign=st.sampled_from([-1.0, 1.0]),
       angular=st.booleans())
def test_acceleration_just_over_the_limit_is_limited(u, frac, dt, sign, angular):
    _check_acceleration_limited(u, frac, dt, sign, angular)


@pytest.mark.parametrize("angular", [False, True])
def test_acceleration_check_rejects_a_filter_that_brakes_too_hard(monkeypatch, angular):
    """Mutation check: a rate limiter granting only 90% of the acceleration limit stays under
    the limit; the lower bound rejects it."""
    from tactkit.real import safety

    real = safety._limit_rate
    monkeypatch.setattr(safety, "_limit_rate", lambda delta, prev, dt, vmax, amax: real(delta, prev, dt, vmax, 0.9 * amax))
    with pytest.raises(AssertionError):
        _check_acceleration_limited(np.array([0.6, 0.0, 0.8]), 0.5, 0.01, 1.0, angular)


@pytest.mark.parametrize("action", ["hold", "retract"])
@pytest.mark.parametrize("sign", [-1.0, 1.0])
@pytest.mark.parametrize("axis", [0, 2, 3, 5])
def test_wrench_over_limit_holds_or_retracts_and_latches(action, sign, axis):
    cfg = SafetyConfig(**{**CFG.__dict__, "wrench_action": action})
    f = SafetyFilter(cfg)
    wrench = np.zeros(6)
    limit = cfg.max_force if axis < 3 else cfg.max_torque
    wrench[axis] = sign * limit * 1.001
    here = _pose(CENTER, Rotation.identity())
    pushing = _pose(CENTER + np.array([0, 0, -0.002]), Rotation.identity())
    t = 0.0
    for k in range(200):
        t += 0.002
        w = wrench if k == 0 else np.zeros(6)  # exceeds once, then back within limits: still latched
        out = f.filter(_cmd(pushing, t), _state(here, t - 0.002, wrench=w))
        assert "wrench" in f.report.violations["arm"]
    final = out.arms["arm"].tcp_target
    expected = here.copy()
    if action == "retract" and axis < 3:
        expected[axis] += sign * cfg.retract_distance
    np.testing.assert_allclose(final, expected, atol=1e-9)
    f.reset()
    out = f.filter(_cmd(here, t + 0.002), _state(here, t))
    assert not f.report.any


def test_wrench_just_inside_passes():
    f = SafetyFilter(CFG)
    here = _pose(CENTER, Rotation.identity())
    w = np.array([0.0, 0.0, -CFG.max_force * 0.999, 0.0, CFG.max_torque * 0.999, 0.0])
    out = f.filter(_cmd(here, 0.002), _state(here, 0.0, wrench=w))
    assert not f.report.any and np.array_equal(out.arms["arm"].tcp_target, here)


@pytest.mark.parametrize("width,force,exp_w,exp_f", [
    (0.081, 10.0, 0.08, 10.0), (-0.001, 10.0, 0.0, 10.0),
    (0.04, 30.01, 0.04, 30.0), (0.04, -1.0, 0.04, 0.0), (0.04, None, 0.04, 30.0),
])
def test_gripper_limits(width, force, exp_w, exp_f):
    f = SafetyFilter(CFG)
    here = _pose(CENTER, Rotation.identity())
    out = f.filter(_cmd(here, 0.002, width=width, force=force), _state(here, 0.0))
    assert out.arms["arm"].gripper_width == exp_w
    assert out.arms["arm"].gripper_force == exp_f


def test_invalid_targets_hold_and_unknown_arm_is_named():
    f = SafetyFilter(CFG)
    here = _pose(CENTER, Rotation.identity())
    bad = here.copy()
    bad[0] = np.nan
    out = f.filter(_cmd(bad, 0.002), _state(here, 0.0))
    assert "invalid" in f.report.violations["arm"]
    assert np.array_equal(out.arms["arm"].tcp_target[:3], here[:3])
    cmd = RobotCommand(0.004, {"left": ArmCommand(here)})
    with pytest.raises(KeyError, match="left"):
        f.filter(cmd, _state(here, 0.0))
    with pytest.raises(ValueError, match="max_linear_speed"):
        SafetyConfig(max_linear_speed=0.0)


def test_braking_reaches_a_far_target_with_bounded_overshoot():
    f = SafetyFilter(CFG)
    start = _pose(CENTER, Rotation.identity())
    goal = _pose(CENTER + np.array([0.2, 0, 0]), Rotation.identity())
    xs = []
    for k in range(1, 1000):
        out = f.filter(_cmd(goal, k * 0.002), _state(start, 0.0))
        xs.append(out.arms["arm"].tcp_target[0])
    xs = np.array(xs)
    # the approach brakes ahead; the last exact step arrives at speed, and stopping within the
    # acceleration limit then costs a sub-millimetre overshoot (never an acceleration spike)
    assert xs.max() <= goal[0] + 2e-4
    assert xs[-1] == goal[0]
    v = np.diff(np.concatenate([[CENTER[0]], xs])) / 0.002
    assert np.all(v <= CFG.max_linear_speed + 1e-9)
    assert np.all(np.abs(np.diff(v)) / 0.002 <= CFG.max_linear_accel * (1 + 1e-6))
