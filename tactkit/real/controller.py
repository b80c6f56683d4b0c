"""The controller logic shared by the wall-clock and the lockstep runtime.

:class:`ControllerCore` holds no threads and never reads a clock: the runtimes call it with
the current time. Three entry points, one per loop:

* :meth:`ControllerCore.robot_tick` (robot rate, e.g. 500 Hz): check the watchdog, sample the
  pose trajectory (or, after a fault, the braking trajectory), pass it through the safety
  filter, return the command to send. That half lives in a
  :class:`~tactkit.real.follower.CommandFollower`; with a robot process
  (:mod:`tactkit.real.robot_process`) it runs there, and this object only sends it waypoints
  (and, on a fault, the order to brake).
* :meth:`ControllerCore.fast_step` (sensor rate): ``policy.step`` on the active plan with the
  latest fast signal, for the action time ``now + fast_period + execution_latency``; the
  result becomes a waypoint at ``now + fast_period`` (the robot executes it
  ``execution_latency`` later), so plan steps older than now + execution latency are never
  used.
* :meth:`ControllerCore.install_plan` (whenever the slow policy delivers): the newest plan
  replaces the old one, or, with ``temporal_ensembling = k``, joins the active plans whose
  predictions are averaged with weights ``exp(-k * age_rank)`` (ACT-style, oldest first).
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from tactkit.policies.interface import FastSignal, Plan, Policy
from tactkit.real.follower import ArmTarget, CommandFollower, FollowerStats, WaypointSink
from tactkit.real.observations import ActionLayout, ObservationBuffer, state_observations
from tactkit.real.robot import RobotCommand, RobotState
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.real.watchdog import Fault, Watchdog, WatchdogConfig
from tactkit.sensors.base import SensorSample

log = logging.getLogger(__name__)


@dataclass
class ControllerConfig:
    """Timing and limits of one controller run (seconds, SI)."""

    robot_rate_hz: float = 500.0  # robot loop; also the interpolation rate
    fast_rate_hz: float | None = None  # fast loop; None = the policy's training rate (1 / policy.dt)
    plan_period: float = 0.25  # s between plan requests (a new one never starts before the last returns)
    inference_latency: float = 0.1  # s, lockstep only: simulated slow-policy latency
    execution_latency: float = 0.0  # s, command-to-motion latency of the robot
    temporal_ensembling: float | None = None  # ACT weight k; None = newest plan replaces the old
    max_pos_speed: float = 0.3  # m/s, interpolation speed limit (below the safety limit)
    max_rot_speed: float = 1.5  # rad/s
    # the command shaper's acceleration limits as a fraction of the safety filter's (0 = off):
    # waypoints interpolated linearly change velocity in one robot period, which the filter's
    # acceleration limit would clip on most ticks (tactkit.real.trajectory.CommandShaper)
    command_accel_fraction: float = 0.5
    observation_horizon: float = 2.0  # s of history kept per stream
    # wall clock only: SCHED_FIFO priority of the robot loop (the fast loop gets one less, the
    # slow-process poller two less); 0 = normal scheduling. Needs root/CAP_SYS_NICE, otherwise a
    # warning and normal scheduling. The loops spin the last 0.5 ms before each deadline, and
    # under SCHED_FIFO that CPU time is not available to normal-priority processes.
    realtime_priority: int = 0
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    watchdog: WatchdogConfig = field(default_factory=WatchdogConfig)

    def __post_init__(self) -> None:
        for name in ("robot_rate_hz", "plan_period", "max_pos_speed", "max_rot_speed", "observation_horizon"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"controller {name} must be a positive finite number, got {v}")
        for name in ("inference_latency", "execution_latency"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"controller {name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.command_accel_fraction <= 1:
            raise ValueError(f"controller command_accel_fraction must be in [0, 1], got {self.command_accel_fraction}")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError(f"controller realtime_priority must be in 0..99, got {self.realtime_priority}")
        if self.fast_rate_hz is not None and not self.fast_rate_hz > 0:
            raise ValueError(f"controller fast_rate_hz must be > 0, got {self.fast_rate_hz}")
        if self.temporal_ensembling is not None and not self.temporal_ensembling >= 0:
            raise ValueError(f"controller temporal_ensembling must be >= 0, got {self.temporal_ensembling}")


@dataclass
class ControllerStats(FollowerStats):
    """Counts of one run: the robot side's (``robot_ticks``, ``safety``, ``sample_to_command``,
    from :class:`~tactkit.real.follower.FollowerStats`) and the controller's."""

    fast_steps: int = 0
    plans: int = 0
    plan_steps_dropped: int = 0  # steps of installed plans already older than now + execution latency
    fault: str | None = None


class ControllerCore:
    """Plans, fast steps, interpolation, safety and watchdog for one policy driving one robot."""

    def __init__(
        self, policy: Policy, arm_names: tuple[str, ...], config: ControllerConfig,
        grippers: Iterable[str] | None = None, sink: WaypointSink | None = None,
    ) -> None:
        """``grippers``: the arms whose tool is a gripper (default: every arm); the others get
        no gripper command whatever the policy's gripper action says. ``sink``: where waypoints
        go; by default a :class:`~tactkit.real.follower.CommandFollower` in this object
        (:meth:`robot_tick` then builds the commands), or the link to a robot process
        (:mod:`tactkit.real.robot_process`), which builds them on its own."""
        self.policy = policy
        self.config = config
        self.arm_names = tuple(arm_names)
        self.grippers = set(self.arm_names if grippers is None else grippers)
        self.layout = ActionLayout(policy.action_keys, self.arm_names)
        self.fast_keys = tuple(policy.fast_keys)
        self.robot_period = 1.0 / config.robot_rate_hz
        self.fast_period = 1.0 / (config.fast_rate_hz or 1.0 / policy.dt)
        self.watchdog = Watchdog()
        self.obs = ObservationBuffer(max(config.observation_horizon, (policy.n_obs_steps + 1) * policy.dt))
        self.stats = ControllerStats()
        self.plans: list[Plan] = []
        self._lock = threading.RLock()
        self.follower: CommandFollower | None = None
        if sink is None:
            self.follower = CommandFollower(self.arm_names, config, self.stats, self.grippers)
            sink = self.follower
        self.sink: WaypointSink = sink
        self._last_fast_seq: int | None = None
        self._last_fast_time = -math.inf
        self._last_fast_signal_time: float | None = None
        self._fast_event_time: float | None = None  # capture time of the newest fast sensor sample
        self.started = False

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self, state: RobotState, now: float) -> None:
        """Hold the current pose, reset the policy and arm the watchdog."""
        with self._lock:
            self.on_state(state)
            self.sink.start(state, now)
            self.policy.reset()
            wd = self.config.watchdog
            self.watchdog.watch("plan", wd.plan_timeout, now)
            for key in self.fast_keys:
                self.watchdog.watch(f"sensor:{key}", wd.sensor_timeout, now)
            self.started = True

    def rearm(self, state: RobotState, now: float) -> None:
        """Operator request after a fault: drop plans, hold where the arm is, watch afresh."""
        with self._lock:
            self.plans.clear()
            self.watchdog.rearm(now)
            self.stats.fault = None
            self.sink.rearm(now)
            self.policy.reset()

    @property
    def faulted(self) -> bool:
        return self.watchdog.fault is not None

    @property
    def safety(self) -> SafetyFilter:
        """The safety filter of the in-process follower (the robot process has its own)."""
        if self.follower is None:
            raise AttributeError("the safety filter runs in the robot process")
        return self.follower.safety

    def check_watchdog(self, now: float) -> Fault | None:
        """Check every watched channel; the first fault makes the sink brake (once)."""
        with self._lock:
            fault = self.watchdog.check(now)
            if fault is not None and self.stats.fault is None:
                self.stats.fault = fault.reason
                missing = self.obs.missing(self.policy.obs_keys)
                if fault.channel == "plan" and missing:
                    self.stats.fault += f" (no observations yet for {missing}: is every sensor connected?)"
                self.sink.brake(now, self.stats.fault)
            return fault

    # -- observations ---------------------------------------------------------------------------

    def on_state(self, state: RobotState) -> None:
        with self._lock:
            for key, value in state_observations(state).items():
                self.obs.add(key, state.timestamp, value)
                if key in self.fast_keys:
                    self.watchdog.feed(f"sensor:{key}", state.timestamp)

    def on_sample(self, sample: SensorSample) -> None:
        with self._lock:
            self.obs.add(sample.key, sample.capture_time, sample.value)
            if sample.key in self.fast_keys:
                self.watchdog.feed(f"sensor:{sample.key}", sample.capture_time)
                self._fast_event_time = sample.capture_time

    def window(self) -> dict[str, np.ndarray] | None:
        """The policy's observation window, or None while some key has no data yet."""
        with self._lock:
            missing = self.obs.missing(self.policy.obs_keys)
            if missing:
                log.debug("controller: waiting for observations %s", missing)
                return None
            return self.obs.window(self.policy.obs_keys, self.policy.n_obs_steps, self.policy.dt)

    # -- slow: plans ----------------------------------------------------------------------------

    def install_plan(self, plan: Plan, now: float) -> None:
        """A new plan arrived at ``now``: replace (or ensemble with) the active ones."""
        with self._lock:
            if self.faulted:
                return
            self.watchdog.feed("plan", now)
            self.stats.plans += 1
            horizon_start = now + self.config.execution_latency
            stale = int(np.clip(np.ceil((horizon_start - plan.t0) / plan.dt - 1e-9), 0, plan.horizon))
            self.stats.plan_steps_dropped += stale
            if self.config.temporal_ensembling is None:
                self.plans = [plan]
            else:
                self.plans = [p for p in self.plans if p.t_end >= horizon_start] + [plan]

    # -- fast: policy.step -> waypoint --------------------------------------------------------

    def fast_due(self, now: float) -> bool:
        """A fast step is due: a new sample of the fast signal arrived from a sensor (at most
        twice per fast period, so the loop locks onto the sensor's phase), or no sample came
        for 1.5 fast periods (the plan keeps being stepped with the last signal).

        Fast signals taken from the robot state (e.g. ``observation.wrench`` at the robot rate)
        are sampled every fast period.
        """
        since = now - self._last_fast_time
        if self._fast_event_time is not None:
            if self._fast_event_time != self._last_fast_signal_time:
                return since >= 0.5 * self.fast_period - 1e-9
            # sensor-driven: without a new sample wait 1.5 periods, so a periodic step never
            # lands just before a sample and pushes that sample's step a whole period back
            return since >= 1.5 * self.fast_period - 1e-9
        return since >= self.fast_period - 1e-9

    def fast_step(self, now: float) -> bool:
        """Run ``policy.step`` and schedule the result; False if there is no plan yet."""
        with self._lock:
            self._last_fast_time = now
            plans = list(self.plans)
            fast, capture = self._latest_fast()
            if capture is not None:
                self._last_fast_signal_time = capture
            if not plans or self.faulted:
                return False
        t_action = now + self.fast_period + self.config.execution_latency
        action = self._ensemble(plans, t_action, fast)  # outside the lock: may take milliseconds
        targets = self.layout.split(action)
        waypoints = {
            arm: ArmTarget(q["tcp_pose"],
                           float(q["gripper_width"][0]) if "gripper_width" in q and arm in self.grippers else None)
            for arm, q in targets.items()
        }
        with self._lock:
            if self.faulted:
                return False
            self.sink.schedule(waypoints, now + self.fast_period, now, capture)
            self.stats.fast_steps += 1
        return True

    def _latest_fast(self) -> tuple[FastSignal | None, float | None]:
        """(``{fast key: latest value}`` for ``policy.step``, capture time of its newest part);
        (None, None) until every fast key has a value."""
        latest = {k: self.obs.latest(k) for k in self.fast_keys}
        if not latest or any(v is None for v in latest.values()):
            return None, None
        capture = max(v[0] for v in latest.values())
        return {k: v[1] for k, v in latest.items()}, capture

    def _ensemble(self, plans: list[Plan], t: float, fast: FastSignal | None) -> np.ndarray:
        if len(plans) == 1:
            return np.asarray(self.policy.step(plans[0], t, fast), dtype=np.float64)
        actions = np.stack([np.asarray(self.policy.step(p, t, fast), dtype=np.float64) for p in plans])
        w = np.exp(-float(self.config.temporal_ensembling) * np.arange(len(plans)))
        w /= w.sum()
        out = (w[:, None] * actions).sum(axis=0)
        for sl in self.layout.pose_slices():
            quats = actions[:, sl][:, 3:]
            out[sl][3:] = Rotation.from_quat(quats, scalar_first=True).mean(weights=w).as_quat(scalar_first=True)
        return out

    # -- robot: interpolate, watchdog, safety ---------------------------------------------------

    def robot_tick(self, state: RobotState, now: float) -> RobotCommand:
        """The command to send at ``now`` (already safety-filtered), from the in-process follower."""
        if self.follower is None:
            raise RuntimeError("robot_tick: this controller's commands are built in the robot process")
        with self._lock:
            self.check_watchdog(now)
            return self.follower.tick(state, now)
