"""The robot side of the controller: waypoints in, one safe command per robot period out.

:class:`CommandFollower` holds one :class:`~tactkit.real.trajectory.PoseTrajectory` per arm.
The fast loop schedules waypoints into it (:meth:`~CommandFollower.schedule`); the robot loop
samples it every period, passes the sample through the safety filter and returns the command
(:meth:`~CommandFollower.tick`); a :class:`~tactkit.real.trajectory.CommandShaper` between the
two keeps the command's acceleration under a fraction of the safety filter's limits
(``controller.command_accel_fraction``), so the filter stays a gate normal motion never
touches. After a fault (:meth:`~CommandFollower.brake`) it follows a
:class:`~tactkit.real.trajectory.BrakingTrajectory` from the last sent command instead and
ignores waypoints until :meth:`~CommandFollower.rearm`.

It runs inside :class:`~tactkit.real.controller.ControllerCore` (lockstep and threaded
runtimes) or alone in the robot process (:mod:`tactkit.real.robot_process`), where no thread
of the controller can delay it. Any object with ``start / schedule / brake / rearm`` is a
:class:`WaypointSink` the controller can drive; the robot process's link is the other one.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import numpy as np

from tactkit.real import quat as Q
from tactkit.real.robot import ArmCommand, RobotCommand, RobotState
from tactkit.real.safety import SafetyFilter
from tactkit.real.trajectory import BrakingTrajectory, CommandShaper, PoseTrajectory

if TYPE_CHECKING:
    from tactkit.real.controller import ControllerConfig

#: sample-to-command latencies kept for statistics (a ring: runs may last hours)
LATENCY_HISTORY = 100_000


@dataclass(frozen=True)
class ArmTarget:
    """One arm's waypoint: TCP pose (7,) and gripper width (None keeps the last one)."""

    tcp_pose: np.ndarray
    gripper_width: float | None = None


@dataclass
class FollowerStats:
    robot_ticks: int = 0
    safety: collections.Counter = field(default_factory=collections.Counter)  # limit -> ticks it bound
    #: s, capture time of the fast signal behind a waypoint -> first command built from it
    sample_to_command: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LATENCY_HISTORY))


class WaypointSink(Protocol):
    """Where the controller's fast loop puts its waypoints: a local follower or the robot process."""

    def start(self, state: RobotState, now: float) -> None: ...

    def schedule(self, targets: Mapping[str, ArmTarget], t_wp: float, now: float, capture: float | None) -> None: ...

    def brake(self, now: float, reason: str) -> None: ...

    def rearm(self, now: float) -> None: ...


class CommandFollower:
    """Waypoints -> interpolated, safety-filtered commands; brakes to rest after a fault."""

    def __init__(self, arm_names: tuple[str, ...], config: ControllerConfig, stats: FollowerStats | None = None,
                 grippers: Iterable[str] | None = None) -> None:
        """``grippers``: the arms whose tool is a gripper (default: every arm); the others get no
        gripper command whatever the waypoints say."""
        self.arm_names = tuple(arm_names)
        self.config = config
        self.stats = stats or FollowerStats()
        self.grippers = set(self.arm_names if grippers is None else grippers)
        self.safety = SafetyFilter(config.safety)
        self._traj: dict[str, PoseTrajectory] = {}
        self._brake: dict[str, BrakingTrajectory] | None = None
        self._shapers: dict[str, CommandShaper | None] = {}
        self._gripper: dict[str, float | None] = {a: None for a in self.arm_names}
        self._last_sent: dict[str, tuple[float, np.ndarray]] = {}
        self._velocity: dict[str, np.ndarray] = {a: np.zeros(6) for a in self.arm_names}
        self._fast_capture: float | None = None  # capture time of the signal behind the newest waypoint
        self.brake_reason: str | None = None

    @property
    def braking(self) -> bool:
        return self._brake is not None

    def start(self, state: RobotState, now: float) -> None:
        """Hold the measured pose of every arm from ``now``."""
        for arm in self.arm_names:
            pose = np.asarray(state.arms[arm].tcp_pose, dtype=np.float64)
            self._traj[arm] = PoseTrajectory.hold(pose, now)
            self._last_sent[arm] = (now, pose)
            self._shapers[arm] = self._shaper(pose, now)

    def _shaper(self, pose: np.ndarray, now: float) -> CommandShaper | None:
        f, s = self.config.command_accel_fraction, self.config.safety
        if f <= 0:
            return None
        return CommandShaper(pose, now, self.config.max_pos_speed, self.config.max_rot_speed,
                             f * s.max_linear_accel, f * s.max_angular_accel)

    def schedule(self, targets: Mapping[str, ArmTarget], t_wp: float, now: float, capture: float | None) -> None:
        """Reach ``targets`` at ``t_wp`` (later where the interpolation speed limits demand)."""
        if self._brake is not None:
            return
        cfg = self.config
        for arm, target in targets.items():
            self._traj[arm] = self._traj[arm].schedule_waypoint(
                target.tcp_pose, t_wp, now, cfg.max_pos_speed, cfg.max_rot_speed
            )
            if target.gripper_width is not None and arm in self.grippers:
                self._gripper[arm] = float(target.gripper_width)
        self._fast_capture = capture

    def brake(self, now: float, reason: str = "") -> None:
        """Decelerate from the last sent command to rest and hold (first call wins)."""
        if self._brake is not None:
            return
        wd = self.config.watchdog
        self.brake_reason = reason
        # anchored at the last sent command so the motion continues without a step
        self._brake = {
            arm: BrakingTrajectory(
                self._last_sent[arm][1], self._velocity[arm], self._last_sent[arm][0],
                wd.stop_linear_decel, wd.stop_angular_decel,
            )
            for arm in self.arm_names
        }

    def at_rest(self, now: float) -> bool:
        """Braking, and the braking trajectory has come to rest by ``now``."""
        return self._brake is not None and all(now >= b.stop_time for b in self._brake.values())

    def rearm(self, now: float) -> None:
        """Stop braking: hold where the arm was last commanded, forget motion history."""
        self._brake = None
        self.brake_reason = None
        self.safety.reset()
        for arm in self.arm_names:
            pose = self._last_sent[arm][1]
            self._traj[arm] = PoseTrajectory.hold(pose, now)
            self._velocity[arm] = np.zeros(6)
            self._shapers[arm] = self._shaper(pose, now)

    def tick(self, state: RobotState, now: float) -> RobotCommand:
        """The command to send at ``now`` (already safety-filtered)."""
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

    def last_sent(self, arm: str) -> np.ndarray:
        return self._last_sent[arm][1]


def _pose_velocity(a: np.ndarray, b: np.ndarray, dt: float) -> np.ndarray:
    return np.concatenate([(b[:3] - a[:3]) / dt, Q.delta(a[3:], b[3:]) / dt])
