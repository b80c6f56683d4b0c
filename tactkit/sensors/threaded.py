"""Reusable base for devices read by a background capture thread.

A driver implements three hooks, all called from the capture thread except ``_open``:

- ``_open()``: open the device (called by :meth:`ThreadedSensor.connect`, errors propagate);
- ``_read() -> Reading | None``: block until the next measurement (or a short timeout ->
  ``None``) and return its values with the capture time in the tactkit clock domain;
- ``_close()``: release the device.

The base owns everything else: a latest-wins slot per stream key (consumers never wait and
never see a queue build up), sequence numbers, receive timestamps, listeners (e.g. a
transport publisher, called on the capture thread), and health: measured rate, drops
(sequence gaps the driver reports), the last error, and *unhealthy* when no sample arrived
within ``stale_after_s``. A driver that raises is retried after a back-off and re-opened after
``reopen_after_errors`` consecutive errors, so unplugging and replugging a device recovers.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tactkit.clock import Clock, WallClock
from tactkit.sensors.base import Sensor, SensorHealth, SensorSample

log = logging.getLogger(__name__)


@dataclass
class Reading:
    """One measurement from a driver: values by stream key, captured at ``capture_time``."""

    capture_time: float
    values: dict[str, np.ndarray]
    dropped: int = 0  # measurements the device reports lost since the previous reading


@dataclass
class HealthPolicy:
    """When a threaded sensor counts as healthy and how it recovers."""

    stale_after_s: float = 0.5  # unhealthy if the newest sample is older than this
    rate_window_s: float = 2.0  # rate measured over this recent window
    retry_backoff_s: float = 0.2  # pause after a driver error
    reopen_after_errors: int = 5  # consecutive errors before close + re-open


@dataclass
class _Stats:
    receive_times: deque = field(default_factory=lambda: deque(maxlen=4096))
    drops: int = 0
    errors: int = 0
    last_error: str | None = None
    last_error_time: float | None = None


class ThreadedSensor(Sensor):
    """:class:`Sensor` whose device is read by one background thread (see module docs)."""

    def __init__(self, config: object, clock: Clock | None = None, policy: HealthPolicy | None = None) -> None:
        self.config = config
        self.clock = clock or WallClock()
        self.policy = policy or HealthPolicy(stale_after_s=float(getattr(config, "stale_after_s", 0.5)))
        self.name: str = str(getattr(config, "name", type(self).__name__))
        self._cond = threading.Condition()
        self._latest: dict[str, SensorSample] = {}
        self._seq = 0
        self._stats = _Stats()
        self._listeners: list[Callable[[dict[str, SensorSample]], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False

    # ------------------------------------------------------------------ driver hooks
    def _open(self) -> None:
        raise NotImplementedError

    def _read(self) -> Reading | None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ public API
    @property
    def primary_key(self) -> str:
        """The stream returned by :meth:`read_latest` when no key is given (first of streams())."""
        return next(iter(self.streams()))

    def connect(self) -> None:
        """Open the device and start the capture thread (returns without waiting for data)."""
        if self._connected:
            return
        self._open()
        self._stop.clear()
        self._connected = True
        self._thread = threading.Thread(target=self._run, name=f"sensor-{self.name}", daemon=True)
        self._thread.start()

    def disconnect(self, timeout: float = 2.0) -> None:
        """Stop the capture thread and close the device."""
        if not self._connected:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("%s: capture thread still blocked in the driver after %.1fs", self.name, timeout)
        self._connected = False
        try:
            self._close()
        except Exception as exc:  # noqa: BLE001 - closing must not mask the caller's state
            log.warning("%s: error while closing: %s", self.name, exc)

    def read_latest(self, max_age: float | None = None, key: str | None = None) -> SensorSample | None:
        """Newest sample of ``key`` (default: :attr:`primary_key`); ``None`` if none or older than ``max_age``."""
        with self._cond:
            sample = self._latest.get(key or self.primary_key)
        if sample is None:
            return None
        if max_age is not None and self.clock.now() - sample.capture_time > max_age:
            return None
        return sample

    def read_latest_all(self) -> dict[str, SensorSample]:
        """Newest samples of every stream (one reading: same ``seq``)."""
        with self._cond:
            return dict(self._latest)

    def wait_for_sample(self, after_seq: int = -1, timeout: float = 1.0) -> SensorSample | None:
        """Block up to ``timeout`` s (wall time) for a sample with ``seq > after_seq``; for tools and tests."""
        with self._cond:
            self._cond.wait_for(
                lambda: (s := self._latest.get(self.primary_key)) is not None and s.seq > after_seq,
                timeout,
            )
            s = self._latest.get(self.primary_key)
        return s if s is not None and s.seq > after_seq else None

    def add_listener(self, fn: Callable[[dict[str, SensorSample]], None]) -> None:
        """Call ``fn(samples_by_key)`` on the capture thread for every new reading (keep it fast)."""
        self._listeners.append(fn)

    def health(self) -> SensorHealth:
        now = self.clock.now()
        with self._cond:
            st = self._stats
            times = [t for t in st.receive_times if now - t <= self.policy.rate_window_s]
            latest = self._latest.get(self.primary_key)
            last_error = st.last_error
            drops = st.drops
        rate = 0.0
        if len(times) >= 2:
            span = max(now - times[0], times[-1] - times[0])
            rate = (len(times) - 1) / span if span > 0 else 0.0
        alive = self._thread is not None and self._thread.is_alive()
        fresh = latest is not None and now - latest.receive_time <= self.policy.stale_after_s
        healthy = self._connected and alive and fresh
        if not healthy and last_error is None:
            if not self._connected:
                last_error = "not connected"
            elif latest is None:
                last_error = "no sample yet"
            elif not fresh:
                last_error = f"no sample for {now - latest.receive_time:.2f}s"
        return SensorHealth(
            healthy=healthy,
            rate_hz=rate,
            drops=drops,
            last_error=last_error,
            last_capture_time=latest.capture_time if latest else None,
        )

    # ------------------------------------------------------------------ capture thread
    def _run(self) -> None:
        consecutive = 0
        while not self._stop.is_set():
            try:
                reading = self._read()
            except Exception as exc:  # noqa: BLE001 - any driver failure is reported, then retried
                consecutive += 1
                self._record_error(f"{type(exc).__name__}: {exc}")
                if consecutive >= self.policy.reopen_after_errors:
                    self._reopen()
                    consecutive = 0
                self._stop.wait(self.policy.retry_backoff_s)
                continue
            consecutive = 0
            if reading is not None:
                self._publish(reading)

    def _reopen(self) -> None:
        log.warning("%s: re-opening after repeated errors", self.name)
        try:
            self._close()
        except Exception as exc:  # noqa: BLE001
            log.debug("%s: close before re-open failed: %s", self.name, exc)
        try:
            self._open()
        except Exception as exc:  # noqa: BLE001
            self._record_error(f"re-open failed: {type(exc).__name__}: {exc}")

    def _record_error(self, message: str) -> None:
        log.warning("%s: %s", self.name, message)
        with self._cond:
            self._stats.errors += 1
            self._stats.last_error = message
            self._stats.last_error_time = self.clock.now()

    def _count_drops(self, n: int) -> None:
        """Drivers call this for losses noticed outside a reading."""
        with self._cond:
            self._stats.drops += int(n)

    def _publish(self, reading: Reading) -> None:
        receive = self.clock.now()
        with self._cond:
            seq = self._seq
            self._seq += 1
            samples = {
                k: SensorSample(k, v, reading.capture_time, receive, seq) for k, v in reading.values.items()
            }
            self._latest.update(samples)
            self._stats.receive_times.append(receive)
            self._stats.drops += reading.dropped
            self._cond.notify_all()
        for fn in self._listeners:
            try:
                fn(samples)
            except Exception as exc:  # noqa: BLE001 - a consumer must not kill capture
                log.warning("%s: listener %r failed: %s", self.name, fn, exc)
