"""Log floods: a limit that binds every tick is logged once, then as counts per second."""

import logging
import math
import re
import time

import numpy as np
import pytest
from real_fakes import ChunkPolicy

import tactkit.real.safety as safety_module
from tactkit.clock import SimClock
from tactkit.eventlog import EventLog
from tactkit.real.controller import ControllerConfig
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.robot import ArmCommand, ArmState, RobotCommand, RobotState
from tactkit.real.runtime import LockstepRuntime
from tactkit.real.safety import SafetyConfig, SafetyFilter

HOME = np.array([0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0])


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _counts(records) -> list[int]:
    return [int(m.group(1)) for r in records if (m := re.search(r"\[x(\d+) in the last", r.getMessage()))]


def test_event_log_first_occurrence_then_counts_per_interval(caplog):
    clock = FakeTime()
    events = EventLog(logging.getLogger("test.events"), interval=1.0, clock=clock)
    caplog.set_level(logging.INFO, logger="test.events")
    for i in range(2500):  # 5 s at 500 Hz
        clock.t = i * 0.002
        events.event("k", logging.WARNING, "limit %s bound", "k")
    events.flush()
    msgs = [r.getMessage() for r in caplog.records]
    assert msgs[0] == "limit k bound"  # the first, at once and as it is
    assert all(r.levelno == logging.WARNING for r in caplog.records)
    assert 5 <= len(msgs) <= 7  # then about one line per second, not 2500
    assert 1 + sum(_counts(caplog.records)) == 2500  # every occurrence accounted for
    assert events.total["k"] == 2500
    # quiet for longer than the interval: the next occurrence is logged at once again
    caplog.clear()
    clock.t += 3.0
    events.event("k", logging.WARNING, "limit %s bound", "k")
    assert [r.getMessage() for r in caplog.records] == ["limit k bound"]


def test_event_log_keys_are_independent_and_disabled_levels_cost_nothing(caplog):
    clock = FakeTime()
    events = EventLog(logging.getLogger("test.events2"), clock=clock)
    caplog.set_level(logging.WARNING, logger="test.events2")
    for i in range(100):
        clock.t = i * 0.01
        events.event("a", logging.WARNING, "a")
        events.event("b", logging.WARNING, "b")
        events.event("c", logging.DEBUG, "c")  # below the logger's level: counted, never formatted
    assert [r.getMessage() for r in caplog.records] == ["a", "b"]
    assert events.total == {"a": 100, "b": 100, "c": 100}
    with pytest.raises(ValueError):
        EventLog(logging.getLogger("x"), interval=0.0)


def _state(t: float, force: float) -> RobotState:
    return RobotState(t, {"arm": ArmState(HOME.copy(), np.zeros(6), np.zeros(7), 0.04,
                                          np.array([0.0, 0.0, force, 0.0, 0.0, 0.0]))})


def test_safety_filter_wrench_and_limit_lines_are_aggregated(caplog):
    clock = FakeTime()
    events = EventLog(logging.getLogger("tactkit.real.safety"), clock=clock)
    f = SafetyFilter(SafetyConfig(max_force=10.0, latch_wrench=False, workspace_max=(1.0, 1.0, 0.25)), events=events)
    caplog.set_level(logging.INFO, logger="tactkit.real.safety")
    for i in range(1000):  # 2 s at 500 Hz; the force crosses the limit every other tick
        t = clock.t = i * 0.002
        f.filter(RobotCommand(t, {"arm": ArmCommand(HOME.copy())}), _state(t, 20.0 if i % 2 else 0.0))
    f.flush_log()
    lines = [r.getMessage() for r in caplog.records]
    # five limits bind (workspace, wrench latch, wrench hold, rate, linear_rate): each at most its
    # first line, one a second and the flush; it was a line per limited tick (about 2000 here)
    assert len(lines) <= 5 * 3, lines
    wrench = [r for r in caplog.records if "wrench |f|" in r.getMessage()]
    assert wrench[0].levelno == logging.WARNING and "-> hold" in wrench[0].getMessage()
    assert 1 + sum(_counts(wrench)) == 500 == events.total[("arm", "wrench_exceeded")]
    workspace = [r for r in caplog.records if "limited by workspace" in r.getMessage()]
    assert 1 + sum(_counts(workspace)) == 1000 == events.total[("arm", "workspace")]


def test_lockstep_runtime_logs_a_binding_limit_once_then_counts(caplog, monkeypatch):
    events = EventLog(logging.getLogger("tactkit.real.safety"))
    monkeypatch.setattr(safety_module, "EVENTS", events)  # fresh process-wide counter for this test
    caplog.set_level(logging.INFO, logger="tactkit.real.safety")
    clock = SimClock()
    cfg = ControllerConfig(inference_latency=0.05, safety=SafetyConfig(workspace_max=(1.0, 0.05, 1.0)))
    t0 = time.monotonic()
    stats = LockstepRuntime(FakeRobot(FakeRobotConfig(), clock), ChunkPolicy(goal=(0.5, 0.3, 0.3), speed=0.2),
                            cfg, clock).run(1.5)
    wall = time.monotonic() - t0
    bound = stats.safety["workspace"]
    assert bound > 250  # the goal is outside the box: the limit binds on most ticks
    records = [r for r in caplog.records if "limited by workspace" in r.getMessage()]
    assert len(records) <= 2 + math.ceil(wall)  # the first, one a second (of wall time), the flush
    assert 1 + sum(_counts(records)) == bound  # every limited tick counted, in the log
