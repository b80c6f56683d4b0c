"""Robot-loop timing of the wall-clock controller while the slow policy runs in another process.

Two runs side by side in this process, each ``--duration`` seconds on a :class:`FakeRobot`:

* **baseline** - a bare 500 Hz :class:`~tactkit.rate.RateLoop` that reads the robot and sends
  a fixed command (nothing else running);
* **controller** - the full :class:`~tactkit.real.runtime.WallClockRuntime`: robot loop
  (interpolation + safety + watchdog) at 500 Hz, a fast loop stepping the policy on every new
  sample of a 60 Hz tactile stream (capture thread), and the slow policy in a *spawned*
  process burning ``--plan-ms`` of CPU per plan (a stand-in with RDP's costs; a real
  checkpoint needs its cameras and tactile sensors connected, see ``tactkit control``).

* **controller, real-time** - the same with ``realtime_priority`` (SCHED_FIFO for the robot
  loop, one less for the fast loop); skipped with a note where the OS refuses it.

Reports period error (wake time - deadline) p50/p99/max and missed ticks of the robot loop,
and the tactile-sample-to-command latency (capture -> first robot command built from it).
``--load N`` runs N CPU-burning processes through all three runs (a training job beside the
controller)::

    .venv/bin/python benchmarks/controller_timing.py --duration 10
    .venv/bin/python benchmarks/controller_timing.py --duration 10 --load 2
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from tactkit.clock import Clock, WallClock  # noqa: E402
from tactkit.policies.interface import FastSignal, Plan, Policy  # noqa: E402
from tactkit.rate import RateLoop  # noqa: E402
from tactkit.real.controller import ControllerConfig  # noqa: E402
from tactkit.real.fake import FakeRobot, FakeRobotConfig  # noqa: E402
from tactkit.real.robot import ArmCommand, RobotCommand  # noqa: E402
from tactkit.real.runtime import WallClockRuntime  # noqa: E402
from tactkit.real.slow_process import SlowPolicyProcess  # noqa: E402
from tactkit.sensors.base import Sensor, SensorHealth, SensorSample  # noqa: E402
from tactkit.sysinfo import cpu_model as _cpu_model

TACTILE_KEY = "observation.tactile.left.embedding"


class SyntheticLoadPolicy(Policy):
    """A policy with realistic costs: ``plan`` burns ``plan_ms`` of CPU (matrix products),
    ``step`` does a small dense decoder (~0.1-0.3 ms) on the tactile embedding."""

    obs_keys = ("observation.state.tcp_pose", TACTILE_KEY)
    n_obs_steps = 2
    action_keys = ("action.tcp_pose", "action.gripper_width")
    fast_keys = (TACTILE_KEY,)
    dt = 1 / 24

    def __init__(self, plan_ms: float = 150.0) -> None:
        self.plan_ms = plan_ms
        rng = np.random.default_rng(0)
        self._a = rng.standard_normal((256, 256))
        self._dec = rng.standard_normal((15, 128)) * 0.01, rng.standard_normal((128, 8)) * 0.0

    def plan(self, window: dict[str, np.ndarray]) -> Plan:
        t_end = time.process_time() + self.plan_ms / 1e3
        x = self._a
        while time.process_time() < t_end:
            x = np.tanh(x @ self._a * 1e-2)
        pose = window["observation.state.tcp_pose"][-1].astype(np.float64)
        t0 = float(window["timestamp"][-1]) + self.dt
        actions = np.tile(np.concatenate([pose, [0.04]]), (16, 1))
        actions[:, 1] += 0.002 * np.sin(np.arange(16) * 0.3)  # a gentle wiggle
        return Plan(t0, self.dt, actions)

    def step(self, plan: Plan, t: float, fast: FastSignal | None = None) -> np.ndarray:
        a = plan.actions[plan.index_at(t)].copy()
        if fast is not None:
            h = np.tanh(np.asarray(fast[TACTILE_KEY], np.float64) @ self._dec[0])
            a += h @ self._dec[1]
        return a


class ThreadedTactileSensor(Sensor):
    """A capture thread producing a 15-D embedding at ``rate_hz`` (stands in for GelSight + PCA)."""

    def __init__(self, clock: Clock, rate_hz: float = 60.0) -> None:
        self.clock, self.rate_hz = clock, rate_hz
        self._latest: SensorSample | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def streams(self) -> dict:
        return {}

    def _run(self) -> None:
        loop = RateLoop(self.rate_hz, self.clock)
        seq = 0
        while not self._stop.is_set():
            t = loop.wait()
            now = self.clock.now()
            value = np.full(15, np.sin(t), np.float32)
            self._latest = SensorSample(TACTILE_KEY, value, now, now, seq)
            seq += 1

    def connect(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def read_latest(self, max_age: float | None = None) -> SensorSample | None:
        s = self._latest
        if s is None or (max_age is not None and self.clock.now() - s.capture_time > max_age):
            return None
        return s

    def health(self) -> SensorHealth:
        return SensorHealth(self._latest is not None, self.rate_hz, 0)

    def disconnect(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)


def run_baseline(duration: float, rate_hz: float) -> dict[str, float]:
    clock = WallClock()
    robot = FakeRobot(FakeRobotConfig(), clock)
    loop = RateLoop(rate_hz, clock)
    pose = robot.read_state().arms["arm"].tcp_pose
    t_end = clock.now() + duration
    while True:
        t = loop.wait()
        robot.read_state()
        robot.send(RobotCommand(t, {"arm": ArmCommand(pose)}))
        if t >= t_end:
            break
    return loop.stats().as_ms()


def _burn() -> None:
    while True:
        pass


def run_controller(duration: float, rate_hz: float, plan_ms: float, realtime_priority: int = 0) -> dict[str, float]:
    clock = WallClock()
    factory = functools.partial(SyntheticLoadPolicy, plan_ms)
    policy = factory()
    sensor = ThreadedTactileSensor(clock, 60.0)
    sensor.connect()
    cfg = ControllerConfig(robot_rate_hz=rate_hz, fast_rate_hz=60.0, plan_period=0.0 + 1e-3,
                           realtime_priority=realtime_priority)
    rt = WallClockRuntime(FakeRobot(FakeRobotConfig(), clock), policy, cfg, SlowPolicyProcess(factory), [sensor], clock)
    try:
        report = rt.run(duration)
    finally:
        sensor.disconnect()
    lat = np.asarray(report.stats.sample_to_command) * 1e3
    out = report.robot_loop.as_ms()
    out.update(
        plans=report.stats.plans,
        plan_compute_ms=float(np.mean(report.plan_compute_s) * 1e3) if report.plan_compute_s else float("nan"),
        fast_steps=report.stats.fast_steps,
        latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else float("nan"),
        latency_p99_ms=float(np.percentile(lat, 99)) if lat.size else float("nan"),
        latency_max_ms=float(lat.max()) if lat.size else float("nan"),
        fault=report.stats.fault or "none",
        realtime=rt.realtime,
    )
    return out




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--rate", type=float, default=500.0, help="robot loop rate (Hz)")
    ap.add_argument("--plan-ms", type=float, default=150.0, help="CPU time per synthetic plan")
    ap.add_argument("--load", type=int, default=0, help="CPU-burning processes running beside all runs")
    ap.add_argument("--realtime-priority", type=int, default=80, help="SCHED_FIFO priority of the third run")
    args = ap.parse_args()
    burners = [multiprocessing.get_context("spawn").Process(target=_burn, daemon=True) for _ in range(args.load)]
    for b in burners:
        b.start()
    try:
        base = run_baseline(args.duration, args.rate)
        ctrl = run_controller(args.duration, args.rate, args.plan_ms)
        rt = run_controller(args.duration, args.rate, args.plan_ms, args.realtime_priority)
        load = os.getloadavg()[0]
    finally:
        for b in burners:
            b.terminate()
    print(f"# Controller timing ({args.rate:.0f} Hz robot loop, {args.duration:.0f} s per run)\n")
    print(f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {_cpu_model()}, "
          f"load average {load:.1f}; python {platform.python_version()}; {args.load} CPU-burning processes beside")
    print(f"slow policy: synthetic, {args.plan_ms:.0f} ms CPU per plan, spawned process; "
          "fast loop: 60 Hz tactile stream, event-driven\n")
    print("| run | ticks | missed | err p50 (ms) | err p99 (ms) | err max (ms) | mean period (ms) |")
    print("|---|---|---|---|---|---|---|")
    rt_name = (f"controller, SCHED_FIFO {args.realtime_priority}" if rt["realtime"]
               else "controller, real-time refused by the OS (normal scheduling)")
    for name, r in (("baseline: bare robot loop", base), ("controller + slow process", ctrl), (rt_name, rt)):
        print(f"| {name} | {r['ticks']} | {r['missed']} | {r['error_p50_ms']:.3f} | {r['error_p99_ms']:.3f} | "
              f"{r['error_max_ms']:.3f} | {r['mean_period_ms']:.3f} |")
    for name, r in (("controller", ctrl), ("controller real-time", rt)):
        print(f"\n{name}: plans {r['plans']} (mean compute {r['plan_compute_ms']:.0f} ms), fast steps {r['fast_steps']}, "
              f"fault: {r['fault']}; tactile sample -> command latency p50 {r['latency_p50_ms']:.2f} ms, "
              f"p99 {r['latency_p99_ms']:.2f} ms, max {r['latency_max_ms']:.2f} ms")
    for name, r in (("controller", ctrl), ("controller real-time", rt)):
        print(f"p99 period error ratio {name}/baseline: {r['error_p99_ms'] / max(base['error_p99_ms'], 1e-6):.2f}")

if __name__ == "__main__":
    main()
