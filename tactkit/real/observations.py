"""Observation bookkeeping for the controller: time-stamped history per key, windows, actions.

:class:`ObservationBuffer` keeps a short history of every stream (robot state quantities and
sensor samples) by capture time and builds the policy's observation window on its training
grid. :class:`ActionLayout` maps a policy's flat action vector (the concatenation of its
``action_keys``) to per-arm pose and gripper targets.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np

from tactkit.real.robot import RobotState
from tactkit.store.schema import ACTION_SIZES, state_sample


def state_observations(state: RobotState) -> dict[str, np.ndarray]:
    """Dataset keys -> values for one robot state (:func:`tactkit.store.schema.state_sample`)."""
    return state_sample(state.arms)


class ObservationBuffer:
    """Per-key history of ``(capture_time, value)``, pruned to the last ``horizon`` seconds."""

    def __init__(self, horizon: float = 2.0) -> None:
        self.horizon = float(horizon)
        self._times: dict[str, list[float]] = {}
        self._values: dict[str, list[np.ndarray]] = {}

    def add(self, key: str, t: float, value: np.ndarray) -> None:
        times = self._times.setdefault(key, [])
        values = self._values.setdefault(key, [])
        if times and t <= times[-1]:
            if t == times[-1]:
                values[-1] = value  # same capture, newer read: replace
            return  # out of order: keep the newer history
        times.append(float(t))
        values.append(value)
        if times[0] < t - 2 * self.horizon:  # amortised pruning
            cut = bisect.bisect_left(times, t - self.horizon)
            del times[:cut], values[:cut]

    def keys(self) -> list[str]:
        return list(self._times)

    def latest(self, key: str) -> tuple[float, np.ndarray] | None:
        times = self._times.get(key)
        if not times:
            return None
        return times[-1], self._values[key][-1]

    def at(self, key: str, t: float) -> np.ndarray:
        """Newest value captured at or before ``t`` (the oldest one if all are later)."""
        times = self._times[key]
        i = bisect.bisect_right(times, t) - 1
        return self._values[key][max(i, 0)]

    def missing(self, keys: tuple[str, ...] | list[str]) -> list[str]:
        return [k for k in keys if not self._times.get(k)]

    def window(self, keys: tuple[str, ...] | list[str], n_steps: int, dt: float) -> dict[str, np.ndarray]:
        """Window of ``n_steps`` spaced ``dt`` ending at the newest time every key has reached.

        Returns ``{key: array[n_steps, ...], "timestamp": float64[n_steps]}``; raises ``KeyError``
        naming the keys that have no data yet.
        """
        missing = self.missing(keys)
        if missing:
            raise KeyError(f"no observations yet for {missing}")
        t_ref = min(self._times[k][-1] for k in keys)
        grid = t_ref - dt * np.arange(n_steps - 1, -1, -1, dtype=np.float64)
        out = {k: np.stack([self.at(k, float(t)) for t in grid]) for k in keys}
        out["timestamp"] = grid
        return out


@dataclass(frozen=True)
class _Slot:
    arm: str
    quantity: str
    start: int
    stop: int


class ActionLayout:
    """Where each arm's ``tcp_pose`` / ``gripper_width`` sits in the flat action vector."""

    def __init__(self, action_keys: tuple[str, ...] | list[str], arm_names: tuple[str, ...]) -> None:
        if not action_keys:
            raise ValueError("policy has no action_keys; the controller needs at least action.tcp_pose")
        self.arm_names = tuple(arm_names)
        self.slots: list[_Slot] = []
        offset = 0
        for key in action_keys:
            parts = key.split(".")
            if parts[0] != "action" or len(parts) not in (2, 3):
                raise ValueError(f"action key {key!r}: expected action.<quantity> or action.<arm>.<quantity>")
            quantity = parts[-1]
            if quantity not in ACTION_SIZES:
                raise ValueError(f"action key {key!r}: unknown quantity {quantity!r}; known: {sorted(ACTION_SIZES)}")
            if len(parts) == 2:
                if len(self.arm_names) != 1:
                    raise ValueError(f"action key {key!r} names no arm but the robot has arms {self.arm_names}")
                arm = self.arm_names[0]
            else:
                arm = parts[1]
                if arm not in self.arm_names:
                    raise ValueError(f"action key {key!r}: robot has no arm {arm!r} (arms: {self.arm_names})")
            size = ACTION_SIZES[quantity]
            self.slots.append(_Slot(arm, quantity, offset, offset + size))
            offset += size
        self.dim = offset
        for arm in self.arm_names:
            if not any(s.arm == arm and s.quantity == "tcp_pose" for s in self.slots):
                raise ValueError(f"policy actions {list(action_keys)} have no tcp_pose for arm {arm!r}")

    def split(self, action: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
        """``{arm: {"tcp_pose": (7,), "gripper_width": (1,)?}}`` from a flat action vector."""
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape[0] != self.dim:
            raise ValueError(f"policy action has {action.shape[0]} values, its action_keys need {self.dim}")
        out: dict[str, dict[str, np.ndarray]] = {}
        for s in self.slots:
            out.setdefault(s.arm, {})[s.quantity] = action[s.start : s.stop]
        return out

    def pose_slices(self) -> list[slice]:
        return [slice(s.start, s.stop) for s in self.slots if s.quantity == "tcp_pose"]
