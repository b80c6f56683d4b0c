"""Benchmark: sensor-to-consumer latency through the shared transport, across processes.

A producer (this process) stamps each sample with the sensor's receive time on the tactkit
wall clock (``CLOCK_MONOTONIC``, shared by all processes) and publishes it at the sensor's
rate; a consumer process measures ``arrival - receive_time`` when the sample is decoded and
available to ``read_latest``. Payloads: wrench (6 float32) at 1 kHz, marker offsets (63x2
float32) at 60 Hz, a 640x480 BGR image at 30 Hz.

The tactkit transport runs in its two modes: conflating (latest wins: a consumer that falls
behind skips to the newest sample; controllers, teleop feedback) and queued (high-water mark 64:
every sample while the consumer keeps up; recorders). Side by side with a baseline of common plumbing: ``multiprocessing.Queue`` (pickled samples,
a consumer thread doing ``get()``), same payloads and rates, same clock.

    .venv/bin/python benchmarks/transport_latency.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
import threading
import time

import numpy as np

from tactkit.sysinfo import machine_summary as machine

PAYLOADS = {
    "wrench 6xf32 @1 kHz": ("observation.wrench", (6,), "float32", 1000.0),
    "markers 63x2xf32 @60 Hz": ("observation.tactile.left.marker_offset", (63, 2), "float32", 60.0),
    "image 480x640x3 u8 @30 Hz": ("observation.images.wrist", (480, 640, 3), "uint8", 30.0),
}


def _zmq_consumer(endpoint: str, key: str, conflate: bool, seconds: float, ready, out) -> None:
    from tactkit.sensors.transport import SampleSubscriber

    sub = SampleSubscriber(endpoint, [key], conflate=conflate)
    ready.set()
    time.sleep(seconds)
    sub.close()
    out.put([(a[1], a[4] - a[2]) for a in sub.arrivals])


def _queue_consumer(q, seconds: float, ready, out) -> None:
    lat, stop = [], time.monotonic() + seconds
    ready.set()
    while time.monotonic() < stop:
        try:
            s = q.get(timeout=0.1)
        except Exception:  # noqa: BLE001 - queue.Empty
            continue
        lat.append((s.seq, time.monotonic() - s.receive_time))
    out.put(lat)


def _produce(send, key: str, shape, dtype: str, rate: float, seconds: float) -> int:
    from tactkit.clock import WallClock
    from tactkit.sensors.base import SensorSample

    clock = WallClock()
    value = np.random.default_rng(0).integers(0, 255, shape).astype(dtype)
    n, t0 = 0, clock.now()
    while True:
        deadline = t0 + n / rate
        if deadline - t0 > seconds:
            return n
        clock.sleep_until(deadline)
        now = clock.now()
        send(SensorSample(key, value, now - 0.001, now, n))
        n += 1


def run(kind: str, payload: tuple, seconds: float) -> tuple[np.ndarray, int, int]:
    key, shape, dtype, rate = payload
    ctx = mp.get_context("spawn")
    ready, out = ctx.Event(), ctx.Queue()
    if kind.startswith("zmq"):
        from tactkit.sensors.transport import SamplePublisher

        conflate = kind == "zmq"
        pub = SamplePublisher("tcp://127.0.0.1:*", conflate=conflate)
        proc = ctx.Process(target=_zmq_consumer, args=(pub.endpoint, key, conflate, seconds + 1.5, ready, out))
        send, close = pub.publish, pub.close
    else:
        q = ctx.Queue()
        proc = ctx.Process(target=_queue_consumer, args=(q, seconds + 1.5, ready, out))
        send, close = q.put, (lambda: None)
    proc.start()
    ready.wait(30)
    time.sleep(0.5)  # subscription joined
    sent = _produce(send, key, shape, dtype, rate, seconds)
    lat = out.get(timeout=60)
    proc.join(10)
    close()
    return np.array([x for _, x in lat]) * 1e3, sent, len(lat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    import zmq

    print("# Sensor-to-consumer latency across processes (loopback)\n")
    print(f"machine: {machine()}; ZeroMQ {zmq.zmq_version()}, pyzmq {zmq.__version__}")
    print(f"settings: {args.seconds:g} s per payload; latency = consumer arrival - sensor receive "
          "time, same CLOCK_MONOTONIC\n")
    print("| payload | transport | delivered / sent | p50 ms | p99 ms | max ms |")
    print("|---|---|---:|---:|---:|---:|")
    threading.current_thread().name = "producer"
    for label, payload in PAYLOADS.items():
        for kind, name in (("zmq", "tactkit ZeroMQ, conflate (latest wins)"),
                           ("zmq_queued", "tactkit ZeroMQ, queued (hwm 64, every sample)"),
                           ("queue", "baseline mp.Queue (pickle)")):
            ms, sent, got = run(kind, payload, args.seconds)
            p50, p99 = np.percentile(ms, [50, 99]) if len(ms) else (float("nan"),) * 2
            print(f"| {label} | {name} | {got} / {sent} | {p50:.3f} | {p99:.3f} | {ms.max():.3f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
