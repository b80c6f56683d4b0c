"""``tactkit robot check`` on the fake arm and on each driver over a fake of its SDK."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from sdk_fakes import START_POSE, make_flexivrdk, make_franky, make_ur

from tactkit.cli.main import main
from tactkit.clock import SimClock
from tactkit.real.check import FAIL, PASS, SKIP, WARN, CheckOptions, check_robot, format_results
from tactkit.real.drivers import (
    FlexivConfig,
    FlexivRobot,
    FrankaConfig,
    FrankaRobot,
    URConfig,
    URRobot,
)
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.robot import RobotState
from tactkit.real.safety import SafetyConfig
from tactkit.real.watchdog import WatchdogConfig

WATCHDOG = WatchdogConfig(plan_timeout=0.2)


def _rows(results) -> dict[str, tuple[str, str]]:
    return {r.name: (r.status, r.detail + (" | fix: " + r.fix if r.fix else "")) for r in results}


def _check(robot, move=False, safety=None, **opts):
    return check_robot(robot, safety or SafetyConfig(), WATCHDOG, CheckOptions(duration=0.2, move=move, **opts),
                       clock=robot.clock)


class _Counting(FakeRobot):
    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.sent = 0

    def send(self, command) -> None:
        self.sent += 1
        super().send(command)


def test_fake_arm_passes_without_moving_and_sends_nothing():
    robot = _Counting(clock=SimClock())
    rows = _rows(_check(robot))
    assert {name for name, (status, _) in rows.items() if status == FAIL} == set()
    for name in ("connect", "read rate", "read latency", "jitter", "timestamps", "state fields", "workspace",
                 "wrench at rest", "gripper", "watchdog hold", "disconnect"):
        assert rows[name][0] == PASS, (name, rows[name])
    assert rows["move 1 cm"][0] == SKIP
    assert "tripped 0.20" in rows["watchdog hold"][1] and "dry run" in rows["watchdog hold"][1]
    assert robot.sent == 0 and not robot.connected


def test_fake_arm_moves_1cm_and_back_and_holds_on_a_stale_command():
    robot = _Counting(clock=SimClock())
    results = _check(robot, move=True, speed=0.02)
    rows = _rows(results)
    assert not [r for r in results if r.status == FAIL], format_results(results)
    # the fake arm reports constant joint positions: moving shows it
    assert rows["move 1 cm"][0] == WARN and "joint_positions never changed" in rows["move 1 cm"][1]
    assert "+z at 2.0 cm/s: reached within 0.00 mm" in rows["move 1 cm"][1]
    assert rows["watchdog hold"][0] == PASS and "sent to the arm" in rows["watchdog hold"][1]
    assert rows["back at start"][0] == PASS
    assert robot.sent > 500
    np.testing.assert_allclose(robot.read_state().arms["arm"].tcp_pose, FakeRobotConfig().initial_pose, atol=1e-4)


def test_a_workspace_that_excludes_the_current_pose_fails_with_a_clear_line():
    robot = _Counting(clock=SimClock())
    safety = SafetyConfig(workspace_min=(0.0, -0.5, 0.0), workspace_max=(0.4, 0.5, 0.5))
    results = _check(robot, move=True, safety=safety)
    rows = _rows(results)
    assert rows["workspace"][0] == FAIL
    assert "TCP at [0.500 0.000 0.300] is outside the workspace [0.000 -0.500 0.000]..[0.400 0.500 0.500]: " \
        "x 0.500 > max 0.400" in rows["workspace"][1]
    assert "workspace_min / workspace_max" in rows["workspace"][1]
    assert rows["move"][0] == SKIP and robot.sent == 0  # nothing moves after a failure
    table = format_results(results)
    assert "FAIL  workspace" in table and "1 failed" in table


def test_a_loaded_tool_fails_the_rest_wrench_check():
    robot = FakeRobot(FakeRobotConfig(floor_z=0.35), clock=SimClock())  # the tool presses into a surface
    rows = _rows(_check(robot))
    assert rows["wrench at rest"][0] == FAIL and "|f| 100.00 N" in rows["wrench at rest"][1]
    assert "zero_ft_sensor" in rows["wrench at rest"][1]


def test_an_arm_that_ignores_commands_fails_the_move():
    class Deaf(FakeRobot):
        def send(self, command) -> None:
            pass

    rows = _rows(_check(Deaf(clock=SimClock()), move=True, speed=0.05))
    assert rows["move 1 cm"][0] == FAIL and "did not follow" in rows["move 1 cm"][1]


def test_slow_reads_and_repeated_timestamps_fail():
    class Slow(FakeRobot):
        def read_state(self) -> RobotState:
            self.clock.advance(0.003)  # every read blocks 3 ms at 500 Hz
            return super().read_state()

    rows = _rows(_check(Slow(clock=SimClock())))
    assert rows["read latency"][0] == FAIL and "p50 3.000 ms" in rows["read latency"][1]
    assert rows["read rate"][0] == WARN and "333 Hz achieved of 500 Hz" in rows["read rate"][1]

    class Cached(FakeRobot):
        def read_state(self) -> RobotState:
            state = super().read_state()
            state.timestamp = 0.0
            state.arms["arm"].tcp_pose = state.arms["arm"].tcp_pose[[0, 1, 2, 4, 5, 6, 3]] * 2  # wrong order, not unit
            return state

    rows = _rows(_check(Cached(clock=SimClock())))
    assert rows["timestamps"][0] == FAIL
    assert rows["state fields"][0] == FAIL and "quaternion norm 2.0000" in rows["state fields"][1]

    class SixJoints(FakeRobot):
        def read_state(self) -> RobotState:
            state = super().read_state()
            state.arms["arm"].joint_positions = np.zeros(6)  # a 7-joint robot reporting 6
            return state

    rows = _rows(_check(SixJoints(clock=SimClock())))
    assert rows["state fields"][0] == FAIL and "declares 7 joints" in rows["state fields"][1]


def _drivers():
    ctl, rcv, _ = make_ur()
    return {
        "franka": lambda clock: FrankaRobot(FrankaConfig(host="172.16.0.2"), sdk=make_franky(), clock=clock),
        "flexiv-1.9": lambda clock: FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", gripper_name="GN01"),
                                                sdk=make_flexivrdk("1.9.4"), clock=clock),
        "flexiv-2.0": lambda clock: FlexivRobot(FlexivConfig(serial_number="Rizon4-123456", gripper_name="GN01"),
                                                sdk=make_flexivrdk("2.0.0"), clock=clock),
        "ur": lambda clock: URRobot(URConfig(host="10.0.0.2"), control=ctl, receive=rcv, clock=clock),
    }


@pytest.mark.parametrize("name", ["franka", "flexiv-1.9", "flexiv-2.0", "ur"])
def test_each_driver_passes_over_its_sdk_fake(name):
    robot = _drivers()[name](SimClock())
    results = _check(robot, move=True, speed=0.05)
    rows = _rows(results)
    assert not [r for r in results if r.status == FAIL], format_results(results)
    for row in ("read rate", "timestamps", "state fields", "workspace", "wrench at rest", "move 1 cm",
                "watchdog hold", "back at start", "disconnect"):
        assert rows[row][0] == PASS, (row, rows[row])
    assert rows["gripper"][0] == (SKIP if name == "ur" else PASS)
    assert "reached within 0.00 mm" in rows["move 1 cm"][1]


@pytest.fixture
def fake_sdks(monkeypatch):
    control, receive, _ = make_ur()
    for module, fake in {"franky": make_franky(), "flexivrdk": make_flexivrdk("2.0.0"),
                         "rtde_control": control, "rtde_receive": receive}.items():
        monkeypatch.setitem(sys.modules, module, fake)


@pytest.mark.parametrize("robot, address", [
    ("fake", None), ("franka", "host=172.16.0.2"), ("flexiv", "serial_number=Rizon4-123456"), ("ur", "host=10.0.0.2"),
])
def test_cli_robot_check_passes_on_the_fake_arm_and_each_sdk_fake(capsys, fake_sdks, robot, address):
    args = ["robot", "check", "--robot", robot, "--duration", "0.2", "--speed", "0.1", "watchdog.plan_timeout=0.05"]
    rc = main(args + ([address] if address else []))
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "PASS  watchdog hold" in out and "SKIP  move 1 cm" in out
    if robot != "fake":
        assert "PASS  sdk" in out and "every call the driver makes matches its signature" in out


def test_cli_robot_check_fails_with_exit_1_and_says_what_to_fix(capsys, fake_sdks):
    rc = main(["robot", "check", "--robot", "fake", "--duration", "0.1", "controller.safety.workspace_max=[0.4,1,1]"])
    out = capsys.readouterr().out
    assert rc == 1
    assert "FAIL  workspace" in out and "x 0.500 > max 0.400" in out and "fix: jog the arm" in out
    rc = main(["robot", "check", "--robot", "flexiv", "serial_number=Rizon4 123456", "--duration", "0.1"])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL  connect" in out and "is invalid" in out


def test_cli_robot_check_names_a_missing_sdk(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "franky", None)
    rc = main(["robot", "check", "--robot", "franka", "host=172.16.0.2"])
    out = capsys.readouterr().out
    assert rc == 1 and "FAIL  sdk" in out and 'pip install "tactkit[franka]"' in out


@pytest.mark.slow  # ~3 s of wall-clock motion
def test_cli_robot_check_with_move_on_the_fake_arm(capsys):
    rc = main(["robot", "check", "--robot", "fake", "--duration", "0.1", "--move", "--speed", "0.1",
               "watchdog.plan_timeout=0.05"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "move 1 cm" in out and "reached within" in out and "PASS  back at start" in out


def test_start_pose_of_the_sdk_fakes_is_inside_every_bundled_workspace():
    from tactkit.real.setup import load_robot_setup

    for name in ("flexiv", "franka", "ur"):
        safety = load_robot_setup(name).controller.safety
        assert np.all(START_POSE[:3] >= safety.workspace_min) and np.all(START_POSE[:3] <= safety.workspace_max)


def test_a_stop_that_does_not_hold_fails_the_watchdog_row(monkeypatch):
    """The watchdog row can fail: a 'brake' that keeps following the motion is caught."""
    import tactkit.real.check as check

    class Creeping(check.BrakingTrajectory):
        def __call__(self, t: float) -> np.ndarray:
            pose = super().__call__(t)
            pose[2] += 0.01 * (t - self.t0)  # keeps creeping up after the fault
            return pose

    monkeypatch.setattr(check, "BrakingTrajectory", Creeping)
    rows = _rows(_check(FakeRobot(clock=SimClock()), move=True, speed=0.05))
    assert rows["watchdog hold"][0] == FAIL and "commands moved after the fault" in rows["watchdog hold"][1]
