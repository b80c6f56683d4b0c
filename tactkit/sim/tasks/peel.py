"""``peel``: draw a blade over a curved object (a lying cylinder of random radius) keeping the
normal force in a band.

The object (radius 3.5-6 cm, 14 cm long, axis along world x) hangs on a stiff constraint.
The blade's edge (parallel to the axis) travels over the top arc in the y-z plane, from -50
to +50 degrees, tilted to stay normal to the surface. Perturbations:

* ``before_contact``: the object moves by up to 3 cm in x/y and 1 cm in z during the approach;
* ``after_contact``: 0.3-0.6 s after first contact the object starts shifting — three moves of
  5-9 mm in the y-z plane, each over 0.4 s, 1.2-1.8 s apart — which changes the blade's
  depth by several millimetres: 10-20 N at the arm's 2000 N/m, obvious to touch.

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

    def setup_perturbation(self, rng: np.random.Generator) -> None:
        self.shift = np.array([rng.uniform(-0.03, 0.03), rng.uniform(-0.03, 0.03), rng.uniform(-0.01, 0.01)])
        self.delay = rng.uniform(0.3, 0.6)
        self.gaps = rng.uniform(1.2, 1.8, size=3)
        moves = []
        total = np.zeros(3)
        for _ in range(3):
            ang = rng.uniform(0, 2 * math.pi)
            mag = rng.uniform(0.005, 0.009)
            step = np.array([0.0, math.cos(ang), math.sin(ang)]) * mag
            # keep the cumulative shift within ~1 cm of home
            if np.linalg.norm(total + step) > 0.011:
                step = -step
            total = total + step
            moves.append(step)
        self.moves = np.array(moves)

    def shift_at(self, t: float) -> np.ndarray:
        """Object offset from home at time ``t`` (both perturbation kinds)."""
        off = np.zeros(3)
        if self.config.perturb == "before_contact":
            off = self.shift * smoothstep((t - 0.2) / 0.5)
        elif self.config.perturb == "after_contact" and self.contact_time is not None:
            start = self.contact_time + self.delay
            for k, move in enumerate(self.moves):
                t_k = start + float(np.sum(self.gaps[:k]))
                off = off + move * smoothstep((t - t_k) / 0.4)
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
    """Scripted peeler: privileged object pose and true normal force; hover, descend
    radially, sweep the arc in 5 s at ``force`` N (pose feedforward + integral force loop),
    lift off."""

    def __init__(self, env: PeelTask, force: float = 6.5, sweep_s: float = 5.0) -> None:
        self.env = env
        self.force = force
        self.sweep_s = sweep_s
        self.depth_i = 0.0

    def act(self, obs: dict | None = None) -> np.ndarray:
        env = self.env
        hz = env.config.control_hz
        t = env.clock.now() + 1.0 / hz
        priv = env.privileged()
        k = env.config.gains.stiffness[0]
        centre = priv["centre"] + priv["velocity"] * 0.75 / hz
        t0, t1, t2 = 0.8, 1.6, 1.6 + self.sweep_s
        if t < t1:
            theta = -ARC
            standoff = 0.03 + (-self.force / k - 0.03) * smoothstep((t - t0) / (t1 - t0))
        elif t < t2:
            theta = -ARC + 2 * ARC * (t - t1) / self.sweep_s
            if priv["contact"]:
                self.depth_i -= 0.3 * (self.force - priv["force"]) / k
                self.depth_i = float(np.clip(self.depth_i, -0.01, 0.01))
            standoff = -self.force / k + self.depth_i
        else:
            theta = ARC
            standoff = -self.force / k + 0.05 * smoothstep((t - t2) / 0.6)
        r = priv["radius"] + standoff
        pos = centre + r * np.array([0.0, math.sin(theta), math.cos(theta)])
        return np.r_[pos, blade_orientation(theta), 0.0]
