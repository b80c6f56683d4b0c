"""Impedance robot, wrist F/T and tactile pad against ground-truth contact forces."""

import numpy as np
import pybullet as p
import pytest

from tactkit.real.robot import ROBOTS, ArmCommand, RobotCommand
from tactkit.sensors.base import SENSORS
from tactkit.sim.geometry import DOWN
from tactkit.sim.robot import SimArmConfig, SimRobotConfig
from tactkit.sim.scene import add_table, contact_force_on
from tactkit.sim.sensors import SimTactileConfig, SimWrenchConfig
from tactkit.sim.tactile import MarkerGrid
from tactkit.sim.world import SimWorld


@pytest.fixture
def rig():
    world = SimWorld()
    table = add_table(world)
    robot = ROBOTS.build(SimRobotConfig(arms=[SimArmConfig(tool="wipe_pad")]), world)
    tactile = SENSORS.build(SimTactileConfig(name="pad", rate_hz=50.0,
                                             grid=MarkerGrid(pad_width=0.06, pad_height=0.06)), world, robot)
    wrench = SENSORS.build(SimWrenchConfig(rate_hz=100.0), world, robot)
    robot.connect()
    robot.reset_tcp({"arm": np.r_[0.5, 0.0, 0.05, DOWN]})
    yield world, robot, tactile, wrench, table
    world.close()


def _send(world, robot, xyz):
    robot.send(RobotCommand(world.clock.now(), {"arm": ArmCommand(np.r_[xyz, DOWN])}))


def test_impedance_tracks_target_in_free_space(rig):
    world, robot, tactile, wrench, _ = rig
    _send(world, robot, [0.45, 0.05, 0.12])
    world.step_physics(2000)
    s = robot.read_state()
    assert s.timestamp == pytest.approx(2.0)
    np.testing.assert_allclose(s.arms["arm"].tcp_pose[:3], [0.45, 0.05, 0.12], atol=2e-3)
    assert abs(abs(s.arms["arm"].tcp_pose[4]) - 1.0) < 1e-3  # still pointing down
    # No contact: tool gravity is compensated, the wrench reads ~0 and the markers are still.
    assert np.abs(s.arms["arm"].wrench[:3]).max() < 0.05
    assert np.all(tactile.read_latest().value == 0.0)
    with pytest.raises(KeyError, match="unknown arm"):
        robot.send(RobotCommand(0.0, {"left": ArmCommand(np.r_[0.4, 0, 0.1, DOWN])}))
    with pytest.raises(ValueError, match="tcp_target"):
        robot.send(RobotCommand(0.0, {"arm": ArmCommand(np.zeros(5))}))


def test_static_press_wrench_equals_contact_force(rig):
    world, robot, _, wrench, table = rig
    _send(world, robot, [0.5, 0.0, -0.006])  # 6 mm below the table top
    world.step_physics(2500)
    arm = robot.arms["arm"]
    applied = contact_force_on(world, arm.body)
    measured = robot.read_state().arms["arm"].wrench
    assert applied[2] > 5.0  # 1500 N/m * 6 mm ~ 9 N minus the pad's compliance
    assert np.linalg.norm(measured[:3] - applied) <= 0.02 * np.linalg.norm(applied)
    sample = wrench.read_latest()
    assert sample.key == "observation.wrench" and sample.value.dtype == np.float32
    assert np.linalg.norm(sample.value[:3] - applied) <= 0.02 * np.linalg.norm(applied)


def test_marker_field_symmetric_under_centred_press():
    world = SimWorld()
    robot = ROBOTS.build(SimRobotConfig(arms=[SimArmConfig(tool="wipe_pad")]), world)
    tactile = SENSORS.build(SimTactileConfig(rate_hz=50.0, grid=MarkerGrid(pad_width=0.06, pad_height=0.06)),
                            world, robot)
    # A small static frictionless probe sphere right under the pad centre.
    c = world.client
    col = p.createCollisionShape(p.GEOM_SPHERE, radius=0.01, physicsClientId=c)
    probe = p.createMultiBody(0, col, -1, [0.5, 0.0, 0.0], physicsClientId=c)
    p.changeDynamics(probe, -1, lateralFriction=0.0, physicsClientId=c)
    robot.reset_tcp({"arm": np.r_[0.5, 0.0, 0.02, DOWN]})
    _send(world, robot, [0.5, 0.0, 0.004])
    world.step_physics(1500)
    field = tactile.read_latest().value.astype(np.float64).reshape(7, 9, 2)
    assert np.abs(field).max() > 0.005
    # Radial indentation: mirror-symmetric about both grid axes, pointing away from the centre.
    np.testing.assert_allclose(field[:, :, 0], -field[:, ::-1, 0], atol=2e-4)
    np.testing.assert_allclose(field[:, :, 1], -field[::-1, :, 1], atol=2e-4)
    np.testing.assert_allclose(field[:, :, 0], field[::-1, :, 0], atol=2e-4)
    assert field[3, 6, 0] > 0 and field[3, 2, 0] < 0
    assert np.abs(field[3, 4]).max() < 1e-4  # the centre marker does not move
    world.close()


def test_shear_aligned_with_sliding_direction(rig):
    world, robot, tactile, _, _ = rig
    _send(world, robot, [0.45, 0.0, -0.006])
    world.step_physics(800)
    for i in range(1200):  # slide +x at 4 cm/s
        _send(world, robot, [0.45 + 4e-5 * i, 0.0, -0.006])
        world.step_physics(1)
    mean = tactile.read_latest().value.mean(axis=0)
    # Friction drags the gel against the pad's motion: markers move towards -x (TCP x = world x).
    assert mean[0] < -1e-4
    assert abs(mean[1]) < 0.2 * abs(mean[0])
