import pytest

from tactkit.config import ConfigError
from tactkit.real.drivers import FlexivConfig
from tactkit.real.setup import load_robot_setup


def test_robot_setups_load_with_bare_and_dotted_overrides():
    s = load_robot_setup("flexiv", ["serial_number=Rizon4-1", "plan_period=0.3", "controller.safety.max_force=25"])
    assert isinstance(s.robot, FlexivConfig) and s.robot.serial_number == "Rizon4-1"
    assert s.controller.plan_period == 0.3 and s.controller.safety.max_force == 25.0
    assert s.controller.robot_rate_hz == 100.0  # from the driver's rate
    for name in ("franka", "ur", "fake", "sim"):
        assert load_robot_setup(name).controller.safety.max_force > 0
    with pytest.raises(ConfigError, match="nonsense"):
        load_robot_setup("fake", ["nonsense=1"])
    with pytest.raises(ConfigError, match="max_forse"):
        load_robot_setup("fake", ["controller.safety.max_forse=1"])
    with pytest.raises(FileNotFoundError, match="no robot config"):
        load_robot_setup("kuka")
