"""A simulated task run in real time for teleoperation (``tactkit teleop --robot sim:wipe``).

The simulation is lockstep (:mod:`tactkit.sim`); here the bridge thread paces it against the
wall clock: each loop iteration steps physics up to ``(wall - anchor) * realtime_factor`` in
chunks of at most ``max_chunk_s``. If the machine cannot keep up, the simulation runs in slow
motion (the anchor moves) instead of bursting; ``lag_s`` reports how far it fell behind.

The robot, sensors and clock handed to the bridge are thin proxies that implement the real
``Robot`` / ``Sensor`` / ``Clock`` interfaces and forward to the current scene, so starting
an episode can rebuild the scene (new seed) without rewiring the bridge.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tactkit.clock import Clock
from tactkit.real.robot import Robot, RobotCommand, RobotState
from tactkit.sensors.base import Sensor, SensorHealth, SensorSample

log = logging.getLogger(__name__)


class _RigClock(Clock):
    def __init__(self, rig: SimRig) -> None:
        self.rig = rig

    def now(self) -> float:
        world = self.rig.task.world
        if world is None:  # between two scenes
            return self.rig.sim_time
        return world.clock.now()

    def sleep_until(self, deadline: float) -> None:  # the bridge never sleeps on it
        while self.now() < deadline:
            time.sleep(0.001)


class _RigRobot(Robot):
    def __init__(self, rig: SimRig) -> None:
        self.rig = rig
        self.arm_names = rig.task.arm_names
        self.rate_hz = rig.task.robot.rate_hz

    def connect(self) -> None:
        pass

    def read_state(self) -> RobotState:
        return self.rig.task.robot.read_state()

    def send(self, command: RobotCommand) -> None:
        self.rig.task.robot.send(command)

    def disconnect(self) -> None:
        pass


class _RigSensor(Sensor):
    def __init__(self, rig: SimRig, name: str) -> None:
        self.rig = rig
        self.name = name

    def _s(self) -> Sensor:
        return self.rig.task.sensors[self.name]

    def streams(self) -> dict:
        return self._s().streams()

    def connect(self) -> None:
        pass

    def read_latest(self, max_age: float | None = None) -> SensorSample | None:
        return self._s().read_latest(max_age)

    def health(self) -> SensorHealth:
        return self._s().health()

    def disconnect(self) -> None:
        pass


class SimRig:
    """A :mod:`tactkit.sim` task stepped in real time by the bridge's ``before_tick``."""

    def __init__(self, task_name: str, seed: int = 0, realtime_factor: float = 1.0,
                 max_chunk_s: float = 0.005, **task_overrides: Any) -> None:
        from tactkit.sim.tasks import make_task

        if realtime_factor <= 0:
            raise ValueError(f"realtime_factor must be > 0, got {realtime_factor}")
        self.task_name = task_name
        self.task = make_task(task_name, **task_overrides)
        self.seed = int(seed)
        self.task.reset(seed=self.seed)
        self.realtime_factor = realtime_factor
        self.max_chunk_s = max_chunk_s
        self.robot = _RigRobot(self)
        self.sensors: dict[str, Sensor] = {name: _RigSensor(self, name) for name in self.task.sensors}
        self.clock = _RigClock(self)
        self.after_chunk: list[Callable[[], None]] = []
        self.scene_publisher = None  # a ScenePublisher (tactkit.teleop.simscene) for a simulated operator
        self.retarget_map: tuple[list[float], float] = ([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], 1.0)
        self.scene_period_s = 0.05
        self._next_scene = 0.0
        self._fresh = True  # the scene built for ``seed`` has not hosted an episode yet
        self.lag_s = 0.0
        self.sim_time = 0.0  # copy of the simulation time for other threads (status line)
        self._anchor: tuple[float, float] | None = None  # (wall, sim)
        self.scenes = 1

    def tactile_geometry(self) -> tuple[list[float], list[int]]:
        """(pad size [w, h] m, marker grid [rows, cols]) of the task's first tactile pad."""
        cfgs = self.task.tactile_configs()
        if not cfgs:
            return [0.024, 0.018], [7, 9]
        g = cfgs[0].grid
        return [g.pad_width, g.pad_height], [g.rows, g.cols]

    def before_tick(self, wall_now: float) -> float:
        """Step physics towards real time; returns the wall time of the next chunk."""
        world = self.task.world
        if self._anchor is None:
            self._anchor = (wall_now, world.time)
        w0, s0 = self._anchor
        target = s0 + (wall_now - w0) * self.realtime_factor
        chunk_steps = max(1, int(round(self.max_chunk_s / world.dt)))
        deadline = time.monotonic() + self.max_chunk_s  # never hog the bridge thread longer
        while world.time < target - 1e-9 and time.monotonic() < deadline:
            world.step_physics(min(chunk_steps, world.steps_until(target)))
            for fn in self.after_chunk:
                fn()
        self.sim_time = world.time
        if self.scene_publisher is not None and wall_now >= self._next_scene:
            self._next_scene = wall_now + self.scene_period_s
            self.publish_scene()
        behind = target - world.time
        if behind > 0.1:
            # cannot keep up: slow motion instead of a burst
            self._anchor = (wall_now, world.time)
            self.lag_s += behind
        return wall_now + self.max_chunk_s / self.realtime_factor

    def publish_scene(self) -> None:
        """Send the operator's view of the scene (:mod:`tactkit.teleop.simscene`), bridge thread only."""
        from tactkit.teleop.simscene import read_scene

        calibration, scale = self.retarget_map
        self.scene_publisher.publish(read_scene(self.task, self.scenes, calibration, scale))

    def reset_scene(self) -> None:
        """A fresh scene for a new episode: the first episode gets the rig's ``seed``, each
        later one the next seed."""
        if not self._fresh:
            self.seed += 1
        self._fresh = False
        self.task.reset(seed=self.seed)
        self._anchor = None
        self.lag_s = 0.0
        self.scenes += 1
        log.info("sim %s: new scene, seed %d", self.task_name, self.seed)

    def episode_metadata(self) -> dict[str, Any]:
        ev = self.task.evaluate()
        return {"sim_task": self.task_name, "sim_seed": self.seed, "sim_score": ev["score"],
                "sim_success": ev["success"], "sim_raw_score": ev["raw_score"],
                "sim_lag_s": round(self.lag_s, 3)}

    def close(self) -> None:
        if self.scene_publisher is not None:
            self.scene_publisher.close()
            self.scene_publisher = None
        self.task.close()
