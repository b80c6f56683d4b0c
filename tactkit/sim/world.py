"""The PyBullet world: one physics client, one :class:`~tactkit.clock.SimClock`, lockstep.

Every world owns its own ``p.DIRECT`` client (never the global default), so several worlds
can live in one process. Physics runs at ``time_step`` (1 kHz by default). Time only moves
in :meth:`SimWorld.step_physics`; each step

1. calls the *controllers* (robots compute and apply joint torques for this step),
2. advances physics by one ``time_step`` and sets the clock to ``step_count * time_step``,
3. calls the *observers* (sensors sample when due, tasks score and apply perturbations).

A lockstep controller drives a robot like this (see docs/simulation.md)::

    env = make_task("wipe")                       # a task owns a world, a robot, sensors
    obs = env.reset(seed=0)
    while not env.done:
        robot_state = env.robot.read_state()      # state at env.clock.now()
        tactile = env.sensors["tactile"].read_latest()
        env.robot.send(RobotCommand(env.clock.now(), {"arm": ArmCommand(target)}))
        env.world.step_physics(2)                 # 500 Hz control
    print(env.evaluate())                          # score / success, same as step()'s info
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

import pybullet as p
import pybullet_data

from tactkit.clock import SimClock

log = logging.getLogger(__name__)


@dataclass
class WorldConfig:
    """Physics settings shared by every task."""

    time_step: float = 1e-3  # s (1 kHz)
    solver_iterations: int = 50
    gravity: float = 9.81  # m/s^2, pointing down -z

    def __post_init__(self) -> None:
        if not 1e-4 <= self.time_step <= 1e-2:
            raise ValueError(f"time_step must be in [1e-4, 1e-2] s, got {self.time_step}")
        if self.solver_iterations < 1:
            raise ValueError(f"solver_iterations must be >= 1, got {self.solver_iterations}")


class SimWorld:
    """A PyBullet physics client with a lockstep :class:`SimClock` and step hooks."""

    def __init__(self, config: WorldConfig | None = None) -> None:
        self.config = config or WorldConfig()
        self.client = p.connect(p.DIRECT)
        if self.client < 0:
            raise RuntimeError("could not connect a PyBullet DIRECT client")
        self.dt = self.config.time_step
        self.clock = SimClock(0.0)
        self.step_count = 0
        self._controllers: list[Callable[[], None]] = []
        self._observers: list[Callable[[], None]] = []
        c = self.client
        p.resetSimulation(physicsClientId=c)
        p.setAdditionalSearchPath(pybullet_data.getDataPath(), physicsClientId=c)
        p.setGravity(0, 0, -self.config.gravity, physicsClientId=c)
        p.setTimeStep(self.dt, physicsClientId=c)
        p.setPhysicsEngineParameter(
            fixedTimeStep=self.dt,
            numSubSteps=0,
            numSolverIterations=self.config.solver_iterations,
            deterministicOverlappingPairs=1,
            enableConeFriction=1,
            physicsClientId=c,
        )

    # ---- hooks -------------------------------------------------------------------------
    def add_controller(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` before every physics step (apply torques for the step)."""
        self._controllers.append(fn)

    def add_observer(self, fn: Callable[[], None]) -> None:
        """Call ``fn()`` after every physics step, with the clock already advanced."""
        self._observers.append(fn)

    # ---- time --------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time (s) = ``step_count * dt``; equals ``clock.now()``."""
        return self.clock.now()

    def step_physics(self, n: int = 1) -> None:
        """Advance ``n`` physics steps (``n * dt`` seconds), running controllers and observers."""
        if n < 0:
            raise ValueError(f"step_physics: n must be >= 0, got {n}")
        c = self.client
        for _ in range(n):
            for fn in self._controllers:
                fn()
            p.stepSimulation(physicsClientId=c)
            self.step_count += 1
            self.clock.set(self.step_count * self.dt)
            for fn in self._observers:
                fn()

    def steps_until(self, t: float) -> int:
        """Number of physics steps from now until simulated time ``t`` (>= 0)."""
        return max(0, math.ceil(t / self.dt - 1e-9) - self.step_count)

    def run_until(self, t: float) -> None:
        """Step physics until ``time >= t``."""
        self.step_physics(self.steps_until(t))

    # ---- lifetime ----------------------------------------------------------------------
    def close(self) -> None:
        if self.client >= 0:
            try:
                p.disconnect(physicsClientId=self.client)
            except p.error:  # already gone
                pass
            self.client = -1

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
