import numpy as np
import pytest
from real_fakes import ChunkPolicy, ClockedSensor

from tactkit.clock import SimClock
from tactkit.policies.interface import Plan
from tactkit.real.controller import ControllerConfig, ControllerCore
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.runtime import LockstepRuntime
from tactkit.real.safety import SafetyConfig
from tactkit.real.watchdog import WatchdogConfig


def _run(policy, config, duration=1.5, sensors_fn=None, robot_cfg=None):
    clock = SimClock()
    robot = FakeRobot(robot_cfg or FakeRobotConfig(), clock)
    sensors = sensors_fn(clock) if sensors_fn else ()
    rt = LockstepRuntime(robot, policy, config, clock, sensors)
    log = []
    stats = rt.run(duration, on_tick=lambda t, s, c: log.append(
        (t, c.arms["arm"].tcp_target.copy(), s.arms["arm"].tcp_pose.copy())))
    return rt, stats, log


def test_lockstep_runs_are_bit_reproducible():
    cfg = ControllerConfig(inference_latency=0.08, temporal_ensembling=0.1)
    logs = []
    for _ in range(2):
        _, stats, log = _run(ChunkPolicy(noise=0.002, seed=7, compliance=1e-4), cfg, 1.0)
        logs.append(np.stack([np.concatenate([c, s]) for _, c, s in log]))
    assert stats.plans >= 3 and stats.fast_steps > 20
    assert np.array_equal(logs[0], logs[1])
    _, _, other = _run(ChunkPolicy(noise=0.002, seed=8, compliance=1e-4), cfg, 1.0)
    assert not np.array_equal(logs[0], np.stack([np.concatenate([c, s]) for _, c, s in other]))


def test_lockstep_tracks_the_plan_after_the_simulated_inference_latency():
    cfg = ControllerConfig(inference_latency=0.2, plan_period=0.25)
    rt, stats, log = _run(ChunkPolicy(goal=(0.5, 0.1, 0.25)), cfg, 3.0)
    start = np.array([0.5, 0.0, 0.3])
    # nothing moves before the first plan is available at t = 0.2 s
    for t, cmd, _ in log:
        if t < 0.2:
            np.testing.assert_allclose(cmd[:3], start, atol=1e-12)
    assert stats.plans == pytest.approx(3.0 / 0.25, abs=1)
    # latency compensation: every installed plan arrives 0.2 s after its window; with
    # t0 = newest obs + dt its first steps are already past and are dropped
    assert stats.plan_steps_dropped >= stats.plans * 4
    final = log[-1][2][:3]
    np.testing.assert_allclose(final, [0.5, 0.1, 0.25], atol=2e-3)
    # the policy was never asked for an action time before now + one fast period
    steps = np.array(rt.policy.steps)
    assert np.all(np.diff(steps[:, 0]) > 0)


def test_fast_step_uses_now_plus_execution_latency_and_drops_old_steps():
    policy = ChunkPolicy()
    cfg = ControllerConfig(execution_latency=0.1, fast_rate_hz=20.0)
    core = ControllerCore(policy, ("arm",), cfg)
    robot = FakeRobot(FakeRobotConfig(), SimClock())
    core.start(robot.read_state(), 0.0)
    actions = np.tile(np.array([0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0, 0.04]), (10, 1))
    actions[:, 1] = np.arange(10) * 0.001
    plan = Plan(t0=0.0, dt=0.05, actions=actions)
    core.install_plan(plan, now=0.12)
    # steps with times < 0.12 + 0.1 = 0.22: indices 0..4 (0.0 .. 0.2)
    assert core.stats.plan_steps_dropped == 5
    assert core.fast_step(0.12)
    t_action = policy.steps[-1][0]
    assert t_action == pytest.approx(0.12 + 0.05 + 0.1)
    assert plan.index_at(t_action) == 5


def test_temporal_ensembling_weights_older_plans_more():
    policy = ChunkPolicy()
    core = ControllerCore(policy, ("arm",), ControllerConfig(temporal_ensembling=0.5))
    core.start(FakeRobot(FakeRobotConfig(), SimClock()).read_state(), 0.0)
    base = np.array([0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0, 0.04])
    a, b = base.copy(), base.copy()
    b[1] = 0.01
    core.install_plan(Plan(0.0, 0.05, np.tile(a, (40, 1))), 0.0)
    core.install_plan(Plan(0.1, 0.05, np.tile(b, (40, 1))), 0.1)
    w = np.exp(-0.5 * np.arange(2))
    w /= w.sum()
    out = core._ensemble(core.plans, 0.2, None)
    assert out[1] == pytest.approx(w[1] * 0.01)
    np.testing.assert_allclose(out[3:7], base[3:7], atol=1e-12)
    # without ensembling the newest plan replaces the old one
    core2 = ControllerCore(policy, ("arm",), ControllerConfig())
    core2.install_plan(Plan(0.0, 0.05, np.tile(a, (4, 1))), 0.0)
    core2.install_plan(Plan(0.1, 0.05, np.tile(b, (4, 1))), 0.1)
    assert len(core2.plans) == 1 and core2.plans[0].t0 == 0.1


def test_safety_filter_keeps_policy_commands_inside_the_workspace():
    safety = SafetyConfig(workspace_min=(0.3, -0.2, 0.25), workspace_max=(0.7, 0.05, 0.5))
    cfg = ControllerConfig(inference_latency=0.05, safety=safety)
    _, stats, log = _run(ChunkPolicy(goal=(0.5, 0.3, 0.1), speed=0.2), cfg, 2.0)
    cmds = np.stack([c for _, c, _ in log])
    assert np.all(cmds[:, 0] >= 0.3) and np.all(cmds[:, 1] <= 0.05) and np.all(cmds[:, 2] >= 0.25)
    assert stats.safety["workspace"] > 100
    np.testing.assert_allclose(cmds[-1, 1:3], [0.05, 0.25])


def _assert_decelerates_and_holds(log, t_fault, period):
    t = np.array([x[0] for x in log])
    cmds = np.stack([x[1][:3] for x in log])
    after = t >= t_fault
    speeds = np.linalg.norm(np.diff(cmds[after], axis=0), axis=1) / period
    assert np.all(np.diff(speeds) <= 1e-9)  # monotonic deceleration
    rest = np.flatnonzero(speeds == 0.0)
    assert rest.size and np.all(speeds[rest[0]:] == 0.0)  # then holds exactly


@pytest.mark.parametrize("stop_at", [0.6, 1.0])
def test_stale_sensor_trips_watchdog_within_timeout_plus_one_period(stop_at):
    wd = WatchdogConfig(sensor_timeout=0.1)
    cfg = ControllerConfig(inference_latency=0.05, watchdog=wd)
    key = "observation.tactile.left.embedding"
    policy = ChunkPolicy(goal=(0.5, 0.3, 0.3), fast_keys=(key,))
    sensors = lambda clock: [ClockedSensor(clock, key, 30.0, lambda t: np.zeros(3), stop_at=stop_at)]  # noqa: E731
    rt, stats, log = _run(policy, cfg, 2.0, sensors)
    fault = rt.core.watchdog.fault
    assert fault is not None and fault.channel == f"sensor:{key}"
    last_capture = np.floor(stop_at * 30.0 + 1e-9) / 30.0
    assert last_capture + 0.1 - 1e-9 <= fault.time <= last_capture + 0.1 + rt.core.robot_period + 1e-9
    assert "stale" in stats.fault
    _assert_decelerates_and_holds(log, fault.time, rt.core.robot_period)


def _assert_plan_fault_window(fault, plan_arrived, timeout, period):
    """The plan fault latches on the first robot tick after ``plan_arrived + timeout``: not
    before (a trip on a live plan stops the arm for nothing), and at most one period after."""
    assert fault is not None and fault.channel == "plan"
    assert plan_arrived + timeout - 1e-9 < fault.time <= plan_arrived + timeout + period + 1e-9, fault


def _stale_plan_run(plan_timeout):
    # the only plan arrives at t = 0.05 (inference latency); the next would be due at 10 s
    cfg = ControllerConfig(inference_latency=0.05, plan_period=10.0, watchdog=WatchdogConfig(plan_timeout=plan_timeout))
    return _run(ChunkPolicy(goal=(0.5, 0.3, 0.3)), cfg, 1.5)


def test_stale_plan_trips_and_latches_until_rearmed():
    rt, stats, log = _stale_plan_run(0.3)
    fault = rt.core.watchdog.fault
    assert stats.plans == 1
    _assert_plan_fault_window(fault, 0.05, 0.3, rt.core.robot_period)
    _assert_decelerates_and_holds(log, fault.time, rt.core.robot_period)
    # a late plan is ignored while latched
    n = rt.core.stats.plans
    rt.core.install_plan(Plan(2.0, 0.05, np.zeros((4, 8))), 2.0)
    assert rt.core.stats.plans == n and rt.core.faulted
    state = rt.robot.read_state()
    rt.core.rearm(state, 1.5)
    assert not rt.core.faulted
    cmd = rt.core.robot_tick(state, 1.502)
    np.testing.assert_allclose(cmd.arms["arm"].tcp_target, log[-1][1], atol=1e-12)


@pytest.mark.parametrize("wrong_timeout", [0.01, 0.25])
def test_plan_fault_window_rejects_a_trip_before_the_timeout(wrong_timeout):
    """Mutation check: a watchdog armed with the wrong plan timeout (0.01 s tripped at 0.012 s
    before any plan arrived; 0.25 s, the sensor timeout, at 0.30 s) still satisfies an
    upper bound on the fault time; the two-sided window rejects it."""
    rt, _, _ = _stale_plan_run(wrong_timeout)
    assert rt.core.watchdog.fault is not None and rt.core.watchdog.fault.time < 0.35
    with pytest.raises(AssertionError):
        _assert_plan_fault_window(rt.core.watchdog.fault, 0.05, 0.3, rt.core.robot_period)


class _TwoPadPolicy(ChunkPolicy):
    """Steps on two fast signals (one pad per arm), recording what each step received."""

    fast_keys = ("observation.tactile.left.embedding", "observation.tactile.right.embedding")

    def __init__(self) -> None:
        super().__init__(goal=(0.5, 0.3, 0.3), fast_keys=_TwoPadPolicy.fast_keys)
        self.signals: list = []

    def step(self, plan, t, fast=None):
        self.signals.append(fast)
        return super().step(plan, t, None)


@pytest.mark.parametrize("stop_right_at", [np.inf, 0.6])
def test_every_fast_key_reaches_the_policy_and_each_is_watched(stop_right_at):
    policy = _TwoPadPolicy()
    left, right = policy.fast_keys
    cfg = ControllerConfig(inference_latency=0.05, watchdog=WatchdogConfig(sensor_timeout=0.1))
    sensors = lambda clock: [  # noqa: E731
        ClockedSensor(clock, left, 30.0, lambda t: np.full(3, 1.0)),
        ClockedSensor(clock, right, 30.0, lambda t: np.full(3, 2.0), stop_at=stop_right_at),
    ]
    rt, stats, _ = _run(policy, cfg, 1.5, sensors)
    got = [s for s in policy.signals if s is not None]
    assert got and all(set(s) == {left, right} for s in got)  # one dict with both pads per step
    assert all(np.all(s[left] == 1.0) and np.all(s[right] == 2.0) for s in got)
    if np.isfinite(stop_right_at):  # the right pad alone going stale faults the controller
        assert rt.core.watchdog.fault is not None and rt.core.watchdog.fault.channel == f"sensor:{right}"
    else:
        assert stats.fault is None and stats.fast_steps > 20
