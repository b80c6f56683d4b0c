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

Poses are ``(x, y, z, qw, qx, qy, qz)``.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation, Slerp


def pose_to_pos_rot(pose: np.ndarray) -> tuple[np.ndarray, Rotation]:
    """Split ``(..., 7)`` poses into positions ``(..., 3)`` and a scipy ``Rotation``."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape[-1] != 7:
        raise ValueError(f"pose must have 7 elements (x,y,z,qw,qx,qy,qz), got shape {pose.shape}")
    return pose[..., :3], Rotation.from_quat(pose[..., 3:], scalar_first=True)


def pos_rot_to_pose(pos: np.ndarray, rot: Rotation) -> np.ndarray:
    """Join positions and rotations into ``(x, y, z, qw, qx, qy, qz)`` poses (qw >= 0)."""
    quat = rot.as_quat(canonical=True, scalar_first=True)
    return np.concatenate([np.asarray(pos, dtype=np.float64), quat], axis=-1)


def pose_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(translation distance m, rotation angle rad) between two poses."""
    pa, ra = pose_to_pos_rot(a)
    pb, rb = pose_to_pos_rot(b)
    return float(np.linalg.norm(pb - pa)), float((rb * ra.inv()).magnitude())


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
        self.times = times
        pos, rot = pose_to_pos_rot(poses)
        self._pos = pos
        self._rot = rot
        self.poses = pos_rot_to_pose(pos, rot)
        self._slerp = Slerp(times, rot) if len(times) > 1 else None

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

    def __call__(self, t: float | np.ndarray) -> np.ndarray:
        """Pose(s) at time(s) ``t``; holds the first/last waypoint outside the time span."""
        scalar = np.ndim(t) == 0
        tq = np.clip(np.atleast_1d(np.asarray(t, dtype=np.float64)), self.times[0], self.times[-1])
        if self._slerp is None:
            out = np.repeat(self.poses, len(tq), axis=0)
        else:
            pos = np.stack([np.interp(tq, self.times, self._pos[:, i]) for i in range(3)], axis=-1)
            out = pos_rot_to_pose(pos, self._slerp(tq))
        return out[0] if scalar else out

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
