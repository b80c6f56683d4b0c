"""Benchmark: SequenceSampler windows/s against a straightforward implementation of the same
diffusion_policy semantics, on the same training view, in the same run.

The training view has the rig's keys on a 24 Hz grid (2 cameras, 2 tactile fields, wrench,
robot state, actions) and is stored the way training reads it: a Zarr v3 replay buffer
(JPEG images, Blosc-zstd low-dim) held in an in-memory store, like diffusion_policy's
``ReplayBuffer.copy_from_path(..., store=zarr.MemoryStore())``.

* baseline: ``ReferenceSequenceSampler`` (the tests' oracle,
  ``tests/tactkit/store/store_sampler_reference.py``: loops,
  per-key slices from the replay buffer's arrays, explicit padding copies), reading the
  zarr arrays as diffusion_policy's sampler does; also run on decoded numpy arrays
  (the most favourable baseline);
* tactkit: :class:`tactkit.store.SequenceSampler` (keys decoded into memory once; its load
  time is reported and amortised over one epoch) per window and in batches of 64; and with
  the cameras as ``lazy_keys`` (decoded per window, for views too large to hold decoded).

Windows are diffusion_policy's image-policy setting: horizon 16, n_obs_steps 2
(pad_before 1, key_first_k 2 on observations), n_action_steps 8 (pad_after 7).

    .venv/bin/python benchmarks/store_sampler.py [--episodes 24] [--steps 200] [--windows 1500]
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np

from tactkit.store import ReplayBuffer, SequenceSampler
from tactkit.store.synthetic import camera_frame

# the baseline is the test suite's oracle, which lives with the tests (not in the package)
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "tactkit" / "store"))
from store_sampler_reference import ReferenceSequenceSampler  # noqa: E402

OBS = ["observation.images.wrist", "observation.images.external",
       "observation.tactile.left.marker_offset", "observation.tactile.right.marker_offset",
       "observation.wrench", "observation.state.tcp_pose"]
ACT = ["action.tcp_pose", "action.gripper_width"]


def build_view(episodes: int, steps: int, hw: tuple[int, int], seed: int = 0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    h, w = hw
    pool = [camera_frame(i, h, w) for i in range(40)]
    eps = []
    for e in range(episodes):
        n = steps + int(rng.integers(-steps // 4, steps // 4))
        eps.append({
            "observation.images.wrist": np.stack([pool[(e + i) % 40] for i in range(n)]),
            "observation.images.external": np.stack([pool[(3 * e + i) % 40] for i in range(n)]),
            "observation.tactile.left.marker_offset": rng.random((n, 63, 2), dtype=np.float32),
            "observation.tactile.right.marker_offset": rng.random((n, 63, 2), dtype=np.float32),
            "observation.wrench": rng.normal(size=(n, 6)).astype(np.float32),
            "observation.state.tcp_pose": rng.normal(size=(n, 7)),
            "action.tcp_pose": rng.normal(size=(n, 7)),
            "action.gripper_width": rng.random((n, 1), dtype=np.float32),
        })
    return ReplayBuffer.from_episodes(eps)


def rate(fn, idx: np.ndarray, budget_s: float) -> tuple[float, int]:
    """Windows per second of fn over idx (stops early after budget_s)."""
    t0 = time.perf_counter()
    done = 0
    for i in idx:
        fn(int(i))
        done += 1
        if time.perf_counter() - t0 > budget_s:
            break
    return done / (time.perf_counter() - t0), done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=24)
    ap.add_argument("--steps", type=int, default=200, help="mean steps per episode (24 Hz)")
    ap.add_argument("--image-hw", type=int, nargs=2, default=(96, 128))
    ap.add_argument("--windows", type=int, default=1500)
    ap.add_argument("--budget", type=float, default=20.0, help="max seconds per timed loop")
    args = ap.parse_args()

    mem = build_view(args.episodes, args.steps, tuple(args.image_hw))
    rb = mem.save(f"memory://sampler-bench-{uuid.uuid4().hex}", zarr_format=3, image_quality=90)
    kw = dict(sequence_length=16, pad_before=1, pad_after=7, keys=OBS + ACT,
              key_first_k={k: 2 for k in OBS})
    t0 = time.perf_counter()
    fast = SequenceSampler(rb, **kw)
    load_s = time.perf_counter() - t0
    ref_zarr = ReferenceSequenceSampler(rb, **kw)
    ref_np = ReferenceSequenceSampler(ReplayBuffer(fast.arrays, rb.episode_ends), **kw)
    assert len(fast) == len(ref_zarr)
    idx = np.random.default_rng(1).integers(0, len(fast), size=args.windows)
    for i in idx[:50]:  # same windows from both
        a, b = fast.sample_sequence(int(i)), ref_np.sample_sequence(int(i))
        for k in a:
            np.testing.assert_array_equal(a[k], b[k])

    r_zarr, n_zarr = rate(ref_zarr.sample_sequence, idx, args.budget)
    r_np, n_np = rate(ref_np.sample_sequence, idx, args.budget)
    r_fast, n_fast = rate(fast.sample_sequence, idx, args.budget)
    batches = idx[: (len(idx) // 64) * 64].reshape(-1, 64)
    t0 = time.perf_counter()
    for b in batches:
        fast.sample_batch(b)
    r_batch = batches.size / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in batches:  # training batch: observations cut to n_obs_steps, as a policy uses them
        fast.sample_batch(b, first_k_only=True)
    r_train = batches.size / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for b in batches:  # the baseline's training batch: windows cut and stacked (DataLoader collation)
        samples = [ref_np.sample_sequence(int(i)) for i in b]
        {k: np.stack([s[k][:2] if k in OBS else s[k] for s in samples]) for k in samples[0]}
    r_np_train = batches.size / (time.perf_counter() - t0)
    epoch_fast = len(fast) / r_fast + load_s
    lazy = SequenceSampler(rb, **kw, lazy_keys=OBS[:2])  # images decoded per window
    r_lazy, n_lazy = rate(lazy.sample_sequence, idx, args.budget)
    t0 = time.perf_counter()
    for b in batches[: max(1, len(batches) // 4)]:
        lazy.sample_batch(b, first_k_only=True)
    r_lazy_train = min(len(batches), max(1, len(batches) // 4)) * 64 / (time.perf_counter() - t0)

    import os
    import platform
    print("## SequenceSampler vs straightforward diffusion_policy-semantics sampler\n")
    print(f"machine: {os.cpu_count()} CPUs, {platform.machine()}, load avg {os.getloadavg()[0]:.2f}  ")
    print(f"view: {rb.n_episodes} episodes, {rb.n_steps} steps, images {args.image_hw[0]}x{args.image_hw[1]} "
          f"(2 cams, JPEG in an in-memory zarr v3 store), {len(OBS + ACT)} keys; horizon 16, "
          f"n_obs 2, pad 1/7; {len(fast)} windows; tactkit load time {load_s:.2f} s\n")
    print("| sampler | windows/s | ratio |")
    print("|---|---|---|")
    print(f"| baseline on zarr arrays (as diffusion_policy), per window | {r_zarr:,.0f} (n={n_zarr}) | 1.0x |")
    print(f"| tactkit sample_sequence, per window | {r_fast:,.0f} (n={n_fast}) | **{r_fast / r_zarr:.1f}x** |")
    print(f"| tactkit, one epoch per window incl. load | {len(fast) / epoch_fast:,.0f} | {len(fast) / epoch_fast / r_zarr:.1f}x |")
    print(f"| tactkit sample_batch(64), full windows | {r_batch:,.0f} | {r_batch / r_zarr:.1f}x |")
    print(f"| baseline on decoded numpy arrays, per window | {r_np:,.0f} (n={n_np}) | tactkit/this: {r_fast / r_np:.2f}x |")
    print(f"| baseline on numpy, training batch of 64 (obs cut to 2, stacked) | {r_np_train:,.0f} | 1.0x |")
    print(f"| tactkit sample_batch(64, first_k_only) training batch | {r_train:,.0f} | **{r_train / r_np_train:.1f}x** |")
    print(f"| tactkit, images lazy (decoded per window), per window | {r_lazy:,.0f} (n={n_lazy}) | vs zarr baseline {r_lazy / r_zarr:.1f}x |")
    print(f"| tactkit, images lazy, training batch of 64 | {r_lazy_train:,.0f} | vs numpy training baseline {r_lazy_train / r_np_train:.1f}x |")

if __name__ == "__main__":
    main()
