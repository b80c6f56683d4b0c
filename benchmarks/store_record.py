"""Benchmark: recording the rig's streams in real time into the episode store.

Producers run in their own threads at the rig's rates with absolute deadlines: 2 cameras
240x320 RGB @ 30 Hz, 2 tactile 63x2 @ 60 Hz, one 500 Hz robot thread appending wrench,
4 robot-state streams and 2 action streams. A producer that wakes late emits every sample
that fell due (nothing is skipped); each sample carries its real capture time.

Reported:
* dropped samples = produced - committed (must be 0);
* writer CPU seconds per recorded second = (process CPU with the store - process CPU of the
  same producers with a null sink, run side by side in this process) / seconds (target < 0.5);
* append latency, flush count/duration, compression, late producer ticks.

    .venv/bin/python benchmarks/store_record.py [--seconds 60] [--flush-interval 0.25]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time

import numpy as np

from tactkit.store import EpisodeStore
from tactkit.store.synthetic import SyntheticRig, rig_streams
from tactkit.sysinfo import machine_summary as machine

ROBOT_KEYS = ["observation.wrench", "observation.state.tcp_pose", "observation.state.tcp_velocity",
              "observation.state.joint_positions", "observation.state.gripper_width",
              "action.tcp_pose", "action.gripper_width"]


class NullSink:
    """Stands in for the recorder in the baseline run: accepts samples, does nothing."""

    def append(self, key, t, value) -> None:
        pass


def producer(sink, rig: SyntheticRig, keys: list[str], rate: float, t_start: float, seconds: float,
             stats: dict) -> None:
    period = 1.0 / rate
    n_total = int(round(seconds * rate))
    i = late = 0
    worst_append = 0.0
    while i < n_total:
        deadline = t_start + i * period
        now = time.monotonic()
        if deadline > now:
            time.sleep(deadline - now)
            now = time.monotonic()
        if now - deadline > period:
            late += 1
        while i < n_total and t_start + i * period <= now:  # every sample that fell due
            t = time.monotonic()
            for k in keys:
                v = rig.sample(k, i, t - t_start)
                a0 = time.perf_counter()
                sink.append(k, t, v)
                worst_append = max(worst_append, time.perf_counter() - a0)
            i += 1
    stats.update(produced=i, late=late, worst_append_s=worst_append)


def run(sink, rig: SyntheticRig, seconds: float) -> tuple[dict[str, dict], float, float]:
    groups = [(["observation.images.wrist"], 30.0), (["observation.images.external"], 30.0),
              (["observation.tactile.left.marker_offset"], 60.0),
              (["observation.tactile.right.marker_offset"], 60.0), (ROBOT_KEYS, 500.0)]
    stats = {tuple(k): {} for k, _ in groups}
    t_start = time.monotonic() + 0.2
    cpu0, wall0 = time.process_time(), time.monotonic()
    threads = [threading.Thread(target=producer, args=(sink, rig, k, r, t_start, seconds, stats[tuple(k)]))
               for k, r in groups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stats, cpu0, wall0




def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--flush-interval", type=float, default=0.25)
    ap.add_argument("--out", default=None, help="store path (default: a temp dir, removed after)")
    args = ap.parse_args()
    streams = rig_streams()
    rig = SyntheticRig(streams, seed=0)

    base_stats, cpu0, _ = run(NullSink(), rig, args.seconds)
    cpu_base = time.process_time() - cpu0

    tmp = tempfile.mkdtemp(prefix="store_record_")
    path = args.out or os.path.join(tmp, "bench.zarr")
    store = EpisodeStore.create(path, streams, flush_interval_s=args.flush_interval, overwrite=True)
    cpu_s0 = time.process_time()
    rec = store.begin_episode(task="benchmark")
    stats, _, _ = run(rec, rig, args.seconds)
    t_commit = time.monotonic()
    ep = rec.commit()
    commit_s = time.monotonic() - t_commit
    cpu_store = time.process_time() - cpu_s0

    produced = {k: s["produced"] for ks, s in stats.items() for k in ks}
    dropped = {k: produced[k] - ep.length(k) for k in produced}
    late = sum(s["late"] for s in stats.values())
    worst_append = max(s["worst_append_s"] for s in stats.values())
    raw_img = sum(ep.length(k) * int(np.prod(streams[k].shape)) for k in streams if streams[k].is_image)
    stored_img = sum(ep.group[f"{k}/values"].nbytes_stored() for k in streams if streams[k].is_image)
    writer_cpu = (cpu_store - cpu_base) / args.seconds
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)

    print("## Episode store: real-time recording\n")
    print(f"machine: {machine()}  \nsettings: {args.seconds:g} s, flush interval {args.flush_interval} s, "
          "2 cams 240x320 @30 Hz (JPEG q90), 2 tactile 63x2 @60 Hz, 7 robot/action streams @500 Hz\n")
    print("| metric | value | target |")
    print("|---|---|---|")
    print(f"| samples produced / committed | {sum(produced.values())} / {sum(ep.lengths.values())} | |")
    print(f"| dropped samples | {sum(dropped.values())} | 0 |")
    print(f"| writer CPU s per recorded s | {writer_cpu:.3f} | < 0.5 |")
    print(f"| process CPU: with store / null-sink baseline | {cpu_store:.1f} s / {cpu_base:.1f} s | |")
    print(f"| flushes (mean / total wall in flush) | {rec.flush_count} ({rec.flush_seconds / max(1, rec.flush_count) * 1e3:.1f} ms / {rec.flush_seconds:.1f} s) | |")
    print(f"| commit time | {commit_s * 1e3:.0f} ms | |")
    print(f"| worst append call | {worst_append * 1e3:.2f} ms | |")
    print(f"| producer ticks > 1 period late (store / baseline) | {late} / {sum(s['late'] for s in base_stats.values())} | |")
    print(f"| image compression ratio | {raw_img / stored_img:.1f}x | >= 5x |")
    print(f"| store size | {size / 2**20:.1f} MiB ({size / 2**20 / args.seconds:.2f} MiB/s) | |")
    if any(dropped.values()):
        print("\ndropped per stream:", {k: v for k, v in dropped.items() if v})
    if args.out is None:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
