"""Pose trajectories for the robot loop: scheduled waypoints, linear position + slerp.

The fast loop produces a target pose every sensor period (24-60 Hz); the robot loop needs
one every robot period (500 Hz). :class:`PoseTrajectory` holds time-stamped waypoints and
samples the pose at any time: position interpolates linearly, orientation by slerp. Before
the first waypoint and after the last it *holds* (never extrapolates), so a stale target
stream brings the arm to rest at the last target instead of carrying it on.

:meth:`PoseTrajectory.schedule_waypoint` adds a target the way a streaming controller must:
the new segment starts from the *commanded* pose at the current time (not the measured one,
which lags and would make the arm jump back), the part of the old trajectory after the
current time is replaced, and the arrival time is pushed back as far as needed to respect
the linear and angular speed limits.

:class:`CommandShaper` turns the sampled trajectory into the robot's command with bounded
speed and acceleration: linear interpolation changes velocity in one robot period at every
waypoint (24-60 times a second), which the safety filter's acceleration limit would otherwise
clip on most ticks; the shaper tracks the same path with the filter's own rate limiter at a
fraction of its limits, so the filter stays a gate that normal motion never touches.

Poses are ``(x, y, z, qw, qx, qy, qz)``.
"""

from __future__ import annotations

import bisect

import numpy as np

from tactkit.real import quat as Q
from tactkit.real.safety import limit_rate


def pose_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(translation distance m, rotation angle rad) between two poses."""
    return float(np.linalg.norm(np.asarray(b[:3]) - np.asarray(a[:3]))), Q.angle(a[3:], b[3:])


class PoseTrajectory:
    """Piecewise linear/slerp pose trajectory through time-stamped waypoints.

    Immutable: :meth:`schedule_waypoint` and :meth:`trimmed` return new trajectories, so the
    robot loop can sample one while another thread builds its successor.
    """

    def __init__(self, times: np.ndarray, poses: np.ndarray) -> None:
        times = np.atleast_1d(np.asarray(times, dtype=np.float64))
        poses = np.atleast_2d(np.asarray(poses, dtype=np.float64))
        if len(times) == 0 or len(times) != len(poses):
            raise ValueError(f"need as many times as poses (>= 1), got {len(times)} and {len(poses)}")
        if not np.all(np.isfinite(times)) or not np.all(np.isfinite(poses)):
            raise ValueError("waypoint times and poses must be finite")
        if len(times) > 1 and np.any(np.diff(times) <= 0):
            raise ValueError("waypoint times must be strictly increasing")
        if poses.shape[1] != 7:
            raise ValueError(f"pose must have 7 elements (x,y,z,qw,qx,qy,qz), got shape {poses.shape[1:]}")
        self.times = times
        self.poses = poses.copy()
        for p in self.poses:
            p[3:] = Q.canonical(Q.normalize(p[3:]))
        self._tlist = times.tolist()

    @classmethod
    def hold(cls, pose: np.ndarray, t: float) -> PoseTrajectory:
        """A trajectory that stays at ``pose`` forever."""
        return cls(np.array([t]), np.asarray(pose, dtype=np.float64)[None])

    @property
    def start_time(self) -> float:
        return float(self.times[0])

    @property
    def end_time(self) -> float:
        return float(self.times[-1])

    def _at(self, t: float) -> np.ndarray:
        tl = self._tlist
        if t <= tl[0]:
            return self.poses[0].copy()
        if t >= tl[-1]:
            return self.poses[-1].copy()
        i = bisect.bisect_right(tl, t) - 1
        s = (t - tl[i]) / (tl[i + 1] - tl[i])
        a, b = self.poses[i], self.poses[i + 1]
        out = np.empty(7)
        out[:3] = a[:3] + s * (b[:3] - a[:3])
        out[3:] = Q.canonical(Q.slerp(a[3:], b[3:], s))
        return out

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        """Pose(s) at time(s) ``t``; holds the first/last waypoint outside the time span."""
        if np.ndim(t) == 0:
            return self._at(float(t))
        return np.stack([self._at(float(x)) for x in np.asarray(t, dtype=np.float64).reshape(-1)])

    def trimmed(self, start: float, end: float) -> PoseTrajectory:
        """The part between ``start`` and ``end`` (>= start), with poses sampled at both ends."""
        if end < start:
            raise ValueError(f"trim end {end} < start {start}")
        inner = self.times[(self.times > start) & (self.times < end)]
        times = np.concatenate([[start], inner, [end]]) if end > start else np.array([start])
        return PoseTrajectory(times, self(times))

    def schedule_waypoint(
        self,
        pose: np.ndarray,
        time: float,
        now: float,
        max_pos_speed: float = np.inf,
        max_rot_speed: float = np.inf,
    ) -> PoseTrajectory:
        """Reach ``pose`` at ``time`` (or later, if the speed limits demand), continuing from now.

        The trajectory up to ``now`` is kept as commanded; waypoints after ``time`` are dropped.
        The new segment starts where the trajectory is at ``min(time, old end)`` - so the
        commanded pose never jumps - and its duration is stretched to keep the translation
        below ``max_pos_speed`` (m/s) and the rotation below ``max_rot_speed`` (rad/s).
        A waypoint time in the past (<= now) is treated as "as soon as the limits allow".
        """
        if not (max_pos_speed > 0 and max_rot_speed > 0):
            raise ValueError("max_pos_speed and max_rot_speed must be > 0")
        pose = np.asarray(pose, dtype=np.float64)
        if pose.shape != (7,) or not np.all(np.isfinite(pose)):
            raise ValueError(f"waypoint pose must be 7 finite numbers, got {pose!r}")
        # Keep what is already scheduled up to the new waypoint (but never before now).
        start = max(now, self.start_time)
        end = max(start, min(time, self.end_time))
        base = self.trimmed(start, end)
        last = base.poses[-1]
        dist, angle = pose_distance(last, pose)
        min_duration = max(dist / max_pos_speed, angle / max_rot_speed)
        arrival = max(time, end + min_duration)
        if arrival <= end:  # already there in time and space: nothing to add
            if dist == 0.0 and angle == 0.0:
                return base
            arrival = np.nextafter(end, np.inf)
        return PoseTrajectory(
            np.concatenate([base.times, [arrival]]), np.concatenate([base.poses, pose[None]])
        )


class BrakingTrajectory:
    """Decelerate from ``pose`` moving at ``velocity`` (6,) to rest, then hold.

    Constant deceleration along the current direction of motion (linear and angular
    independently): the stop the watchdog commands when a stream goes stale. Callable like
    :class:`PoseTrajectory`.
    """

    def __init__(
        self, pose: np.ndarray, velocity: np.ndarray, t0: float, linear_decel: float, angular_decel: float
    ) -> None:
        if not (linear_decel > 0 and angular_decel > 0):
            raise ValueError("decelerations must be > 0")
        pose = np.asarray(pose, dtype=np.float64)
        self._pos, self._quat = pose[:3].copy(), Q.normalize(pose[3:])
        velocity = np.asarray(velocity, dtype=np.float64)
        self._v, self._w = velocity[:3], velocity[3:]
        self.t0 = float(t0)
        self._a, self._alpha = float(linear_decel), float(angular_decel)
        self.stop_time = self.t0 + max(np.linalg.norm(self._v) / self._a, np.linalg.norm(self._w) / self._alpha)

    @staticmethod
    def _travel(vel: np.ndarray, decel: float, tau: float) -> np.ndarray:
        speed = np.linalg.norm(vel)
        if speed == 0.0:
            return np.zeros(3)
        tau = min(tau, speed / decel)
        return vel / speed * (speed * tau - 0.5 * decel * tau * tau)

    def __call__(self, t: float) -> np.ndarray:
        tau = max(0.0, float(t) - self.t0)
        pos = self._pos + self._travel(self._v, self._a, tau)
        quat = Q.canonical(Q.mul(Q.exp(self._travel(self._w, self._alpha, tau)), self._quat))
        return np.concatenate([pos, quat])


class CommandShaper:
    """Speed- and acceleration-limited tracking of a pose target, one call per robot tick
    (the safety filter's limiter, :func:`tactkit.real.safety.limit_rate`)."""

    def __init__(self, pose: np.ndarray, t: float, max_speed: float, max_rot_speed: float, max_accel: float,
                 max_rot_accel: float) -> None:
        if min(max_speed, max_rot_speed, max_accel, max_rot_accel) <= 0:
            raise ValueError("command shaper limits must be > 0")
        self.limits = (max_speed, max_rot_speed, max_accel, max_rot_accel)
        self.reset(pose, t)

    def reset(self, pose: np.ndarray, t: float) -> None:
        """Rest at ``pose`` at time ``t``."""
        pose = np.asarray(pose, dtype=np.float64)
        self.pos, self.quat, self.t = pose[:3].copy(), Q.normalize(pose[3:]), float(t)
        self.lin_vel, self.ang_vel = np.zeros(3), np.zeros(3)

    def __call__(self, target: np.ndarray, t: float) -> np.ndarray:
        """The pose to command at ``t`` on the way to ``target``."""
        target = np.asarray(target, dtype=np.float64)
        dt = t - self.t
        if dt <= 0:
            return np.concatenate([self.pos, self.quat])
        vmax, wmax, amax, alpha = self.limits
        delta = target[:3] - self.pos
        lin = limit_rate(delta, self.lin_vel, dt, vmax, amax)
        self.lin_vel = delta / dt if lin is None else lin
        self.pos = self.pos + self.lin_vel * dt
        rot = Q.delta(self.quat, target[3:])
        ang = limit_rate(rot, self.ang_vel, dt, wmax, alpha)
        self.ang_vel = rot / dt if ang is None else ang
        self.quat = target[3:].copy() if ang is None else Q.canonical(Q.mul(Q.exp(self.ang_vel * dt), self.quat))
        self.t = float(t)
        return np.concatenate([self.pos, self.quat])
