"""A stand-in robot for tests and timing benchmarks: first-order tracking plus a rigid floor.

:class:`FakeRobot` implements :class:`~tactkit.real.robot.Robot` with the dynamics of a stiff
Cartesian impedance controller: the TCP approaches the commanded pose with time constant
``time_constant`` (position and, by slerp, orientation). It integrates lazily up to
``clock.now()`` at every ``read_state``/``send``, so it works on a :class:`~tactkit.clock.SimClock`
(lockstep, deterministic) and on the wall clock alike. A horizontal floor at ``floor_z``
stops the TCP; a target below it presses with ``stiffness * depth`` newtons, reported as
``fz > 0`` (the wrench ON the tool, like the simulated and real F/T sensors).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from tactkit.clock import Clock, WallClock
from tactkit.real import quat as Q
from tactkit.real.robot import ROBOTS, ArmState, Robot, RobotCommand, RobotState


@dataclass
class FakeRobotConfig:
    type_name = "fake"
    arm_names: tuple[str, ...] = ("arm",)
    rate_hz: float = 500.0
    time_constant: float = 0.02  # s, first-order tracking
    initial_pose: tuple[float, ...] = (0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0)  # tool pointing down
    floor_z: float | None = 0.0  # m; None = no floor
    stiffness: float = 2000.0  # N/m, force per metre the target is below the floor
    initial_gripper_width: float = 0.08

    def __post_init__(self) -> None:
        if not self.time_constant > 0 or not self.rate_hz > 0:
            raise ValueError("fake robot: time_constant and rate_hz must be > 0")
        if len(self.initial_pose) != 7:
            raise ValueError(f"fake robot: initial_pose needs 7 values, got {len(self.initial_pose)}")


@ROBOTS.register(FakeRobotConfig, name="fake")
class FakeRobot(Robot):
    """First-order Cartesian tracking arm(s); see the module docstring."""

    def __init__(self, config: FakeRobotConfig | None = None, clock: Clock | None = None) -> None:
        self.config = config or FakeRobotConfig()
        self.clock = clock or WallClock()
        self.arm_names = tuple(self.config.arm_names)
        self.rate_hz = self.config.rate_hz
        pose = np.asarray(self.config.initial_pose, dtype=np.float64)
        self._pos = {a: pose[:3].copy() for a in self.arm_names}
        self._rot = {a: Q.normalize(pose[3:]) for a in self.arm_names}
        self._target = {a: pose.copy() for a in self.arm_names}
        self._vel = {a: np.zeros(6) for a in self.arm_names}
        self._width = {a: self.config.initial_gripper_width for a in self.arm_names}
        self._width_target = dict(self._width)
        self._t = self.clock.now()
        self._lock = threading.Lock()
        self.connected = False
        self.commands_received = 0

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def _integrate(self) -> None:
        now = self.clock.now()
        dt = now - self._t
        if dt <= 0:
            return
        alpha = 1.0 - math.exp(-dt / self.config.time_constant)
        for a in self.arm_names:
            tgt = self._target[a]
            new_pos = self._pos[a] + alpha * (tgt[:3] - self._pos[a])
            floor = self.config.floor_z
            if floor is not None:
                new_pos[2] = max(new_pos[2], floor)
            rel = Q.delta(self._rot[a], tgt[3:])
            new_rot = Q.mul(Q.exp(alpha * rel), self._rot[a])
            self._vel[a] = np.concatenate([(new_pos - self._pos[a]) / dt, alpha * rel / dt])
            self._pos[a], self._rot[a] = new_pos, new_rot
            self._width[a] += alpha * (self._width_target[a] - self._width[a])
        self._t = now

    def _wrench(self, arm: str) -> np.ndarray:
        w = np.zeros(6)
        floor = self.config.floor_z
        if floor is not None and self._target[arm][2] < floor and self._pos[arm][2] <= floor + 1e-9:
            w[2] = self.config.stiffness * (floor - self._target[arm][2])
        return w

    def read_state(self) -> RobotState:
        with self._lock:
            self._integrate()
            arms = {
                a: ArmState(
                    tcp_pose=np.concatenate([self._pos[a], Q.canonical(self._rot[a])]),
                    tcp_velocity=self._vel[a].copy(),
                    joint_positions=np.zeros(7),
                    gripper_width=float(self._width[a]),
                    wrench=self._wrench(a),
                )
                for a in self.arm_names
            }
            return RobotState(timestamp=self._t, arms=arms)

    def send(self, command: RobotCommand) -> None:
        with self._lock:
            self._integrate()
            for name, cmd in command.arms.items():
                if name not in self._target:
                    raise KeyError(f"fake robot: command for unknown arm {name!r}; arms: {self.arm_names}")
                target = np.asarray(cmd.tcp_target, dtype=np.float64)
                if target.shape != (7,) or not np.all(np.isfinite(target)):
                    raise ValueError(f"fake robot: arm {name!r} tcp_target must be 7 finite values, got {target}")
                self._target[name] = target.copy()
                if cmd.gripper_width is not None:
                    self._width_target[name] = float(cmd.gripper_width)
            self.commands_received += 1
