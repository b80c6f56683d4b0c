"""``peel``: draw a blade over a curved object (a lying cylinder of random radius) keeping the
normal force in a band.

The object (radius 3.5-6 cm, 14 cm long, axis along world x) hangs on a stiff constraint.
The blade's edge (parallel to the axis) travels over the top arc in the y-z plane, from -50
to +50 degrees, tilted to stay normal to the surface. Perturbations:

* ``before_contact``: the object moves by up to 3 cm in x/y and 1 cm in z during the approach;
* ``after_contact``: 0.3-0.6 s after first contact the object starts moving in the y-z plane
  along a motion drawn from the family of :mod:`tactkit.sim.perturbations` (each component
  within +-9 mm and 35 mm/s; ``motion`` picks another), which changes the blade's depth by
  several millimetres: 10-20 N at the arm's 2000 N/m, obvious to touch.

Raw score: mean over 31 arc points of the fraction of time the normal force was in
[3, 10] N while the blade edge was within 1.5 cm of the point (never visited: 0).
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
from tactkit.sim.sensors import SimTactileConfig
from tactkit.sim.tactile import MarkerGrid
from tactkit.sim.tasks.base import FORCE_ALPHA, SimTask, TaskConfig, smoothstep

LENGTH = 0.14
ARC = math.radians(50.0)


@dataclass
class PeelConfig(TaskConfig):
    type_name = "peel"
    episode_s: float = 7.5
    expert_level: float = 0.93
    force_band: list[float] = field(default_factory=lambda: [3.0, 10.0])  # N
    arc_points: int = 31
    hit_radius: float = 0.015  # m
    # The expert's depth control after contact: "force" (default) keeps the object pose felt at
    # first contact and corrects the depth from the measured normal force only (an integral
    # loop: the correction follows a force error touch shows); "privileged" follows the true
    # object pose (feedforward: touch shows little of the correction).
    expert_feedback: str = "force"
    expert_force_gain: float = 0.5  # integral gain per control step, in units of force error / stiffness
    motion: str = "family"  # the after-contact motion (tactkit.sim.perturbations)
    gains: ImpedanceGains = field(default_factory=lambda: ImpedanceGains(
        stiffness=[2000.0, 2000.0, 2000.0, 60.0, 60.0, 60.0], damping=[110.0, 110.0, 110.0, 2.5, 2.5, 2.5]))


def blade_orientation(theta: float) -> np.ndarray:
    """Tool pointing into the surface at arc angle ``theta`` (rotation about world x), the
    blade's edge along world x."""
    tilt = Q.exp(np.array([1.0, 0.0, 0.0]) * -theta)
    return Q.mul(Q.mul(tilt, DOWN), Q.exp(np.array([0.0, 0.0, 1.0]) * math.pi / 2))


class PeelTask(SimTask):
    name = "peel"
    config: PeelConfig

    def robot_config(self) -> SimRobotConfig:
        return SimRobotConfig(arms=[SimArmConfig(name="arm", tool="peel_blade", gains=self.config.gains)])

    def tactile_configs(self) -> list[SimTactileConfig]:
        return [SimTactileConfig(name="blade", arm="arm",
                                 grid=MarkerGrid(pad_width=0.03, pad_height=0.045, sigma=0.01))]

    def build_scene(self, rng: np.random.Generator) -> None:
        c = self.world.client
        add_table(self.world)
        self.radius = rng.uniform(0.035, 0.06)
        self.home = np.array([0.5 + rng.uniform(-0.02, 0.02), rng.uniform(-0.03, 0.03),
                              self.radius + rng.uniform(0.01, 0.03)])
        orn = [0.0, math.sin(math.pi / 4), 0.0, math.cos(math.pi / 4)]
        col = p.createCollisionShape(p.GEOM_CYLINDER, radius=self.radius, height=LENGTH, physicsClientId=c)
        vis = p.createVisualShape(p.GEOM_CYLINDER, radius=self.radius, length=LENGTH,
                                  rgbaColor=[0.35, 0.6, 0.25, 1], physicsClientId=c)
        self.obj = p.createMultiBody(0.5, col, vis, self.home.tolist(), orn, physicsClientId=c)
        p.changeDynamics(self.obj, -1, lateralFriction=0.5, physicsClientId=c)
        self.mount = p.createConstraint(self.obj, -1, -1, -1, p.JOINT_FIXED, [0, 0, 0], [0, 0, 0],
                                        self.home.tolist(), childFrameOrientation=orn, physicsClientId=c)
        p.changeConstraint(self.mount, self.home.tolist(), jointChildFrameOrientation=orn, maxForce=5000,
                           physicsClientId=c)
        self.orn = orn
        self.offset = np.zeros(3)
        n = self.config.arc_points
        self.thetas = np.linspace(-ARC, ARC, n)
        self.visits = np.zeros(n)
        self.in_band = np.zeros(n)
        self.contact_time: float | None = None
        self.force = 0.0
        self.robot.reset_tcp({"arm": np.r_[self.arc_point(-ARC, 0.03), blade_orientation(-ARC)]})

    #: the after-contact motion of the object in y and z: +-9 mm, up to 35 mm/s per component
    MOTION_RANGE = MotionRange(-0.009, 0.009, 0.035)

    def setup_perturbation(self, rng: np.random.Generator) -> None:
        self.shift = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(-0.01, 0.01)])
        self.delay = rng.uniform(0.3, 0.6)
        self.motion = motion_factory(self.config.motion)(rng, self.MOTION_RANGE, 2)

    def shift_at(self, t: float) -> np.ndarray:
        """Object offset from home at time ``t`` (both perturbation kinds)."""
        off = np.zeros(3)
        if self.config.perturb == "before_contact":
            off = self.shift * smoothstep((t - 0.2) / 0.5)
        elif self.config.perturb == "after_contact" and self.contact_time is not None:
            off[1:] = self.motion(t - self.contact_time - self.delay)
        return off

    def on_physics_step(self) -> None:
        w = self.world
        t = w.time
        off = self.shift_at(t)
        if np.any(off != self.offset):
            self.offset = off
            p.changeConstraint(self.mount, (self.home + off).tolist(), jointChildFrameOrientation=self.orn,
                               maxForce=5000, physicsClientId=w.client)
        arm = self.robot.arms["arm"]
        tcp = np.array(p.getLinkState(arm.body, arm.tcp, physicsClientId=w.client)[4])
        centre = self.object_pose()
        radial = tcp - centre
        radial[0] = 0.0
        normal = radial / max(float(np.linalg.norm(radial)), 1e-9)
        # Normal force, low-passed at 50 Hz like a force sensor (single solver steps chatter).
        self.force += FORCE_ALPHA * (float(contact_force_on(w, arm.body) @ normal) - self.force)
        if w.step_count % 5:
            return
        if self.contact_time is None and self.force > 1.0:
            self.contact_time = t
        if self.contact_time is None:
            return
        pts = centre[[1, 2]] + self.radius * np.stack([np.sin(self.thetas), np.cos(self.thetas)], axis=1)
        near = np.hypot(pts[:, 0] - tcp[1], pts[:, 1] - tcp[2]) < self.config.hit_radius
        near &= abs(tcp[0] - centre[0]) < LENGTH / 2
        self.visits += near
        lo, hi = self.config.force_band
        if lo <= self.force <= hi:
            self.in_band += near

    def raw_score(self) -> float:
        return float(np.mean(self.in_band / np.maximum(self.visits, 1.0)))

    # ---- ground truth ---------------------------------------------------------------------
    def object_pose(self) -> np.ndarray:
        pos, _ = p.getBasePositionAndOrientation(self.obj, physicsClientId=self.world.client)
        return np.array(pos)

    def arc_point(self, theta: float, standoff: float = 0.0) -> np.ndarray:
        """World point at arc angle ``theta``, ``standoff`` m outside the surface."""
        centre = self.home + self.offset if self.world is None else self.object_pose()
        r = self.radius + standoff
        return centre + r * np.array([0.0, math.sin(theta), math.cos(theta)])

    def environment_state(self) -> np.ndarray:
        """Cylinder axis centre (x, y, z) as a camera sees it (the before-contact shift, not
        the millimetre after-contact moves) and its radius."""
        visible = self.shift_at(self.world.time) if self.config.perturb == "before_contact" else np.zeros(3)
        return np.r_[self.home + visible, self.radius].astype(np.float32)

    def environment_state_names(self) -> tuple[str, ...]:
        return ("object_x", "object_y", "object_z", "radius")

    def privileged(self) -> dict[str, Any]:
        t = self.world.time
        dt = 0.02
        return {
            "centre": self.object_pose(),
            "velocity": (self.shift_at(t) - self.shift_at(t - dt)) / dt,
            "radius": self.radius,
            "force": self.force,
            "contact": self.contact_time is not None,
        }


class PeelExpert:
    """Scripted peeler acting on the state it observes, never on a clock (Markovian): from
    wherever the blade is it moves radially onto the arc start (2 cm/s for the last
    centimetre), presses ``force`` N, sweeps the arc at constant speed (``sweep_s`` for the
    whole arc) once the force has built up, with an integral force loop on the depth, then
    lifts off. ``expert_feedback`` chooses how it tracks the object after contact."""

    def __init__(self, env: PeelTask, force: float = 6.5, sweep_s: float = 5.0,
                 descent_speed: float = 0.05, touch_speed: float = 0.02) -> None:
        self.env = env
        self.force = force
        self.sweep_s = sweep_s
        self.descent_speed = descent_speed
        self.touch_speed = touch_speed
        self.depth_i = 0.0
        self.standoff: float | None = None  # commanded distance outside the surface (m)
        self.theta = -ARC
        self.centre_contact: np.ndarray | None = None
        self.phase = "descend"  # descend -> sweep -> lift

    def act(self, obs: dict | None = None) -> np.ndarray:
        env = self.env
        hz = env.config.control_hz
        dt = 1.0 / hz
        priv = env.privileged()
        k = env.config.gains.stiffness[0]
        mode = env.config.expert_feedback
        if mode not in ("privileged", "force"):
            raise ValueError(f"peel: expert_feedback must be 'privileged' or 'force', got {mode!r}")
        if mode == "force" and priv["contact"]:
            if self.centre_contact is None:
                self.centre_contact = priv["centre"].copy()
            centre = self.centre_contact  # the pose felt at first contact; then force feedback only
        else:
            centre = priv["centre"] + priv["velocity"] * 0.75 / hz
        if self.standoff is None:
            tcp = env.robot.read_state().arms["arm"].tcp_pose[:3]
            radial = tcp - centre
            radial[0] = 0.0
            self.standoff = float(np.linalg.norm(radial)) - priv["radius"]
        press = -self.force / k
        if self.phase == "descend":
            speed = self.descent_speed if self.standoff > 0.01 else self.touch_speed
            self.standoff = max(self.standoff - speed * dt, press)
            if priv["contact"]:
                self.phase = "sweep"
        if self.phase == "sweep":
            gain = env.config.expert_force_gain if mode == "force" else 0.3
            self.depth_i = float(np.clip(self.depth_i - gain * (self.force - priv["force"]) / k, -0.01, 0.01))
            if priv["force"] >= 0.5 * self.force:
                self.theta = min(self.theta + 2 * ARC * dt / self.sweep_s, ARC)
            self.standoff = press + self.depth_i
            if self.theta >= ARC:
                self.phase = "lift"
        if self.phase == "lift":
            self.standoff = min(self.standoff + 0.05 / 0.6 * dt, press + 0.05)
        r = priv["radius"] + self.standoff
        pos = centre + r * np.array([0.0, math.sin(self.theta), math.cos(self.theta)])
        return np.r_[pos, blade_orientation(self.theta), 0.0]
