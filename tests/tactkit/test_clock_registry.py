from dataclasses import dataclass

import pytest

from tactkit.clock import SimClock, WallClock
from tactkit.registry import Registry


def test_sim_clock_advances_and_never_goes_back():
    clock = SimClock(1.0)
    assert clock.advance(0.5) == 1.5
    clock.sleep_until(2.0)
    assert clock.now() == 2.0
    clock.sleep_until(1.0)  # past deadline: no-op
    assert clock.now() == 2.0
    with pytest.raises(ValueError, match="backwards"):
        clock.advance(-0.1)
    with pytest.raises(ValueError, match="backwards"):
        clock.set(0.0)


def test_wall_clock_sleep_until_reaches_deadline():
    clock = WallClock()
    deadline = clock.now() + 0.01
    clock.sleep_until(deadline)
    assert clock.now() >= deadline


def test_registry_builds_by_config_type_and_names_unknown():
    reg: Registry[object] = Registry("widget")

    @dataclass
    class AConfig:
        x: int = 1

    @dataclass
    class BConfig:
        pass

    @reg.register(AConfig, name="a")
    class A:
        def __init__(self, config):
            self.config = config

    assert reg.build(AConfig(3)).config.x == 3
    assert reg.config_class("a") is AConfig
    with pytest.raises(KeyError, match="no widget registered for config BConfig"):
        reg.build(BConfig())
    with pytest.raises(KeyError, match="unknown widget type 'b'"):
        reg.config_class("b")
    with pytest.raises(ValueError, match="already registered"):
        reg.register(AConfig)(A)
