"""Robot-loop timing of the wall-clock controller: the robot loop in a thread vs in its own process.

Runs, each ``--duration`` seconds on a :class:`FakeRobot`, for every load level of ``--loads``
(that many CPU-burning processes run beside it):

* **baseline** - a bare 500 Hz :class:`~tactkit.rate.RateLoop` that reads the robot and sends
  a fixed command (nothing else running in this process);
* **thread** - :class:`~tactkit.real.runtime.WallClockRuntime`: robot loop (interpolation +
  safety + watchdog) at 500 Hz in this process's main thread, a fast thread stepping the policy
  on every new sample of a 60 Hz tactile stream (capture thread), the slow-policy poller; the
  slow policy in a *spawned* process burning ``--plan-ms`` of CPU per plan (a stand-in with
  RDP's costs; a real checkpoint needs its cameras and tactile sensors connected);
* **process** - :class:`~tactkit.real.robot_process.RobotProcessRuntime`: the same controller,
  but the robot loop (driver, interpolator, safety filter, watchdog) runs in its own spawned
  process, fed waypoints over a Unix socket pair;

each of the two designs with normal scheduling and with ``realtime_priority`` (SCHED_FIFO for
the robot loop; skipped with a note where the OS refuses it).

Reports period error (wake time - deadline) p50/p99/max and missed ticks of the robot loop, the
tactile-sample-to-command latency (capture -> first robot command built from it), and the
1-minute load average of the machine during each run (the machine may be shared)::

    .venv/bin/python benchmarks/controller_timing.py --duration 10              # loads 0 and 2
    .venv/bin/python benchmarks/controller_timing.py --duration 10 --loads 2 --designs process
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
from tactkit.real.robot_process import RobotProcessRuntime, build_robot  # noqa: E402
from tactkit.real.runtime import WallClockRuntime  # noqa: E402
from tactkit.real.slow_process import SlowPolicyProcess  # noqa: E402
from tactkit.sensors.base import Sensor, SensorHealth, SensorSample  # noqa: E402
from tactkit.sysinfo import cpu_model as _cpu_model  # noqa: E402

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


def run_controller(duration: float, rate_hz: float, plan_ms: float, realtime_priority: int = 0,
                   design: str = "thread") -> dict:
    clock = WallClock()
    factory = functools.partial(SyntheticLoadPolicy, plan_ms)
    policy = factory()
    sensor = ThreadedTactileSensor(clock, 60.0)
    sensor.connect()
    cfg = ControllerConfig(robot_rate_hz=rate_hz, fast_rate_hz=60.0, plan_period=0.0 + 1e-3,
                           realtime_priority=realtime_priority)
    load0 = os.getloadavg()[0]
    if design == "thread":
        rt = WallClockRuntime(FakeRobot(FakeRobotConfig(), clock), policy, cfg, SlowPolicyProcess(factory), [sensor], clock)
    else:
        rt = RobotProcessRuntime(functools.partial(build_robot, FakeRobotConfig()), policy, cfg,
                                 SlowPolicyProcess(factory), [sensor])
    try:
        report = rt.run(duration)
    finally:
        sensor.disconnect()
    lat = np.asarray(report.stats.sample_to_command) * 1e3
    lat = lat[1:]  # the first waypoint follows a sample taken before the first plan existed
    out = report.robot_loop.as_ms()
    out.update(
        plans=report.stats.plans,
        plan_compute_ms=float(np.mean(report.plan_compute_s) * 1e3) if report.plan_compute_s else float("nan"),
        fast_steps=report.stats.fast_steps,
        latency_p50_ms=float(np.percentile(lat, 50)) if lat.size else float("nan"),
        latency_p99_ms=float(np.percentile(lat, 99)) if lat.size else float("nan"),
        latency_max_ms=float(lat.max()) if lat.size else float("nan"),
        fault=report.stats.fault or "none",
        realtime=rt.realtime if design == "thread" else report.robot_realtime,
        load=max(load0, os.getloadavg()[0]),
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    ap.add_argument("--rate", type=float, default=500.0, help="robot loop rate (Hz)")
    ap.add_argument("--plan-ms", type=float, default=150.0, help="CPU time per synthetic plan")
    ap.add_argument("--loads", default="0,2", help="comma-separated numbers of CPU-burning processes beside the runs")
    ap.add_argument("--designs", default="thread,process", help="robot loop designs to run: thread, process")
    ap.add_argument("--realtime-priority", type=int, default=80, help="SCHED_FIFO priority of the real-time runs")
    args = ap.parse_args()
    loads = [int(x) for x in args.loads.split(",") if x.strip()]
    designs = [d.strip() for d in args.designs.split(",") if d.strip()]
    bad = [d for d in designs if d not in ("thread", "process")]
    if bad:
        ap.error(f"unknown design {bad[0]!r}: use thread and/or process")
    rows: list[tuple[int, str, dict]] = []
    for n in loads:
        burners = [multiprocessing.get_context("spawn").Process(target=_burn, daemon=True) for _ in range(n)]
        for b in burners:
            b.start()
        try:
            load0 = os.getloadavg()[0]
            base = run_baseline(args.duration, args.rate)
            base.update(load=max(load0, os.getloadavg()[0]), realtime=False)
            rows.append((n, "baseline: bare robot loop, normal scheduling", base))
            for design in designs:
                for prio in (0, args.realtime_priority):
                    r = run_controller(args.duration, args.rate, args.plan_ms, prio, design)
                    sched = ("normal scheduling" if prio == 0 else f"SCHED_FIFO {prio}" if r["realtime"]
                             else "real-time refused by the OS (normal scheduling)")
                    rows.append((n, f"{design}: robot loop in {'a thread' if design == 'thread' else 'its own process'}, "
                                    f"{sched}", r))
        finally:
            for b in burners:
                b.terminate()
    print(f"# Controller timing ({args.rate:.0f} Hz robot loop, {args.duration:.0f} s per run)\n")
    print(f"machine: {os.cpu_count()} CPUs ({len(os.sched_getaffinity(0))} usable), {_cpu_model()}; "
          f"python {platform.python_version()}; this process at nice {os.nice(0)}")
    print(f"slow policy: synthetic, {args.plan_ms:.0f} ms CPU per plan, spawned process; "
          "fast loop: 60 Hz tactile stream (capture thread), event-driven\n")
    print("| burners | run | load avg (1 min) | ticks | missed | err p50 (ms) | err p99 (ms) | err max (ms) "
          "| sample->command p50 / p99 / max (ms) | fault |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, name, r in rows:
        lat = (f"{r['latency_p50_ms']:.2f} / {r['latency_p99_ms']:.2f} / {r['latency_max_ms']:.2f}"
               if "latency_p50_ms" in r else "-")
        print(f"| {n} | {name} | {r['load']:.1f} | {r['ticks']} | {r['missed']} | {r['error_p50_ms']:.3f} | "
              f"{r['error_p99_ms']:.3f} | {r['error_max_ms']:.3f} | {lat} | {r.get('fault', '-')} |")


if __name__ == "__main__":
    main()
