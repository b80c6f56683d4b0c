"""Fuzz a running teleoperation bridge with >= 100,000 hostile messages.

A legitimate operator streams poses (clutch released) at 60 Hz throughout; a hostile client
sends ``--messages`` messages from :mod:`tactkit.teleop.fuzz`, each invalid for exactly one
known reason (plus the valid heartbeats the fuzzer needs to keep its session, ~5 %). Checked:
the bridge thread never crashes, no command reaches the robot during the attack, the per-reason
rejection counters equal the expected counts exactly, and afterwards the operator can still
engage and move the robot. Baseline for the throughput column: the same number of *valid*
heartbeats through the same bridge. The bridge's per-peer budget is off here (every message
is decoded and counted); ``benchmarks/teleop_flood.py`` measures it.

    .venv/bin/python benchmarks/teleop_fuzz.py                     # 100,000 messages
    .venv/bin/python benchmarks/teleop_fuzz.py --messages 20000 --curve
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time

import msgspec
import zmq

from tactkit.clock import WallClock
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.safety import SafetyFilter
from tactkit.sysinfo import cpu_model
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.fuzz import VALID, generate, send_all
from tactkit.teleop.security import generate_keys, load_keypair, load_public_key


class CountingRobot(FakeRobot):
    def __init__(self) -> None:
        super().__init__(FakeRobotConfig(), WallClock())
        self.commands = 0

    def send(self, command) -> None:
        self.commands += 1
        super().send(command)




def hand(grip: float, x: float = 0.0) -> P.Hand:
    return P.Hand(wrist=P.Pose(pos=(x, 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0)), index_trigger=0.0, hand_trigger=grip)


HEAD = P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0))


def run(n: int, seed: int, keys: str, valid_only: bool = False) -> dict:
    robot = CountingRobot()
    # per-peer budget off: every message must be decoded for the counters to be compared
    # exactly (the budget's effect under a flood: benchmarks/teleop_flood.py)
    bridge = TeleopBridge(robot, BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*", keys=keys,
                                              peer_rate_hz=0), safety=SafetyFilter(), clock=WallClock())
    bridge.start()
    operator = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"], keys=keys or None)
    stop = threading.Event()

    def operate() -> None:
        t = 0.0
        while not stop.is_set():
            t += 1 / 60
            operator.send_pose(t, HEAD, None, hand(0.0))
            time.sleep(1 / 60)

    th = threading.Thread(target=operate)
    th.start()
    if valid_only:
        msgs = [([msgspec.msgpack.encode({"type": "heartbeat", "v": 1, "session": 9, "seq": i, "t": 1.0 + i * 1e-4})],
                 VALID) for i in range(n)]
        expected: dict[str, int] = {}
    else:
        msgs, counter = generate(n, seed)
        expected = dict(counter)
    n_valid = sum(1 for _, r in msgs if r == VALID)
    curve = None
    if keys:
        curve = (load_keypair(os.path.join(keys, "headset.key_secret")), load_public_key(os.path.join(keys, "bridge.key")))
    time.sleep(0.3)
    t0 = time.monotonic()
    send_all(bridge.endpoints["upstream"], msgs, curve=curve)
    ok = wait_until(lambda: bridge.rejects.total == sum(expected.values()) and bridge.stats.heartbeats == n_valid, 180.0,
                    poll=0.01)
    elapsed = time.monotonic() - t0
    time.sleep(0.2)
    commands_during = robot.commands
    stop.set()
    th.join()
    # the operator can still drive the robot afterwards
    t = 1000.0
    for grip, x in ((0.0, 0.0), (1.0, 0.0), (1.0, 0.01), (1.0, 0.02)):
        t += 0.02
        operator.send_pose(t, HEAD, None, hand(grip, x))
        time.sleep(0.05)
    alive_after = wait_until(lambda: robot.commands > commands_during, 3.0)
    operator.close()
    bridge.stop()
    return {"messages": n, "hostile": n - n_valid, "elapsed_s": elapsed, "complete": ok,
            "exact": bridge.rejects.as_dict() == {r: expected.get(r, 0) for r in P.REJECT_REASONS},
            "counts": bridge.rejects.as_dict(), "expected": expected, "crashed": bridge.error is not None,
            "commands_during": commands_during, "alive_after": alive_after,
            "bytes_mib": sum(len(f) for fr, _ in msgs for f in fr) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--curve", action="store_true", help="also run against a CURVE bridge (allow-listed fuzzer key)")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
          f"pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}; loopback TCP; shared machine")
    print(f"settings: {args.messages} messages, seed {args.seed}, legit operator at 60 Hz (clutch released)\n")
    rows = [("baseline: valid heartbeats", run(args.messages, args.seed, "", valid_only=True)),
            ("hostile mix", run(args.messages, args.seed, ""))]
    if args.curve:
        with tempfile.TemporaryDirectory() as d:
            generate_keys(d, clients=("headset",))
            rows.append(("hostile mix, CURVE", run(args.messages, args.seed, d)))
    print("| run | messages | hostile | MiB | s | msg/s | crashed | commands during attack | counters exact | bridge usable after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in rows:
        print(f"| {name} | {r['messages']} | {r['hostile']} | {r['bytes_mib']:.0f} | {r['elapsed_s']:.1f} | "
              f"{r['messages'] / r['elapsed_s']:.0f} | {'yes' if r['crashed'] else 'no'} | {r['commands_during']} | "
              f"{'yes' if r['exact'] and r['complete'] else 'NO'} | {'yes' if r['alive_after'] else 'NO'} |")
    print("\nrejections by reason (hostile mix): measured / expected")
    r = rows[1][1]
    print("| reason | measured | expected |")
    print("|---|---|---|")
    for reason in P.REJECT_REASONS:
        print(f"| {reason} | {r['counts'][reason]} | {r['expected'].get(reason, 0)} |")
    bad = [name for name, r in rows if r["crashed"] or r["commands_during"] or not r["exact"] or not r["alive_after"]]
    if bad:
        raise SystemExit(f"FAILED: {bad}")


if __name__ == "__main__":
    main()
