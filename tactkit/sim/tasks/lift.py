"""``lift``: two arms clamp a box between their pads and lift it 10 cm.

Two Pandas stand at y = +-0.3 m; each carries a flat high-friction gel pad (``clamp_pad``).
The box (8-12 cm wide, 0.3-0.8 kg) is soft or hard (contact stiffness 4-6 kN/m or 30 kN/m
per contact point) and has a break threshold (soft 24-28 N, hard 35-45 N per pad). Holding
it needs a clamp force above the slip threshold ``m g / (2 mu)`` and below the break
threshold. Perturbations:

* ``before_contact``: the box is pushed 2 cm in x and y while the arms approach;
* ``after_contact``: 0.3-1.0 s into the hold the box starts getting filled: an added mass of
  up to 0.9 kg (up to 4 kg/s) that follows a motion drawn from the family of
  :mod:`tactkit.sim.perturbations` (``motion`` picks another) — the clamp that held the empty
  box now lets it slip; touch (shear on the gels, the wrist wrench) shows it at once, the
  cameras do not.

Raw score: fraction of the 4 s hold window during which the box is held (bottom >= 7 cm
above the table) and has never been crushed (a pad's normal force above the break
threshold ends the score: nothing after that counts).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pybullet as p

from tactkit.real import quat as Q
from tactkit.sim.geometry import DOWN
from tactkit.sim.perturbations import MotionRange, motion_factory
from tactkit.sim.robot import ImpedanceGains, SimArmConfig, SimRobotConfig
from tactkit.sim.scene import add_table, contact_force_on
from tactkit.sim.sensors import SimCameraConfig, SimTactileConfig
from tactkit.sim.tactile import MarkerGrid
from tactkit.sim.tasks.base import FORCE_ALPHA, SimTask, TaskConfig

#: pad facing -y (left arm, at +y) and +y (right arm, at -y)
PAD_ORIENTATION = {
    "left": Q.mul(Q.exp(np.array([1.0, 0.0, 0.0]) * -math.pi / 2), DOWN),
    "right": Q.mul(Q.exp(np.array([1.0, 0.0, 0.0]) * math.pi / 2), DOWN),
}
SIDE = {"left": 1.0, "right": -1.0}
T_APPROACH, T_SQUEEZE, T_LIFT, T_HOLD = 1.0, 2.0, 3.5, 7.5
LIFT_HEIGHT = 0.10


@dataclass
class LiftConfig(TaskConfig):
    type_name = "lift"
    episode_s: float = 7.5
    expert_level: float = 0.98
    held_height: float = 0.07  # box bottom above the table that counts as held (m)
    # The expert's clamp force: "force" (default) sizes it from the box's initial mass, then,
    # once lifted, from the load its wrists measure (a filling box shows in the wrench and the
    # gels' shear before it slips); "privileged" from the true mass at every step.
    expert_feedback: str = "force"
    motion: str = "family"  # the added-mass profile (tactkit.sim.perturbations)
    gains: ImpedanceGains = field(default_factory=lambda: ImpedanceGains(
        stiffness=[1500.0, 1500.0, 1500.0, 60.0, 60.0, 60.0], damping=[90.0, 90.0, 90.0, 2.5, 2.5, 2.5]))


class LiftTask(SimTask):
    name = "lift"
    config: LiftConfig

    def robot_config(self) -> SimRobotConfig:
        return SimRobotConfig(arms=[
            SimArmConfig(name="left", tool="clamp_pad", base_position=[0.0, 0.3, 0.0], gains=self.config.gains),
            SimArmConfig(name="right", tool="clamp_pad", base_position=[0.0, -0.3, 0.0], gains=self.config.gains),
        ])

    def tactile_configs(self) -> list[SimTactileConfig]:
        grid = MarkerGrid(pad_width=0.05, pad_height=0.05, sigma=0.01)
        return [SimTactileConfig(name="left", arm="left", grid=grid),
                SimTactileConfig(name="right", arm="right", grid=grid)]

    def camera_configs(self) -> list[SimCameraConfig]:
        w, h = self.config.camera_size
        rate = self.config.camera_rate_hz
        cams = [SimCameraConfig(name="external", rate_hz=rate, width=w, height=h)]
        for arm in ("left", "right"):
            cams.append(SimCameraConfig(name=f"wrist_{arm}", rate_hz=rate, width=w, height=h, mount=arm,
                                        eye=[0.07, 0.0, 0.0], target=[0.0, 0.0, 0.2], up=[1.0, 0.0, 0.0]))
        return cams

    # ---- scene --------------------------------------------------------------------------
    def build_scene(self, rng: np.random.Generator) -> None:
        c = self.world.client
        add_table(self.world)
        self.width = rng.uniform(0.08, 0.12)
        self.height = rng.uniform(0.08, 0.10)
        self.mass0 = rng.uniform(0.3, 0.8)
        self.mu = rng.uniform(0.5, 0.7)
        self.soft = bool(rng.uniform() < 0.5)
        self.stiffness = rng.uniform(4000, 6000) if self.soft else 30000.0
        self.break_force = rng.uniform(24, 28) if self.soft else rng.uniform(35, 45)
        half = [0.04, self.width / 2, self.height / 2]
        pos = [0.5 + rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02), self.height / 2]
        col = p.createCollisionShape(p.GEOM_BOX, halfExtents=half, physicsClientId=c)
        rgba = [0.9, 0.55, 0.2, 1] if self.soft else [0.45, 0.3, 0.2, 1]
        vis = p.createVisualShape(p.GEOM_BOX, halfExtents=half, rgbaColor=rgba, physicsClientId=c)
        self.box = p.createMultiBody(self.mass0, col, vis, pos, physicsClientId=c)
        p.changeDynamics(self.box, -1, lateralFriction=self.mu, contactStiffness=self.stiffness,
                         contactDamping=2 * math.sqrt(self.stiffness * 0.5), physicsClientId=c)
        self.mass = self.mass0
        self.forces = {"left": 0.0, "right": 0.0}
        self.crushed_at: float | None = None
        self.held_time = 0.0
        self.contact_time: float | None = None
        self.push = None
        self.robot.reset_tcp({a: np.r_[self.pad_target(a, 0.05, 0.0), PAD_ORIENTATION[a]] for a in SIDE})

    #: the after-contact added mass: 0-0.9 kg, up to 4 kg/s
    MOTION_RANGE = MotionRange(0.0, 0.9, 4.0)

    def setup_perturbation(self, rng: np.random.Generator) -> None:
        self.shift = np.array([rng.uniform(-0.02, 0.02), rng.uniform(-0.02, 0.02)])
        self.delay = rng.uniform(0.3, 1.0)
        self.motion = motion_factory(self.config.motion)(rng, self.MOTION_RANGE, 1)

    def pad_target(self, arm: str, gap: float, lift: float) -> np.ndarray:
        """Pad centre ``gap`` m outside the box face on ``arm``'s side, ``lift`` m up."""
        pos = self.box_pose()
        return np.array([pos[0], pos[1] + SIDE[arm] * (self.width / 2 + gap), self.height / 2 + lift])

    def box_pose(self) -> np.ndarray:
        return np.array(p.getBasePositionAndOrientation(self.box, physicsClientId=self.world.client)[0])

    # ---- per physics step -----------------------------------------------------------------
    def mass_at(self, t: float) -> float:
        if self.config.perturb != "after_contact":
            return self.mass0
        return self.mass0 + max(float(self.motion(t - T_LIFT - self.delay)[0]), 0.0)

    def on_physics_step(self) -> None:
        w = self.world
        t = w.time
        c = w.client
        if self.config.perturb == "before_contact" and 0.2 <= t <= 0.8:
            # Push the box with a velocity (not a teleport): its contacts see the motion.
            v = self.shift / 0.6
            p.resetBaseVelocity(self.box, [v[0], v[1], 0.0], [0, 0, 0], physicsClientId=c)
        m = self.mass_at(t)
        if m != self.mass:
            self.mass = m
            p.changeDynamics(self.box, -1, mass=m, physicsClientId=c)
        for arm in SIDE:
            f = contact_force_on(w, self.robot.arms[arm].body, other=self.box)
            self.forces[arm] += FORCE_ALPHA * (abs(float(f[1])) - self.forces[arm])
        if self.contact_time is None and min(self.forces.values()) > 1.0:
            self.contact_time = t
        if self.crushed_at is None and max(self.forces.values()) > self.break_force:
            self.crushed_at = t
        if T_LIFT <= t < T_HOLD and self.crushed_at is None:
            bottom = self.box_pose()[2] - self.height / 2
            if bottom >= self.config.held_height:
                self.held_time += w.dt

    def raw_score(self) -> float:
        return float(min(1.0, self.held_time / (T_HOLD - T_LIFT)))

    def slip_force(self, mass: float | None = None) -> float:
        """Per-pad normal force below which the box slips (N)."""
        return (self.mass if mass is None else mass) * 9.81 / (2 * self.mu)

    def environment_state(self) -> np.ndarray:
        """Box centre (x, y, z) and its width and height: all visible (its mass is not)."""
        return np.r_[self.box_pose(), self.width, self.height].astype(np.float32)

    def environment_state_names(self) -> tuple[str, ...]:
        return ("box_x", "box_y", "box_z", "width", "height")

    def privileged(self) -> dict[str, Any]:
        return {
            "box": self.box_pose(),
            "width": self.width,
            "mass": self.mass,
            "slip_force": self.slip_force(),
            "break_force": self.break_force,
            "forces": dict(self.forces),
            "crushed": self.crushed_at is not None,
        }


class LiftExpert:
    """Scripted bimanual lifter acting on the state it observes, never on a clock (Markovian):
    the pads close on the box faces, squeeze to ``margin`` times the slip force (capped at 0.8x
    the break force) with an integral force loop, lift 10 cm once both pads hold that force,
    and hold. ``expert_feedback`` chooses how it knows the box's weight (see :class:`LiftConfig`)."""

    def __init__(self, env: LiftTask, margin: float = 1.6, approach_speed: float = 0.05,
                 squeeze_speed: float = 0.02, lift_speed: float = 0.08) -> None:
        self.env = env
        self.margin = margin
        self.approach_speed = approach_speed
        self.squeeze_speed = squeeze_speed
        self.lift_speed = lift_speed
        self.gap = {"left": 0.05, "right": 0.05}  # commanded pad distance outside the box face
        self.squeeze_i = {"left": 0.0, "right": 0.0}
        self.lift = 0.0
        self.mass_est: float | None = None
        self.phase = "approach"  # approach -> squeeze -> lift -> hold

    def _target_force(self, priv: dict[str, Any]) -> float:
        env = self.env
        if env.config.expert_feedback == "privileged":
            mass = priv["mass"]
        elif env.config.expert_feedback == "force":
            if self.mass_est is None:
                self.mass_est = env.mass0
            if self.phase in ("lift", "hold"):  # the load the wrists carry: -fz of both tools
                load = -sum(float(env.sensors[f"wrench.{a}"].read_latest().value[2]) for a in SIDE) / 9.81
                self.mass_est = max(self.mass_est, load)
            mass = self.mass_est
        else:
            raise ValueError(f"lift: expert_feedback must be 'privileged' or 'force', got {env.config.expert_feedback!r}")
        return min(self.margin * env.slip_force(mass), 0.8 * priv["break_force"])

    def act(self, obs: dict | None = None) -> np.ndarray:
        env = self.env
        dt = 1.0 / env.config.control_hz
        priv = env.privileged()
        k = env.config.gains.stiffness[1]
        target = self._target_force(priv)
        if self.phase == "approach":
            for arm in SIDE:
                self.gap[arm] = max(self.gap[arm] - self.approach_speed * dt, 0.0)
            if all(g <= 0.0 for g in self.gap.values()):
                self.phase = "squeeze"
        elif self.phase in ("squeeze", "lift", "hold"):
            for arm in SIDE:
                depth = min(-self.gap[arm] + self.squeeze_speed * dt, target / k)  # ramp the press in
                self.gap[arm] = -depth
                if priv["forces"][arm] > 0.5:
                    err = target - priv["forces"][arm]
                    self.squeeze_i[arm] = float(np.clip(self.squeeze_i[arm] + 0.3 * err / k, -0.01, 0.02))
            if self.phase == "squeeze" and all(priv["forces"][a] >= 0.9 * target for a in SIDE):
                self.phase = "lift"
        if self.phase == "lift":
            self.lift = min(self.lift + self.lift_speed * dt, LIFT_HEIGHT)
            if self.lift >= LIFT_HEIGHT:
                self.phase = "hold"
        out = []
        for arm in SIDE:
            pos = env.pad_target(arm, self.gap[arm] - self.squeeze_i[arm], 0.0)
            pos[2] = env.height / 2 + self.lift
            out += [pos, PAD_ORIENTATION[arm], [0.0]]
        return np.concatenate(out)
