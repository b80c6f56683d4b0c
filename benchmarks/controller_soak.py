"""Soak: wall-clock control and teleoperation with recording, for ``--minutes``, watching for leaks.

What runs, each in its own process(es), like a lab session:

* **controller** (this process): :class:`~tactkit.real.robot_process.RobotProcessRuntime` on a
  :class:`FakeRobot` in its robot process (500 Hz), the synthetic policy of
  ``controller_timing.py`` planning in a spawned slow process, a 60 Hz tactile capture thread;
* **teleop bridge + recorder**: ``tactkit teleop --robot fake --record STORE`` (a subprocess);
* **headset**: a client process streaming poses at 60 Hz with the clutch held, reading the
  feedback, and ending the episode and starting the next every ``--episode-s`` seconds by
  control messages (so the recorder commits one episode per interval).

Every ``--sample-s`` seconds it records the resident memory (RSS), open file descriptors and
threads of every process; at the end it prints them at start (after the first interval) and
at the end, the robot loop's ticks, missed ticks and period error, the controller's faults,
the episodes committed and the result of ``tactkit dataset verify`` on the store::

    .venv/bin/python benchmarks/controller_soak.py --minutes 60     # the figures in docs/controller.md
    .venv/bin/python benchmarks/controller_soak.py --minutes 2 --episode-s 20   # a short check
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import platform  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from controller_timing import SyntheticLoadPolicy, ThreadedTactileSensor  # noqa: E402

from tactkit.clock import WallClock  # noqa: E402
from tactkit.real.controller import ControllerConfig  # noqa: E402
from tactkit.real.fake import FakeRobotConfig  # noqa: E402
from tactkit.real.robot_process import RobotProcessRuntime, build_robot  # noqa: E402
from tactkit.real.slow_process import SlowPolicyProcess  # noqa: E402
from tactkit.real.watchdog import WatchdogConfig  # noqa: E402
from tactkit.sysinfo import cpu_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def proc_figures(pid: int) -> dict[str, float] | None:
    """RSS (MiB), open file descriptors and threads of a live process (Linux /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if "VmRSS" not in fields:  # exited, not yet reaped
        return None
    return {"rss_mib": int(fields["VmRSS"].split()[0]) / 1024, "fds": fds, "threads": int(fields["Threads"])}


def headset(upstream: str, feedback: str, seconds: float, episode_s: float, out_path: str) -> None:
    """Streams poses at 60 Hz (clutch held), reads feedback, ends / starts an episode every
    ``episode_s`` by control messages; writes its counts to ``out_path`` as JSON."""
    from tactkit.teleop import protocol as P
    from tactkit.teleop.client import HeadsetClient

    client = HeadsetClient(upstream, feedback)
    head = P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0))
    counts = {"poses": 0, "feedback": 0, "starts": 0, "stops": 0, "refused": 0, "errors": []}

    def control(command: str, **kw) -> None:
        try:
            ack = client.control(command, time.monotonic(), timeout=30.0, **kw)
            counts["starts" if command == "start_episode" else "stops"] += ack.ok
            counts["refused"] += not ack.ok
        except TimeoutError as exc:
            counts["errors"].append(str(exc))

    t0 = time.monotonic()
    next_switch = t0 + episode_s
    i = 0
    while client.poll_feedback(100) is None and time.monotonic() - t0 < 60:  # the bridge is up
        client.send_heartbeat(time.monotonic() - t0)
    control("start_episode", note="soak")
    while (now := time.monotonic()) - t0 < seconds:
        target = t0 + i / 60.0
        if now < target:
            time.sleep(target - now)
        t = time.monotonic() - t0
        x = 0.02 * np.sin(2 * np.pi * 0.2 * t)
        grip = 0.0 if i % 600 < 3 else 1.0  # re-engage every 10 s
        client.send_pose(t, head, None, P.Hand(wrist=P.Pose(pos=(float(x), 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0)),
                                               index_trigger=0.0, hand_trigger=grip))
        counts["poses"] += 1
        if client.poll_feedback(0) is not None:
            counts["feedback"] += 1
        if time.monotonic() >= next_switch:
            control("stop_episode", success=True, note="soak")
            control("start_episode", note="soak")
            next_switch += episode_s
        i += 1
    control("stop_episode", success=True, note="soak")
    client.close()
    Path(out_path).write_text(json.dumps(counts))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0, help="length of the soak")
    ap.add_argument("--episode-s", type=float, default=60.0, help="seconds per recorded episode")
    ap.add_argument("--sample-s", type=float, default=10.0, help="seconds between resource samples")
    ap.add_argument("--plan-ms", type=float, default=50.0, help="CPU time per synthetic plan")
    ap.add_argument("--realtime-priority", type=int, default=80,
                    help="SCHED_FIFO priority of the robot loop (0: normal scheduling)")
    ap.add_argument("--out", default=None, help="directory for the store and the report (default: a temporary one)")
    args = ap.parse_args()
    seconds = args.minutes * 60.0
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="tactkit_soak_"))
    out.mkdir(parents=True, exist_ok=True)
    store = out / "soak.zarr"
    if store.exists():
        shutil.rmtree(store)

    import socket

    def free_port() -> int:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            return s.getsockname()[1]

    up, fb = f"tcp://127.0.0.1:{free_port()}", f"tcp://127.0.0.1:{free_port()}"
    bridge_log = open(out / "bridge.log", "w")  # noqa: SIM115 - closed at the end
    bridge = subprocess.Popen(
        [sys.executable, "-m", "tactkit.cli.main", "teleop", "--robot", "fake", "--record", str(store),
         "--upstream", up, "--feedback", fb, "--no-keyboard", "--duration", str(seconds + 60)],
        stdout=bridge_log, stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    ctx = mp.get_context("spawn")
    hs = ctx.Process(target=headset, args=(up, fb, seconds, args.episode_s, str(out / "headset.json")))
    hs.start()

    clock = WallClock()
    factory = functools.partial(SyntheticLoadPolicy, args.plan_ms)
    sensor = ThreadedTactileSensor(clock, 60.0)
    sensor.connect()
    cfg = ControllerConfig(fast_rate_hz=60.0, plan_period=0.25, realtime_priority=args.realtime_priority,
                           watchdog=WatchdogConfig(plan_timeout=5.0, slow_process_timeout=5.0))
    slow = SlowPolicyProcess(factory)
    rt = RobotProcessRuntime(functools.partial(build_robot, FakeRobotConfig()), factory(), cfg, slow, [sensor])

    samples: list[tuple[float, dict[str, dict | None]]] = []
    loads: list[float] = []
    stop = threading.Event()

    def monitor() -> None:
        t0 = time.monotonic()
        while not stop.wait(args.sample_s):
            pids = {"controller": os.getpid(), "robot process": rt.link.pid,
                    "slow policy": slow._proc.pid if slow._proc is not None else None,
                    "bridge + recorder": bridge.pid, "headset": hs.pid}
            samples.append((time.monotonic() - t0, {k: proc_figures(p) if p else None for k, p in pids.items()}))
            loads.append(os.getloadavg()[0])

    mon = threading.Thread(target=monitor, daemon=True)
    mon.start()
    t_start = time.monotonic()
    try:
        report = rt.run(seconds)
    finally:
        stop.set()
        sensor.disconnect()
    wall = time.monotonic() - t_start
    hs.join(120)
    bridge.wait(180)
    bridge_log.close()
    verify = subprocess.run([sys.executable, "-m", "tactkit.cli.main", "dataset", "verify", str(store)],
                            capture_output=True, text=True, cwd=ROOT)
    info = subprocess.run([sys.executable, "-m", "tactkit.cli.main", "dataset", "info", str(store), "--json"],
                          capture_output=True, text=True, cwd=ROOT)
    try:
        episodes = json.loads(info.stdout).get("episodes")
    except json.JSONDecodeError:
        episodes = None
    counts = json.loads((out / "headset.json").read_text()) if (out / "headset.json").exists() else {}

    print(f"# Soak: {args.minutes:g} min of wall-clock control + teleop recording\n")
    print(f"machine: {os.cpu_count()} CPUs, {cpu_model()}; python {platform.python_version()}; this process at "
          f"nice {os.nice(0)}; 1-min load average during the run {min(loads, default=float('nan')):.1f}.."
          f"{max(loads, default=float('nan')):.1f} (mean {np.mean(loads) if loads else float('nan'):.1f}); "
          f"robot loop {'SCHED_FIFO ' + str(args.realtime_priority) if report.robot_realtime else 'normal scheduling'}\n")
    r = report.robot_loop.as_ms()
    st = report.stats
    lat = np.asarray(st.sample_to_command) * 1e3
    latency = (f"p50 {np.percentile(lat, 50):.2f} ms p99 {np.percentile(lat, 99):.2f} ms (last {lat.size:,})"
               if lat.size else "none measured")
    print(f"controller: {wall / 60:.1f} min; robot loop {r['ticks']:,} ticks, {r['missed']:,} missed "
          f"({r['missed'] / max(r['ticks'] + r['missed'], 1):.4%}), period error p50 {r['error_p50_ms']:.3f} ms "
          f"p99 {r['error_p99_ms']:.3f} ms max {r['error_max_ms']:.3f} ms (last {min(r['ticks'], 100_000):,} ticks); "
          f"plans {st.plans:,}, fast steps {st.fast_steps:,}, fault: {st.fault or 'none'}; "
          f"tactile sample -> command {latency}")
    print(f"headset: {counts.get('poses', 0):,} poses sent, {counts.get('feedback', 0):,} feedback messages, "
          f"{counts.get('starts', 0)} episodes started, {counts.get('stops', 0)} stopped, refused "
          f"{counts.get('refused', 0)}, errors {counts.get('errors', [])}")
    print(f"store: {episodes} episodes committed; `tactkit dataset verify`: exit {verify.returncode} "
          f"({(verify.stdout + verify.stderr).strip().splitlines()[-1] if (verify.stdout + verify.stderr).strip() else ''})")
    print(f"bridge: {open(out / 'bridge.log').read().strip().splitlines()[-2:]}\n")
    # start: the first sample after the first episode (everything warmed up); end: the last
    # sample with every process alive (the run's own shutdown is not a leak)
    alive = [(t, s) for t, s in samples if all(v is not None for v in s.values())]
    if alive:
        t_first, first = next(((t, s) for t, s in alive if t >= args.episode_s), alive[0])
        t_last, last = alive[-1]
        print(f"resources from {t_first / 60:.1f} min to {t_last / 60:.1f} min:\n")
        print("| process | RSS MiB start -> end (max) | open files start -> end (max) | threads start -> end (max) |")
        print("|---|---|---|---|")
        for name in last:
            series = [s[name] for _, s in alive]
            a, b = first[name], last[name]
            mx = {k: max(x[k] for x in series) for k in ("rss_mib", "fds", "threads")}
            print(f"| {name} | {a['rss_mib']:.1f} -> {b['rss_mib']:.1f} ({mx['rss_mib']:.1f}) | {a['fds']} -> {b['fds']} "
                  f"({mx['fds']}) | {a['threads']} -> {b['threads']} ({mx['threads']}) |")
    (out / "samples.json").write_text(json.dumps({"samples": samples, "loads": loads}))
    print(f"\nper-sample figures: {out / 'samples.json'}")


if __name__ == "__main__":
    main()
