import os

import numpy as np
import pytest

from tactkit.clock import SimClock, WallClock
from tactkit.rate import RateLoop, realtime_available, realtime_thread


def test_deadlines_are_absolute_on_sim_clock():
    clock = SimClock()
    loop = RateLoop(100.0, clock)
    times = []
    for _ in range(5):
        times.append(loop.wait())
        clock.advance(0.003)  # work shorter than the period
    assert times == pytest.approx([0.0, 0.01, 0.02, 0.03, 0.04])
    s = loop.stats()
    assert s.ticks == 5 and s.missed == 0
    assert s.error_max == pytest.approx(0.0)
    assert s.mean_period == pytest.approx(0.01)


def test_overrun_counts_missed_and_rephases_without_burst():
    clock = SimClock()
    loop = RateLoop(100.0, clock)
    loop.wait()  # t=0
    clock.advance(0.035)  # overran 3.5 periods
    t = loop.wait()
    # deadlines 0.01, 0.02, 0.03 passed while working; the loop re-phases to 0.04
    assert loop.missed == 3
    assert t == pytest.approx(0.04)
    assert clock.now() == pytest.approx(0.04)


def test_wall_clock_loop_keeps_absolute_deadlines_and_never_wakes_early():
    """On the wall clock: deadlines stay on the absolute grid (a missed one re-phases by whole
    periods), the loop never wakes before its deadline, and the stats are those of the recorded
    wake errors. How *small* the error is depends on the machine and its load: measured by
    benchmarks/controller_timing.py, never asserted here."""
    period = 1.0 / 500.0
    loop = RateLoop(500.0, WallClock())
    deadlines = [loop.wait() for _ in range(50)]
    s = loop.stats()
    assert s.ticks == 50
    steps = np.diff(deadlines) / period
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)  # whole periods apart
    assert np.all(np.round(steps) >= 1) and round((deadlines[-1] - deadlines[0]) / period) == 49 + s.missed
    errors = loop._errors[:50]
    assert errors.min() >= 0.0  # never before the deadline
    assert s.error_max == errors.max() and s.error_p50 == pytest.approx(np.median(errors), rel=1e-12, abs=1e-15)


def test_bad_rate_rejected():
    with pytest.raises(ValueError, match="rate_hz"):
        RateLoop(0.0)
    with pytest.raises(ValueError, match="rate_hz"):
        RateLoop(float("nan"))


def test_realtime_thread_off_by_default_and_rejects_bad_priorities():
    before = os.sched_getscheduler(0)
    with realtime_thread(0) as on:
        assert on is False and os.sched_getscheduler(0) == before
    for bad in (-1, 100):
        with pytest.raises(ValueError, match="0..99"), realtime_thread(bad):
            pass


@pytest.mark.skipif(not realtime_available(), reason="SCHED_FIFO refused to this OS user (needs root or "
                    "CAP_SYS_NICE or an rtprio limit): the real-time path is untested here")
def test_realtime_thread_runs_the_block_under_fifo_and_restores_the_policy():
    before = (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority)
    with realtime_thread(7) as on:
        assert on is True
        assert os.sched_getscheduler(0) == os.SCHED_FIFO and os.sched_getparam(0).sched_priority == 7
    assert (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority) == before


def test_realtime_thread_refused_by_the_os_warns_and_runs_normally(monkeypatch, caplog):
    def refuse(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    ran = []
    with caplog.at_level("WARNING"), realtime_thread(50) as on:
        ran.append(on)
    assert ran == [False]
    assert "real-time priority 50" in caplog.text and "not permitted" in caplog.text
