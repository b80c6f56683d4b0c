"""Watchdog: stale plans, stale sensors and a dead slow process stop the arm.

Each watched *channel* ("plan", "sensor:observation.wrench", "slow_process", and in the robot
process "controller") has a timeout. The controller feeds a channel whenever fresh data arrives and calls :meth:`check`
every robot period, so a stale channel is caught within ``timeout + one robot period``.
The first fault *latches*: the controller then decelerates to rest and holds (see
:class:`~tactkit.real.trajectory.BrakingTrajectory`) and ignores every command source until
an operator calls :meth:`rearm`. The reason is logged once, at error level.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class WatchdogConfig:
    """Timeouts (s) and the stop profile used once a fault latches."""

    plan_timeout: float = 2.0  # no new plan from the slow policy
    sensor_timeout: float = 0.25  # no new sample of the fast signal
    slow_process_timeout: float = 2.0  # no heartbeat from the slow-policy process
    controller_timeout: float = 0.25  # robot process: no message from the controller process
    stop_linear_decel: float = 2.0  # m/s^2
    stop_angular_decel: float = 8.0  # rad/s^2

    def __post_init__(self) -> None:
        for name in ("plan_timeout", "sensor_timeout", "slow_process_timeout", "controller_timeout",
                     "stop_linear_decel", "stop_angular_decel"):
            v = getattr(self, name)
            if not (v > 0 and math.isfinite(v)):
                raise ValueError(f"watchdog {name} must be a positive finite number, got {v}")


@dataclass(frozen=True)
class Fault:
    channel: str
    reason: str
    time: float  # when the fault latched (clock time)


class Watchdog:
    """Per-channel staleness checks with a latched fault."""

    def __init__(self) -> None:
        self._timeouts: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._fault: Fault | None = None

    def watch(self, channel: str, timeout: float, now: float) -> None:
        """Start watching ``channel``: it must be fed at least every ``timeout`` s from ``now``."""
        if not timeout > 0:
            raise ValueError(f"watchdog timeout for {channel!r} must be > 0, got {timeout}")
        self._timeouts[channel] = float(timeout)
        self._last[channel] = float(now)

    def unwatch(self, channel: str) -> None:
        self._timeouts.pop(channel, None)
        self._last.pop(channel, None)

    @property
    def channels(self) -> dict[str, float]:
        return dict(self._timeouts)

    def feed(self, channel: str, t: float) -> None:
        """Fresh data on ``channel`` at time ``t`` (ignored for unwatched channels)."""
        if channel in self._last and t > self._last[channel]:
            self._last[channel] = float(t)

    def last_fed(self, channel: str) -> float:
        return self._last[channel]

    @property
    def fault(self) -> Fault | None:
        return self._fault

    def trip(self, channel: str, reason: str, now: float) -> Fault:
        """Latch a fault now (e.g. the slow process exited); the first fault wins."""
        if self._fault is None:
            self._fault = Fault(channel, reason, float(now))
            log.error("watchdog: %s -> decelerating and holding until re-armed", reason)
        return self._fault

    def check(self, now: float) -> Fault | None:
        """Latch and return a fault if any channel is stale at ``now`` (or one is latched)."""
        if self._fault is None:
            for channel, timeout in self._timeouts.items():
                age = now - self._last[channel]
                if age > timeout:
                    self.trip(channel, f"{channel} stale: last update {age:.3f} s ago (timeout {timeout:.3f} s)", now)
                    break
        return self._fault

    def rearm(self, now: float) -> None:
        """Clear the fault and restart every channel's timeout at ``now`` (operator request)."""
        if self._fault is not None:
            log.warning("watchdog: re-armed after %s", self._fault.reason)
        self._fault = None
        for channel in self._last:
            self._last[channel] = float(now)
