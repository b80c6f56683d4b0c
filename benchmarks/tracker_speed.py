"""Benchmark: marker tracker speed at 640x480 on one core, against a baseline side by side.

Frames: a 7x9 synthetic GelSight sequence (shear + rotation up to 15 px, blur, noise,
lighting gradient, 5% vanishing markers), pre-rendered, so only tracking is timed. The
process is pinned to one CPU (``sched_setaffinity``), ``cv2.setNumThreads(1)`` and BLAS
threads = 1. Timed per frame, interleaved with the baseline frame by frame so both see the
same machine load: wall time (``perf_counter``) and CPU time of the thread (``thread_time``,
what one core spends, which stays meaningful when a shared machine is overloaded and wall
time includes waiting for a core). p50 / p99 / mean.

Baseline: the common Python GelSight recipe, ``cv2.SimpleBlobDetector`` + nearest-neighbour
matching to the previous positions (``scipy.spatial.cKDTree``).
Target: tactkit tracker p50 < 5 ms per frame (>= 200 fps).

    .venv/bin/python benchmarks/tracker_speed.py [--frames 300] [--cpu 0]
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import time  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from scipy.spatial import cKDTree  # noqa: E402

from tactkit.sensors.synthetic import MarkerImageSpec, SyntheticMarkerSequence  # noqa: E402
from tactkit.sensors.tracker import MarkerTracker, TrackerConfig  # noqa: E402
from tactkit.sysinfo import machine_summary as machine  # noqa: E402


class BlobNNBaseline:
    """SimpleBlobDetector centroids + nearest-neighbour association to the previous frame."""

    def __init__(self) -> None:
        p = cv2.SimpleBlobDetector_Params()
        p.filterByColor, p.blobColor = True, 0
        p.filterByArea, p.minArea, p.maxArea = True, 30, 600
        p.filterByCircularity = p.filterByConvexity = p.filterByInertia = False
        self.det = cv2.SimpleBlobDetector_create(p)
        self.prev: np.ndarray | None = None

    def update(self, image: np.ndarray) -> np.ndarray:
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        pts = np.array([k.pt for k in self.det.detect(gray)], dtype=np.float64).reshape(-1, 2)
        if self.prev is None:
            self.prev = pts
            return pts
        if len(pts):
            _, idx = cKDTree(pts).query(self.prev)
            self.prev = pts[idx]
        return self.prev


def stats(ms: np.ndarray) -> tuple[float, float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99)), float(ms.mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: last one allowed)")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    cpu = args.cpu if args.cpu is not None else cpus[-1]
    os.sched_setaffinity(0, {cpu})
    cv2.setNumThreads(1)
    spec = MarkerImageSpec(640, 480, 7, 9, marker_radius=6.0)
    seq = SyntheticMarkerSequence(spec, "shear_rotation", 15.0, 60, blur_sigma=1.5, noise_sigma=5.0,
                                  gradient=0.5, drop_fraction=0.05, seed=0)
    frames = [f.image for f in seq]
    ours, base = MarkerTracker(TrackerConfig(rest_frames=1)), BlobNNBaseline()
    ours.update(frames[0])
    base.update(frames[0])
    wall: dict[str, list[float]] = {"ours": [], "detect": [], "base": []}
    cpu_t: dict[str, list[float]] = {"ours": [], "detect": [], "base": []}
    steps = (("ours", ours.update), ("base", base.update), ("detect", ours.detect))
    for i in range(args.frames):
        img = frames[1 + i % (len(frames) - 1)]
        for name, fn in steps:
            c0, w0 = time.thread_time(), time.perf_counter()
            fn(img)
            wall[name].append(time.perf_counter() - w0)
            cpu_t[name].append(time.thread_time() - c0)
    print("# Marker tracker speed, 640x480, 7x9 markers, one core\n")
    print(f"machine: {machine()}; OpenCV {cv2.__version__}; pinned to CPU {cpu}, cv2 threads 1")
    print(f"settings: {args.frames} frames (shear+rotation 15 px, blur 1.5, noise 5, gradient 0.5, "
          f"5% vanishing), interleaved with the baseline\n")
    print("| method | CPU p50 ms | CPU p99 ms | CPU mean ms | wall p50 ms | wall p99 ms | fps (CPU p50) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    labels = {"ours": "tactkit MarkerTracker.update (detect + track)",
              "detect": "  of which detection only", "base": "baseline SimpleBlobDetector + NN"}
    for name, label in labels.items():
        c = stats(np.array(cpu_t[name]) * 1e3)
        w = stats(np.array(wall[name]) * 1e3)
        print(f"| {label} | {c[0]:.2f} | {c[1]:.2f} | {c[2]:.2f} | {w[0]:.2f} | {w[1]:.2f} | {1000 / c[0]:.0f} |")
    ours_cpu = stats(np.array(cpu_t["ours"]) * 1e3)[0]
    ratio = stats(np.array(cpu_t["base"]))[0] / stats(np.array(cpu_t["ours"]))[0]
    ratio_w = stats(np.array(wall["base"]))[0] / stats(np.array(wall["ours"]))[0]
    print(f"\nspeed-up vs baseline (p50): {ratio:.1f}x CPU, {ratio_w:.1f}x wall; "
          f"target p50 < 5 ms per frame (CPU): {'PASS' if ours_cpu < 5 else 'FAIL'}")


if __name__ == "__main__":
    main()
