"""Simulated sensors: GelSight-like tactile pad, wrist force/torque, RGB cameras.

Each implements :class:`tactkit.sensors.base.Sensor`. A sensor samples itself inside
``world.step_physics`` when its next capture time is due (sample ``k`` at ``k / rate_hz`` s,
snapped to the physics grid), stamps the sample with the world's :class:`SimClock` (capture
time = receive time: no transport latency in simulation) and keeps the newest sample for
``read_latest``. Build them with ``SENSORS.build(config, world, robot)``.

Stream keys follow the canonical names: ``observation.tactile.<name>.marker_offset``
(float32 [63, 2], normalised by the tactile image size), ``observation.wrench`` (single arm)
or ``observation.wrench.<arm>``, ``observation.images.<camera>`` (uint8 H x W x 3).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pybullet as p

from tactkit.sensors.base import SENSORS, Sensor, SensorHealth, SensorSample
from tactkit.sim.geometry import quat_to_matrix, xyzw_to_wxyz
from tactkit.sim.robot import SimRobot
from tactkit.sim.tactile import MarkerField, MarkerGrid
from tactkit.sim.world import SimWorld
from tactkit.store.schema import (
    ENVIRONMENT_STATE_KEY,
    WRENCH_NAMES,
    StreamSpec,
    image_key,
    tactile_key,
    wrench_key,
)


class _SimSensor(Sensor):
    """Scheduling, stamping and bookkeeping shared by the simulated sensors."""

    def __init__(self, world: SimWorld, rate_hz: float, enabled: bool = True) -> None:
        if rate_hz <= 0:
            raise ValueError(f"sensor rate_hz must be > 0, got {rate_hz}")
        self.world = world
        self.rate_hz = float(rate_hz)
        self.enabled = enabled
        self._k = 0
        self._next_step = 0
        self._latest: SensorSample | None = None
        self._seq = 0
        self._times: deque[float] = deque(maxlen=32)
        self._connected = True
        world.add_observer(self._on_step)

    @property
    def key(self) -> str:
        raise NotImplementedError

    def _measure(self) -> np.ndarray:
        raise NotImplementedError

    def _on_step(self) -> None:
        if not self.enabled or self.world.step_count < self._next_step:
            return
        self.sample_now()
        self._k += 1
        self._next_step = math.ceil(self._k / (self.rate_hz * self.world.dt) - 1e-9)

    def start(self) -> SensorSample:
        """Take the first sample now (t = 0) and schedule the next at ``1 / rate_hz``."""
        s = self.sample_now()
        self._k = 1
        self._next_step = math.ceil(1.0 / (self.rate_hz * self.world.dt) - 1e-9)
        return s

    def sample_now(self) -> SensorSample:
        """Measure immediately (also used by the scheduler); returns and keeps the sample."""
        t = self.world.clock.now()
        s = SensorSample(key=self.key, value=self._measure(), capture_time=t, receive_time=t, seq=self._seq)
        self._seq += 1
        self._latest = s
        self._times.append(t)
        return s

    # ---- Sensor API ------------------------------------------------------------------
    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def read_latest(self, max_age: float | None = None) -> SensorSample | None:
        s = self._latest
        if s is None:
            return None
        if max_age is not None and self.world.clock.now() - s.capture_time > max_age:
            return None
        return s

    def health(self) -> SensorHealth:
        ts = list(self._times)
        rate = (len(ts) - 1) / (ts[-1] - ts[0]) if len(ts) > 1 and ts[-1] > ts[0] else 0.0
        return SensorHealth(healthy=self._connected, rate_hz=rate, drops=0,
                            last_capture_time=ts[-1] if ts else None)


# ---------------------------------------------------------------------------- tactile
@dataclass
class SimTactileConfig:
    """A marker-tracking tactile pad on an arm's tool gel."""

    type_name = "sim_tactile"
    name: str = "gel"  # stream key observation.tactile.<name>.marker_offset
    arm: str = "arm"
    rate_hz: float = 30.0
    grid: MarkerGrid = field(default_factory=MarkerGrid)
    noise_std: float = 0.0  # tracker noise, normalised units (seeded per world)
    seed: int = 0


@SENSORS.register(SimTactileConfig, name="sim_tactile")
class SimTactile(_SimSensor):
    """Marker offsets [rows*cols, 2] from the contacts on the tool's gel link."""

    def __init__(self, config: SimTactileConfig, world: SimWorld, robot: SimRobot) -> None:
        if config.arm not in robot.arms:
            raise KeyError(f"tactile {config.name!r}: unknown arm {config.arm!r}; arms: {list(robot.arms)}")
        super().__init__(world, config.rate_hz)
        self.config = config
        self.arm = robot.arms[config.arm]
        if self.arm.gel_link is None:
            raise ValueError(f"tactile {config.name!r}: arm {config.arm!r} tool has no gel link")
        self.field = MarkerField(config.grid)
        self._rng = np.random.default_rng(config.seed)

    @property
    def key(self) -> str:
        return tactile_key(self.config.name)

    def streams(self) -> dict[str, StreamSpec]:
        g = self.config.grid
        return {self.key: StreamSpec("float32", (g.n_markers, 2), self.rate_hz, "normalised", ("x", "y"))}

    def contacts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Contacts on the gel in the pad (TCP) frame: uv [k, 2] m, normal [k] N, shear [k, 2] N."""
        arm, c = self.arm, self.world.client
        cps = p.getContactPoints(bodyA=arm.body, linkIndexA=arm.gel_link, physicsClientId=c)
        if not cps:
            return np.zeros((0, 2)), np.zeros(0), np.zeros((0, 2))
        ls = p.getLinkState(arm.body, arm.tcp, computeForwardKinematics=1, physicsClientId=c)
        rot = quat_to_matrix(xyzw_to_wxyz(ls[5]))
        pos = np.array([cp[5] for cp in cps])
        force = np.array([
            np.multiply(cp[7], cp[9]) - np.multiply(cp[11], cp[10]) - np.multiply(cp[13], cp[12])
            for cp in cps
        ])  # force on the gel (body A), world frame: PyBullet's friction directions act on B
        local = (pos - np.array(ls[4])) @ rot
        f_local = force @ rot
        return local[:, :2], -f_local[:, 2], f_local[:, :2]

    def _measure(self) -> np.ndarray:
        uv, normal, shear = self.contacts()
        out = self.field.compute(uv, normal, shear)
        if self.config.noise_std > 0:
            out = out + self._rng.normal(0.0, self.config.noise_std, out.shape).astype(np.float32)
        return out


# ---------------------------------------------------------------------------- wrench
@dataclass
class SimWrenchConfig:
    """The wrist force/torque sensor of one arm (see :mod:`tactkit.sim.robot`)."""

    type_name = "sim_wrench"
    arm: str = "arm"
    rate_hz: float = 100.0
    key: str = ""  # default: observation.wrench (single arm) / observation.wrench.<arm>


@SENSORS.register(SimWrenchConfig, name="sim_wrench")
class SimWrench(_SimSensor):
    """External wrench on the tool (N, N·m; world frame; torque about the TCP), float32 (6,)."""

    def __init__(self, config: SimWrenchConfig, world: SimWorld, robot: SimRobot) -> None:
        if config.arm not in robot.arms:
            raise KeyError(f"wrench sensor: unknown arm {config.arm!r}; arms: {list(robot.arms)}")
        super().__init__(world, config.rate_hz)
        self.config = config
        self.arm = robot.arms[config.arm]
        single = len(robot.arms) == 1
        self._key = config.key or wrench_key(config.arm, not single)

    @property
    def key(self) -> str:
        return self._key

    def streams(self) -> dict[str, StreamSpec]:
        return {self.key: StreamSpec("float32", (6,), self.rate_hz, "N,N*m", WRENCH_NAMES)}

    def _measure(self) -> np.ndarray:
        return self.arm.wrench().astype(np.float32)


# ---------------------------------------------------------------------------- scene state
class SimEnvironmentState(_SimSensor):
    """A task's low-dimensional view of its scene (``observation.environment_state``, float32
    ``[n]``): object poses and shapes as a camera would resolve them (the task decides), the
    state-based alternative to images, as in Diffusion Policy's low-dimensional benchmarks."""

    def __init__(self, world: SimWorld, rate_hz: float, source: Callable[[], np.ndarray],
                 names: tuple[str, ...]) -> None:
        super().__init__(world, rate_hz)
        self.source = source
        self.names = tuple(names)

    @property
    def key(self) -> str:
        return ENVIRONMENT_STATE_KEY

    def streams(self) -> dict[str, StreamSpec]:
        return {self.key: StreamSpec("float32", (len(self.names),), self.rate_hz, "m", self.names)}

    def _measure(self) -> np.ndarray:
        return np.asarray(self.source(), dtype=np.float32)


# ---------------------------------------------------------------------------- camera
@dataclass
class SimCameraConfig:
    """An RGB camera fixed in the world or on an arm's hand."""

    type_name = "sim_camera"
    name: str = "external"  # stream key observation.images.<name>
    rate_hz: float = 12.0
    width: int = 96
    height: int = 96
    fov_deg: float = 60.0
    near: float = 0.02
    far: float = 3.0
    mount: str = "world"  # "world" or an arm name (camera on that arm's hand)
    eye: list[float] = field(default_factory=lambda: [0.95, 0.0, 0.42])  # world: position; arm: hand frame
    target: list[float] = field(default_factory=lambda: [0.45, 0.0, 0.05])  # world: look-at; arm: hand frame
    up: list[float] = field(default_factory=lambda: [0.0, 0.0, 1.0])  # world: up; arm: hand frame
    renderer: str = "tiny"  # tiny (TinyRenderer, CPU) | egl (eglRenderer plugin)

    def __post_init__(self) -> None:
        if not (8 <= self.width <= 1024 and 8 <= self.height <= 1024):
            raise ValueError(f"camera {self.name!r}: size must be 8..1024 px, got {self.width}x{self.height}")
        if self.renderer not in ("tiny", "egl"):
            raise ValueError(f"camera {self.name!r}: renderer must be 'tiny' or 'egl', got {self.renderer!r}")


_EGL_LOADED: set[int] = set()


@SENSORS.register(SimCameraConfig, name="sim_camera")
class SimCamera(_SimSensor):
    """RGB image uint8 [H, W, 3] rendered by PyBullet (TinyRenderer by default: faster here)."""

    def __init__(self, config: SimCameraConfig, world: SimWorld, robot: SimRobot | None = None,
                 enabled: bool = True) -> None:
        super().__init__(world, config.rate_hz, enabled)
        self.config = config
        self.arm = None
        if config.mount != "world":
            if robot is None or config.mount not in robot.arms:
                arms = list(robot.arms) if robot else []
                raise KeyError(f"camera {config.name!r}: unknown mount {config.mount!r}; use 'world' or one of {arms}")
            self.arm = robot.arms[config.mount]
        self._proj = p.computeProjectionMatrixFOV(config.fov_deg, config.width / config.height,
                                                  config.near, config.far)
        self._renderer = p.ER_TINY_RENDERER
        if config.renderer == "egl":
            self._renderer = p.ER_BULLET_HARDWARE_OPENGL
            if world.client not in _EGL_LOADED:
                import pkgutil

                egl = pkgutil.get_loader("eglRenderer")
                if egl is None:
                    raise ValueError("renderer 'egl': pybullet's eglRenderer plugin is not installed")
                p.loadPlugin(egl.get_filename(), "_eglRendererPlugin", physicsClientId=world.client)
                _EGL_LOADED.add(world.client)

    @property
    def key(self) -> str:
        return image_key(self.config.name)

    def streams(self) -> dict[str, StreamSpec]:
        c = self.config
        return {self.key: StreamSpec("uint8", (c.height, c.width, 3), self.rate_hz, "rgb")}

    def view_matrix(self) -> list[float]:
        c = self.config
        if self.arm is None:
            return p.computeViewMatrix(c.eye, c.target, c.up)
        ls = p.getLinkState(self.arm.body, self.arm.hand, computeForwardKinematics=1,
                            physicsClientId=self.world.client)
        rot = quat_to_matrix(xyzw_to_wxyz(ls[5]))
        origin = np.array(ls[4])
        eye = origin + rot @ np.asarray(c.eye)
        target = origin + rot @ np.asarray(c.target)
        up = rot @ np.asarray(c.up)
        return p.computeViewMatrix(eye.tolist(), target.tolist(), up.tolist())

    def _measure(self) -> np.ndarray:
        c = self.config
        _, _, rgba, _, _ = p.getCameraImage(
            c.width, c.height, self.view_matrix(), self._proj, renderer=self._renderer,
            flags=p.ER_NO_SEGMENTATION_MASK, physicsClientId=self.world.client,
        )
        return np.asarray(rgba, dtype=np.uint8).reshape(c.height, c.width, 4)[:, :, :3].copy()
