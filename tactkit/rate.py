"""Fixed-rate loops with absolute deadlines.

A :class:`RateLoop` schedules tick ``k`` at ``start + k * period`` (absolute, so jitter never
accumulates into drift), sleeps until the deadline and spins the last fraction of a
millisecond (:class:`~tactkit.clock.WallClock` does the spin). A tick that starts after the
next deadline has already passed counts as *missed*; the loop then re-phases to the next
future deadline instead of bursting to catch up, because a robot loop that fires three
commands back to back is worse than one that skips a period.

Period error (actual wake time - deadline) is kept in a bounded ring so statistics cost O(1)
memory on loops that run for hours.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tactkit.clock import Clock, WallClock

log = logging.getLogger(__name__)


def realtime_available() -> bool:
    """Whether this process may run threads under ``SCHED_FIFO`` (tried and undone at once)."""
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
        os.sched_setscheduler(0, old[0], old[1])
        return True
    except (AttributeError, OSError):
        return False


@contextlib.contextmanager
def realtime_thread(priority: int) -> Iterator[bool]:
    """Run the calling thread under ``SCHED_FIFO`` at ``priority`` (1-99) for the ``with`` block.

    Yields whether it took effect. ``priority`` 0 leaves the thread as it is (yields False).
    Without the privilege (Linux needs root or ``CAP_SYS_NICE``/an ``rtprio`` limit) or off
    Linux it logs a warning and runs on under the normal scheduler: the loop still works, only
    its period error under CPU contention is the OS time slice (several ms) instead of ~0.01 ms.
    The previous policy is restored on exit.
    """
    if not 0 <= priority <= 99:
        raise ValueError(f"realtime priority must be in 0..99, got {priority}")
    if priority == 0:
        yield False
        return
    try:
        old = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except (AttributeError, OSError) as e:  # no sched_* (not Linux) or no privilege
        log.warning("could not give this loop real-time priority %d (%s); running without it", priority, e)
        yield False
        return
    try:
        yield True
    finally:
        os.sched_setscheduler(0, old[0], old[1])


@dataclass(frozen=True)
class RateStats:
    ticks: int
    missed: int
    error_p50: float  # s, wake time - deadline
    error_p99: float
    error_max: float
    mean_period: float  # s, between consecutive wakes

    def as_ms(self) -> dict[str, float]:
        return {
            "ticks": self.ticks,
            "missed": self.missed,
            "error_p50_ms": self.error_p50 * 1e3,
            "error_p99_ms": self.error_p99 * 1e3,
            "error_max_ms": self.error_max * 1e3,
            "mean_period_ms": self.mean_period * 1e3,
        }


class RateLoop:
    """Run at ``rate_hz`` on ``clock``: call :meth:`wait` once per iteration.

    >>> loop = RateLoop(500.0)
    >>> for _ in range(3):
    ...     t = loop.wait()  # scheduled time of this tick
    """

    def __init__(self, rate_hz: float, clock: Clock | None = None, history: int = 100_000) -> None:
        if not (rate_hz > 0 and math.isfinite(rate_hz)):
            raise ValueError(f"rate_hz must be a positive finite number, got {rate_hz}")
        self.rate_hz = float(rate_hz)
        self.period = 1.0 / self.rate_hz
        self.clock = clock or WallClock()
        self._errors = np.zeros(int(history), dtype=np.float64)
        self._start: float | None = None
        self._k = 0  # index of the next deadline
        self.ticks = 0
        self.missed = 0
        self._first_wake: float | None = None
        self._last_wake: float | None = None

    def reset(self) -> None:
        """Restart the schedule at the next :meth:`wait` and clear statistics."""
        self.__init__(self.rate_hz, self.clock, len(self._errors))  # type: ignore[misc]

    @property
    def next_deadline(self) -> float | None:
        return None if self._start is None else self._start + self._k * self.period

    def wait(self) -> float:
        """Sleep until the next deadline; return that deadline (the tick's scheduled time)."""
        clock = self.clock
        if self._start is None:
            self._start = clock.now()
            self._k = 0
        deadline = self._start + self._k * self.period
        now = clock.now()
        if now > deadline + self.period:
            # Overran by more than a period: count the skipped ticks, re-phase to the future.
            behind = math.ceil((now - deadline) / self.period)
            self.missed += behind
            self._k += behind
            deadline = self._start + self._k * self.period
        clock.sleep_until(deadline)
        woke = clock.now()
        self._errors[self.ticks % len(self._errors)] = woke - deadline
        if self._first_wake is None:
            self._first_wake = woke
        self._last_wake = woke
        self.ticks += 1
        self._k += 1
        return deadline

    def stats(self) -> RateStats:
        n = min(self.ticks, len(self._errors))
        if n == 0:
            return RateStats(0, self.missed, 0.0, 0.0, 0.0, 0.0)
        err = self._errors[:n]
        span = (self._last_wake or 0.0) - (self._first_wake or 0.0)
        mean_period = span / (self.ticks - 1) if self.ticks > 1 else 0.0
        p50, p99 = np.percentile(err, [50, 99])
        return RateStats(self.ticks, self.missed, float(p50), float(p99), float(err.max()), mean_period)
