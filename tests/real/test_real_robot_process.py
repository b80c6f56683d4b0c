"""The robot loop in its own process: it follows the controller, and brakes and holds on its own
when the controller dies or stalls. Never asserts speed; time bounds carry scheduling slack."""

import functools
import multiprocessing as mp
import os
import signal
import socket
import tempfile
import threading
import time

import numpy as np
import pytest
from real_fakes import ChunkPolicy, command_log_robot, link_controller, read_command_log

from tactkit.real.controller import ControllerConfig
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.robot_process import (
    MAX_MESSAGE,
    Beat,
    FaultMsg,
    RobotProcessRuntime,
    StateMsg,
    Stop,
    WaypointArm,
    Waypoints,
    _encode,
    _from_robot,
    _robot_loop,
)
from tactkit.real.safety import SafetyConfig
from tactkit.real.slow_process import SlowPolicyThread
from tactkit.real.watchdog import WatchdogConfig

PERIOD = 0.002
SLACK = 0.15  # s: a loaded test machine may run a normal-priority loop late


class _LoopInThread:
    """``_robot_loop`` on a FakeRobot in a thread; the test plays the controller on the link."""

    def __init__(self, controller_timeout: float = 0.1, orphan_hold_s: float = 0.2, **config) -> None:
        self.robot = FakeRobot(FakeRobotConfig())
        wd = WatchdogConfig(controller_timeout=controller_timeout)
        self.config = ControllerConfig(watchdog=wd, **config)
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        theirs.setblocking(False)
        self.report = None
        self.thread = threading.Thread(target=self._run, args=(theirs, orphan_hold_s), daemon=True)
        self.sock.settimeout(5.0)
        self.thread.start()
        self.messages: list = []

    def _run(self, theirs, orphan_hold_s) -> None:
        self.report = _robot_loop(self.robot, self.config, theirs, orphan_hold_s, threading.Event())
        theirs.close()

    def recv(self):
        msg = _from_robot.decode(self.sock.recv(MAX_MESSAGE))
        self.messages.append(msg)
        return msg

    def send(self, msg) -> None:
        self.sock.send(_encode(msg))
        self.last_send = time.monotonic()

    def wait_for(self, kind, timeout: float = 5.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv()
            if isinstance(msg, kind):
                return msg
        raise AssertionError(f"no {kind.__name__} within {timeout} s")

    def y(self) -> float:
        return float(self.robot.read_state().arms["arm"].tcp_pose[1])


def _waypoint(y: float, t_wp: float) -> Waypoints:
    return Waypoints(t_wp, None, [WaypointArm("arm", [0.5, y, 0.3, 0.0, 1.0, 0.0, 0.0], 0.04)])


def test_robot_loop_follows_then_latches_on_a_silent_controller_and_exits_when_orphaned():
    loop = _LoopInThread(controller_timeout=0.1, orphan_hold_s=0.2)
    first = loop.wait_for(StateMsg)
    assert first.arms[0].tcp_pose[:3] == pytest.approx([0.5, 0.0, 0.3])
    # follow: waypoints 10 mm to +y, heartbeats keep the link fresh
    t0 = time.monotonic()
    loop.send(_waypoint(0.01, t0 + 0.05))
    while time.monotonic() < t0 + 0.3:
        loop.send(Beat(time.monotonic()))
        time.sleep(0.02)
    assert loop.y() == pytest.approx(0.01, abs=1e-3)
    # silence: the robot process trips on its own after controller_timeout (+ one period)
    t_last = loop.last_send
    fault = loop.wait_for(FaultMsg, timeout=5.0)
    assert "controller stale" in fault.reason
    assert t_last + 0.1 - 1e-3 <= fault.t <= t_last + 0.1 + PERIOD + SLACK
    # latched: later waypoints are ignored, the arm holds
    loop.send(_waypoint(0.05, time.monotonic() + 0.05))
    time.sleep(0.2)
    assert loop.y() == pytest.approx(0.01, abs=1e-3)
    # the controller closes the link: the loop holds orphan_hold_s more, then returns
    t_close = time.monotonic()
    loop.sock.close()
    loop.thread.join(5.0)
    assert not loop.thread.is_alive()
    assert time.monotonic() - t_close >= 0.2 - 0.01  # held orphan_hold_s (from a tick that may wake late)
    rep = loop.report
    assert rep.controller_lost and "controller stale" in rep.fault
    assert rep.loop.ticks > 10 and rep.stats.robot_ticks == rep.loop.ticks


def test_robot_loop_stop_brings_the_arm_to_rest_and_reports():
    loop = _LoopInThread(controller_timeout=5.0)
    loop.wait_for(StateMsg)
    t0 = time.monotonic()
    loop.send(_waypoint(0.2, t0 + 2.0))  # 0.1 m/s along +y
    time.sleep(0.3)
    loop.send(Stop())
    loop.thread.join(5.0)
    assert not loop.thread.is_alive()
    rep = loop.report
    assert rep.fault is None and not rep.controller_lost
    state = loop.robot.read_state().arms["arm"]
    assert 0.01 < state.tcp_pose[1] < 0.2  # moved, then stopped short of the waypoint
    target = loop.robot._target["arm"][:3]
    time.sleep(0.05)
    np.testing.assert_array_equal(loop.robot._target["arm"][:3], target)  # no command after the stop


@pytest.mark.parametrize("fraction", [0.5, 0.0])
def test_robot_loop_shapes_commands_so_the_safety_filter_stays_a_gate(fraction):
    """The command shaper (controller.command_accel_fraction) is on the robot process's path: a
    jittery 12 Hz waypoint stream moves the arm without the filter's speed/acceleration limits
    ever binding; with the shaper off (0, mutation check) the acceleration limit binds."""
    loop = _LoopInThread(controller_timeout=5.0, command_accel_fraction=fraction,
                         safety=SafetyConfig(max_linear_accel=5.0))
    loop.wait_for(StateMsg)
    rng = np.random.default_rng(0)
    t0 = time.monotonic()
    for k in range(12):  # 1 s: 3 cm along +y plus 1 mm of jitter per waypoint
        now = time.monotonic()
        y = 0.03 * (now - t0) + rng.normal(0, 0.001)
        loop.send(_waypoint(y, now + 1 / 12))
        time.sleep(max(t0 + (k + 1) / 12 - time.monotonic(), 0.0))
    loop.send(Stop())
    loop.thread.join(5.0)
    rep = loop.report
    assert loop.y() > 0.01  # it moved
    motion = sum(n for name, n in rep.stats.safety.items() if name.endswith("rate"))
    assert (motion == 0) if fraction > 0 else (motion > 5), dict(rep.stats.safety)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def _start_controller(tmp_path, controller_timeout: float):
    # the robot process logs every command: on tmpfs, so a busy disk cannot stall its loop
    shm = "/dev/shm"
    d = tempfile.mkdtemp(dir=shm) if os.path.isdir(shm) and os.access(shm, os.W_OK) else str(tmp_path)
    log_path = os.path.join(d, "commands.bin")
    # the robot process under SCHED_FIFO where the OS allows it (as on a robot workstation)
    proc = mp.get_context("spawn").Process(target=link_controller, args=(log_path, controller_timeout, 80))
    proc.start()  # not a daemon: it starts the robot process
    deadline = time.monotonic() + 60.0
    while time.monotonic() < deadline:  # until the arm has moved 20 mm along +y
        if os.path.exists(log_path + ".pid"):
            log = read_command_log(log_path)
            if len(log) and log[-1, 2] > 0.02:
                break
        time.sleep(0.02)
    else:
        proc.kill()
        raise AssertionError("the controller never moved the arm")
    with open(log_path + ".pid") as f:
        return proc, log_path, int(f.read())


def _speeds(log: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(log[:, 1:], axis=0), axis=1) / np.maximum(np.diff(log[:, 0]), 1e-9)


@pytest.mark.slow
def test_process_runtime_plans_steps_moves_the_robot_and_stops_at_rest(tmp_path):
    log_path = str(tmp_path / "commands.bin")
    policy = ChunkPolicy(goal=(0.5, 0.05, 0.3), speed=0.2)
    # generous timeouts: the test machine may be heavily loaded (timing is benchmarked elsewhere)
    wd = WatchdogConfig(plan_timeout=30.0, sensor_timeout=30.0, slow_process_timeout=30.0, controller_timeout=30.0)
    rt = RobotProcessRuntime(functools.partial(command_log_robot, log_path), policy,
                             ControllerConfig(plan_period=0.1, watchdog=wd), SlowPolicyThread(policy))
    report = rt.run(duration=1.5)
    assert report.stats.fault is None, report.stats.fault
    assert report.stats.plans >= 2 and report.stats.fast_steps >= 5
    rp = report.robot_process
    assert rp is not None and not rp.controller_lost and rp.fault is None
    assert report.robot_loop.ticks > 10 and report.stats.robot_ticks == report.robot_loop.ticks
    assert not rt.link.alive  # stopped with the run
    log = read_command_log(log_path)
    assert len(log) == report.robot_loop.ticks  # one command per tick, all from the robot process
    assert log[-1, 2] > 0.01  # moved toward the goal
    assert np.all(_speeds(log[-3:]) == 0.0)  # and came to rest before the process ended
    assert all(x >= 0 for x in report.stats.sample_to_command)


def _assert_brakes_and_holds(log: np.ndarray, t_event: float, delay: float) -> float:
    """From ``t_event`` on: the arm keeps its 0.1 m/s until at most ``delay`` (+ one period and
    slack) later, then decelerates at the watchdog's 2 m/s^2 to rest and holds exactly.
    Returns when braking started."""
    after = log[log[:, 0] > t_event - 0.05]
    t, speeds = after[1:, 0], _speeds(after)
    assert np.median(speeds[t < t_event]) == pytest.approx(0.1, rel=0.05)  # it was cruising
    rest = np.flatnonzero(speeds == 0.0)
    assert rest.size and np.all(speeds[rest[0]:] == 0.0)  # comes to rest, then holds exactly
    r = rest[0]
    b = np.flatnonzero(speeds[:r] < 0.1 * 0.97)[0]  # the first slower step: braking begins
    assert np.all(np.diff(speeds[b:r + 1]) <= 1e-9)  # the speed only falls from there
    decel = -np.diff(speeds[b - 1:r + 1]) / np.diff(t[b - 1:r + 1])
    assert np.all(decel <= 2.0 * 1.05) and np.median(decel) == pytest.approx(2.0, rel=0.1), decel
    assert t[r] - t[b] <= 0.1 / 2.0 + 2 * PERIOD
    assert t[-1] - t[r] > 0.3  # held
    t_brake = float(t[b - 1])
    assert t_brake - t_event <= delay + PERIOD + SLACK, t_brake - t_event
    return t_brake


@pytest.mark.slow
def test_robot_process_brakes_holds_and_exits_when_its_controller_is_killed(tmp_path):
    proc, log_path, robot_pid = _start_controller(tmp_path, controller_timeout=0.25)
    try:
        t_kill = time.monotonic()
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(5.0)
        deadline = time.monotonic() + 10.0
        while _alive(robot_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(robot_pid), "the robot process outlived its controller"
        assert time.monotonic() - t_kill >= 1.0 - 0.05  # it held for orphan_hold_s, then exited
        # end of file on the link, read at the first tick after the kernel has closed the dead
        # process's files (usually within milliseconds), at the latest the link's timeout
        _assert_brakes_and_holds(read_command_log(log_path), t_kill, 0.25)
    finally:
        if _alive(robot_pid):
            os.kill(robot_pid, signal.SIGKILL)


@pytest.mark.slow
def test_robot_process_brakes_and_latches_when_its_controller_stalls(tmp_path):
    proc, log_path, robot_pid = _start_controller(tmp_path, controller_timeout=0.25)
    try:
        t_stop = time.monotonic()
        os.kill(proc.pid, signal.SIGSTOP)  # alive, silent
        time.sleep(0.8)
        os.kill(proc.pid, signal.SIGCONT)  # heartbeats resume: the fault stays latched
        time.sleep(0.5)
        log = read_command_log(log_path)
        t_brake = _assert_brakes_and_holds(log, t_stop, 0.25)
        # not before the timeout (the last heartbeat may precede the stop by one heartbeat period)
        assert t_brake >= t_stop + 0.25 - 0.02 - PERIOD, t_brake - t_stop
        assert np.ptp(log[log[:, 0] > t_stop + 0.5, 2]) < 1e-12  # still holding after resuming
    finally:
        proc.kill()
        proc.join(5.0)
        deadline = time.monotonic() + 10.0
        while _alive(robot_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(robot_pid):
            os.kill(robot_pid, signal.SIGKILL)
