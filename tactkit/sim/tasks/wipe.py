"""``wipe``: wipe a marked path on a board while holding 5-15 N.

The board (30 x 20 cm, its top 2-4 cm above the table) hangs on a stiff constraint that can
move it. A dark dotted path is painted on it. The pad must pass over every path point while
pressing with a normal force inside the band. Perturbations:

* ``before_contact``: the board shifts by up to 3 cm sideways and 1 cm in height during the
  approach (visible to the cameras);
* ``after_contact``: 0.3-0.8 s after first contact the board height starts moving along a
  motion drawn from the family of :mod:`tactkit.sim.perturbations` (random walks, steps, ramps,
  sines, sums of two; within +-8 mm and 40 mm/s; ``motion`` picks another) — too small to see
  at 96 px but with the arm's 2500 N/m vertical stiffness it swings the force by 10-20 N:
  obvious to touch.

The planners' low-dimensional view of the scene, ``observation.environment_state``, is the
board's top centre (x, y, z) and 9 path points (x, y), as a camera sees them: the before-contact
shift shows, the millimetre after-contact motion does not.

Raw score: mean over the path points of the fraction of time the force was in [5, 15] N
while the pad centre was within 1.5 cm of the point (a point never visited scores 0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pybullet as p

from tactkit.sim.geometry import DOWN
from tactkit.sim.perturbations import MotionRange, motion_factory
from tactkit.sim.robot import ImpedanceGains, SimArmConfig, SimRobotConfig
from tactkit.sim.scene import add_table, contact_force_on
from tactkit.sim.sensors import SimTactileConfig
from tactkit.sim.tactile import MarkerGrid
from tactkit.sim.tasks.base import FORCE_ALPHA, SimTask, TaskConfig, smoothstep

BOARD_HALF = (0.15, 0.10, 0.01)


@dataclass
class WipeConfig(TaskConfig):
    type_name = "wipe"
    episode_s: float = 9.0
    expert_level: float = 0.93
    force_band: list[float] = field(default_factory=lambda: [5.0, 15.0])  # N
    path_points: int = 41
    # Scales the per-seed randomisation of the scene (path amplitude/cycles/phase, board xy and
    # top height) around the nominal scene: 1 = full range (default), 0 = the same board and path
    # every seed. The perturbations stay random. The same random numbers are drawn either way.
    scene_variation: float = 1.0
    # The scripted expert's height control after contact: "force" only reacts to the measured
    # contact force (integral loop, like a teleoperator feeling the contact: the correction
    # follows a visible force error; the default, what demonstrations should teach);
    # "privileged" follows the true board height (feedforward; the force barely moves, so touch
    # shows little of the correction).
    expert_feedback: str = "force"
    expert_force_gain: float = 0.5  # integral gain per control step, in units of force error / stiffness
    # The after-contact board motion: "family" (a random kind of the training family per
    # episode), "family:<kind>", or "module:function" (tactkit.sim.perturbations).
    motion: str = "family"
    # Time scale of the after-contact motion: 1 = the family's speeds (up to 40 mm/s); 4 = the
    # same shapes four times faster (faster than a plan period: only a loop at sensor rate keeps up).
    perturb_speed: float = 1.0
    hit_radius: float = 0.015  # m
    gains: ImpedanceGains = field(default_factory=lambda: ImpedanceGains(
        stiffness=[1500.0, 1500.0, 2500.0, 60.0, 60.0, 60.0], damping=[90.0, 90.0, 120.0, 2.5, 2.5, 2.5]))


def _vary(drawn: float, nominal: float, v: float) -> float:
    """``drawn`` pulled towards ``nominal`` by ``scene_variation`` ``v`` (exactly ``drawn`` at 1)."""
    return drawn if v == 1.0 else nominal + v * (drawn - nominal)


class WipeTask(SimTask):
    name = "wipe"
    config: WipeConfig

    def robot_config(self) -> SimRobotConfig:
        return SimRobotConfig(arms=[SimArmConfig(name="arm", tool="wipe_pad", gains=self.config.gains)])

    def tactile_configs(self) -> list[SimTactileConfig]:
        return [SimTactileConfig(name="pad", arm="arm",
                                 grid=MarkerGrid(pad_width=0.06, pad_height=0.06, sigma=0.012))]

    # ---- scene --------------------------------------------------------------------------
    def build_scene(self, rng: np.random.Generator) -> None:
        c = self.world.client
        add_table(self.world)
        v = self.config.scene_variation
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"wipe: scene_variation must be in [0, 1], got {v}")
        if not self.config.perturb_speed > 0:
            raise ValueError(f"wipe: perturb_speed must be > 0, got {self.config.perturb_speed}")
        top = _vary(rng.uniform(0.02, 0.04), 0.03, v)
        self.board_home = np.array([0.52 + _vary(rng.uniform(-0.02, 0.02), 0.0, v),
                                    _vary(rng.uniform(-0.03, 0.03), 0.0, v), top - BOARD_HALF[2]])
        # Path in the board frame: a sine across the board.
        n = self.config.path_points
        xs = np.linspace(-0.10, 0.10, n)
        amp, cycles, phase = rng.uniform(0.02, 0.05), rng.uniform(0.5, 1.0), rng.uniform(0, 2 * math.pi)
        amp, cycles, phase = _vary(amp, 0.035, v), _vary(cycles, 0.75, v), _vary(phase, math.pi, v)
        ys = amp * np.sin(2 * math.pi * cycles * (xs + 0.1) / 0.2 + phase) - amp * math.sin(phase) * 0.0
        self.path = np.stack([xs, ys], axis=1)
        self.visits = np.zeros(n)
        self.in_band = np.zeros(n)
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(BOARD_HALF), physicsClientId=c)
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(BOARD_HALF), rgbaColor=[0.85, 0.85, 0.8, 1],
                                  physicsClientId=c)
        self.board = p.createMultiBody(1.0, col, vis, self.board_home.tolist(), physicsClientId=c)
        # The painted path: a visual-only body (no collision, no dynamics) that follows the board.
        dots = self.path[::2]
        k = len(dots)
        paint = p.createVisualShapeArray(
            shapeTypes=[p.GEOM_BOX] * k, halfExtents=[[0.006, 0.006, 0.0005]] * k,
            visualFramePositions=[[x, y, BOARD_HALF[2]] for x, y in dots], physicsClientId=c)
        self.paint = p.createMultiBody(0.0, -1, paint, self.board_home.tolist(), physicsClientId=c)
        p.changeVisualShape(self.paint, -1, rgbaColor=[0.1, 0.1, 0.5, 1], physicsClientId=c)
        p.changeDynamics(self.board, -1, lateralFriction=0.5, physicsClientId=c)
        self.mount = p.createConstraint(self.board, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0], [0, 0, 0],
                                        self.board_home.tolist(), physicsClientId=c)
        p.changeConstraint(self.mount, self.board_home.tolist(), maxForce=5000, physicsClientId=c)
        self.board_offset = np.zeros(3)  # commanded offset of the board from home
        self.visible_offset = np.zeros(3)  # the part of it a camera resolves (before-contact shift)
        start = self.path_world(0)
        self.robot.reset_tcp({"arm": np.r_[start[0], start[1], top + 0.06, DOWN]})
        self.contact_time: float | None = None
        self.force = 0.0
        self.max_force = 0.0

    #: the after-contact board height motion: +-8 mm, up to 40 mm/s (times perturb_speed)
    MOTION_RANGE = MotionRange(-0.008, 0.008, 0.04)

    def setup_perturbation(self, rng: np.random.Generator) -> None:
        self.shift = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(-0.01, 0.01)])
        self.delay = rng.uniform(0.3, 0.8)
        self.motion = motion_factory(self.config.motion)(rng, self.MOTION_RANGE, 1)

    # ---- per physics step -----------------------------------------------------------------
    def height_offset(self, t: float) -> float:
        """Board height offset (m) of the after-contact perturbation at time ``t``."""
        if self.config.perturb != "after_contact" or self.contact_time is None:
            return 0.0
        tau = t - self.contact_time - self.delay
        return float(self.motion(tau * self.config.perturb_speed)[0]) if tau > 0 else 0.0

    def on_physics_step(self) -> None:
        w = self.world
        t = w.time
        off = np.zeros(3)
        if self.config.perturb == "before_contact":
            off = self.shift * smoothstep((t - 0.2) / 0.5)
        self.visible_offset = off.copy()
        off[2] += self.height_offset(t)
        if np.any(off != self.board_offset):
            self.board_offset = off
            p.changeConstraint(self.mount, (self.board_home + off).tolist(), maxForce=5000, physicsClientId=w.client)
            p.resetBasePositionAndOrientation(self.paint, self.board_pose().tolist(), [0, 0, 0, 1],
                                              physicsClientId=w.client)
        arm = self.robot.arms["arm"]
        # Normal force, low-passed at 50 Hz like a force sensor (single solver steps chatter).
        self.force += FORCE_ALPHA * (float(contact_force_on(w, arm.body)[2]) - self.force)
        if w.step_count % 5:
            return
        self.max_force = max(self.max_force, self.force)
        if self.contact_time is None and self.force > 1.0:
            self.contact_time = t
        if self.contact_time is None:
            return
        lo, hi = self.config.force_band
        tcp = p.getLinkState(arm.body, arm.tcp, physicsClientId=w.client)[4]
        bx, by, _ = self.board_pose()
        near = np.hypot(self.path[:, 0] + bx - tcp[0], self.path[:, 1] + by - tcp[1]) < self.config.hit_radius
        self.visits += near
        if lo <= self.force <= hi:
            self.in_band += near

    def raw_score(self) -> float:
        return float(np.mean(self.in_band / np.maximum(self.visits, 1.0)))

    # ---- ground truth ---------------------------------------------------------------------
    def board_pose(self) -> np.ndarray:
        pos, _ = p.getBasePositionAndOrientation(self.board, physicsClientId=self.world.client)
        return np.array(pos)

    def path_world(self, i: int | float) -> np.ndarray:
        """Path point (fractional index allowed) in world xy, following the board."""
        pos = self.board_home + self.board_offset if self.world is None else self.board_pose()
        j = min(max(i, 0.0), len(self.path) - 1.0)
        a = int(math.floor(j))
        b = min(a + 1, len(self.path) - 1)
        xy = self.path[a] + (self.path[b] - self.path[a]) * (j - a)
        return xy + pos[:2]

    def surface_height(self) -> float:
        return float(self.board_pose()[2] + BOARD_HALF[2])

    #: path points in the environment state (every 5th of the 41)
    KEYPOINTS = 9

    def environment_state(self) -> np.ndarray:
        top = self.board_home + self.visible_offset + np.array([0.0, 0.0, BOARD_HALF[2]])
        idx = np.linspace(0, len(self.path) - 1, self.KEYPOINTS)
        pts = self.path[np.round(idx).astype(int)] + top[:2]
        return np.r_[top, pts.reshape(-1)].astype(np.float32)

    def environment_state_names(self) -> tuple[str, ...]:
        return ("board_x", "board_y", "board_top_z",
                *[f"path{i}_{c}" for i in range(self.KEYPOINTS) for c in "xy"])

    def privileged(self) -> dict[str, Any]:
        pos = self.board_pose()
        t = self.world.time
        dt = 0.02  # backward difference: no knowledge of the future
        rate = (self.height_offset(t) - self.height_offset(t - dt)) / dt
        return {
            "surface_z": float(pos[2] + BOARD_HALF[2]),
            "surface_rate": rate,
            "board": pos,
            "force": self.force,
            "contact": self.contact_time is not None,
        }


class WipeExpert:
    """Scripted wiper acting at the control rate on the state it observes, never on a clock
    (Markovian: a policy that sees the same state can tell what comes next): from wherever the
    pad is it descends to the path start (2 cm/s for the last centimetre), presses ``force`` N,
    and once the force has built up follows the path at constant speed (``path_s`` for the
    whole path) with an integral force loop, then lifts off. ``expert_feedback`` chooses how it
    tracks the board height after contact (see :class:`WipeConfig`)."""

    def __init__(self, env: WipeTask, force: float = 10.0, path_s: float = 6.0,
                 descent_speed: float = 0.05, touch_speed: float = 0.02) -> None:
        self.env = env
        self.force = force
        self.path_s = path_s
        self.descent_speed = descent_speed
        self.touch_speed = touch_speed
        self.reset()

    def reset(self) -> None:
        self.z_i = 0.0
        self.surf_contact: float | None = None
        self.z_cmd: float | None = None  # commanded height while descending / lifting off
        self.s = 0.0  # progress along the path (fractional path index)
        self.phase = "descend"  # descend -> wipe -> lift

    def act(self, obs: dict | None = None) -> np.ndarray:
        env = self.env
        dt = 1.0 / env.config.control_hz
        priv = env.privileged()
        k = env.config.gains.stiffness[2]
        mode = env.config.expert_feedback
        if mode not in ("privileged", "force"):
            raise ValueError(f"wipe: expert_feedback must be 'privileged' or 'force', got {mode!r}")
        if mode == "force" and priv["contact"]:
            if self.surf_contact is None:
                self.surf_contact = priv["surface_z"]
            surf = self.surf_contact  # the height felt at first contact; then only force feedback
        else:
            surf = priv["surface_z"] + priv["surface_rate"] * 0.75 * dt
        if self.z_cmd is None:
            self.z_cmd = float(env.robot.read_state().arms["arm"].tcp_pose[2])
        last = len(env.path) - 1
        if self.phase == "descend":
            xy = env.path_world(0)
            speed = self.descent_speed if self.z_cmd > surf + 0.01 else self.touch_speed
            self.z_cmd = max(self.z_cmd - speed * dt, surf - self.force / k)
            if priv["contact"]:
                self.phase = "wipe"
        if self.phase == "wipe":
            err = self.force - priv["force"]
            if mode == "force":
                self.z_i = float(np.clip(self.z_i - env.config.expert_force_gain * err / k, -0.02, 0.02))
            else:
                self.z_i = float(np.clip(self.z_i - 0.3 * err / k, -0.01, 0.01))
            if priv["force"] >= 0.5 * self.force:  # the pad presses: move along the path
                self.s = min(self.s + last * dt / self.path_s, float(last))
            xy = env.path_world(self.s)
            self.z_cmd = surf - self.force / k + self.z_i
            if self.s >= last:
                self.phase = "lift"
        if self.phase == "lift":
            xy = env.path_world(last)
            self.z_cmd = min(self.z_cmd + 0.05 / 0.6 * dt, surf + 0.05)
        return np.r_[xy, self.z_cmd, DOWN, 0.0]
