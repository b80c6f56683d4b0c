"""Every tool URDF is physically sane: dropped on a table it comes to rest on it."""

import numpy as np
import pybullet as p
import pytest

from tactkit.sim.robot import SimArmConfig, SimRobot, SimRobotConfig
from tactkit.sim.scene import add_table, contact_force_on
from tactkit.sim.urdf import GRIPPER, TOOLS, panda_urdf, tool_path
from tactkit.sim.world import SimWorld


@pytest.mark.parametrize("tool", sorted(TOOLS))
def test_tool_drop_rests_on_table(tool):
    world = SimWorld()
    c = world.client
    table = add_table(world)
    # Gel face down (tool z -> world -z), released 5 cm above the table.
    body = p.loadURDF(str(tool_path(tool)), [0.4, 0.0, 0.08], [1.0, 0.0, 0.0, 0.0], physicsClientId=c)
    mass = sum(p.getDynamicsInfo(body, j, physicsClientId=c)[0] for j in range(-1, p.getNumJoints(body, physicsClientId=c)))
    world.step_physics(2000)
    pos, _ = p.getBasePositionAndOrientation(body, physicsClientId=c)
    lin, ang = p.getBaseVelocity(body, physicsClientId=c)
    assert 0.0 < pos[2] < 0.08, f"{tool} fell through or did not fall: z={pos[2]}"
    assert np.linalg.norm(lin) < 1e-2 and np.linalg.norm(ang) < 5e-2, f"{tool} does not come to rest"
    support = contact_force_on(world, table, other=body)
    assert support[2] < 0  # the tool pushes down on the table...
    assert abs(-support[2] - mass * 9.81) < 0.05 * mass * 9.81  # ...with its full weight
    world.close()


@pytest.mark.parametrize("tool", sorted(TOOLS) + [GRIPPER])
def test_panda_with_tool_loads(tool):
    world = SimWorld()
    robot = SimRobot(SimRobotConfig(arms=[SimArmConfig(tool=tool)]), world)
    arm = robot.arms["arm"]
    assert len(arm.arm_joints) == 7
    assert (len(arm.fingers) == 2) == (tool == GRIPPER)
    assert panda_urdf(tool).exists()
    world.step_physics(10)
    world.close()


def test_unknown_tool_is_rejected():
    with pytest.raises(ValueError, match="unknown tool"):
        SimArmConfig(tool="spoon")


def test_gripper_width_command():
    from tactkit.real.robot import ArmCommand, RobotCommand
    from tactkit.sim.geometry import DOWN

    world = SimWorld()
    robot = SimRobot(SimRobotConfig(arms=[SimArmConfig(tool=GRIPPER)]), world)
    robot.reset_tcp({"arm": np.r_[0.5, 0.0, 0.2, DOWN]})
    robot.send(RobotCommand(0.0, {"arm": ArmCommand(np.r_[0.5, 0.0, 0.2, DOWN], gripper_width=0.03)}))
    world.step_physics(1000)
    assert abs(robot.read_state().arms["arm"].gripper_width - 0.03) < 2e-3
    world.close()
