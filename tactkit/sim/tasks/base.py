"""Task base: a Gymnasium-shaped episode around a :class:`SimWorld`, robot and sensors.

API (no gymnasium dependency, same shapes)::

    env = make_task("wipe", perturb="after_contact")
    obs = env.reset(seed=3)                      # dict: stream key -> latest value
    obs, reward, terminated, truncated, info = env.step(action)   # action: flat vector
    info["score"], info["success"]               # also env.evaluate()

``step`` holds the commanded target for one control period (``1 / control_hz``). A lockstep
controller can bypass ``step`` and drive the low-level objects directly: ``env.robot.send``,
``env.world.step_physics(n)``, ``env.sensors[name].read_latest()``, ``env.clock``; the task's
scoring and perturbations run inside ``step_physics``, so ``env.evaluate()`` scores any
driver. ``env.done`` turns true at ``episode_s``.

Determinism: ``reset(seed)`` builds a fresh PyBullet client and draws the scene from
``rng([seed, 0])`` and the perturbation from ``rng([seed, 1])``, so the same seed gives a
bit-identical episode, and ``none`` / ``before_contact`` / ``after_contact`` share the same
scene for a seed (only the perturbation differs).
"""

from __future__ import annotations

import abc
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tactkit.real.robot import ArmCommand, RobotCommand
from tactkit.sensors.base import Sensor
from tactkit.sim.perturbations import PERTURBATIONS
from tactkit.sim.robot import SimRobot, SimRobotConfig
from tactkit.sim.sensors import (
    SimCamera,
    SimCameraConfig,
    SimEnvironmentState,
    SimTactile,
    SimTactileConfig,
    SimWrench,
    SimWrenchConfig,
)
from tactkit.sim.world import SimWorld, WorldConfig
from tactkit.store.schema import (
    ACTION_SIZES,
    StreamSpec,
    action_key,
    recording_streams,
    state_sample,
)

log = logging.getLogger(__name__)

#: first-order low-pass (50 Hz at 1 kHz physics) for the contact forces tasks score on
FORCE_ALPHA = 1.0 - math.exp(-2.0 * math.pi * 50.0 * 1e-3)


@dataclass
class TaskConfig:
    """Settings every task shares (rates in Hz, durations in s)."""

    perturb: str = "none"  # none | before_contact | after_contact
    control_hz: float = 24.0  # env.step() period
    episode_s: float = 10.0
    cameras: bool = True  # render cameras (off: faster evaluation, no image streams)
    camera_rate_hz: float = 12.0
    camera_size: list[int] = field(default_factory=lambda: [96, 96])  # width, height
    tactile_rate_hz: float = 30.0
    environment_state_rate_hz: float = 24.0  # observation.environment_state (the scene, low-dim)
    wrench_rate_hz: float = 100.0
    state_rate_hz: float = 100.0  # robot-state streams when recording
    tactile_noise: float = 0.0  # marker tracker noise, normalised units
    expert_level: float = 1.0  # raw score of the scripted expert; score = min(1, raw / this)
    success_threshold: float = 0.8  # on the normalised score
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        if self.perturb not in PERTURBATIONS:
            raise ValueError(f"perturb must be one of {PERTURBATIONS}, got {self.perturb!r}")
        for name in ("control_hz", "episode_s", "camera_rate_hz", "tactile_rate_hz", "wrench_rate_hz",
                     "state_rate_hz", "environment_state_rate_hz", "expert_level"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if len(self.camera_size) != 2:
            raise ValueError(f"camera_size must be [width, height], got {self.camera_size}")


class SimTask(abc.ABC):
    """A contact-rich task; subclasses build the scene, perturb it and score it."""

    name = "task"

    def __init__(self, config: TaskConfig) -> None:
        self.config = config
        self.world: SimWorld | None = None
        self.robot: SimRobot | None = None
        self.sensors: dict[str, Sensor] = {}
        self.seed: int | None = None
        self._next_control = 0
        self._last_score = 0.0
        self.last_action: np.ndarray | None = None

    # ---- to implement -----------------------------------------------------------------
    @abc.abstractmethod
    def robot_config(self) -> SimRobotConfig:
        """Arms and tools of this task."""

    @abc.abstractmethod
    def tactile_configs(self) -> list[SimTactileConfig]: ...

    @abc.abstractmethod
    def build_scene(self, rng: np.random.Generator) -> None:
        """Create the task objects and place the arms (world and robot exist)."""

    @abc.abstractmethod
    def setup_perturbation(self, rng: np.random.Generator) -> None:
        """Draw this episode's perturbation parameters (always drawn, used per mode)."""

    @abc.abstractmethod
    def on_physics_step(self) -> None:
        """Per physics step: apply perturbations, update the score monitor."""

    @abc.abstractmethod
    def raw_score(self) -> float:
        """Task metric in [0, 1] before normalisation to the expert's level."""

    @abc.abstractmethod
    def privileged(self) -> dict[str, Any]:
        """Ground truth for scripted experts (true forces, surface poses...)."""

    def environment_state(self) -> np.ndarray:
        """The scene as a planner's low-dimensional observation (``observation.environment_state``):
        object poses and shapes at the resolution a camera has (what it cannot see, e.g. the
        millimetre after-contact motions, stays out)."""
        raise NotImplementedError(f"task {self.name!r} has no environment state")

    def environment_state_names(self) -> tuple[str, ...]:
        """Names of :meth:`environment_state`'s components."""
        raise NotImplementedError(f"task {self.name!r} has no environment state")

    def surface_height(self) -> float:
        """True height (m) of the surface the tool presses on, where the task has one that
        moves under it (wipe's board top); NaN otherwise. Cheap: traced every robot tick."""
        return math.nan

    def camera_configs(self) -> list[SimCameraConfig]:
        w, h = self.config.camera_size
        rate = self.config.camera_rate_hz
        arm = self.robot_config().arms[0].name
        return [
            SimCameraConfig(name="external", rate_hz=rate, width=w, height=h),
            SimCameraConfig(name="wrist", rate_hz=rate, width=w, height=h, mount=arm,
                            eye=[0.07, 0.0, 0.0], target=[0.0, 0.0, 0.2], up=[1.0, 0.0, 0.0]),
        ]

    # ---- gym-style API ------------------------------------------------------------------
    @property
    def clock(self):
        return self.world.clock

    @property
    def arm_names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.robot_config().arms)

    @property
    def multi_arm(self) -> bool:
        return len(self.arm_names) > 1

    @property
    def action_keys(self) -> list[tuple[str, int]]:
        """(key, size) of the flat action vector, in order."""
        keys = []
        for arm in self.arm_names:
            keys += [(action_key(arm, q, self.multi_arm), ACTION_SIZES[q]) for q in ("tcp_pose", "gripper_width")]
        return keys

    @property
    def action_size(self) -> int:
        return sum(n for _, n in self.action_keys)

    def reset(self, seed: int = 0) -> dict[str, np.ndarray]:
        """Build a fresh world for ``seed``; returns the first observation."""
        self.close()
        self.seed = int(seed)
        self.world = SimWorld(self.config.world)
        self.robot = SimRobot(self.robot_config(), self.world)
        self.robot.connect()
        self.sensors = {}
        for tc in self.tactile_configs():
            tc.rate_hz = self.config.tactile_rate_hz
            tc.noise_std = self.config.tactile_noise
            tc.seed = self.seed
            self.sensors[f"tactile.{tc.name}"] = SimTactile(tc, self.world, self.robot)
        for arm in self.arm_names:
            self.sensors[f"wrench.{arm}"] = SimWrench(SimWrenchConfig(arm=arm, rate_hz=self.config.wrench_rate_hz),
                                                      self.world, self.robot)
        self.sensors["environment"] = SimEnvironmentState(self.world, self.config.environment_state_rate_hz,
                                                          self.environment_state, self.environment_state_names())
        if self.config.cameras:
            for cc in self.camera_configs():
                self.sensors[f"camera.{cc.name}"] = SimCamera(cc, self.world, self.robot)
        self.build_scene(np.random.default_rng([self.seed, 0]))
        self.setup_perturbation(np.random.default_rng([self.seed, 1]))
        self.world.add_observer(self.on_physics_step)
        for s in self.sensors.values():  # first samples at t = 0
            s.start()
        self._next_control = 0
        self._last_score = 0.0
        return self.observation()

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        """Send ``action`` and simulate one control period."""
        self.send_action(action)
        self._next_control += 1
        self.world.run_until(self._next_control / self.config.control_hz)
        score = self.evaluate()
        reward = score["score"] - self._last_score
        self._last_score = score["score"]
        truncated = self.done
        return self.observation(), reward, False, truncated, score

    @property
    def done(self) -> bool:
        return self.world is not None and self.world.time >= self.config.episode_s - 1e-9

    def send_action(self, action: np.ndarray | dict[str, np.ndarray]) -> RobotCommand:
        """Flat action vector (or dict by action key) -> robot command, sent now."""
        if isinstance(action, dict):
            parts = []
            for key, n in self.action_keys:
                if key not in action:
                    raise KeyError(f"action is missing {key!r}")
                parts.append(np.asarray(action[key], dtype=np.float64).reshape(n))
            action = np.concatenate(parts)
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape[0] != self.action_size:
            raise ValueError(f"action must have {self.action_size} values ({self.action_keys}), got {a.shape[0]}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action has non-finite values: {a}")
        arms = {}
        for i, arm in enumerate(self.arm_names):
            seg = a[8 * i: 8 * i + 8]
            arms[arm] = ArmCommand(tcp_target=seg[:7].copy(), gripper_width=float(seg[7]))
        cmd = RobotCommand(self.clock.now(), arms)
        self.robot.send(cmd)
        self.last_action = a.copy()
        return cmd

    def observation(self) -> dict[str, np.ndarray]:
        """Latest sample of every sensor plus the robot state, by canonical key."""
        obs = {s.key: s.read_latest().value for s in self.sensors.values() if s.read_latest() is not None}
        obs.update(self.state_values())
        return obs

    def state_values(self) -> dict[str, np.ndarray]:
        """The robot state by dataset key (:func:`tactkit.store.schema.state_sample`), without
        what a sensor provides (the wrist wrench comes from the simulated F/T sensor)."""
        sensor_keys = {k for s in self.sensors.values() for k in s.streams()}
        return state_sample(self.robot.read_state().arms, skip=sensor_keys)

    def streams(self) -> dict[str, StreamSpec]:
        """Every stream a recording of this task holds (sensors, robot state, actions), named by
        :func:`tactkit.store.schema.recording_streams` as a teleop recording names them."""
        sensor_streams = {k: v for s in self.sensors.values() for k, v in s.streams().items()}
        return recording_streams(self.robot.arm_features(), sensor_streams,
                                 state_rate_hz=self.config.state_rate_hz, action_rate_hz=self.config.control_hz)

    def evaluate(self) -> dict[str, Any]:
        """Normalised score in [0, 1] (1 = the scripted expert's level), success flag, raw metric."""
        raw = float(self.raw_score())
        score = min(1.0, raw / self.config.expert_level)
        return {"score": score, "success": bool(score >= self.config.success_threshold), "raw_score": raw}

    def hold_action(self) -> np.ndarray:
        """Action that keeps the current targets (a do-nothing step)."""
        parts = []
        for arm in self.arm_names:
            parts += [self.robot.targets()[arm], [self.robot.arms[arm].gripper_width]]
        return np.concatenate(parts)

    def close(self) -> None:
        if self.world is not None:
            self.world.close()
        self.world = None
        self.robot = None
        self.sensors = {}


def smoothstep(x: float) -> float:
    """0 -> 1 with zero slope at both ends (x clipped to [0, 1])."""
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


def wave(t: float, amplitude: float, freq: float, phase: float) -> float:
    return amplitude * math.sin(2.0 * math.pi * freq * t + phase)
