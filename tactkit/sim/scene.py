"""Scene-building helpers: static and dynamic primitives, contact-force sums."""

from __future__ import annotations

import numpy as np
import pybullet as p

from tactkit.sim.world import SimWorld


def add_box(
    world: SimWorld,
    half_extents: list[float] | tuple[float, ...],
    position: list[float] | tuple[float, ...],
    mass: float = 0.0,
    rgba: tuple[float, float, float, float] = (0.7, 0.7, 0.7, 1.0),
    friction: float = 0.5,
    orientation_xyzw: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 1.0),
    collide: bool = True,
) -> int:
    """A box body (static when ``mass == 0``); returns its body id."""
    c = world.client
    col = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half_extents), physicsClientId=c) if collide else -1
    vis = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba), physicsClientId=c)
    body = p.createMultiBody(mass, col, vis, list(position), list(orientation_xyzw), physicsClientId=c)
    p.changeDynamics(body, -1, lateralFriction=friction, physicsClientId=c)
    return body


def add_cylinder(
    world: SimWorld,
    radius: float,
    length: float,
    position: list[float] | tuple[float, ...],
    orientation_xyzw: tuple[float, ...] = (0.0, 0.0, 0.0, 1.0),
    mass: float = 0.0,
    rgba: tuple[float, float, float, float] = (0.3, 0.7, 0.3, 1.0),
    friction: float = 0.5,
) -> int:
    c = world.client
    col = p.createCollisionShape(p.GEOM_CYLINDER, radius=radius, height=length, physicsClientId=c)
    vis = p.createVisualShape(p.GEOM_CYLINDER, radius=radius, length=length, rgbaColor=list(rgba), physicsClientId=c)
    body = p.createMultiBody(mass, col, vis, list(position), list(orientation_xyzw), physicsClientId=c)
    p.changeDynamics(body, -1, lateralFriction=friction, physicsClientId=c)
    return body


def add_table(world: SimWorld, height: float = 0.0, size: tuple[float, float] = (1.6, 1.6)) -> int:
    """A static table whose top surface is at ``z = height``."""
    return add_box(world, [size[0] / 2, size[1] / 2, 0.02], [0.4, 0.0, height - 0.02],
                   rgba=(0.55, 0.45, 0.35, 1.0))


def contact_force_on(world: SimWorld, body: int, link: int | None = None, other: int | None = None) -> np.ndarray:
    """Total contact force (normal + friction, N, world frame) that other bodies exert on
    ``body`` (optionally one ``link``, optionally only from ``other``)."""
    kw: dict = {"bodyA": body, "physicsClientId": world.client}
    if link is not None:
        kw["linkIndexA"] = link
    if other is not None:
        kw["bodyB"] = other
    # Plain floats: ~10x cheaper than small numpy ops, and the same IEEE operations in the
    # same order (bit-identical results).
    tx = ty = tz = 0.0
    for cp in p.getContactPoints(**kw):
        n, fn, d1, f1, d2, f2 = cp[7], cp[9], cp[11], cp[10], cp[13], cp[12]
        tx += n[0] * fn - d1[0] * f1 - d2[0] * f2
        ty += n[1] * fn - d1[1] * f1 - d2[1] * f2
        tz += n[2] * fn - d1[2] * f1 - d2[2] * f2
    return np.array([tx, ty, tz])
