"""Two runtimes around one :class:`~tactkit.real.controller.ControllerCore`.

* :class:`LockstepRuntime` - simulation time (:class:`~tactkit.clock.SimClock`), one thread,
  deterministic: every robot period it reads the robot and sensors, installs a plan whose
  simulated inference latency has elapsed, requests the next plan (computed at once, released
  ``inference_latency`` later), runs a due fast step, sends the filtered command and advances
  the world to the next period. Same seed, same result, bit for bit.
* :class:`WallClockRuntime` - the monotonic wall clock: the robot loop runs in the calling
  thread on a :class:`~tactkit.rate.RateLoop`; a fast thread polls the sensors and runs
  ``policy.step``; a slow thread feeds windows to the slow policy (a spawned process on
  hardware, see :mod:`tactkit.real.slow_process`) and installs its plans; a dead or silent
  slow process trips the watchdog.
"""

from __future__ import annotations

import collections
import logging
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tactkit.clock import Clock, SimClock, WallClock
from tactkit.policies.interface import Plan, Policy
from tactkit.rate import RateLoop, RateStats, realtime_thread
from tactkit.real.controller import ControllerConfig, ControllerCore, ControllerStats
from tactkit.real.robot import Robot, RobotCommand, RobotState
from tactkit.real.slow_process import SlowPolicy, serve_plans
from tactkit.sensors.base import Sensor

log = logging.getLogger(__name__)

#: called after every robot tick with (now, state, sent command); return True to stop the run
TickHook = Callable[[float, RobotState, RobotCommand], bool | None]


def _grippers(robot: Robot) -> list[str]:
    """The arms whose tool is a gripper (the others get no gripper command)."""
    return [a.name for a in robot.arm_features() if a.has_gripper]


def _poll_sensors(core: ControllerCore, sensors: Sequence[Sensor], last_seq: dict[int, int]) -> None:
    for i, sensor in enumerate(sensors):
        sample = sensor.read_latest()
        if sample is not None and sample.seq != last_seq.get(i):
            last_seq[i] = sample.seq
            core.on_sample(sample)


class LockstepRuntime:
    """Deterministic controller run in simulation time.

    ``advance_to(t)`` must bring the world (and ``clock``) to time ``t``: for the PyBullet
    world that is ``world.run_until``; by default the clock is simply set (robots that
    integrate lazily from the clock, like :class:`~tactkit.real.fake.FakeRobot`).
    """

    def __init__(
        self,
        robot: Robot,
        policy: Policy,
        config: ControllerConfig,
        clock: SimClock,
        sensors: Sequence[Sensor] = (),
        advance_to: Callable[[float], None] | None = None,
    ) -> None:
        self.robot, self.policy, self.config, self.clock = robot, policy, config, clock
        self.sensors = list(sensors)
        self.advance_to = advance_to or clock.set
        self.core = ControllerCore(policy, robot.arm_names, config, _grippers(robot))

    def run(self, duration: float, on_tick: TickHook | None = None) -> ControllerStats:
        """Run for ``duration`` seconds of simulation time (or until ``on_tick`` returns True)."""
        cfg, core, clock = self.config, self.core, self.clock
        period = core.robot_period
        start = clock.now()
        state = self.robot.read_state()
        core.start(state, start)
        last_seq: dict[int, int] = {}
        pending: tuple[float, Plan] | None = None  # (release time, plan)
        next_request = start
        n_ticks = int(np.ceil(duration / period - 1e-9))
        for k in range(n_ticks):
            now = clock.now()
            if k > 0:
                state = self.robot.read_state()
                core.on_state(state)
            _poll_sensors(core, self.sensors, last_seq)
            if pending is not None and now >= pending[0] - 1e-12:
                core.install_plan(pending[1], now)
                pending = None
            if pending is None and now >= next_request - 1e-12 and not core.faulted:
                window = core.window()
                if window is not None:
                    plan = self.policy.plan(window)
                    next_request = now + cfg.plan_period
                    if cfg.inference_latency <= 0:
                        core.install_plan(plan, now)
                    else:
                        pending = (now + cfg.inference_latency, plan)
            if core.fast_due(now):
                core.fast_step(now)
            cmd = core.robot_tick(state, now)
            self.robot.send(cmd)
            if on_tick is not None and on_tick(now, state, cmd):
                break
            self.advance_to(start + (k + 1) * period)
        core.safety.flush_log()
        return core.stats


@dataclass
class WallClockReport:
    stats: ControllerStats
    robot_loop: RateStats
    fast_loop: RateStats
    plan_compute_s: list[float]


class WallClockRuntime:
    """Real-time controller run: robot loop here, fast and slow loops in threads."""

    def __init__(
        self,
        robot: Robot,
        policy: Policy,
        config: ControllerConfig,
        slow: SlowPolicy,
        sensors: Sequence[Sensor] = (),
        clock: Clock | None = None,
        fast_poll_hz: float = 1000.0,
    ) -> None:
        self.robot, self.policy, self.config = robot, policy, config
        self.slow = slow  # started by run
        self.sensors = list(sensors)
        self.clock = clock or WallClock()
        self.fast_poll_hz = fast_poll_hz
        self.core = ControllerCore(policy, robot.arm_names, config, _grippers(robot))
        self._stop = threading.Event()
        self.plan_compute_s: collections.deque[float] = collections.deque(maxlen=100_000)
        self.realtime = False  # whether the last run's robot loop got real-time priority

    def stop(self) -> None:
        """Ask a running :meth:`run` to finish after the current robot tick."""
        self._stop.set()

    def _fast_loop(self, loop: RateLoop) -> None:
        last_seq: dict[int, int] = {}
        with realtime_thread(max(self.config.realtime_priority - 1, 0)):
            while not self._stop.is_set():
                now = loop.wait()
                _poll_sensors(self.core, self.sensors, last_seq)
                if self.core.fast_due(now):
                    self.core.fast_step(now)

    def _slow_loop(self) -> None:
        # real-time too (it mostly sleeps): a normal-priority thread preempted while it holds
        # the GIL would stall the robot loop behind it
        with realtime_thread(max(self.config.realtime_priority - 2, 0)):
            serve_plans(self.core, self.slow, self.clock, self._stop, self.config.plan_period, self.plan_compute_s)

    def run(self, duration: float | None = None, on_tick: TickHook | None = None) -> WallClockReport:
        """Run until ``duration`` s have passed, :meth:`stop` is called or ``on_tick`` says stop."""
        core, clock = self.core, self.clock
        self.slow.start()
        self.robot.connect()
        old_switch = sys.getswitchinterval()
        sys.setswitchinterval(2e-4)  # let the robot loop win the GIL back within 0.2 ms
        robot_loop = RateLoop(self.config.robot_rate_hz, clock)
        fast_loop = RateLoop(self.fast_poll_hz, clock)
        threads: list[threading.Thread] = []
        try:
            now = clock.now()
            state = self.robot.read_state()
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
            # after the threads start: they would inherit the robot loop's real-time policy
            with realtime_thread(self.config.realtime_priority) as self.realtime:
                while not self._stop.is_set():
                    now = robot_loop.wait()
                    state = self.robot.read_state()
                    core.on_state(state)
                    cmd = core.robot_tick(state, now)
                    self.robot.send(cmd)
                    if on_tick is not None and on_tick(now, state, cmd):
                        break
                    if t_end is not None and now >= t_end:
                        break
        finally:
            self._stop.set()
            for th in threads:
                th.join(5.0)
            sys.setswitchinterval(old_switch)
            self.slow.stop()
            self.robot.disconnect()
            core.safety.flush_log()
        return WallClockReport(core.stats, robot_loop.stats(), fast_loop.stats(), list(self.plan_compute_s))
