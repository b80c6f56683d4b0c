"""Clocks: one monotonic time domain for every timestamp in the stack.

Every sample, command and log line carries a time from a :class:`Clock`. On hardware that is
:class:`WallClock` (``time.monotonic`` seconds; the wall-clock time of an episode's start is
kept separately in the store's attributes). In simulation it is :class:`SimClock`, advanced
explicitly by the physics loop, so the same controller code runs in lockstep and is
bit-reproducible.
"""

from __future__ import annotations

import abc
import threading
import time


class Clock(abc.ABC):
    """Source of time in seconds (monotonic, arbitrary epoch)."""

    @abc.abstractmethod
    def now(self) -> float:
        """Current time in seconds."""

    @abc.abstractmethod
    def sleep_until(self, deadline: float) -> None:
        """Block until ``now() >= deadline`` (returns at once if already past)."""

    def sleep(self, duration: float) -> None:
        """Block for ``duration`` seconds of this clock's time."""
        self.sleep_until(self.now() + duration)


class WallClock(Clock):
    """Monotonic wall clock. ``sleep_until`` sleeps coarsely, then spins the last ``spin_s``.

    OS sleeps overshoot by 50-1000 us; spinning the final stretch makes 500 Hz loops hold
    sub-millisecond period error at the cost of a little CPU.
    """

    def __init__(self, spin_s: float = 0.0005) -> None:
        self.spin_s = spin_s

    def now(self) -> float:
        return time.monotonic()

    def sleep_until(self, deadline: float) -> None:
        remaining = deadline - time.monotonic()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while time.monotonic() < deadline:
            pass


class SimClock(Clock):
    """Manually advanced clock for lockstep simulation.

    ``sleep_until`` does not wait: in lockstep the caller owns time. If another thread is
    the time owner, ``sleep_until`` blocks until that thread has advanced past the deadline.
    """

    def __init__(self, start: float = 0.0) -> None:
        self._t = float(start)
        self._cond = threading.Condition()
        self.blocking = False

    def now(self) -> float:
        return self._t

    def advance(self, dt: float) -> float:
        """Move time forward by ``dt`` >= 0 seconds; returns the new time."""
        if dt < 0:
            raise ValueError(f"SimClock cannot go backwards (dt={dt})")
        with self._cond:
            self._t += dt
            self._cond.notify_all()
        return self._t

    def set(self, t: float) -> None:
        """Jump to absolute time ``t`` (must not be earlier than now)."""
        if t < self._t:
            raise ValueError(f"SimClock cannot go backwards ({t} < {self._t})")
        with self._cond:
            self._t = float(t)
            self._cond.notify_all()

    def sleep_until(self, deadline: float) -> None:
        if not self.blocking:
            if deadline > self._t:
                self.set(deadline)
            return
        with self._cond:
            self._cond.wait_for(lambda: self._t >= deadline)
