"""Benchmark: the episode store at scale (issue 22).

Tiny episodes as in the issue: a 48x64 camera at 10 Hz, a 63x2 tactile pad at 60 Hz, pose and
action at 100 Hz, 2 s each, written through ``EpisodeStore.begin_episode`` / ``append_many`` /
``commit``.

``scale`` section, per store size N (default 10 / 100 / 1,000 / 10,000):

* **write/ep**: mean wall time of writing (begin, append, commit) the last 10 episodes into a
  store that already holds N-10. Stores of 1,000 and more are first filled with hard-linked
  copies of one recorded episode (committed episodes are never written again, so a copy is
  what any committed episode is on disk; the index is rebuilt from their commit records on
  the first open, timed as **index rebuild**), then the last 10 are written through the API;
* **open**, **info** (``tactkit dataset info``), **verify --quick**, **verify** (full);
* **align**: ``tactkit dataset align --fps 10`` (JPEG view, frames copied) with ``--workers``
  1 and W, in frames/s; and today's path (``tactkit`` 31d066b: zarr reads and writes per
  array, frames re-encoded), run on the same store in the same process (``baseline``; skipped
  above ``--baseline-max``);
* **first batch**: from ``load_training_data`` to the first DataLoader batch (64 windows),
  with an empty view cache (cold: the view is built) and a warm one.

``write`` section: write/ep in the smallest and the largest store, alternated round by round.

``rss`` section: peak RSS of a training run (``train_stage("dp")``, real pipeline, a few
steps) on a view ``--rss-factor`` times larger (decoded) than the memory cap of its cgroup,
against the in-memory path (the whole view decoded into memory, as training did before this
change) without a cap; and the training throughput (samples/s) of both, alternated.

    .venv/bin/python benchmarks/store_scale.py [--sizes 10,100,1000,10000] [--workers 2]
        [--sections scale,rss] [--rss-cap-mb 1200]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.store import POSE_NAMES, EpisodeStore, ReplayBuffer, StreamSpec
from tactkit.store.align import (
    DEFAULT_INTERPOLATE,
    grid,
    hold_indices,
    interpolate,
    quaternion_blocks,
)
from tactkit.sysinfo import machine_summary as machine

IMG, PAD, POSE, ACT = ("observation.images.wrist", "observation.tactile.left.marker_offset",
                       "observation.state.tcp_pose", "action.tcp_pose")
STREAMS = {
    IMG: StreamSpec("uint8", (48, 64, 3), 10.0, "rgb"),
    PAD: StreamSpec("float32", (63, 2), 60.0, "normalised"),
    POSE: StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
    ACT: StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
}


def episode_data(e: int, seconds: float = 2.0, streams: dict[str, StreamSpec] = STREAMS,
                 seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from tactkit.store.synthetic import camera_frame

    rng = np.random.default_rng(seed + e)
    out = {}
    for key, spec in streams.items():
        n = int(round(seconds * spec.rate_hz))
        ts = 3.0 * e + np.arange(n) / spec.rate_hz
        if spec.is_image:
            h, w = spec.shape[:2]
            vals = np.stack([camera_frame(i, h, w, seed=e % 7) for i in range(n)])
        elif spec.names == POSE_NAMES:
            a = 0.3 * ts[:, None]
            vals = np.c_[0.4 + 0.05 * np.sin(a), 0.05 * np.cos(a), 0.2 + 0 * a, np.cos(a / 2), 0 * a, 0 * a, np.sin(a / 2)]
        else:
            vals = rng.normal(0, 0.01, (n, *spec.shape)).astype(spec.dtype)
        out[key] = (ts, vals)
    return out


def write_episode(store: EpisodeStore, data: dict[str, tuple[np.ndarray, np.ndarray]]) -> tuple[float, float]:
    """(wall, CPU) seconds of writing one episode (the recorder's flusher thread included)."""
    w0, c0 = time.perf_counter(), time.process_time()
    rec = store.begin_episode(task="scale")
    for key, (ts, vals) in data.items():
        rec.append_many(key, ts, vals)
    rec.commit()
    return time.perf_counter() - w0, time.process_time() - c0


def timed(fn, repeat: int = 1) -> tuple[float, float]:
    """Best (wall, CPU) seconds of ``repeat`` calls; CPU is this process's (not its workers')."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        best = min(best, (time.perf_counter() - w0, time.process_time() - c0))
    return best


# ---------------------------------------------------------------------- today's alignment
def baseline_align(store: EpisodeStore, fps: float, out: str) -> int:
    """Alignment as tactkit 31d066b did it: per episode, every array opened and read through
    zarr, frames gathered block by block, the view written episode by episode through zarr
    (resize + setitem per key, JPEG frames re-encoded). Returns the frames written."""
    import zarr

    from tactkit.store.codecs import JpegCodec, lossless_compressor

    keys = list(store.streams)
    interp = {k for k in keys if any(__import__("fnmatch").fnmatchcase(k, p) for p in DEFAULT_INTERPOLATE)}
    root = zarr.open_group(out, mode="w", zarr_format=3)
    data = root.create_group("data")
    arrays: dict[str, Any] = {}
    total = 0
    for i in range(store.num_episodes):
        ep = store.episode(i)
        g = ep.group
        stamps = {k: np.asarray(g[f"{k}/timestamps"][: ep.length(k)]) for k in keys}
        ticks = grid(list(stamps.values()), fps)
        result = {}
        for k in keys:
            ts, n = stamps[k], ep.length(k)
            if k in interp:
                result[k] = interpolate(ts, np.asarray(g[f"{k}/values"][:n]), ticks, quaternion_blocks(k, store.streams[k]))
                continue
            uniq, inverse = np.unique(hold_indices(ts, ticks), return_inverse=True)
            arr = g[f"{k}/values"]
            if store.streams[k].is_image:
                rows = np.empty((len(uniq), *arr.shape[1:]), arr.dtype)
                j = 0
                while j < len(uniq):
                    lo = int(uniq[j])
                    m = int(np.searchsorted(uniq, lo + 128, side="left"))
                    block = np.asarray(arr[lo:int(uniq[m - 1]) + 1])
                    rows[j:m] = block[uniq[j:m] - lo]
                    j = m
            else:
                rows = np.asarray(arr[:n])[uniq]
            result[k] = rows[inverse.reshape(-1)]
        result["timestamp"] = ticks
        for k, v in result.items():
            if k not in arrays:
                row = max(1, int(np.prod(v.shape[1:])) * v.dtype.itemsize)
                if k in store.streams and store.streams[k].is_image:
                    arrays[k] = data.create_array(k, shape=(0, *v.shape[1:]), chunks=(1, *v.shape[1:]), dtype="uint8",
                                                  serializer=JpegCodec(quality=store.image_quality), compressors=None)
                else:
                    arrays[k] = data.create_array(k, shape=(0, *v.shape[1:]), chunks=(max(1, min(65536, (1 << 20) // row)), *v.shape[1:]),
                                                  dtype=v.dtype, compressors=lossless_compressor(v.dtype.itemsize))
            a = arrays[k]
            a.resize((total + len(v), *a.shape[1:]))
            a[total:total + len(v)] = v
        total += len(ticks)
    return total


# ---------------------------------------------------------------------- scale section
def build_store(path: Path, n: int, direct: int, rec_times: list[tuple[float, float]]) -> float | None:
    """A store of ``n`` episodes whose last 10 are written through the API (timed into
    ``rec_times``); returns the index rebuild time when copies were used."""
    store = EpisodeStore.create(path, STREAMS)
    template = episode_data(0)
    if n <= direct:
        for e in range(n):
            dt = write_episode(store, episode_data(e))
            if e >= n - 10:
                rec_times.append(dt)
        return None
    write_episode(store, template)
    eps = path / "episodes"
    for i in range(1, n - 10):
        shutil.copytree(eps / "ep_000000", eps / f"ep_{i:06d}", copy_function=os.link)
    shutil.rmtree(path / "index")
    t0 = time.perf_counter()
    store = EpisodeStore.open(path, mode="a")  # rebuilds the index from the commit records
    rebuild = time.perf_counter() - t0
    for e in range(n - 10, n):
        rec_times.append(write_episode(store, episode_data(e)))
    return rebuild


def first_batch(path: Path, cache: Path) -> float:
    import torch

    from tactkit.policies.config import load_policy_config
    from tactkit.policies.data import WindowDataset, load_training_data

    os.environ["TACTKIT_CACHE_DIR"] = str(cache)
    cfg = load_policy_config("dp", ["fps=10", "image_shape=[48,64]", "crop_shape=[44,60]",
                                    f"obs_keys=[{IMG},{POSE},{PAD}]", f"action_keys=[{ACT}]", "batch_size=64"])
    t0 = time.perf_counter()
    data = load_training_data(path, cfg)
    ds = WindowDataset(data, cfg, data.train_mask)
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)
    next(iter(loader))
    return time.perf_counter() - t0


def scale_section(args: argparse.Namespace, root: Path) -> list[dict[str, Any]]:
    from tactkit.cli.main import main as cli

    rows = []
    quiet = contextlib.ExitStack
    for n in args.sizes:
        path = root / f"s{n}.zarr"
        rec: list[tuple[float, float]] = []
        t0 = time.perf_counter()
        rebuild = build_store(path, n, args.direct_max, rec)
        row: dict[str, Any] = {"episodes": n, "build_s": time.perf_counter() - t0, "index_rebuild_s": rebuild,
                               "write": tuple(np.median(np.array(rec), axis=0))}
        with quiet() as q:
            q.enter_context(contextlib.redirect_stdout(io.StringIO()))
            q.enter_context(contextlib.redirect_stderr(io.StringIO()))
            row["open"] = timed(lambda p=path: EpisodeStore.open(p), 3)
            row["info"] = timed(lambda p=path: cli(["dataset", "info", str(p)]), 3)
            row["verify_quick"] = timed(lambda p=path: cli(["dataset", "verify", "--quick", str(p)]))
            row["verify"] = timed(lambda p=path: cli(["dataset", "verify", str(p)])) if n <= args.verify_max else None
            store = EpisodeStore.open(path)
            frames = None
            for w in sorted({1, args.workers}) if n <= args.align_max else ():
                out = root / f"view{n}_{w}.zarr"
                row[f"align_w{w}"] = timed(lambda p=path, out=out, w=w: cli([
                    "dataset", "align", str(p), str(out), "--fps", "10", "--workers", str(w), "--overwrite"]))
                frames = ReplayBuffer.open(out).n_steps
                shutil.rmtree(out, ignore_errors=True)
            row["frames"] = frames
            if n <= args.baseline_max:
                out = str(root / f"base{n}.zarr")
                w0, c0 = time.perf_counter(), time.process_time()
                base_frames = baseline_align(store, 10.0, out)
                row["align_baseline"] = (time.perf_counter() - w0, time.process_time() - c0)
                shutil.rmtree(out, ignore_errors=True)
                assert base_frames == frames, (base_frames, frames)
            if "first_batch" in args.sections and n <= args.align_max:
                cache = root / f"cache{n}"
                row["first_batch_cold"] = first_batch(path, cache)
                row["first_batch_warm"] = first_batch(path, cache)
                shutil.rmtree(cache, ignore_errors=True)
        row["load_avg"] = os.getloadavg()[0]
        print(json.dumps(row), flush=True)
        rows.append(row)
        print_scale(rows, args.workers)
        if not args.keep:
            shutil.rmtree(path, ignore_errors=True)
    return rows


def fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.1f} s"


def wc(t: tuple[float, float] | None) -> str:
    return "-" if t is None else f"{fmt(t[0])} ({fmt(t[1])})"


def fps(row: dict[str, Any], key: str, i: int) -> str:
    t = row.get(key)
    if not row.get("frames"):
        return "-"
    return "-" if t is None else f"{row['frames'] / t[i]:,.0f}"


def print_scale(rows: list[dict[str, Any]], workers: int) -> None:
    print("\nwall (CPU of this process); align in frames/s of wall (of CPU); load = 1-min load average")
    print(f"\n| episodes | write/ep | open | info | verify --quick | verify | align w=1 | align w={workers} | "
          "today's align | first batch cold / warm | index rebuild | load |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        fb = r.get("first_batch_cold")
        print(f"| {r['episodes']:,} | {wc(r['write'])} | {wc(r['open'])} | {wc(r['info'])} | {wc(r['verify_quick'])} | "
              f"{wc(r['verify'])} | {fps(r, 'align_w1', 0)} ({fps(r, 'align_w1', 1)}) | "
              f"{fps(r, f'align_w{workers}', 0)} | {fps(r, 'align_baseline', 0)} ({fps(r, 'align_baseline', 1)}) | "
              f"{fmt(fb)} / {fmt(r.get('first_batch_warm'))} | {fmt(r['index_rebuild_s'])} | {r['load_avg']:.1f} |")
    r0, r1 = rows[0], rows[-1]
    print(f"\nwrite/ep at {r1['episodes']:,} vs {r0['episodes']:,}: wall {r1['write'][0] / r0['write'][0]:.2f}x, "
          f"CPU {r1['write'][1] / r0['write'][1]:.2f}x (target <= 1.5x)")
    for r in rows:
        if r.get("align_baseline"):
            b = r["align_baseline"]
            best_wall = min(r["align_w1"][0], r.get(f"align_w{workers}", (np.inf,))[0])
            print(f"align at {r['episodes']:,} episodes: {b[1] / r['align_w1'][1]:.1f}x today's frames per CPU second "
                  f"(one process), {b[0] / best_wall:.1f}x today's frames per wall second (target >= 10x)")


def write_section(args: argparse.Namespace, root: Path) -> None:
    """Per-episode write cost in the smallest and the largest store, alternated round by round
    so that both see the same machine load."""
    small, large = min(args.sizes), max(args.sizes)
    stores = {}
    for n in (small, large):
        path = root / f"w{n}.zarr"
        build_store(path, n, args.direct_max, [])
        stores[n] = EpisodeStore.open(path, mode="a")
    times: dict[int, list[tuple[float, float]]] = {small: [], large: []}
    for rnd in range(args.write_rounds):
        for n in (small, large) if rnd % 2 == 0 else (large, small):
            for e in range(4):
                times[n].append(write_episode(stores[n], episode_data(n + 100 + 4 * rnd + e)))
    print(f"\nwrite/ep, {args.write_rounds} alternating rounds of 4 episodes (load {os.getloadavg()[0]:.1f}):")
    med = {n: np.median(np.array(t), axis=0) for n, t in times.items()}
    for n in (small, large):
        print(f"  {n:>6,} episodes in the store: wall {fmt(med[n][0])}, CPU {fmt(med[n][1])} (median of {len(times[n])})")
    print(f"  ratio {large:,} / {small:,}: wall {med[large][0] / med[small][0]:.2f}x, CPU "
          f"{med[large][1] / med[small][1]:.2f}x (target <= 1.5x)", flush=True)
    for n in (small, large):
        shutil.rmtree(root / f"w{n}.zarr", ignore_errors=True)


# ---------------------------------------------------------------------- RSS section
RSS_CHILD = r"""
import json, os, resource, sys, time, torch
torch.set_num_threads(1)
from tactkit.policies.pipeline import train_stage
store, out, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
res = train_stage("dp", store, ["fps=10", "image_shape=[48,64]", "crop_shape=[44,60]",
    "obs_keys=[observation.images.wrist,observation.state.tcp_pose]", "action_keys=[action.tcp_pose]",
    "size=tiny", "resnet_width=4", "image_feature_dim=16", "down_dims=[32,64]", "diffusion_step_embed_dim=32",
    "batch_size=32", "warmup_steps=1", f"num_steps={steps}", "ckpt_every=100000", "log_every=1",
    "val_ratio=0"], out, progress=False)
print(json.dumps({"samples_per_s": res.samples_per_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def rss_store(path: Path, target_bytes: int) -> tuple[int, int]:
    """A store whose 10 Hz view of a 240x320 camera decodes to ``target_bytes``."""
    streams = {IMG: StreamSpec("uint8", (240, 320, 3), 10.0, "rgb"),
               POSE: STREAMS[POSE], ACT: STREAMS[ACT]}
    store = EpisodeStore.create(path, streams)
    frame = 240 * 320 * 3
    seconds = 60.0
    n_eps = max(1, int(np.ceil(target_bytes / (frame * 10 * seconds))))
    base = episode_data(0, seconds, streams)
    for e in range(n_eps):
        data = {k: (ts + 100.0 * e, v) for k, (ts, v) in base.items()}
        write_episode(store, data)
    return n_eps, n_eps * int(seconds * 10) * frame


def run_capped(cmd: list[str], cap_bytes: int | None, env: dict[str, str]) -> tuple[int, str]:
    """Run ``cmd`` (in a fresh memory cgroup capped at ``cap_bytes`` when given)."""
    cg = None
    if cap_bytes is not None:
        cg = Path(f"/sys/fs/cgroup/memory/tactkit_bench_{os.getpid()}")
        cg.mkdir()
        (cg / "memory.limit_in_bytes").write_text(str(cap_bytes))
        try:
            (cg / "memory.memsw.limit_in_bytes").write_text(str(cap_bytes))
        except OSError:
            pass
        cmd = ["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        return proc.returncode, proc.stdout + proc.stderr[-3000:]
    finally:
        if cg is not None:
            with contextlib.suppress(OSError):
                cg.rmdir()


def rss_section(args: argparse.Namespace, root: Path) -> None:
    from tactkit.policies.config import load_policy_config
    from tactkit.policies.data import disk_view, needed_keys

    cap = args.rss_cap_mb << 20
    path = root / "rss.zarr"
    t0 = time.perf_counter()
    n_eps, view_bytes = rss_store(path, args.rss_factor * cap)
    print(f"rss store: {n_eps} episodes, decoded view {view_bytes / 2**30:.2f} GiB "
          f"({view_bytes / cap:.1f}x the {args.rss_cap_mb} MiB cap), written in {time.perf_counter() - t0:.0f} s", flush=True)
    cache = root / "rss_cache"
    env = {**os.environ, "TACTKIT_CACHE_DIR": str(cache), "TACTKIT_ALIGN_WORKERS": str(args.workers)}
    os.environ.update(env)
    cfg = load_policy_config("dp", ["fps=10", "obs_keys=[observation.images.wrist,observation.state.tcp_pose]",
                                    "action_keys=[action.tcp_pose]"])
    t0 = time.perf_counter()
    disk_view(path, cfg, needed_keys(cfg))  # the cached view, built once (outside the cap)
    print(f"view built in {time.perf_counter() - t0:.0f} s", flush=True)
    results: dict[str, list[dict[str, float]]] = {"disk": [], "memory": []}
    for rep in range(args.rss_repeats):
        for mode in ("disk", "memory"):
            child_env = dict(env)
            if mode == "memory":
                child_env["TACTKIT_TRAIN_MEMORY"] = "1T"  # force the in-memory path, no cap
            rc, out = run_capped([sys.executable, "-c", RSS_CHILD, str(path), str(root / f"run_{mode}{rep}"),
                                  str(args.rss_steps)], cap if mode == "disk" else None, child_env)
            if rc != 0:
                print(f"{mode} run failed (rc {rc}):\n{out}", flush=True)
                continue
            r = json.loads(out.strip().splitlines()[-1] if out.strip().startswith("{") else
                           next(ln for ln in out.splitlines() if ln.startswith("{")))
            results[mode].append(r)
            print(f"{mode} run {rep}: {r}", flush=True)
    if args.rss_oom_check:
        rc, _ = run_capped([sys.executable, "-c", RSS_CHILD, str(path), str(root / "run_oom"), "2"], cap,
                           {**env, "TACTKIT_TRAIN_MEMORY": "1T"})
        print(f"in-memory path under the same cap: exit status {rc} ({'killed' if rc < 0 or rc == 137 else 'survived'})")
    if results["disk"] and results["memory"]:
        d = max(r["peak_rss_mb"] for r in results["disk"])
        m = max(r["peak_rss_mb"] for r in results["memory"])
        sd = float(np.median([r["samples_per_s"] for r in results["disk"]]))
        sm = float(np.median([r["samples_per_s"] for r in results["memory"]]))
        print(f"\n| path | memory cap | peak RSS | training samples/s (median of {args.rss_repeats}) |")
        print("|---|---|---|---|")
        print(f"| on-disk view (chunk cache) | {args.rss_cap_mb} MiB (cgroup) | {d:.0f} MiB | {sd:.1f} |")
        print(f"| in-memory (whole view decoded) | none | {m:.0f} MiB | {sm:.1f} |")
        print(f"\nview {view_bytes / 2**20:.0f} MiB decoded = {view_bytes / cap:.1f}x the cap; "
              f"throughput from disk / in memory: {sd / sm:.2f} (in-memory is {sm / sd:.2f}x; target <= 1.3x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10,100,1000,10000", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    ap.add_argument("--sections", default="scale,first_batch,rss")
    ap.add_argument("--direct-max", type=int, default=100, help="largest store written fully through the API")
    ap.add_argument("--baseline-max", type=int, default=1000, help="largest store today's align runs on")
    ap.add_argument("--verify-max", type=int, default=10000, help="largest store fully verified")
    ap.add_argument("--align-max", type=int, default=10000, help="largest store aligned / trained from")
    ap.add_argument("--write-rounds", type=int, default=6)
    ap.add_argument("--rss-cap-mb", type=int, default=1200)
    ap.add_argument("--rss-factor", type=int, default=4)
    ap.add_argument("--rss-steps", type=int, default=30)
    ap.add_argument("--rss-repeats", type=int, default=2)
    ap.add_argument("--rss-oom-check", action="store_true", help="also run the in-memory path under the cap")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--dir", default=None, help="working directory (default: a temporary one)")
    args = ap.parse_args()
    print(machine())
    print(f"store_scale: sizes {args.sizes}, workers {args.workers}, sections {args.sections}\n", flush=True)
    root = Path(args.dir or tempfile.mkdtemp(prefix="store_scale_"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if "scale" in args.sections:
            rows = scale_section(args, root)
            print_scale(rows, args.workers)
        if "write" in args.sections:
            write_section(args, root)
        if "rss" in args.sections:
            rss_section(args, root)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
