"""One dataset schema: simulation demos, teleop recordings and the controller name a robot's
streams the same way (``tactkit.store.schema``)."""

from __future__ import annotations

import numpy as np
import pytest

from tactkit.real.observations import state_observations
from tactkit.sim.tasks import make_task
from tactkit.store.schema import (
    ArmFeatures,
    StreamSpec,
    command_sample,
    recording_streams,
    robot_state_streams,
    state_sample,
)
from tactkit.teleop.recording import HEADSET_PREFIX, session_streams


@pytest.mark.parametrize("task_name", ["wipe", "lift"])
def test_sim_teleop_and_controller_give_identical_keys_and_specs(task_name: str) -> None:
    task = make_task(task_name, cameras=True)
    task.reset(0)
    try:
        sim = task.streams()
        teleop = session_streams(task.robot.arm_features(), task.sensors, state_rate_hz=task.config.state_rate_hz,
                                 command_rate_hz=task.config.control_hz)
        teleop = {k: v for k, v in teleop.items() if not k.startswith(HEADSET_PREFIX)}
        assert sim == teleop

        # the controller's observations of the robot are the recorded robot streams, value by value
        ctrl = state_observations(task.robot.read_state())
        robot = robot_state_streams(task.robot.arm_features(), task.config.state_rate_hz)
        assert set(ctrl) == set(robot)
        for key, value in ctrl.items():
            spec = sim[key]  # the wrench spec comes from the F/T sensor: same key, shape, dtype
            assert value.shape == spec.shape and value.dtype == np.dtype(spec.dtype), key

        # what a sim demo records of the state: every robot stream except the sensor-provided wrench
        recorded = task.state_values()
        sensor_keys = {k for s in task.sensors.values() for k in s.streams()}
        assert set(recorded) == set(robot) - sensor_keys and set(recorded) < set(sim)
        assert all(recorded[k].shape == sim[k].shape for k in recorded)
        actions = dict(task.action_keys)
        assert all(sim[k].shape == (n,) for k, n in actions.items())
    finally:
        task.close()


def test_keys_name_the_arm_only_on_multi_arm_robots_and_joint_counts_follow_the_robot() -> None:
    one = robot_state_streams([ArmFeatures("arm", 6)], 100.0)
    assert set(one) == {"observation.state.tcp_pose", "observation.state.tcp_velocity",
                        "observation.state.joint_positions", "observation.state.gripper_width", "observation.wrench"}
    assert one["observation.state.joint_positions"].shape == (6,)  # a UR arm
    two = recording_streams([ArmFeatures("left"), ArmFeatures("right")],
                            {"observation.wrench.left": StreamSpec("float32", (6,), 1000.0)},
                            state_rate_hz=100.0, action_rate_hz=24.0)
    assert two["observation.wrench.left"].rate_hz == 1000.0  # the sensor's stream wins
    assert two["observation.wrench.right"].rate_hz == 100.0  # the other arm's from the robot state
    assert {"action.left.tcp_pose", "action.right.gripper_width"} <= set(two)


def test_samples_match_specs_and_skip_what_sensors_provide() -> None:
    from tactkit.real.robot import ArmCommand, ArmState

    arm = ArmState(np.arange(7.0), np.zeros(6), np.zeros(6), 0.04, np.ones(6))
    s = state_sample({"arm": arm}, skip={"observation.wrench"})
    specs = robot_state_streams([ArmFeatures("arm", 6)], 100.0)
    assert set(s) == set(specs) - {"observation.wrench"}
    for k, v in s.items():
        assert v.shape == specs[k].shape and v.dtype == np.float32
    c = command_sample({"left": ArmCommand(np.arange(7.0), None), "right": ArmCommand(np.arange(7.0), 0.02)})
    assert set(c) == {"action.left.tcp_pose", "action.right.tcp_pose", "action.right.gripper_width"}
