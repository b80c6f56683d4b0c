"""Benchmark: LeRobot v3.0 export and import throughput (frames/s) and the export's size.

On one episode store, in one process, side by side:

* baseline: ``tactkit dataset align`` at the same fps into a Zarr v2 replay buffer (what
  diffusion_policy reads) - the same alignment and image decoding, written as Blosc arrays;
* export to LeRobot v3.0 with AV1 (LeRobot's default codec) and with H.264 (keyframe every 2
  frames, as LeRobot encodes): frames/s (a frame = one tick of every stream, cameras included),
  size of the dataset / size of the store;
* import of each export back into an episode store: frames/s, and the round trip checked
  (low-dim streams bit-exact against the aligned store, camera PSNR).

The store is an existing one (``--store``), the 50-episode simulated wipe store the issue asks
for (``--episodes 50``: records it first with ``tactkit sim demos --task wipe``, ~10-25 s an
episode on 2 vCPUs), or the small synthetic store (``--synthetic N``, for a smoke run).

    .venv/bin/python benchmarks/store_lerobot.py --store runs/wipe50.zarr
    .venv/bin/python benchmarks/store_lerobot.py --episodes 50 [--keep runs/wipe50.zarr]
    .venv/bin/python benchmarks/store_lerobot.py --synthetic 4
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tactkit.store import EpisodeStore, _paths, align
from tactkit.store.lerobot import export_lerobot, parse_fps
from tactkit.store.lerobot_import import import_lerobot
from tactkit.sysinfo import machine_summary


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def round_trip_check(aligned, imported: EpisodeStore) -> tuple[bool, float]:
    """(every low-dim value bit-exact, worst per-episode camera PSNR in dB)."""
    exact, worst = True, float("inf")
    for i in range(aligned.n_episodes):
        a, e = aligned.get_episode(i), imported.episode(i)
        for k in imported.streams:
            v = e.values(k)
            if imported.streams[k].is_image:
                worst = min(worst, _psnr(v, a[k]))
            else:
                exact &= v.dtype == a[k].dtype and np.array_equal(v, a[k])
    return exact, worst


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--store", help="an existing episode store")
    src.add_argument("--episodes", type=int, help="record this many simulated wipe episodes first")
    src.add_argument("--synthetic", type=int, help="a small synthetic store of this many episodes")
    ap.add_argument("--keep", default=None, help="with --episodes: keep the recorded store here")
    ap.add_argument("--fps", type=float, default=None, help="export rate (default: the store's control_hz, else 24)")
    ap.add_argument("--codecs", default="av1,h264")
    args = ap.parse_args(argv)
    print(machine_summary())
    tmp = Path(tempfile.mkdtemp(prefix="bench_lerobot_"))
    try:
        if args.store:
            store_path = args.store
        elif args.episodes:
            store_path = args.keep or str(tmp / "wipe.zarr")
            t = time.perf_counter()
            subprocess.run([sys.executable, "-m", "tactkit.cli.main", "sim", "demos", "--task", "wipe", "--episodes",
                            str(args.episodes), "--out", store_path, "--overwrite"], check=True)
            print(f"recorded {args.episodes} wipe episodes in {time.perf_counter() - t:.0f} s")
        else:
            from tactkit.policies.synthetic import make_synthetic_store

            store_path = str(tmp / "synthetic.zarr")
            make_synthetic_store(store_path, episodes=args.synthetic, seconds=3.0, image_hw=(96, 96))
        store = EpisodeStore.open(store_path)
        fps = parse_fps(args.fps if args.fps or store.attrs.get("control_hz") else 24.0, store)
        store_bytes = _paths.size_on_disk(store_path) or 0
        cams = [k for k, s in store.streams.items() if s.is_image]
        print(f"store {store_path}: {store.num_episodes} episodes, {len(store.streams)} streams ({len(cams)} cameras), "
              f"{store_bytes / 2**20:.1f} MiB; aligned to {fps} Hz")

        t = time.perf_counter()
        view = align(store, fps, out=tmp / "view.zarr", zarr_format=2)
        t_align = time.perf_counter() - t
        frames = view.n_steps
        rows = [("align -> zarr v2 (baseline)", frames / t_align, _paths.size_on_disk(tmp / "view.zarr") / store_bytes, "", "")]
        aligned = view.load()
        for codec in args.codecs.split(","):
            dst = tmp / f"lerobot_{codec}"
            t = time.perf_counter()
            rep = export_lerobot(store, dst, fps, video_codec=codec)
            t_exp = time.perf_counter() - t
            t = time.perf_counter()
            back = import_lerobot(dst, tmp / f"back_{codec}.zarr")
            t_imp = time.perf_counter() - t
            exact, psnr = round_trip_check(aligned, back)
            rows.append((f"export lerobot ({codec})", rep.frames / t_exp, rep.bytes / store_bytes, "", ""))
            rows.append((f"import lerobot ({codec})", rep.frames / t_imp, np.nan,
                         "bit-exact" if exact else "DIFFERS", f"{psnr:.1f} dB"))
            shutil.rmtree(dst, ignore_errors=True)
        print(f"\n{frames} frames ({frames * len(cams)} camera images) at {fps} Hz\n")
        print(f"{'step':<30} {'frames/s':>9} {'x baseline':>10} {'size / store':>12}  low-dim round trip, camera PSNR")
        for name, fs, ratio, exact, psnr in rows:
            r = "" if np.isnan(ratio) else f"{ratio:.3f}"
            print(f"{name:<30} {fs:>9.0f} {fs / rows[0][1]:>10.2f} {r:>12}  {exact} {psnr}")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
