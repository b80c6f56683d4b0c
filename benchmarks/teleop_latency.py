"""Teleoperation latency and sustained rates over loopback ZeroMQ.

Three measurements, each printed as a markdown table with the machine and settings:

1. **pose -> robot command**: a headset client streams poses (clutch engaged) at ``--rate`` Hz;
   latency = time the robot's ``send`` is called - time the client sent the pose (one host,
   one monotonic clock). Rows: a bare ZMQ DEALER -> ROUTER hop with a receiving thread
   (baseline: transport only), the bridge without CURVE, the bridge with CURVE. The ratio
   column is bridge / baseline.
2. **tactile sample -> headset message**: latency from a tactile sample's capture time to the
   headset client receiving the feedback message that carries it, at the default feedback
   rate (30 Hz) and at 120 Hz (the feedback rate quantises this latency).
3. **sustained rates** with 2 tactile sensors (rendered marker gels + the real marker
   tracker, threaded) + 1 camera (640x480) while recording into an episode store, the
   headset in its own process: rates of the headset stream, commands, feedback and every
   recorded stream, dropped samples, watchdog trips.

    .venv/bin/python benchmarks/teleop_latency.py            # ~1.5 min
    .venv/bin/python benchmarks/teleop_latency.py --quick    # ~30 s
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import threading
import time

import numpy as np
import zmq

from tactkit.clock import WallClock
from tactkit.real.fake import FakeRobot, FakeRobotConfig
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.sysinfo import cpu_model
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.feedback import FeedbackConfig
from tactkit.teleop.security import generate_keys

HEAD = P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0))
EPHEMERAL = dict(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*")




class TimedRobot(FakeRobot):
    """The real FakeRobot arm, noting when each command arrives."""

    def __init__(self) -> None:
        super().__init__(FakeRobotConfig(), WallClock())
        self.sent_at: list[float] = []

    def send(self, command) -> None:
        self.sent_at.append(time.monotonic())
        super().send(command)


def pct(x, q) -> float:
    return float(np.percentile(np.asarray(x) * 1e3, q)) if len(x) else float("nan")


def hand(t: float, grip: float) -> P.Hand:
    pos = (0.02 * np.sin(2 * np.pi * 0.5 * t), 0.0, 0.0)
    return P.Hand(wrist=P.Pose(pos=pos, quat=(1.0, 0.0, 0.0, 0.0)), index_trigger=0.0, hand_trigger=grip)


def paced(n: int, rate: float):
    """Yield ``(i, t0)`` ``n`` times at ``rate`` Hz (sleeping in <= 1 ms slices until each tick)."""
    period = 1.0 / rate
    t0 = time.monotonic()
    for i in range(n):
        target = t0 + i * period
        while time.monotonic() < target:
            time.sleep(min(0.001, max(0.0, target - time.monotonic())))
        yield i, t0


def stream_poses(client: HeadsetClient, n: int, rate: float, sent: list[float]) -> None:
    for i, t0 in paced(n, rate):
        now = time.monotonic()
        sent.append(now)
        client.send_pose(now, HEAD, None, hand(now - t0, 0.0 if i < 3 else 1.0))


def baseline_latency(n: int, rate: float) -> list[float]:
    """Bare DEALER -> ROUTER with a polling receiver thread: the transport's share."""
    ctx = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(f"tcp://127.0.0.1:{port}")
    lat: list[float] = []
    done = threading.Event()

    def recv() -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        while not done.is_set():
            if poller.poll(50):
                while True:
                    try:
                        _, data = router.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    lat.append(time.monotonic() - float(data))

    th = threading.Thread(target=recv)
    th.start()
    time.sleep(0.2)
    for _ in paced(n, rate):
        dealer.send(repr(time.monotonic()).encode())
    time.sleep(0.2)
    done.set()
    th.join()
    dealer.close(0)
    router.close(0)
    ctx.term()
    return lat


def bridge_latency(n: int, rate: float, keys: str = "") -> tuple[list[float], dict]:
    robot = TimedRobot()
    bridge = TeleopBridge(robot, BridgeConfig(**EPHEMERAL, keys=keys), safety=SafetyFilter(SafetyConfig()),
                          clock=WallClock())
    bridge.start()
    client = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"], keys=keys or None)
    time.sleep(0.3)
    sent: list[float] = []
    stream_poses(client, n, rate, sent)
    time.sleep(0.2)
    client.close()
    bridge.stop()
    # the pose's own timestamp is its send time (same host): command time - pose send time
    lat = [c - s for c, s in zip(robot.sent_at, bridge.stats.command_pose_t)]
    return lat, {"poses": bridge.stats.poses_received, "commands": len(robot.sent_at),
                 "superseded": bridge.stats.poses_superseded, "rejected": bridge.rejects.total}


class StampedTactile:
    """A tactile pad stand-in producing marker offsets at ``fps`` in its own thread (capture stamps)."""

    def __init__(self, name: str, fps: float) -> None:
        from tactkit.sensors.base import SensorSample

        self.key = f"observation.tactile.{name}.marker_offset"
        self.fps = fps
        self._Sample = SensorSample
        self._latest = None
        self._stop = threading.Event()
        self._th = threading.Thread(target=self._run, daemon=True)

    def streams(self) -> dict:
        from tactkit.store.schema import StreamSpec

        return {self.key: StreamSpec("float32", (63, 2), self.fps)}

    def connect(self) -> None:
        self._th.start()

    def _run(self) -> None:
        seq, t0 = 0, time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            self._latest = self._Sample(self.key, np.full((63, 2), 0.01 * np.sin(t), np.float32), t, t, seq)
            seq += 1
            time.sleep(max(0.0, t0 + seq / self.fps - time.monotonic()))

    def read_latest(self, max_age=None):
        return self._latest

    def health(self):
        from tactkit.sensors.base import SensorHealth

        return SensorHealth(True, self.fps, 0)

    def disconnect(self) -> None:
        self._stop.set()


def feedback_latency(seconds: float, feedback_hz: float) -> list[float]:
    robot = TimedRobot()
    tactile = StampedTactile("left", 60.0)
    tactile.connect()
    cfg = BridgeConfig(**EPHEMERAL, display=FeedbackConfig(rate_hz=feedback_hz))
    bridge = TeleopBridge(robot, cfg, safety=SafetyFilter(), sensors={"left": tactile}, clock=WallClock())
    bridge.start()
    client = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    lat: list[float] = []
    end = time.monotonic() + seconds
    last = None
    while time.monotonic() < end:
        fb = client.poll_feedback(100)
        if fb is not None and fb.tactile:
            cap = fb.tactile[0].capture_time
            if cap != last:
                lat.append(client.feedback_rx_time - cap)
                last = cap
    client.close()
    bridge.stop()
    tactile.disconnect()
    return lat


def headset_process(upstream: str, feedback: str, seconds: float, rate: float, out) -> None:
    """A headset in its own process (as on a real device): streams poses, counts feedback, and
    re-engages like an operator when the bridge reports its arm disengaged (watchdog trip)."""
    client = HeadsetClient(upstream, feedback)
    n_fb = fb_bytes = frames = reengaged = 0
    period = 1.0 / rate
    t0 = time.monotonic()
    release_frames = 3
    disengaged_since = None
    i = 0
    while time.monotonic() - t0 < seconds:
        target = t0 + i * period
        while time.monotonic() < target:
            time.sleep(min(0.001, max(0.0, target - time.monotonic())))
        now = time.monotonic()
        grip = 0.0 if release_frames > 0 else 1.0
        release_frames -= 1
        client.send_pose(now, HEAD, None, hand(now - t0, grip))
        fb = client.poll_feedback(0)
        if fb is not None:
            n_fb += 1
            fb_bytes += sum(len(im.jpeg) for im in fb.images)
            frames += len(fb.images)
            engaged = bool(fb.arms and fb.arms[0].engaged)
            if engaged or release_frames > 0:
                disengaged_since = None
            elif disengaged_since is None:
                disengaged_since = now
            elif now - disengaged_since > 0.3:  # the operator notices and re-engages
                release_frames, disengaged_since = 3, None
                reengaged += 1
        i += 1
    client.close()
    out.put({"sent": i, "feedback": n_fb, "jpeg_bytes": fb_bytes, "frames": frames, "reengaged": reengaged})


def sustained(seconds: float, rate: float) -> dict:
    from tactkit.sensors.cameras import CameraSensor, SyntheticCameraConfig
    from tactkit.sensors.tactile import SyntheticTactileConfig, TactileSensor
    from tactkit.store import EpisodeStore
    from tactkit.teleop.recording import RecordingSession, session_streams

    sensors = {
        "tactile.left": TactileSensor(SyntheticTactileConfig(name="left", fps=30.0)),
        "tactile.right": TactileSensor(SyntheticTactileConfig(name="right", fps=30.0, seed=1)),
        "camera.wrist": CameraSensor(SyntheticCameraConfig(name="wrist", width=640, height=480, fps=30.0)),
    }
    for s in sensors.values():
        s.connect()
    robot = TimedRobot()
    clock = WallClock()
    with tempfile.TemporaryDirectory() as tmp:
        store = EpisodeStore.create(os.path.join(tmp, "bench.zarr"),
                                    session_streams(robot.arm_features(), sensors, state_rate_hz=100.0, command_rate_hz=rate))
        rec = RecordingSession(store, robot.arm_names, sensors, clock, task="bench")
        cfg = BridgeConfig(**EPHEMERAL, record_rate_hz=100.0, display=FeedbackConfig(rate_hz=30.0, camera_rate_hz=10.0))
        bridge = TeleopBridge(robot, cfg, safety=SafetyFilter(), sensors=sensors, recorder=rec, clock=clock)
        bridge.start()
        client = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
        time.sleep(1.0)  # tactile trackers take their rest reference
        ack = client.control("start_episode", 0.0, timeout=10.0)
        assert ack.ok, ack.message
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        proc = ctx.Process(target=headset_process, args=(bridge.endpoints["upstream"], bridge.endpoints["feedback"],
                                                          seconds, rate, q))
        cpu0 = time.process_time()
        proc.start()
        head = q.get(timeout=seconds + 60)
        proc.join()
        cpu = time.process_time() - cpu0
        rates = rec.rates()
        ack = client.control("stop_episode", seconds, timeout=10.0)
        assert ack.ok, ack.message
        rec.wait_idle()
        ep = store.episode(store.num_episodes - 1)
        recorded = {}
        for k in ep.keys:
            ts = ep.timestamps(k)
            if len(ts) > 1 and ts[-1] > ts[0]:
                recorded[k] = (len(ts) - 1) / (ts[-1] - ts[0])  # over the stream's own span
        client.close()
        bridge.stop()
        for s in sensors.values():
            s.disconnect()
        return {"sent_hz": head["sent"] / seconds, "poses_hz": bridge.stats.poses_received / seconds,
                "commands_hz": bridge.stats.commands_sent / seconds,
                "feedback_hz": head["feedback"] / seconds, "camera_frames_hz": head["frames"] / seconds,
                "jpeg_kib": head["jpeg_bytes"] / max(head["frames"], 1) / 1024, "recorded_hz": recorded,
                "dropped": rec.dropped, "rejected_samples": rec.rejected_samples, "cpu_s_per_s": cpu / seconds,
                "stream_losses": bridge.stats.stream_losses, "reengaged": head["reengaged"], "live_rates": rates}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=90.0, help="headset pose rate, Hz (default 90)")
    ap.add_argument("--poses", type=int, default=1800, help="poses per latency run (default 1800)")
    ap.add_argument("--seconds", type=float, default=15.0, help="sustained run length (default 15)")
    ap.add_argument("--quick", action="store_true", help="short runs (600 poses, 5 s)")
    args = ap.parse_args()
    if args.quick:
        args.poses, args.seconds = 600, 5.0
    print(f"machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {platform.python_version()}, "
          f"pyzmq {zmq.__version__} / libzmq {zmq.zmq_version()}; loopback TCP; shared machine, other jobs running")
    print(f"settings: headset {args.rate:.0f} Hz, {args.poses} poses per latency run, sustained {args.seconds:.0f} s\n")

    base = baseline_latency(args.poses, args.rate)
    plain, st_plain = bridge_latency(args.poses, args.rate)
    with tempfile.TemporaryDirectory() as keydir:
        generate_keys(keydir, clients=("headset",))
        curve, st_curve = bridge_latency(args.poses, args.rate, keys=keydir)
    b50 = pct(base, 50)
    print("### pose -> robot command latency (ms)\n")
    print("| path | n | p50 | p99 | max | p50 / baseline p50 |")
    print("|---|---|---|---|---|---|")
    for name, lat in (("baseline: bare ZMQ DEALER->ROUTER hop", base), ("bridge (validate, clutch, retarget, safety filter)", plain),
                      ("bridge with CURVE encryption + ZAP", curve)):
        print(f"| {name} | {len(lat)} | {pct(lat, 50):.3f} | {pct(lat, 99):.3f} | {pct(lat, 100):.3f} | {pct(lat, 50) / b50:.2f} |")
    print(f"\nbridge runs: {st_plain} / CURVE: {st_curve}\n")

    print("### tactile sample -> headset feedback message latency (ms)\n")
    print("| feedback rate | n | p50 | p99 | max |")
    print("|---|---|---|---|---|")
    secs = 4.0 if args.quick else 10.0
    for hz in (30.0, 120.0):
        lat = feedback_latency(secs, hz)
        print(f"| {hz:.0f} Hz | {len(lat)} | {pct(lat, 50):.2f} | {pct(lat, 99):.2f} | {pct(lat, 100):.2f} |")

    print(f"\n### sustained: 2 tactile (320x240 rendered gel + tracker, 30 Hz) + 1 camera (640x480, 30 Hz), recording, {args.seconds:.0f} s\n")
    r = sustained(args.seconds, args.rate)
    print("| quantity | rate (Hz) |")
    print("|---|---|")
    for k, name in (("sent_hz", "headset poses sent"), ("poses_hz", "poses accepted by the bridge"),
                    ("commands_hz", "robot commands"), ("feedback_hz", "feedback received by the headset"),
                    ("camera_frames_hz", "camera JPEGs received by the headset")):
        print(f"| {name} | {r[k]:.1f} |")
    for k, v in sorted(r["recorded_hz"].items()):
        print(f"| recorded {k} | {v:.1f} |")
    print(f"\nJPEG per camera frame {r['jpeg_kib']:.1f} KiB; dropped sensor samples {r['dropped']}; "
          f"samples refused by the store {r['rejected_samples']}; bridge process CPU {r['cpu_s_per_s']:.2f} s/s; "
          f"headset stream losses (watchdog) {r['stream_losses']}, operator re-engaged {r['reengaged']}x")


if __name__ == "__main__":
    main()
