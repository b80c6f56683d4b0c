"""Test doubles implementing the real interfaces: a chunking policy and a clocked sensor."""

from __future__ import annotations

import os
import struct
import time

import numpy as np

from tactkit.clock import Clock
from tactkit.policies.interface import FastSignal, Plan, Policy
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.sensors.base import Sensor, SensorHealth, SensorSample


class ChunkPolicy(Policy):
    """Plans a straight-line chunk from the newest observed pose toward ``goal``; the fast
    step adds a compliant z offset proportional to the fast signal (an RDP-like reaction)."""

    obs_keys = ("observation.state.tcp_pose", "observation.wrench")
    n_obs_steps = 2
    action_keys = ("action.tcp_pose", "action.gripper_width")
    dt = 1 / 24

    def __init__(
        self,
        goal=(0.5, 0.1, 0.2),
        speed: float = 0.1,
        horizon: int = 16,
        fast_keys: tuple[str, ...] = ("observation.wrench",),
        compliance: float = 0.0,
        noise: float = 0.0,
        seed: int = 0,
        die_after: int | None = None,
        plan_seconds: float = 0.0,
    ) -> None:
        self.goal = np.asarray(goal, float)
        self.speed, self.horizon, self.fast_keys = speed, horizon, tuple(fast_keys)
        self.compliance, self.noise = compliance, noise
        self.rng = np.random.default_rng(seed)
        self.die_after, self.plan_seconds = die_after, plan_seconds
        self.windows: list[dict] = []
        self.steps: list[tuple[float, float]] = []  # (t, plan.t0)

    def reset(self) -> None:
        pass

    def plan(self, window: dict[str, np.ndarray]) -> Plan:
        if self.die_after is not None and len(self.windows) >= self.die_after:
            os._exit(3)  # a crashing inference process
        if self.plan_seconds:
            import time

            time.sleep(self.plan_seconds)
        self.windows.append(window)
        pose = window["observation.state.tcp_pose"][-1].astype(np.float64)
        t0 = float(window["timestamp"][-1]) + self.dt
        actions = np.zeros((self.horizon, 8))
        pos = pose[:3].copy()
        for i in range(self.horizon):
            step = self.goal - pos
            dist = np.linalg.norm(step)
            if dist > self.speed * self.dt:
                step *= self.speed * self.dt / dist
            pos = pos + step + self.noise * self.rng.standard_normal(3)
            actions[i, :3] = pos
            actions[i, 3:7] = pose[3:]
            actions[i, 7] = 0.04
        return Plan(t0=t0, dt=self.dt, actions=actions)

    def step(self, plan: Plan, t: float, fast: FastSignal | None = None) -> np.ndarray:
        self.steps.append((t, plan.t0))
        a = plan.actions[plan.index_at(t)].copy()
        if fast is not None and self.compliance:
            a[2] += self.compliance * float(fast[self.fast_keys[0]][2])
        return a


def dying_policy() -> ChunkPolicy:
    """Factory for a spawned slow process that crashes on its third plan."""
    return ChunkPolicy(die_after=2)


def slow_policy() -> ChunkPolicy:
    return ChunkPolicy(plan_seconds=0.05)


class ClockedSensor(Sensor):
    """Samples ``value_fn(t)`` at ``rate_hz`` on ``clock``; stops producing at ``stop_at``."""

    def __init__(self, clock: Clock, key: str, rate_hz: float, value_fn, stop_at: float = np.inf) -> None:
        self.clock, self.key, self.rate_hz, self.value_fn, self.stop_at = clock, key, rate_hz, value_fn, stop_at

    def streams(self) -> dict:
        return {}

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def read_latest(self, max_age: float | None = None) -> SensorSample | None:
        now = min(self.clock.now(), self.stop_at)
        seq = int(np.floor(now * self.rate_hz + 1e-9))
        t = seq / self.rate_hz
        if max_age is not None and self.clock.now() - t > max_age:
            return None
        return SensorSample(self.key, np.asarray(self.value_fn(t), np.float32), t, t, seq)

    def health(self) -> SensorHealth:
        return SensorHealth(True, self.rate_hz, 0)


class CommandLogRobot(FakeRobot):
    """A :class:`FakeRobot` that appends ``(timestamp, x, y, z)`` of every command it is
    sent to ``path`` (for tests that watch a robot process from outside) and writes its pid
    to ``path + '.pid'``."""

    def __init__(self, path: str) -> None:
        super().__init__(FakeRobotConfig())
        self._log = open(path, "ab", buffering=0)  # noqa: SIM115 - closed on disconnect
        with open(path + ".pid", "w") as f:
            f.write(str(os.getpid()))

    def send(self, command) -> None:
        super().send(command)
        x, y, z = command.arms["arm"].tcp_target[:3]
        self._log.write(struct.pack("<4d", command.timestamp, x, y, z))

    def disconnect(self) -> None:
        super().disconnect()
        self._log.close()


def command_log_robot(path: str) -> CommandLogRobot:
    return CommandLogRobot(path)


def read_command_log(path: str) -> np.ndarray:
    """``[n, 4]``: time, x, y, z of every command a :class:`CommandLogRobot` was sent."""
    with open(path, "rb") as f:
        data = f.read()
    return np.frombuffer(data[: len(data) // 32 * 32], dtype="<f8").reshape(-1, 4)


def link_controller(log_path: str, controller_timeout: float, realtime_priority: int = 0) -> None:
    """A minimal controller process (spawned by a test): starts a robot process driving a
    :class:`CommandLogRobot`, sends it one waypoint 1 m along +y to reach in 10 s (a steady
    0.1 m/s), then only heartbeats, until it is killed."""
    import functools

    from tactkit.real.controller import ControllerConfig
    from tactkit.real.follower import ArmTarget
    from tactkit.real.robot_process import RobotProcess
    from tactkit.real.watchdog import WatchdogConfig

    cfg = ControllerConfig(watchdog=WatchdogConfig(controller_timeout=controller_timeout),
                           realtime_priority=realtime_priority)
    link = RobotProcess(functools.partial(command_log_robot, log_path), cfg, orphan_hold_s=1.0)
    state = link.spawn()
    goal = np.asarray(state.arms["arm"].tcp_pose, dtype=np.float64).copy()
    goal[1] += 1.0
    now = time.monotonic()
    link.schedule({"arm": ArmTarget(goal, 0.04)}, now + 10.0, now, None)
    while True:
        link.poll()
        link.heartbeat(time.monotonic())
        time.sleep(0.005)
