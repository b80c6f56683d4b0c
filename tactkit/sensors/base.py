"""The ``Sensor`` interface: every tactile pad, F/T sensor and camera, real or simulated.

A sensor produces :class:`SensorSample` s stamped in the tactkit clock domain: ``capture_time``
is when the physical measurement happened (hardware timestamp where the device gives one),
``receive_time`` when the host got it. Consumers never block on a sensor: ``read_latest``
returns the newest sample or ``None`` if there is none fresher than ``max_age``.

Implementations register by config type (see :mod:`tactkit.registry`).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import numpy as np

from tactkit.registry import Registry


@dataclass(frozen=True)
class SensorSample:
    key: str  # dataset stream key, e.g. "observation.tactile.left.marker_offset"
    value: np.ndarray
    capture_time: float  # s, tactkit clock domain
    receive_time: float  # s, tactkit clock domain
    seq: int  # per-sensor sequence number, starts at 0, +1 per sample


@dataclass
class SensorHealth:
    healthy: bool
    rate_hz: float  # measured over the recent window
    drops: int  # samples known to be lost (sequence gaps, device overruns)
    last_error: str | None = None
    last_capture_time: float | None = None


class Sensor(abc.ABC):
    """``connect / read_latest / disconnect``, a capture thread or process per device."""

    #: dataset key -> StreamSpec of what this sensor produces (see tactkit.store.schema)
    @abc.abstractmethod
    def streams(self) -> dict: ...

    @abc.abstractmethod
    def connect(self) -> None: ...

    @abc.abstractmethod
    def read_latest(self, max_age: float | None = None) -> SensorSample | None:
        """Newest sample, or ``None`` if none exists or the newest is older than ``max_age`` s."""

    @abc.abstractmethod
    def health(self) -> SensorHealth: ...

    @abc.abstractmethod
    def disconnect(self) -> None: ...

    def __enter__(self) -> Sensor:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.disconnect()


#: Sensor implementations by config type.
SENSORS: Registry[Sensor] = Registry("sensor")
