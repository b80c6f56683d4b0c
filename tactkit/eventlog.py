"""Log events that can repeat every tick without flooding the log.

A 500 Hz loop that logs a line whenever a limit binds writes 500 lines a second. An
:class:`EventLog` logs the *first* occurrence of an event at once and then, while it keeps
repeating, one summary line per ``interval`` seconds with the count::

    events = EventLog(logging.getLogger(__name__))
    events.event(("arm", "workspace"), logging.INFO, "safety: arm %s limited by %s", "arm", "workspace")
    # -> "safety: arm arm limited by workspace"                        (first occurrence)
    # -> "safety: arm arm limited by workspace [x499 in the last 1.0 s]"  (once a second after)

An event that comes back after a quiet interval is logged at once again. :meth:`EventLog.flush`
writes the counts not yet reported (a runtime calls it when it stops). Message formatting is
lazy: a counted repeat costs a dictionary lookup and a clock read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass
class _Pending:
    level: int
    msg: str
    args: tuple
    last_emit: float  # when a line for this key was last written
    count: int = 0  # occurrences since last_emit that no line reported yet


class EventLog:
    """First occurrence of each event key at once, then counts per ``interval`` seconds."""

    def __init__(self, logger: logging.Logger, interval: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not interval > 0:
            raise ValueError(f"EventLog interval must be > 0, got {interval}")
        self.logger = logger
        self.interval = float(interval)
        self.clock = clock
        self._events: dict[Hashable, _Pending] = {}
        self._lock = threading.Lock()
        self.total: dict[Hashable, int] = {}  # occurrences per key since creation (logged or not)

    def event(self, key: Hashable, level: int, msg: str, *args: object) -> None:
        """One occurrence of event ``key`` (``msg % args`` describes it)."""
        self.total[key] = self.total.get(key, 0) + 1
        if not self.logger.isEnabledFor(level):
            return
        now = self.clock()
        with self._lock:
            p = self._events.get(key)
            if p is None or (p.count == 0 and now - p.last_emit >= self.interval):
                self._events[key] = _Pending(level, msg, args, now)
                emit: tuple | None = (level, msg, args)
            else:
                p.count += 1
                p.level, p.msg, p.args = level, msg, args
                emit = None
                if now - p.last_emit >= self.interval:
                    emit = self._summary(p, now)
        if emit is not None:
            self.logger.log(emit[0], emit[1], *emit[2])

    def _summary(self, p: _Pending, now: float) -> tuple:
        line = (p.level, p.msg + " [x%d in the last %.1f s]", (*p.args, p.count, now - p.last_emit))
        p.count, p.last_emit = 0, now
        return line

    def flush(self) -> None:
        """Write the counts of every event that repeated since its last line."""
        now = self.clock()
        with self._lock:
            lines = [self._summary(p, now) for p in self._events.values() if p.count]
        for level, msg, args in lines:
            self.logger.log(level, msg, *args)
