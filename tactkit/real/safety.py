"""The safety filter: one configured gate between every command source and every robot.

A policy, a teleoperator or a script produces :class:`~tactkit.real.robot.RobotCommand` s; the
filter turns them into commands the robot may execute::

    safety = SafetyFilter(SafetyConfig(workspace_min=(0.2, -0.4, 0.0), workspace_max=(0.8, 0.4, 0.5)))
    robot.send(safety.filter(command, robot.read_state()))

Limits, per arm: workspace box on the TCP position; linear / angular speed and acceleration of
the commanded pose (speed and acceleration are measured between consecutive *filtered*
commands over their timestamps); measured wrench (exceeding ``max_force`` / ``max_torque``
replaces the target by the measured pose - ``hold`` - or by the measured pose moved
``retract_distance`` along the measured contact force - ``retract``; latched until
:meth:`SafetyFilter.reset` unless ``latch_wrench`` is false); gripper width range and grasp
force. Non-finite targets or non-unit quaternions hold the previous command.

A command inside every limit passes **bit-exact**; only the violated quantities change, and
they come out compliant: workspace first (a hard box), then speed, then acceleration (which
yields only where the box forces a stop). An acceleration-limited target is approached with
a braking profile (speed <= sqrt(2 a d)); a target that stops dead is overshot by a fraction
of a millimetre rather than violating the acceleration limit.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from tactkit.eventlog import EventLog
from tactkit.real import quat as Q
from tactkit.real.robot import ArmCommand, ArmState, RobotCommand, RobotState

log = logging.getLogger(__name__)

#: process-wide: a limit that binds every tick (or in every episode of an evaluation, each with
#: its own filter) is logged once, then as a count per second (docs/controller.md)
EVENTS = EventLog(log)

#: log level of each limit when it binds ("wrench" is the hold while latched; the latch event
#: itself is a warning)
_LIMIT_LEVEL = {"invalid": logging.WARNING}


@dataclass
class SafetyConfig:
    """Limits for one arm (SI units). Defaults suit a tabletop 7-DoF arm."""

    workspace_min: tuple[float, float, float] = (-1.0, -1.0, 0.0)  # m, robot base frame
    workspace_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    max_linear_speed: float = 0.5  # m/s
    max_angular_speed: float = 2.0  # rad/s
    max_linear_accel: float = 10.0  # m/s^2
    max_angular_accel: float = 40.0  # rad/s^2
    max_force: float = 60.0  # N, norm of measured force
    max_torque: float = 10.0  # N·m, norm of measured torque
    wrench_action: Literal["hold", "retract"] = "hold"
    retract_distance: float = 0.01  # m, along the measured contact force
    latch_wrench: bool = True
    gripper_width_range: tuple[float, float] = (0.0, 0.1)  # m
    max_gripper_force: float = 40.0  # N
    quat_norm_tol: float = 1e-3

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.workspace_min, float), np.asarray(self.workspace_max, float)
        if lo.shape != (3,) or hi.shape != (3,) or np.any(lo > hi):
            raise ValueError(
                f"workspace_min {self.workspace_min} / workspace_max {self.workspace_max}: "
                "need 3 values each with min <= max"
            )
        for name in (
            "max_linear_speed", "max_angular_speed", "max_linear_accel", "max_angular_accel",
            "max_force", "max_torque", "max_gripper_force",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.wrench_action not in ("hold", "retract"):
            raise ValueError(f"wrench_action must be 'hold' or 'retract', got {self.wrench_action!r}")
        if self.gripper_width_range[0] > self.gripper_width_range[1]:
            raise ValueError(f"gripper_width_range {self.gripper_width_range}: min > max")


@dataclass
class _ArmMemory:
    pos: np.ndarray
    quat: np.ndarray
    time: float
    lin_vel: np.ndarray
    ang_vel: np.ndarray
    hold: np.ndarray | None = None  # latched wrench hold/retract pose


@dataclass
class FilterReport:
    """What the last :meth:`SafetyFilter.filter` call changed, per arm: set of limit names."""

    violations: dict[str, set[str]] = field(default_factory=dict)

    @property
    def any(self) -> bool:
        return any(self.violations.values())


class SafetyFilter:
    """Stateful filter: remembers the last filtered command per arm (for speed/acceleration)."""

    def __init__(self, config: SafetyConfig | dict[str, SafetyConfig] | None = None,
                 events: EventLog | None = None) -> None:
        self.events = events or EVENTS
        self._configs = config if isinstance(config, dict) else None
        self._default = config if isinstance(config, SafetyConfig) else SafetyConfig()
        self._mem: dict[str, _ArmMemory] = {}
        self._bounds_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.report = FilterReport()

    def config_for(self, arm: str) -> SafetyConfig:
        if self._configs is None:
            return self._default
        try:
            return self._configs[arm]
        except KeyError:
            raise KeyError(f"safety: no config for arm {arm!r}; configured: {sorted(self._configs)}") from None

    def _bounds(self, cfg: SafetyConfig) -> tuple[np.ndarray, np.ndarray]:
        key = id(cfg)
        if key not in self._bounds_cache:
            self._bounds_cache[key] = (np.asarray(cfg.workspace_min, float), np.asarray(cfg.workspace_max, float))
        return self._bounds_cache[key]

    def reset(self, arm: str | None = None) -> None:
        """Forget motion history and release latched wrench holds (all arms, or one)."""
        if arm is None:
            self._mem.clear()
        else:
            self._mem.pop(arm, None)

    def wrench_latched(self, arm: str) -> bool:
        mem = self._mem.get(arm)
        return mem is not None and mem.hold is not None

    def filter(self, command: RobotCommand, state: RobotState) -> RobotCommand:
        """Return the compliant version of ``command`` given the measured ``state``."""
        self.report = FilterReport()
        out = RobotCommand(timestamp=command.timestamp, arms={})
        for name, arm_cmd in command.arms.items():
            if name not in state.arms:
                raise KeyError(f"safety: command for arm {name!r} but state has arms {sorted(state.arms)}")
            violations: set[str] = set()
            out.arms[name] = self._filter_arm(
                name, arm_cmd, state.arms[name], state.timestamp, command.timestamp, violations
            )
            self.report.violations[name] = violations
            for limit in violations:
                self.events.event((name, limit), _LIMIT_LEVEL.get(limit, logging.INFO),
                                  "safety: arm %s limited by %s", name, limit)
        return out

    def flush_log(self) -> None:
        """Write the counts of limit events not reported yet (runtimes call this when they stop)."""
        self.events.flush()

    # -- per arm -------------------------------------------------------------------------------

    def _filter_arm(
        self, name: str, cmd: ArmCommand, arm: ArmState, state_time: float, t: float, viol: set[str]
    ) -> ArmCommand:
        cfg = self.config_for(name)
        mem = self._mem.get(name)
        if mem is None:
            pose = np.asarray(arm.tcp_pose, dtype=np.float64)
            vel = np.asarray(arm.tcp_velocity, dtype=np.float64)
            mem = _ArmMemory(pose[:3].copy(), Q.normalize(pose[3:]), state_time, vel[:3].copy(), vel[3:].copy())
            self._mem[name] = mem

        target = np.asarray(cmd.tcp_target, dtype=np.float64)
        pos, quat = target[:3], target[3:]
        if (
            target.shape != (7,)
            or not np.isfinite(target).all()
            or abs(_norm(quat) - 1.0) > cfg.quat_norm_tol
        ):
            viol.add("invalid")
            pos, quat = mem.pos, mem.quat

        # Wrench: replace the target by a hold / retract pose (latched).
        wrench = np.asarray(arm.wrench, dtype=np.float64)
        force, torque = wrench[:3], wrench[3:]
        exceeded = _norm(force) > cfg.max_force or _norm(torque) > cfg.max_torque
        if exceeded and mem.hold is None:
            hold = np.asarray(arm.tcp_pose, dtype=np.float64).copy()
            if cfg.wrench_action == "retract" and _norm(force) > 0:
                hold[:3] += cfg.retract_distance * force / _norm(force)
            mem.hold = hold
            # first event at once, repeats (unlatched holds) as a count per second
            self.events.event(
                (name, "wrench_exceeded"), logging.WARNING,
                "safety: arm %s wrench |f|=%.1f N |tau|=%.2f Nm over limits (%.1f N, %.2f Nm) -> %s",
                name, _norm(force), _norm(torque), cfg.max_force, cfg.max_torque,
                cfg.wrench_action,
            )
        elif mem.hold is not None and not exceeded and not cfg.latch_wrench:
            mem.hold = None
        if mem.hold is not None:
            viol.add("wrench")
            pos, quat = mem.hold[:3], mem.hold[3:]

        # Workspace: a hard box on the target.
        lo, hi = self._bounds(cfg)
        if (pos < lo).any() or (pos > hi).any():
            viol.add("workspace")
            pos = np.clip(pos, lo, hi)

        dt = t - mem.time
        if dt <= 0:
            # No time has passed: no motion is allowed.
            if (pos != mem.pos).any() or Q.angle(mem.quat, quat) > 1e-9:
                viol.add("rate")
                pos, quat = mem.pos, mem.quat
            lin_vel, ang_vel = mem.lin_vel, mem.ang_vel
        else:
            lin_vel = (pos - mem.pos) / dt
            new_lin = _limit_rate(pos - mem.pos, mem.lin_vel, dt, cfg.max_linear_speed, cfg.max_linear_accel)
            if new_lin is not None:
                viol.add("linear_rate")
                lin_vel = new_lin
                pos = np.clip(mem.pos + lin_vel * dt, lo, hi)
                lin_vel = (pos - mem.pos) / dt
            delta = Q.delta(mem.quat, quat)
            ang_vel = delta / dt
            new_ang = _limit_rate(delta, mem.ang_vel, dt, cfg.max_angular_speed, cfg.max_angular_accel)
            if new_ang is not None:
                viol.add("angular_rate")
                ang_vel = new_ang
                quat = Q.canonical(Q.mul(Q.exp(ang_vel * dt), mem.quat))

        width, force_limit = cmd.gripper_width, cmd.gripper_force
        if width is not None:
            wlo, whi = cfg.gripper_width_range
            if not np.isfinite(width):
                viol.add("gripper_width")
                width = None
            elif not wlo <= width <= whi:
                viol.add("gripper_width")
                width = float(np.clip(width, wlo, whi))
        if force_limit is None or not np.isfinite(force_limit) or not 0 <= force_limit <= cfg.max_gripper_force:
            if force_limit is not None:
                viol.add("gripper_force")
            force_limit = cfg.max_gripper_force if force_limit is None or not np.isfinite(force_limit) \
                else float(np.clip(force_limit, 0.0, cfg.max_gripper_force))

        mem.pos, mem.quat, mem.time = np.array(pos, float), np.array(quat, float), t
        mem.lin_vel, mem.ang_vel = np.asarray(lin_vel, float), np.asarray(ang_vel, float)
        if not viol:
            return ArmCommand(np.array(cmd.tcp_target, copy=True), width, force_limit)
        return ArmCommand(np.concatenate([pos, quat]), width, force_limit)


def _norm(v: np.ndarray) -> float:
    """Euclidean norm of a short vector (np.linalg.norm costs ~5 us per call here)."""
    return math.sqrt(sum(x * x for x in v.tolist()))


def _limit_rate(
    delta: np.ndarray, prev_vel: np.ndarray, dt: float, vmax: float, amax: float
) -> np.ndarray | None:
    """Velocity that moves toward ``delta`` within speed/acceleration limits, or None if none bind."""
    vel = delta / dt
    speed = _norm(vel)
    accel_ok = _norm(vel - prev_vel) <= amax * dt
    if speed <= vmax and accel_ok:
        return None
    if accel_ok:  # only the speed binds: same direction, at the limit
        return vel * (vmax / speed)
    dist = _norm(delta)
    # Braking-aware goal velocity: never faster than what can still stop at the target when
    # decelerating by amax*dt per step (v^2/2a + v*dt/2 <= dist, the discrete stopping distance).
    brake_speed = 0.5 * (np.sqrt((amax * dt) ** 2 + 8.0 * amax * dist) - amax * dt)
    goal_speed = min(speed, vmax, brake_speed)
    goal = vel * (goal_speed / speed) if speed > 0 else vel
    dv = goal - prev_vel
    dv_norm = _norm(dv)
    if dv_norm > amax * dt:
        dv *= amax * dt / dv_norm
    new = prev_vel + dv
    new_speed = _norm(new)
    if new_speed > vmax:
        new *= vmax / new_speed
    return new


#: the filter's rate limiter, also the controller's command shaper (tactkit.real.trajectory)
limit_rate = _limit_rate
