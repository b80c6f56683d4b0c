"""Wall-clock runtime: threads and a spawned slow process. Never asserts speed."""

import os

import numpy as np
import pytest
from real_fakes import ChunkPolicy, dying_policy, slow_policy

from tactkit.rate import realtime_available
from tactkit.real.controller import ControllerConfig
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.runtime import WallClockRuntime
from tactkit.real.slow_process import SlowPolicyProcess, SlowPolicyThread
from tactkit.real.watchdog import WatchdogConfig


def test_wall_clock_runtime_plans_steps_and_moves_the_robot():
    policy = ChunkPolicy(goal=(0.5, 0.05, 0.3), speed=0.2)
    robot = FakeRobot(FakeRobotConfig())
    # generous timeouts: the test machine may be heavily loaded (timing is benchmarked elsewhere)
    wd = WatchdogConfig(plan_timeout=30.0, sensor_timeout=30.0, slow_process_timeout=30.0)
    rt = WallClockRuntime(robot, policy, ControllerConfig(plan_period=0.1, watchdog=wd), SlowPolicyThread(policy))
    report = rt.run(duration=1.0)
    assert report.stats.fault is None, report.stats.fault
    assert report.stats.plans >= 2 and report.stats.fast_steps >= 5
    assert report.robot_loop.ticks > 100
    assert robot.commands_received == report.stats.robot_ticks
    assert robot.read_state().arms["arm"].tcp_pose[1] > 0.02  # moved toward the goal
    assert all(x >= 0 for x in report.stats.sample_to_command) or not report.stats.sample_to_command


@pytest.mark.slow
def test_slow_policy_in_a_spawned_process_and_its_death_trips_the_watchdog():
    # healthy: plans come back from another process
    policy = ChunkPolicy()
    relaxed = WatchdogConfig(plan_timeout=30.0, sensor_timeout=30.0, slow_process_timeout=30.0)
    rt = WallClockRuntime(FakeRobot(FakeRobotConfig()), policy, ControllerConfig(plan_period=0.1, watchdog=relaxed),
                          SlowPolicyProcess(slow_policy))
    report = rt.run(duration=1.0)
    assert report.stats.fault is None and report.stats.plans >= 2, (report.stats.fault, report.stats.plans)
    assert all(c >= 0.05 for c in report.plan_compute_s)  # computed in the child (sleeps 50 ms)
    # the child dies on its third plan: the runtime notices and holds
    wd = WatchdogConfig(plan_timeout=30.0, sensor_timeout=30.0, slow_process_timeout=30.0)
    rt = WallClockRuntime(
        FakeRobot(FakeRobotConfig()), ChunkPolicy(), ControllerConfig(plan_period=0.05, watchdog=wd),
        SlowPolicyProcess(dying_policy),
    )
    report = rt.run(duration=2.0)
    assert report.stats.fault is not None
    assert "died" in report.stats.fault  # noticed by the process check, long before any timeout
    assert report.stats.plans == 2
    state = rt.robot.read_state().arms["arm"]
    assert np.linalg.norm(state.tcp_velocity[:3]) < 1e-3  # at rest


def _realtime_run():
    policy = ChunkPolicy()
    wd = WatchdogConfig(plan_timeout=30.0, sensor_timeout=30.0, slow_process_timeout=30.0)
    rt = WallClockRuntime(FakeRobot(FakeRobotConfig()), policy,
                          ControllerConfig(plan_period=0.1, watchdog=wd, realtime_priority=10), SlowPolicyThread(policy))
    seen = []
    report = rt.run(duration=0.3, on_tick=lambda now, state, cmd: seen.append(
        (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)) and False)
    assert report.stats.fault is None and seen
    return rt, seen


@pytest.mark.skipif(not realtime_available(), reason="SCHED_FIFO refused to this OS user (needs root or "
                    "CAP_SYS_NICE or an rtprio limit): the real-time robot loop is untested here")
def test_realtime_priority_puts_the_robot_loop_under_fifo_for_the_run_only():
    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    rt, seen = _realtime_run()
    assert rt.realtime and set(seen) == {(os.SCHED_FIFO, 10)}  # every robot tick, at the configured priority
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before  # restored after the run
    with pytest.raises(ValueError, match="realtime_priority"):
        ControllerConfig(realtime_priority=120)


def test_realtime_priority_refused_by_the_os_runs_normally_with_a_warning(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    with caplog.at_level("WARNING"):
        rt, seen = _realtime_run()
    assert not rt.realtime and set(seen) == {before}
    assert "real-time priority 10" in caplog.text
