"""The robot loop in its own process, where no Python thread of the controller can stall it.

In the threaded runtime (:class:`~tactkit.real.runtime.WallClockRuntime`) the 500 Hz robot loop
shares one interpreter, and its lock, with the fast loop, the slow-process poller and whatever
else the controller runs. Here it has a process of its own::

    controller process                                robot process (SCHED_FIFO where allowed)
    fast loop: policy.step -> Waypoints ---\\       /-> every robot period:
    watchdog fault -------> Brake ---------+ link +     drain the link (never blocks)
    every 20 ms ----------> Beat ----------/      |     "controller" watchdog channel
    core.on_state <-------- State, every tick ----+     follower: interpolate / brake, safety filter
                                                        robot.read_state, robot.send

The robot process runs the driver, the interpolator and the safety filter
(:class:`~tactkit.real.follower.CommandFollower`) and a watchdog on the link: if the controller
process dies (the link reads end-of-file) or stalls (no message for
``watchdog.controller_timeout``), it decelerates to rest and holds on its own, within that
timeout plus one robot period. After the controller is gone it holds ``orphan_hold_s`` more,
then disconnects the robot and exits.

The link is a ``SOCK_SEQPACKET`` Unix socket pair: one message per datagram, non-blocking on
both ends (a message that does not fit in a full buffer is dropped and counted, the loop never
waits), end-of-file when the other process is gone. Messages are msgspec structs in msgpack;
both processes stamp them with ``time.monotonic()``, one clock domain.
"""

from __future__ import annotations

import collections
import gc
import logging
import multiprocessing as mp
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import numpy as np

from tactkit.clock import WallClock
from tactkit.policies.interface import Policy
from tactkit.rate import RateLoop, RateStats, realtime_thread
from tactkit.real.controller import ControllerConfig, ControllerCore
from tactkit.real.follower import ArmTarget, CommandFollower, FollowerStats
from tactkit.real.robot import ArmState, Robot, RobotState
from tactkit.real.slow_process import SlowPolicy, serve_plans
from tactkit.real.watchdog import Watchdog
from tactkit.sensors.base import Sensor

log = logging.getLogger(__name__)

MAX_MESSAGE = 65536


# ---------------------------------------------------------------------------------- messages
class WaypointArm(msgspec.Struct, array_like=True):
    name: str
    pose: list[float]
    gripper: float | None


class Waypoints(msgspec.Struct, tag="wp", array_like=True):
    t_wp: float  # reach the poses at this time
    capture: float | None  # capture time of the fast signal behind them (latency statistics)
    arms: list[WaypointArm]


class Brake(msgspec.Struct, tag="brake", array_like=True):
    reason: str


class Rearm(msgspec.Struct, tag="rearm", array_like=True):
    pass


class Beat(msgspec.Struct, tag="beat", array_like=True):
    t: float


class Stop(msgspec.Struct, tag="stop", array_like=True):
    pass


class ArmStateMsg(msgspec.Struct, array_like=True):
    name: str
    tcp_pose: list[float]
    tcp_velocity: list[float]
    joint_positions: list[float]
    gripper_width: float
    wrench: list[float]


class StateMsg(msgspec.Struct, tag="state", array_like=True):
    t: float
    arms: list[ArmStateMsg]


class FaultMsg(msgspec.Struct, tag="fault", array_like=True):
    t: float
    reason: str


class Failed(msgspec.Struct, tag="failed", array_like=True):
    traceback: str


ToRobot = Waypoints | Brake | Rearm | Beat | Stop
FromRobot = StateMsg | FaultMsg | Failed

_encode = msgspec.msgpack.Encoder().encode
_to_robot = msgspec.msgpack.Decoder(ToRobot)
_from_robot = msgspec.msgpack.Decoder(FromRobot)


def state_to_msg(state: RobotState) -> StateMsg:
    return StateMsg(state.timestamp, [
        ArmStateMsg(name, a.tcp_pose.tolist(), a.tcp_velocity.tolist(), a.joint_positions.tolist(),
                    float(a.gripper_width), a.wrench.tolist())
        for name, a in state.arms.items()
    ])


def msg_to_state(msg: StateMsg) -> RobotState:
    return RobotState(msg.t, {
        a.name: ArmState(np.array(a.tcp_pose), np.array(a.tcp_velocity), np.array(a.joint_positions),
                         a.gripper_width, np.array(a.wrench))
        for a in msg.arms
    })


@dataclass
class RobotProcessReport:
    """What the robot process measured, sent to the controller when it stops."""

    loop: RateStats
    stats: FollowerStats
    fault: str | None
    realtime: bool  # the loop ran under SCHED_FIFO
    states_dropped: int  # state messages the full link could not take (controller not reading)
    messages: int  # messages received from the controller
    controller_lost: bool  # the controller closed the link without a Stop


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.send(data)
        return True
    except (BlockingIOError, InterruptedError):
        return False  # buffer full: dropped, counted by the caller
    except OSError:
        return False  # peer gone: the receive side reports it


# ---------------------------------------------------------------------------------- the child
def _robot_main(factory: Callable[[], Robot], config: ControllerConfig, sock: socket.socket, report_conn: Any,
                orphan_hold_s: float) -> None:
    # Ctrl-C reaches the whole process group: the controller handles it and stops us in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    terminated = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: terminated.set())
    sock.setblocking(False)
    with realtime_thread(config.realtime_priority) as realtime:
        try:
            robot = factory()
            robot.connect()
        except Exception:
            _send(sock, _encode(Failed(traceback.format_exc())))
            return
        try:
            report = _robot_loop(robot, config, sock, orphan_hold_s, terminated, realtime, freeze_gc=True)
        except Exception:
            _send(sock, _encode(Failed(traceback.format_exc())))
            raise
        finally:
            robot.disconnect()
    try:
        report_conn.send(report)
    except OSError:
        pass  # the controller is gone


def _robot_loop(robot: Robot, config: ControllerConfig, sock: socket.socket, orphan_hold_s: float,
                terminated: threading.Event, realtime: bool = False,
                freeze_gc: bool = False) -> RobotProcessReport:
    """The robot process's loop (its main thread); returns when stopped (or orphaned) and at rest."""
    clock = WallClock()
    stats = FollowerStats()
    grippers = [a.name for a in robot.arm_features() if a.has_gripper]  # the others get no gripper command
    follower = CommandFollower(tuple(robot.arm_names), config, stats, grippers)
    watchdog = Watchdog()
    loop = RateLoop(config.robot_rate_hz, clock)
    state = robot.read_state()
    now = clock.now()
    follower.start(state, now)
    # the "controller" channel is watched from the controller's first message on: until then the
    # arm holds where it is, and a controller that dies before it speaks closes the link (EOF)
    _send(sock, _encode(state_to_msg(state)))
    fault_sent = False
    stop_at: float | None = None  # exit once at rest after this time
    lost = False
    dropped = messages = 0
    if freeze_gc:
        gc.collect()
        gc.freeze()  # the long-lived objects are never scanned again: young collections stay short
    while True:
        now = loop.wait()
        state = robot.read_state()
        while True:
            try:
                data = sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                data = b""
            if not data:  # end of file: the controller process is gone
                if not lost:
                    lost = True
                    watchdog.trip("controller", "controller process closed the link (exited or died)", now)
                    stop_at = clock.now() + orphan_hold_s
                break
            messages += 1
            if messages == 1:
                watchdog.watch("controller", config.watchdog.controller_timeout, clock.now())
            watchdog.feed("controller", clock.now())  # receipt time: the tick may have woken late
            msg = _to_robot.decode(data)
            if isinstance(msg, Waypoints):
                if watchdog.fault is None:
                    follower.schedule(
                        {a.name: ArmTarget(np.array(a.pose), a.gripper) for a in msg.arms}, msg.t_wp, now, msg.capture
                    )
            elif isinstance(msg, Beat):
                pass
            elif isinstance(msg, Brake):
                watchdog.trip("controller", f"controller: {msg.reason}", now)
            elif isinstance(msg, Rearm):
                watchdog.rearm(now)
                follower.rearm(now)
                fault_sent = False
            elif isinstance(msg, Stop):
                stop_at = now
        if terminated.is_set() and stop_at is None:
            watchdog.trip("controller", "robot process terminated (SIGTERM)", now)
            stop_at = now
        fault = watchdog.check(now)
        if fault is not None and not follower.braking:
            follower.brake(now, fault.reason)
        if stop_at is not None and not follower.braking:
            follower.brake(now, "stopping")
        if fault is not None and not fault_sent:
            fault_sent = _send(sock, _encode(FaultMsg(now, fault.reason)))
        robot.send(follower.tick(state, now))
        if not lost and not _send(sock, _encode(state_to_msg(state))):
            dropped += 1
        if stop_at is not None and now >= stop_at and follower.at_rest(now):
            break
    if freeze_gc:
        gc.unfreeze()
    follower.safety.flush_log()
    fault = watchdog.fault
    return RobotProcessReport(loop.stats(), stats, fault.reason if fault else None, realtime, dropped, messages, lost)


# ---------------------------------------------------------------------------------- controller side
class RobotProcess:
    """The controller's handle on a robot process; also the controller's
    :class:`~tactkit.real.follower.WaypointSink` (waypoints, brake and rearm travel the link).

    ``factory`` builds the robot *in the child* (a driver holds sockets and SDK handles); it must
    be picklable, e.g. ``functools.partial(build_robot, FakeRobotConfig())``.
    """

    def __init__(self, factory: Callable[[], Robot], config: ControllerConfig, heartbeat_period: float = 0.02,
                 orphan_hold_s: float = 5.0, start_timeout: float = 60.0) -> None:
        self.factory = factory
        self.config = config
        self.heartbeat_period = heartbeat_period
        self.orphan_hold_s = orphan_hold_s
        self.start_timeout = start_timeout
        self._proc: Any = None
        self._sock: socket.socket | None = None
        self._report_conn: Any = None
        self._last_sent = -np.inf
        self._send_lock = threading.Lock()
        self.send_dropped = 0
        self.report: RobotProcessReport | None = None
        self.faults: list[tuple[float, str]] = []  # (time, reason) of faults the robot process reported

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def exitcode(self) -> int | None:
        return None if self._proc is None else self._proc.exitcode

    def spawn(self) -> RobotState:
        """Start the robot process; returns the robot's first state (one entry per arm, in the
        robot's order) once its loop runs."""
        ctx = mp.get_context("spawn")
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._report_conn, child_report = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(
            target=_robot_main, args=(self.factory, self.config, theirs, child_report, self.orphan_hold_s),
            daemon=True, name="tactkit-robot",
        )
        try:
            self._proc.start()
        except BaseException:
            self._proc = None
            mine.close()
            self._report_conn.close()
            raise
        finally:
            theirs.close()
            child_report.close()
        self._sock = mine
        deadline = time.monotonic() + self.start_timeout
        while True:
            remaining = deadline - time.monotonic()
            mine.settimeout(max(remaining, 0.001))
            try:
                data = mine.recv(MAX_MESSAGE)
            except TimeoutError:
                data = None
            if not data:
                self._kill()
                why = "did not start" if data is None else "exited"
                raise RuntimeError(f"robot process {why} within {self.start_timeout} s (exit code {self.exitcode})")
            msg = _from_robot.decode(data)
            if isinstance(msg, Failed):
                self._kill()
                raise RuntimeError(f"robot process failed to start the robot:\n{msg.traceback}")
            if isinstance(msg, StateMsg):
                mine.setblocking(False)
                log.info("robot process %d running at %.0f Hz", self._proc.pid, self.config.robot_rate_hz)
                return msg_to_state(msg)

    def _send(self, msg: msgspec.Struct, now: float | None = None) -> None:
        if self._sock is None:
            return
        with self._send_lock:
            if _send(self._sock, _encode(msg)):
                self._last_sent = time.monotonic() if now is None else now
            else:
                self.send_dropped += 1

    def poll(self) -> list[RobotState]:
        """States received since the last call (oldest first); faults go to :attr:`faults`."""
        out: list[RobotState] = []
        sock = self._sock
        while sock is not None:
            try:
                data = sock.recv(MAX_MESSAGE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                break
            if not data:
                break  # the robot process is gone: `alive` turns False
            msg = _from_robot.decode(data)
            if isinstance(msg, StateMsg):
                out.append(msg_to_state(msg))
            elif isinstance(msg, FaultMsg):
                log.error("robot process: %s -> decelerating and holding", msg.reason)
                self.faults.append((msg.t, msg.reason))
            elif isinstance(msg, Failed):
                self.faults.append((time.monotonic(), f"robot process failed:\n{msg.traceback}"))
        return out

    def heartbeat(self, now: float) -> None:
        """Tell the robot process this controller is alive (at most every ``heartbeat_period``)."""
        if now - self._last_sent >= self.heartbeat_period:
            self._send(Beat(now), now)

    # WaypointSink -----------------------------------------------------------------------------
    def start(self, state: RobotState, now: float) -> None:
        """The robot process holds the measured pose from its start on: nothing to send."""

    def schedule(self, targets: Mapping[str, ArmTarget], t_wp: float, now: float, capture: float | None) -> None:
        arms = [WaypointArm(name, np.asarray(t.tcp_pose, dtype=np.float64).tolist(),
                            None if t.gripper_width is None else float(t.gripper_width))
                for name, t in targets.items()]
        self._send(Waypoints(t_wp, capture, arms), now)

    def brake(self, now: float, reason: str) -> None:
        self._send(Brake(reason), now)

    def rearm(self, now: float) -> None:
        self._send(Rearm(), now)

    # lifecycle --------------------------------------------------------------------------------
    def stop(self, timeout: float = 10.0) -> RobotProcessReport | None:
        """Bring the arm to rest, stop the robot process and return its report."""
        if self._proc is None:
            return self.report
        self._send(Stop())
        if self._report_conn.poll(timeout):
            try:
                self.report = self._report_conn.recv()
            except (EOFError, OSError):
                pass
        self._proc.join(timeout)
        self._kill()
        return self.report

    def _kill(self) -> None:
        if self._proc is not None and self._proc.pid is not None and self._proc.is_alive():
            self._proc.terminate()
            self._proc.join(5.0)
            if self._proc.is_alive():
                self._proc.kill()
                self._proc.join(5.0)
        for closable in (self._sock, self._report_conn):
            if closable is not None:
                closable.close()
        self._sock = None
        self._proc = None


def build_robot(config: Any) -> Robot:
    """Build a registered robot from its config (a picklable robot-process factory with partial)."""
    from tactkit.real.robot import ROBOTS
    from tactkit.real.setup import _register_builtin_robots

    _register_builtin_robots()
    return ROBOTS.build(config)


# ---------------------------------------------------------------------------------- the runtime
@dataclass
class ProcessReport:
    """Like :class:`~tactkit.real.runtime.WallClockReport`, with the robot process's own figures."""

    stats: Any  # ControllerStats (robot-side counts from the robot process)
    robot_loop: RateStats
    fast_loop: RateStats
    plan_compute_s: list[float]
    robot_realtime: bool = False
    robot_process: RobotProcessReport | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class RobotProcessRuntime:
    """Wall-clock controller with the robot loop in its own process.

    This process runs the fast loop (sensors, robot states from the link, ``policy.step``,
    the watchdog on plans, sensors and the slow process) and the slow-policy poller; the robot
    process (:class:`RobotProcess`) runs the 500 Hz loop.
    """

    def __init__(self, robot_factory: Callable[[], Robot], policy: Policy, config: ControllerConfig,
                 slow: SlowPolicy, sensors: Sequence[Sensor] = (), fast_poll_hz: float = 1000.0,
                 orphan_hold_s: float = 5.0) -> None:
        self.policy, self.config, self.slow = policy, config, slow
        self.sensors = list(sensors)
        self.clock = WallClock()
        self.fast_poll_hz = fast_poll_hz
        self.link = RobotProcess(robot_factory, config, orphan_hold_s=orphan_hold_s)
        self.core: ControllerCore | None = None  # built once the robot process names its arms
        self._stop = threading.Event()
        self.plan_compute_s: collections.deque[float] = collections.deque(maxlen=100_000)

    def stop(self) -> None:
        """Ask a running :meth:`run` to finish (the arm is brought to rest)."""
        self._stop.set()

    def _fast_loop(self, loop: RateLoop) -> None:
        from tactkit.real.runtime import _poll_sensors

        core, link = self.core, self.link
        last_seq: dict[int, int] = {}
        with realtime_thread(max(self.config.realtime_priority - 1, 0)):
            while not self._stop.is_set():
                now = loop.wait()
                seen = len(link.faults)
                for state in link.poll():
                    core.on_state(state)
                for t, reason in link.faults[seen:]:  # the robot process braked on its own
                    core.watchdog.trip("robot_process", f"robot process: {reason}", t)
                _poll_sensors(core, self.sensors, last_seq)
                core.check_watchdog(now)
                if core.fast_due(now):
                    core.fast_step(now)
                link.heartbeat(self.clock.now())

    def _slow_loop(self) -> None:
        with realtime_thread(max(self.config.realtime_priority - 2, 0)):
            serve_plans(self.core, self.slow, self.clock, self._stop, self.config.plan_period, self.plan_compute_s)

    def run(self, duration: float | None = None) -> ProcessReport:
        """Run until ``duration`` s have passed, :meth:`stop` is called or the robot process ends."""
        clock = self.clock
        self.slow.start()
        threads: list[threading.Thread] = []
        # no spinning before each deadline: the fast loop waits for sensor samples that arrive when
        # they do, and the CPU a spin would burn is the robot process's on a small machine
        fast_loop = RateLoop(self.fast_poll_hz, WallClock(spin_s=0.0))
        robot_died = None
        try:
            state = self.link.spawn()
            self.core = core = ControllerCore(self.policy, tuple(state.arms), self.config, sink=self.link)
            now = clock.now()
            core.start(state, now)
            core.watchdog.watch("slow_process", self.config.watchdog.slow_process_timeout, now)
            self._stop.clear()
            threads = [
                threading.Thread(target=self._fast_loop, args=(fast_loop,), daemon=True, name="fast-loop"),
                threading.Thread(target=self._slow_loop, daemon=True, name="slow-loop"),
            ]
            for th in threads:
                th.start()
            t_end = None if duration is None else now + duration
            # real-time as well, though it mostly sleeps: a normal-priority thread preempted while
            # it holds the interpreter lock would hold up the fast loop behind it
            with realtime_thread(max(self.config.realtime_priority - 2, 0)):
                while not self._stop.wait(0.01):
                    if not self.link.alive:
                        robot_died = f"robot process exited (exit code {self.link.exitcode})"
                        break
                    if t_end is not None and clock.now() >= t_end:
                        break
        finally:
            self._stop.set()
            for th in threads:
                th.join(5.0)
            report = self.link.stop()
            self.slow.stop()
        stats = core.stats
        if report is not None:
            stats.robot_ticks = report.stats.robot_ticks
            stats.safety = report.stats.safety
            stats.sample_to_command = report.stats.sample_to_command
        if stats.fault is None:
            robot_fault = report.fault if report is not None else None
            if robot_fault is not None and robot_fault != "stopping" and not robot_fault.startswith("controller: "):
                stats.fault = f"robot process: {robot_fault}"
            elif robot_died is not None:
                stats.fault = robot_died
        empty = RateStats(0, 0, 0.0, 0.0, 0.0, 0.0)
        return ProcessReport(
            stats, report.loop if report is not None else empty, fast_loop.stats(), list(self.plan_compute_s),
            report.realtime if report is not None else False, report,
            {"link_send_dropped": self.link.send_dropped},
        )
