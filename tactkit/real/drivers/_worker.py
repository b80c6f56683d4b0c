"""Keep blocking SDK calls out of the robot loop.

Some vendor calls block for a network round trip or longer: franky's ``Gripper.move_async``
waits for the previous gripper move to finish, ``Gripper.width`` reads a state packet over
the network, Flexiv's ``Gripper.Move`` waits until the request is delivered. A 500 Hz robot
loop cannot wait for any of them, so drivers hand them to:

* :class:`LatestWins` - one worker thread executing submitted jobs one at a time; while a
  job runs, newer submissions replace the pending one (the gripper should go to the newest
  width, not replay every intermediate one);
* :class:`Poller` - one thread refreshing a value (e.g. the gripper width) at a fixed rate;
  readers get the newest value and its age without blocking.

Both threads are daemons, so an SDK call that never returns cannot keep the process alive.
Errors are logged (first occurrence of each message at error level) and kept in
``last_error``; the robot loop keeps running.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class LatestWins:
    """Run submitted callables on one worker thread; a new submission replaces a pending one."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._pending: Callable[[], Any] | None = None
        self._busy = False
        self._closed = False
        self.submitted = 0
        self.executed = 0
        self.replaced = 0  # submissions dropped because a newer one arrived first
        self.last_error: BaseException | None = None
        self._logged: set[str] = set()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], Any]) -> None:
        """Queue ``job`` (never blocks); a job still waiting to start is dropped."""
        with self._cond:
            if self._closed:
                raise RuntimeError(f"{self.name}: closed")
            if self._pending is not None:
                self.replaced += 1
            self._pending = job
            self.submitted += 1
            self._cond.notify_all()

    @property
    def busy(self) -> bool:
        """A job is running or waiting to run."""
        with self._cond:
            return self._busy or self._pending is not None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no job is running or pending (tests, shutdown); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._busy and self._pending is None, timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return
                job, self._pending, self._busy = self._pending, None, True
            try:
                job()
            except Exception as exc:  # a failed gripper move must not stop the arm
                self.last_error = exc
                msg = f"{type(exc).__name__}: {exc}"
                log.log(logging.DEBUG if msg in self._logged else logging.ERROR, "%s: %s", self.name, msg)
                self._logged.add(msg)
            with self._cond:
                self._busy = False
                self.executed += 1
                self._cond.notify_all()

    def close(self, timeout: float = 1.0) -> bool:
        """Drop any pending job, let a running one finish (up to ``timeout``); False if it
        is still running (the thread is a daemon and is left behind)."""
        with self._cond:
            self._closed = True
            self._pending = None
            self._cond.notify_all()
        self._thread.join(timeout)
        return not self._thread.is_alive()


class Poller:
    """Refresh ``read()`` every ``period`` seconds on a thread; :attr:`value` never blocks."""

    def __init__(self, name: str, read: Callable[[], float], period: float) -> None:
        if not period > 0:
            raise ValueError(f"{name}: poll period must be > 0, got {period}")
        self.name, self._read, self.period = name, read, float(period)
        self._value = math.nan
        self._time = -math.inf
        self.reads = 0
        self.last_error: BaseException | None = None
        self._logged: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def value(self) -> float:
        """Newest value read (NaN before the first read completes)."""
        return self._value

    @property
    def age(self) -> float:
        """Seconds since the newest value was read (inf before the first)."""
        return time.monotonic() - self._time

    def _run(self) -> None:
        while not self._stop.is_set():
            start = time.monotonic()
            try:
                value = float(self._read())
            except Exception as exc:
                self.last_error = exc
                msg = f"{type(exc).__name__}: {exc}"
                log.log(logging.DEBUG if msg in self._logged else logging.ERROR, "%s: %s", self.name, msg)
                self._logged.add(msg)
            else:
                self._value, self._time = value, time.monotonic()
                self.reads += 1
            self._stop.wait(max(0.0, self.period - (time.monotonic() - start)))

    def close(self, timeout: float = 1.0) -> bool:
        self._stop.set()
        self._thread.join(timeout)
        return not self._thread.is_alive()
