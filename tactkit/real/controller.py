"""The controller logic shared by the wall-clock and the lockstep runtime.

:class:`ControllerCore` holds no threads and never reads a clock: the runtimes call it with
the current time. Three entry points, one per loop:

* :meth:`ControllerCore.robot_tick` (robot rate, e.g. 500 Hz): sample the pose trajectory
  (or, after a watchdog fault, the braking trajectory), pass it through the safety filter,
  return the command to send.
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
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial.transform import Rotation

from tactkit.policies.interface import FastSignal, Plan, Policy
from tactkit.real import quat as Q
from tactkit.real.observations import ActionLayout, ObservationBuffer, state_observations
from tactkit.real.robot import ArmCommand, RobotCommand, RobotState
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.real.trajectory import BrakingTrajectory, CommandShaper, PoseTrajectory
from tactkit.real.watchdog import Watchdog, WatchdogConfig
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
class ControllerStats:
    robot_ticks: int = 0
    fast_steps: int = 0
    plans: int = 0
    plan_steps_dropped: int = 0  # steps of installed plans already older than now + execution latency
    safety: Counter = field(default_factory=Counter)  # limit name -> robot ticks it bound
    fault: str | None = None
    sample_to_command: list[float] = field(default_factory=list)  # s, fast-signal capture -> first command


class ControllerCore:
    """Plans, fast steps, interpolation, safety and watchdog for one policy driving one robot."""

    def __init__(self, policy: Policy, arm_names: tuple[str, ...], config: ControllerConfig,
                 grippers: Iterable[str] | None = None) -> None:
        """``grippers``: the arms whose tool is a gripper (default: every arm); the others get
        no gripper command whatever the policy's gripper action says."""
        self.policy = policy
        self.config = config
        self.arm_names = tuple(arm_names)
        self.grippers = set(self.arm_names if grippers is None else grippers)
        self.layout = ActionLayout(policy.action_keys, self.arm_names)
        self.fast_keys = tuple(policy.fast_keys)
        self.robot_period = 1.0 / config.robot_rate_hz
        self.fast_period = 1.0 / (config.fast_rate_hz or 1.0 / policy.dt)
        self.safety = SafetyFilter(config.safety)
        self.watchdog = Watchdog()
        self.obs = ObservationBuffer(max(config.observation_horizon, (policy.n_obs_steps + 1) * policy.dt))
        self.stats = ControllerStats()
        self.plans: list[Plan] = []
        self._lock = threading.RLock()
        self._traj: dict[str, PoseTrajectory] = {}
        self._brake: dict[str, BrakingTrajectory] | None = None
        self._shapers: dict[str, CommandShaper] = {}
        self._gripper: dict[str, float | None] = {a: None for a in self.arm_names}
        self._last_sent: dict[str, tuple[float, np.ndarray]] = {}
        self._velocity: dict[str, np.ndarray] = {a: np.zeros(6) for a in self.arm_names}
        self._fast_capture: float | None = None  # capture time of the signal behind the newest waypoint
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
            for arm in self.arm_names:
                pose = np.asarray(state.arms[arm].tcp_pose, dtype=np.float64)
                self._traj[arm] = PoseTrajectory.hold(pose, now)
                self._last_sent[arm] = (now, pose)
                self._shapers[arm] = self._shaper(pose, now)
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
            self._brake = None
            self.safety.reset()
            self.watchdog.rearm(now)
            self.stats.fault = None
            for arm in self.arm_names:
                pose = self._last_sent[arm][1]
                self._traj[arm] = PoseTrajectory.hold(pose, now)
                self._velocity[arm] = np.zeros(6)
                self._shapers[arm] = self._shaper(pose, now)
            self.policy.reset()

    @property
    def faulted(self) -> bool:
        return self.watchdog.fault is not None

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
        with self._lock:
            if self.faulted:
                return False
            t_wp = now + self.fast_period
            for arm, q in targets.items():
                self._traj[arm] = self._traj[arm].schedule_waypoint(
                    q["tcp_pose"], t_wp, now, self.config.max_pos_speed, self.config.max_rot_speed
                )
                if "gripper_width" in q and arm in self.grippers:
                    self._gripper[arm] = float(q["gripper_width"][0])
            self._fast_capture = capture
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

    def _shaper(self, pose: np.ndarray, now: float) -> CommandShaper | None:
        f, s = self.config.command_accel_fraction, self.config.safety
        if f <= 0:
            return None
        return CommandShaper(pose, now, self.config.max_pos_speed, self.config.max_rot_speed,
                             f * s.max_linear_accel, f * s.max_angular_accel)

    def robot_tick(self, state: RobotState, now: float) -> RobotCommand:
        """The command to send at ``now`` (already safety-filtered)."""
        with self._lock:
            fault = self.watchdog.check(now)
            if fault is not None and self._brake is None:
                self.stats.fault = fault.reason
                missing = self.obs.missing(self.policy.obs_keys)
                if fault.channel == "plan" and missing:
                    self.stats.fault += f" (no observations yet for {missing}: is every sensor connected?)"
                wd = self.config.watchdog
                # anchored at the last sent command so the motion continues without a step
                self._brake = {
                    arm: BrakingTrajectory(
                        self._last_sent[arm][1], self._velocity[arm], self._last_sent[arm][0],
                        wd.stop_linear_decel, wd.stop_angular_decel,
                    )
                    for arm in self.arm_names
                }
            cmd = RobotCommand(timestamp=now, arms={})
            for arm in self.arm_names:
                if self._brake is not None:  # the braking profile is already deceleration-limited
                    pose = self._brake[arm](now)
                else:
                    pose = self._traj[arm](now)
                    shaper = self._shapers.get(arm)
                    if shaper is not None:
                        pose = shaper(pose, now)
                cmd.arms[arm] = ArmCommand(pose, self._gripper[arm])
            out = self.safety.filter(cmd, state)
            for names in self.safety.report.violations.values():
                self.stats.safety.update(names)
            for arm, arm_cmd in out.arms.items():
                t_prev, p_prev = self._last_sent[arm]
                if now > t_prev:
                    self._velocity[arm] = _pose_velocity(p_prev, arm_cmd.tcp_target, now - t_prev)
                self._last_sent[arm] = (now, np.asarray(arm_cmd.tcp_target, dtype=np.float64))
            if self._fast_capture is not None:
                self.stats.sample_to_command.append(now - self._fast_capture)
                self._fast_capture = None
            self.stats.robot_ticks += 1
            return out


def _pose_velocity(a: np.ndarray, b: np.ndarray, dt: float) -> np.ndarray:
    return np.concatenate([(b[:3] - a[:3]) / dt, Q.delta(a[3:], b[3:]) / dt])
