"""The operator's command stream while another peer floods the bridge with junk.

Two runs side by side against one bridge (its own process: this one), each ``--seconds`` long:

* **flood off** - a headset in its own process streams poses at ``--rate`` Hz with the clutch
  held (the operator);
* **flood on** - the same operator while a second process sends hostile messages (the
  protocol fuzzer's, every one invalid for a known reason; none above the size limit) from one
  DEALER socket as fast as the bridge takes them.

Reported per run: the operator's commands per second (robot ``send`` calls built from its
poses) and that rate as a share of the flood-off run, pose -> robot command latency p50 / p99 /
max (pose timestamp = its send time on the same host's monotonic clock), clutch resets by the
stream watchdog, the flood's rate (messages the flooder sent, and the bridge's refusals per
reason, ``rate_limited`` included) and the machine's load average. Targets (issue 16): >= 90 %
of the flood-off command rate, p99 < 5 ms::

    .venv/bin/python benchmarks/teleop_flood.py --seconds 10
    .venv/bin/python benchmarks/teleop_flood.py --seconds 10 bridge.peer_rate_hz=0   # budgets off
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import time

import numpy as np
import zmq
from teleop_latency import TimedRobot  # benchmarks/ is on sys.path when run as a script

from tactkit.clock import WallClock
from tactkit.config import from_dict, merge, parse_overrides, to_dict
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.sysinfo import cpu_model
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge
from tactkit.teleop.client import HeadsetClient

HEAD = P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0))


def operator(upstream: str, feedback: str, seconds: float, rate: float, started, go, sent) -> None:
    """Streams poses at ``rate`` Hz for ``seconds``, the grip held from the 4th to the 4th-last
    (the clutch engaged in between, released before the stream ends)."""
    client = HeadsetClient(upstream, feedback)
    started.set()
    go.wait()
    period, t0 = 1.0 / rate, time.monotonic()
    n = int(seconds * rate)
    for i in range(n):
        target = t0 + i * period
        while (now := time.monotonic()) < target:
            time.sleep(min(0.001, target - now))
        x = 0.02 * np.sin(2 * np.pi * 0.5 * (now - t0))
        right = P.Hand(wrist=P.Pose(pos=(float(x), 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0)), index_trigger=0.0,
                       hand_trigger=1.0 if 3 <= i < n - 3 else 0.0)
        client.send_pose(now, HEAD, None, right)
        sent.value += 1
    time.sleep(0.1)
    client.close()


def flooder(upstream: str, seconds: float, started, go, sent) -> None:
    """One DEALER sending hostile messages as fast as the bridge takes them."""
    from tactkit.teleop.fuzz import HostileMessages

    gen = HostileMessages(seed=1)
    pool = []
    while len(pool) < 5000:
        frames, reason = gen.next()
        if reason != "too_large":
            pool.append(frames)
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.sndhwm = 1000
    sock.connect(upstream)
    started.set()
    go.wait()
    n, t_end = 0, time.monotonic() + seconds
    while time.monotonic() < t_end:
        for frames in pool[n % len(pool): n % len(pool) + 100]:
            try:
                sock.send_multipart(frames, zmq.NOBLOCK)
                n += 1
            except zmq.Again:
                sock.poll(5, zmq.POLLOUT)
    sent.value = n
    sock.close(0)
    ctx.term()


def run(seconds: float, rate: float, flood: bool, config: BridgeConfig) -> dict:
    robot = TimedRobot()
    bridge = TeleopBridge(robot, config, safety=SafetyFilter(SafetyConfig()), clock=WallClock())
    bridge.start()
    up, fb = bridge.endpoints["upstream"], bridge.endpoints["feedback"]
    ctx = mp.get_context("spawn")
    go = ctx.Event()
    sent, op_sent = ctx.Value("q", 0), ctx.Value("q", 0)
    started = [ctx.Event() for _ in range(2 if flood else 1)]
    procs = [ctx.Process(target=operator, args=(up, fb, seconds, rate, started[0], go, op_sent))]
    if flood:
        procs.append(ctx.Process(target=flooder, args=(up, seconds + 0.5, started[1], go, sent)))
    for p in procs:
        p.start()
    for ev in started:  # spawned interpreters import tactkit first
        if not ev.wait(120.0):
            raise RuntimeError("a benchmark process did not start within 120 s")
    time.sleep(0.3)  # connected
    load0 = os.getloadavg()[0]
    cpu0 = time.process_time()
    go.set()
    for p in procs:
        p.join()
    cpu = time.process_time() - cpu0
    time.sleep(0.2)
    bridge.stop()
    st = bridge.stats
    n = min(len(robot.sent_at), len(st.command_pose_t))
    lat = (np.asarray(robot.sent_at[:n]) - np.asarray(list(st.command_pose_t)[:n])) * 1e3
    lat = lat[3:]  # the first commands follow the clutch engaging while both processes start
    return {
        "commands": len(robot.sent_at), "cmd_rate": len(robot.sent_at) / seconds,
        "poses": st.poses_received, "superseded": st.poses_superseded, "op_sent": op_sent.value,
        "rate_limited": st.rate_limited, "rx_p99": float(np.percentile(np.asarray(st.latency) * 1e3, 99)) if st.latency else float("nan"),
        "lat_p50": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "lat_p99": float(np.percentile(lat, 99)) if lat.size else float("nan"),
        "lat_max": float(lat.max()) if lat.size else float("nan"),
        "resets": st.stream_losses, "flood_sent": sent.value, "rejects": bridge.rejects.as_dict(),
        "load": max(load0, os.getloadavg()[0]), "bridge_cpu": cpu / seconds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--rate", type=float, default=60.0, help="operator pose rate (Hz)")
    ap.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="bridge settings, e.g. bridge.peer_rate_hz=0")
    args = ap.parse_args()
    over = parse_overrides(args.overrides).get("bridge", {})
    base = to_dict(BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*"))
    config = from_dict(BridgeConfig, merge(base, over), "bridge")
    off = run(args.seconds, args.rate, False, config)
    on = run(args.seconds, args.rate, True, config)
    print(f"# Teleop bridge under a junk flood ({args.seconds:.0f} s per run, operator at {args.rate:.0f} Hz)\n")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}; python {platform.python_version()}, libzmq "
          f"{zmq.zmq_version()}; this process at nice {os.nice(0)}; bridge: peer_rate_hz={config.peer_rate_hz}, "
          f"peer_burst={config.peer_burst}, drain_budget_s={config.drain_budget_s}\n")
    print("| run | load avg | operator poses sent/s | received/s | commands/s | commands: share of flood off "
          "| pose->command p50 / p99 / max (ms) | bridge receive->command p99 (ms) | clutch resets | flood msgs sent/s "
          "| decoded and refused/s | dropped over budget/s | bridge CPU s/s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r in (("flood off", off), ("flood on", on)):
        refused = sum(r["rejects"].values())
        t = args.seconds
        print(f"| {name} | {r['load']:.1f} | {r['op_sent'] / t:.1f} | {r['poses'] / t:.1f} | {r['cmd_rate']:.1f} | "
              f"{r['cmd_rate'] / max(off['cmd_rate'], 1e-9):.0%} | "
              f"{r['lat_p50']:.2f} / {r['lat_p99']:.2f} / {r['lat_max']:.2f} | {r['rx_p99']:.2f} | {r['resets']} | "
              f"{r['flood_sent'] / t:,.0f} | {refused / t:,.0f} | {r['rate_limited'] / t:,.0f} | {r['bridge_cpu']:.2f} |")
    print(f"\nrefusals with the flood on, per reason: {on['rejects']}")


if __name__ == "__main__":
    main()
