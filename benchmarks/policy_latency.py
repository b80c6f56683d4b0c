"""Policy inference latency on this CPU.

1. Fast step (RDP's asymmetric tokenizer decoder): one streaming step carrying the GRU state
   vs re-running the decoder over the 32-step prefix (what a stateless decoder would do at
   the last step of a chunk), p50/p99 and ratio; plus the whole ``ReactiveDiffusionPolicy.step``
   (PCA of the raw marker field, normalisation, 6-D rotation -> quaternion).
2. Slow policy at 8 DDIM steps: latent diffusion (RDP) vs Diffusion Policy with the same image
   encoder and observation keys, measured in the same run; share of the plan spent in the
   image encoder.

Models are built at the chosen size (default ``small``, the CPU training default) with random
weights, which time the same as trained ones. Run:

    .venv/bin/python benchmarks/policy_latency.py [--size small|tiny|paper] [--iters 200] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tactkit.sysinfo import cpu_model


def percentiles(samples: list[float]) -> tuple[float, float]:
    a = np.asarray(samples) * 1e3
    return float(np.percentile(a, 50)), float(np.percentile(a, 99))


def timeit(fn, iters: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def build_policies(size: str, root: Path, train_steps: int) -> tuple:
    """Train for a few steps (so checkpoints and normalisers are real) and load both policies."""
    from tactkit.policies.inference import load_policy
    from tactkit.policies.pipeline import train
    from tactkit.policies.synthetic import make_synthetic_store

    store = root / "store.zarr"
    make_synthetic_store(store, episodes=2, seconds=2.0, image_hw=(64, 64))
    common = [f"size={size}", f"num_steps={train_steps}", "warmup_steps=1", "batch_size=4", "image_shape=[64,64]", "crop_shape=[56,56]"]
    obs = "obs_keys=[observation.images.wrist,observation.state.tcp_pose,observation.state.gripper_width,observation.tactile.left.marker_offset]"
    train("rdp", store, [*common, obs], root / "rdp", progress=False)
    train("dp", store, [*common, obs], root / "dp", progress=False, config="dp_tactile")
    dp = load_policy(root / "dp")
    # the latent policy with the Diffusion Policy's own U-Net depth, for a like-for-like figure
    same = f"latent_down_dims=[{','.join(map(str, dp.cfg.down_dims))}]"
    train("ldp", store, [*common, obs, same, f"at_checkpoint={root / 'rdp' / 'at' / 'checkpoint'}"], root / "ldp_same", progress=False)
    return load_policy(root / "rdp"), dp, load_policy(root / "ldp_same"), store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="small")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--plan-iters", type=int, default=20)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    if args.plan_iters < 4 or args.iters < 1:
        ap.error("--plan-iters must be >= 4 (four interleaved rounds) and --iters >= 1")
    torch.set_num_threads(args.threads)
    from tactkit.store import EpisodeStore, align

    with tempfile.TemporaryDirectory() as tmp:
        rdp, dp, rdp_same, store = build_policies(args.size, Path(tmp), train_steps=2)
        rb = align(EpisodeStore.open(str(store)), fps=24.0)
        window = {k: np.asarray(rb.data[k][10:12]) for k in rdp.obs_keys}
        window["timestamp"] = np.asarray(rb.data["timestamp"][10:12])
        tok = rdp.tokenizer
        rows = []

        # ---- fast step: streaming vs prefix re-run at step 32
        with torch.inference_mode():
            plan = rdp.plan(window)
            cond = plan.state.cond
            fast = torch.randn(1, 32, tok.fast_dim)
            _, h31 = tok.decode(cond, fast[:, :31])
            stream = timeit(lambda: tok.decode_step(cond, fast[:, 31], h31), args.iters)
            prefix = timeit(lambda: tok.decode(cond, fast), args.iters)
        raw_sig = {"observation.tactile.left.marker_offset": np.asarray(window["observation.tactile.left.marker_offset"][-1])}
        t_mid = plan.t0 + 5 * plan.dt
        full_step = timeit(lambda: rdp.step(plan, t_mid, raw_sig), args.iters)
        s50, s99 = percentiles(stream)
        p50, p99 = percentiles(prefix)
        f50, f99 = percentiles(full_step)
        rows.append(("fast: decoder streaming step (GRU state carried)", s50, s99, ""))
        rows.append(("fast: decoder prefix re-run, 32 steps", p50, p99, f"streaming/prefix p50 = {s50 / p50:.2f}"))
        rows.append(("fast: ReactiveDiffusionPolicy.step (PCA+norm+quat)", f50, f99, ""))

        # ---- slow: LDP vs DP, same encoder and observation, 8 DDIM steps
        assert rdp.cfg.num_inference_steps == dp.cfg.num_inference_steps == 8
        # interleaved rounds so that load changes on a shared machine hit all three alike
        ldp_t, dp_t, same_t = [], [], []
        for _ in range(4):
            ldp_t += timeit(lambda: rdp.plan(window), args.plan_iters // 4, warmup=1)
            dp_t += timeit(lambda: dp.plan(window), args.plan_iters // 4, warmup=1)
            same_t += timeit(lambda: rdp_same.plan(window), args.plan_iters // 4, warmup=1)
        batch = rdp.obs_batch(window)
        with torch.inference_mode():
            enc_t = timeit(lambda: rdp.model.obs_encoder.encode_images(batch), args.plan_iters, warmup=2)
        l50, l99 = percentiles(ldp_t)
        d50, d99 = percentiles(dp_t)
        m50, m99 = percentiles(same_t)
        e50, _ = percentiles(enc_t)
        rows.append((f"slow: latent diffusion plan (RDP), 8 DDIM steps, U-Net {rdp.cfg.latent_down_dims}", l50, l99,
                     f"image encoder {100 * e50 / l50:.0f}% of plan"))
        rows.append((f"slow: latent diffusion plan, U-Net {rdp_same.cfg.latent_down_dims} (as DP)", m50, m99,
                     f"image encoder {100 * e50 / m50:.0f}% of plan"))
        rows.append((f"slow: Diffusion Policy plan, 8 DDIM steps, U-Net {dp.cfg.down_dims}", d50, d99,
                     f"image encoder {100 * e50 / d50:.0f}% of plan"))
        ratio = l50 / d50

    print(f"## Policy latency ({args.size} size)\n")
    print(f"machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}; torch {torch.__version__}, "
          f"{args.threads} intra-op thread(s); {args.iters} fast / {args.plan_iters} slow iterations\n")
    print(f"ResNet-18/GN width {rdp.cfg.resnet_width}, "
          f"crop {rdp.cfg.crop_shape}, obs keys {len(rdp.cfg.obs_keys)}, n_obs_steps {rdp.cfg.n_obs_steps}\n")
    print("| measurement | p50 (ms) | p99 (ms) | note |")
    print("|---|---:|---:|---|")
    for name, a, b, note in rows:
        print(f"| {name} | {a:.3f} | {b:.3f} | {note} |")
    print(f"\nlatent diffusion / Diffusion Policy plan latency (p50): **{ratio:.2f}** (target <= 0.7); "
          f"with the same U-Net depth as DP: {m50 / d50:.2f}")
    print(f"fast step streaming / prefix re-run (p50): **{s50 / p50:.2f}**")


if __name__ == "__main__":
    main()
