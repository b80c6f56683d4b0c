"""One transport for sensor samples between processes: ZeroMQ PUB/SUB, latest wins.

A sensor process publishes every sample; a consumer (recorder, controller, teleop feedback)
reads the newest one without waiting and without a backlog: send/receive high-water marks are
tiny, and :meth:`SampleSubscriber.poll` drains whatever is queued and keeps only the newest
sample per key (or ZMQ ``CONFLATE`` does it in the socket when one subscriber reads one key).

Wire format, one ZeroMQ frame per sample (``CONFLATE`` does not support multipart)::

    key (utf-8) | 0x00 | uint32 LE header length | msgpack header | raw array bytes (C order)

The key prefix is the PUB/SUB topic, so a subscriber asks for exact keys. The header is a
``msgspec`` struct (dtype, shape, capture/receive/publish times, seq); the array is decoded as a
zero-copy view of the received frame. Timestamps stay in the tactkit clock domain: the wall
clock is ``CLOCK_MONOTONIC``, shared by all processes of one machine.

:class:`SubscriberSensor` (config type ``zmq_subscriber``) wraps a subscription in the
:class:`~tactkit.sensors.base.Sensor` interface, so a consumer process uses a remote sensor
exactly like a local one.
"""

from __future__ import annotations

import struct
import threading
from collections import deque
from dataclasses import dataclass
from typing import ClassVar

import msgspec
import numpy as np
import zmq

from tactkit.clock import Clock, WallClock
from tactkit.sensors.base import SENSORS, Sensor, SensorHealth, SensorSample

_LEN = struct.Struct("<I")


class SampleHeader(msgspec.Struct, array_like=True):
    dtype: str
    shape: tuple[int, ...]
    capture_time: float
    receive_time: float
    publish_time: float
    seq: int


_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(SampleHeader)


def encode_sample(sample: SensorSample, publish_time: float) -> bytes:
    """One wire frame for ``sample``."""
    value = np.ascontiguousarray(sample.value)
    header = _ENC.encode(
        SampleHeader(value.dtype.str, value.shape, sample.capture_time, sample.receive_time,
                     publish_time, sample.seq)
    )
    return b"".join((sample.key.encode(), b"\0", _LEN.pack(len(header)), header, value.data))


def decode_sample(frame: bytes | memoryview) -> tuple[SensorSample, float]:
    """``(sample, publish_time)`` from a wire frame; the value is a read-only view of ``frame``."""
    buf = memoryview(frame)
    sep = bytes(buf[:256]).find(b"\0")
    if sep < 0:
        raise ValueError("transport frame has no key separator")
    key = bytes(buf[:sep]).decode()
    (hlen,) = _LEN.unpack_from(buf, sep + 1)
    start = sep + 1 + _LEN.size
    hdr = _DEC.decode(buf[start : start + hlen])
    value = np.frombuffer(buf[start + hlen :], dtype=np.dtype(hdr.dtype)).reshape(hdr.shape)
    return SensorSample(key, value, hdr.capture_time, hdr.receive_time, hdr.seq), hdr.publish_time


class SamplePublisher:
    """PUB socket publishing samples; usable as a :class:`ThreadedSensor` listener.

    ``conflate=True`` (one key per publisher) keeps only the newest unsent message per
    subscriber, so even a stalled link delivers the newest sample next. Otherwise up to ``hwm``
    messages queue per subscriber; past that ZeroMQ drops new ones, which the subscriber's
    drain thread prevents at any realistic sensor rate.
    """

    def __init__(self, endpoint: str = "tcp://127.0.0.1:*", bind: bool = True, hwm: int = 64,
                 conflate: bool = False, clock: Clock | None = None,
                 context: zmq.Context | None = None) -> None:
        self.clock = clock or WallClock()
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.PUB)
        self.sock.setsockopt(zmq.SNDHWM, hwm)
        if conflate:
            self.sock.setsockopt(zmq.CONFLATE, 1)
        self.sock.setsockopt(zmq.LINGER, 0)
        if bind:
            self.sock.bind(endpoint)
        else:
            self.sock.connect(endpoint)
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT) if bind else endpoint
        self._lock = threading.Lock()  # zmq sockets are not thread-safe
        self.sent = 0

    def publish(self, sample: SensorSample) -> None:
        frame = encode_sample(sample, self.clock.now())
        with self._lock:
            # PUB never blocks: over the high-water mark ZeroMQ drops instead.
            self.sock.send(frame, zmq.NOBLOCK, copy=len(frame) < 65536)
            self.sent += 1

    def __call__(self, samples: dict[str, SensorSample]) -> None:
        for s in samples.values():
            self.publish(s)

    def close(self) -> None:
        with self._lock:
            self.sock.close(0)


class SampleSubscriber:
    """SUB socket drained by a background thread that keeps the newest sample per key.

    The thread matters: ZeroMQ's high-water marks drop the *newest* messages once queues are
    full, so a consumer that only reads when it needs a value would see an old one after a
    burst. Draining continuously keeps every queue near empty and the newest sample at hand;
    :meth:`read_latest` never touches the socket and never blocks.
    """

    def __init__(self, endpoints: str | list[str], keys: list[str] | None = None, conflate: bool = False,
                 hwm: int = 64, clock: Clock | None = None, context: zmq.Context | None = None) -> None:
        if conflate and (keys is None or len(keys) != 1):
            raise ValueError("conflate=True keeps one message per socket: subscribe to exactly one key")
        self.clock = clock or WallClock()
        self.ctx = context or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.SUB)
        self.sock.setsockopt(zmq.RCVHWM, hwm)
        self.sock.setsockopt(zmq.LINGER, 0)
        if conflate:
            self.sock.setsockopt(zmq.CONFLATE, 1)
        for k in keys if keys is not None else [""]:
            self.sock.setsockopt(zmq.SUBSCRIBE, (k + "\0").encode() if k else b"")
        for ep in [endpoints] if isinstance(endpoints, str) else endpoints:
            self.sock.connect(ep)
        self.latest: dict[str, SensorSample] = {}
        self.received = 0
        self.skipped = 0  # samples the publisher sent that this subscriber never saw (seq gaps)
        #: (key, seq, receive_time, publish_time, arrival_time) of recent samples
        self.arrivals: deque = deque(maxlen=100_000)
        self._last_seq: dict[str, int] = {}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sample-subscriber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sock = self.sock
        while not self._stop.is_set():
            if not sock.poll(20):
                continue
            batch = []
            while True:
                try:
                    frame = sock.recv(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                except zmq.ZMQError:
                    return
                sample, t_pub = decode_sample(frame.buffer)
                batch.append((sample, t_pub, self.clock.now()))
            with self._cond:
                for sample, t_pub, t_arr in batch:
                    last = self._last_seq.get(sample.key)
                    if last is not None and sample.seq > last + 1:
                        self.skipped += sample.seq - last - 1
                    self._last_seq[sample.key] = sample.seq
                    self.latest[sample.key] = sample
                    self.arrivals.append((sample.key, sample.seq, sample.receive_time, t_pub, t_arr))
                self.received += len(batch)
                self._cond.notify_all()

    def poll(self, timeout: float = 0.0) -> int:
        """Wait up to ``timeout`` s for a new sample; returns how many arrived meanwhile."""
        with self._cond:
            start = self.received
            if timeout > 0:
                self._cond.wait_for(lambda: self.received > start, timeout)
            return self.received - start

    def wait_for(self, key: str, after_seq: int = -1, timeout: float = 1.0) -> SensorSample | None:
        """Block up to ``timeout`` s for a sample of ``key`` newer than ``after_seq`` (tools, tests)."""
        with self._cond:
            ok = self._cond.wait_for(
                lambda: (s := self.latest.get(key)) is not None and s.seq > after_seq, timeout
            )
            return self.latest[key] if ok else None

    def read_latest(self, key: str, max_age: float | None = None) -> SensorSample | None:
        """Newest sample of ``key``; ``None`` if none or older than ``max_age``. Never blocks."""
        with self._cond:
            s = self.latest.get(key)
        if s is None or (max_age is not None and self.clock.now() - s.capture_time > max_age):
            return None
        return s

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1.0)
        self.sock.close(0)


def publish_sensor(sensor: object, endpoint: str = "tcp://127.0.0.1:*", **kwargs: object) -> SamplePublisher:
    """Publish every sample of a :class:`ThreadedSensor` from its capture thread.

    A single-stream sensor gets a conflating publisher (newest unsent sample only).
    """
    kwargs.setdefault("conflate", len(sensor.streams()) == 1)  # type: ignore[attr-defined]
    pub = SamplePublisher(endpoint, **kwargs)
    sensor.add_listener(pub)  # type: ignore[attr-defined]
    return pub


@dataclass
class SubscriberConfig:
    """A sensor published by another process (``tactkit sensors publish``)."""

    type_name: ClassVar[str] = "zmq_subscriber"
    name: str = "remote"
    endpoint: str = "tcp://127.0.0.1:5560"
    key: str = "observation.wrench"
    shape: tuple[int, ...] = (6,)
    dtype: str = "float32"
    rate_hz: float = 100.0
    conflate: bool = True
    stale_after_s: float = 0.5


@SENSORS.register(SubscriberConfig)
class SubscriberSensor(Sensor):
    """The :class:`Sensor` interface over a :class:`SampleSubscriber` (no thread of its own)."""

    def __init__(self, config: SubscriberConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or WallClock()
        self.sub: SampleSubscriber | None = None
        self._connected_at = 0.0

    def streams(self) -> dict:
        from tactkit.store.schema import StreamSpec

        c = self.config
        return {c.key: StreamSpec(c.dtype, c.shape, c.rate_hz)}

    def connect(self) -> None:
        c = self.config
        self.sub = SampleSubscriber(c.endpoint, [c.key], conflate=c.conflate, clock=self.clock)
        self._connected_at = self.clock.now()

    def read_latest(self, max_age: float | None = None) -> SensorSample | None:
        if self.sub is None:
            return None
        return self.sub.read_latest(self.config.key, max_age)

    def health(self) -> SensorHealth:
        if self.sub is None:
            return SensorHealth(False, 0.0, 0, "not connected")
        now = self.clock.now()
        with self.sub._cond:
            times = [a[4] for a in self.sub.arrivals if a[0] == self.config.key and now - a[4] <= 2.0]
        rate = (len(times) - 1) / max(now - times[0], 1e-9) if len(times) >= 2 else 0.0
        latest = self.sub.latest.get(self.config.key)
        fresh = bool(times) and now - times[-1] <= self.config.stale_after_s
        err = None if fresh else ("no sample yet" if latest is None else f"no sample for {now - times[-1]:.2f}s"
                                  if times else "no recent sample")
        return SensorHealth(fresh, rate, self.sub.skipped, err, latest.capture_time if latest else None)

    def disconnect(self) -> None:
        if self.sub is not None:
            self.sub.close()
            self.sub = None

    def wait_for_sample(self, after_seq: int = -1, timeout: float = 1.0) -> SensorSample | None:
        """Block up to ``timeout`` s for a sample newer than ``after_seq`` (tools, tests)."""
        return None if self.sub is None else self.sub.wait_for(self.config.key, after_seq, timeout)
