"""BEAST slow-policy latency against Diffusion Policy at 8 DDIM steps, same encoders, same run.

Both policies use the same observation keys (wrist image, TCP pose, gripper width, tactile
embedding), the same shared observation encoder (ResNet-18/GN at the chosen size) and the
same window; each is trained for two steps on a synthetic store so checkpoints, normalisers
and the BEAST tokenizer are real (random-ish weights time the same as trained ones). The
plans are timed interleaved (DP, BEAST discrete, BEAST continuous, DP, ...) so load on a
shared machine hits all of them alike. Also timed: ``step`` (what the robot loop calls; BEAST
evaluates its spline at ``t``) and the image encoder alone.

    .venv/bin/python benchmarks/policy_beast_latency.py [--size small|tiny|paper] [--iters 30] [--threads N] [--device cpu|cuda]
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


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--size", default="small")
    ap.add_argument("--iters", type=int, default=30, help="timed plans per policy (interleaved)")
    ap.add_argument("--step-iters", type=int, default=500)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from tactkit.policies.inference import load_policy
    from tactkit.policies.pipeline import train
    from tactkit.policies.synthetic import make_synthetic_store
    from tactkit.store import EpisodeStore, align

    tactile = "observation.tactile.left.marker_offset"
    obs = f"obs_keys=[observation.images.wrist,observation.state.tcp_pose,observation.state.gripper_width,{tactile}]"
    common = [f"size={args.size}", "num_steps=2", "warmup_steps=1", "batch_size=4", obs]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store.zarr"
        make_synthetic_store(store, episodes=2, seconds=2.0, image_hw=(64, 64))
        train("dp", store, common, root / "dp", progress=False)
        train("beast", store, common, root / "beast", progress=False)
        train("beast", store, [*common, "beast.head=continuous"], root / "beast_c", progress=False)
        policies = {
            "Diffusion Policy, 8 DDIM steps": load_policy(root / "dp", device=args.device),
            "BEAST discrete (256-bin tokens)": load_policy(root / "beast", device=args.device),
            "BEAST continuous (control points)": load_policy(root / "beast_c", device=args.device),
        }
        dp = policies["Diffusion Policy, 8 DDIM steps"]
        beast = policies["BEAST discrete (256-bin tokens)"]
        assert dp.cfg.num_inference_steps == 8
        rb = align(EpisodeStore.open(str(store)), fps=24.0)
        window = {k: np.asarray(rb.data[k][10:12]) for k in dp.obs_keys}
        window["timestamp"] = np.asarray(rb.data["timestamp"][10:12])

        times: dict[str, list[float]] = {k: [] for k in policies}
        for i in range(args.iters + 3):
            for name, pol in policies.items():
                t = time.perf_counter()
                pol.plan(window)
                sync(args.device)
                if i >= 3:  # warm-up
                    times[name].append(time.perf_counter() - t)
        batch = dp.obs_batch(window)
        enc = []
        with torch.inference_mode():
            for i in range(args.iters + 3):
                t = time.perf_counter()
                dp.model.obs_encoder(batch)
                sync(args.device)
                if i >= 3:
                    enc.append(time.perf_counter() - t)
        steps: dict[str, list[float]] = {}
        for name, pol in policies.items():
            plan = pol.plan(window)
            ts = plan.t0 + np.random.default_rng(0).uniform(
                0, plan.t_end - plan.t0, args.step_iters
            )
            out = []
            for t_s in ts:
                t = time.perf_counter()
                pol.step(plan, float(t_s))
                out.append(time.perf_counter() - t)
            steps[name] = out
        n_params = {k: sum(p.numel() for p in v.model.parameters()) for k, v in policies.items()}

    ms = lambda xs, q: float(np.percentile(np.asarray(xs) * 1e3, q))  # noqa: E731
    print(f"## BEAST vs Diffusion Policy: slow-policy latency ({args.size} size, {args.device})\n")
    print(
        f"machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}; torch {torch.__version__}, "
        f"{args.threads} intra-op thread(s); load average {os.getloadavg()[0]:.1f}; "
        f"{args.iters} interleaved plans per policy, {args.step_iters} steps\n"
    )
    bc = beast.cfg.beast
    print(
        f"shared encoder: ResNet-18/GN width {dp.cfg.resnet_width}, crop {dp.cfg.crop_shape}, obs keys "
        f"{len(dp.cfg.obs_keys)}, n_obs_steps {dp.cfg.n_obs_steps}; DP U-Net down_dims {dp.cfg.down_dims}; "
        f"BEAST transformer d_model {bc.d_model} x {bc.n_layers} layers, {bc.num_ctrl} control points x "
        f"{beast.tokenizer.action_dim} dims = {beast.tokenizer.tokens_per_chunk} token slots\n"
    )
    print(
        "| policy | params | plan p50 (ms) | plan p99 (ms) | step p50 (us) | step p99 (us) | DP / this (plan p50) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    d50 = ms(times["Diffusion Policy, 8 DDIM steps"], 50)
    for name in policies:
        print(
            f"| {name} | {n_params[name] / 1e6:.2f} M | {ms(times[name], 50):.2f} | {ms(times[name], 99):.2f} | "
            f"{ms(steps[name], 50) * 1e3:.0f} | {ms(steps[name], 99) * 1e3:.0f} | {d50 / ms(times[name], 50):.2f} |"
        )
    print(f"| (shared observation encoder alone) | | {ms(enc, 50):.2f} | {ms(enc, 99):.2f} | | | |")
    ratio = d50 / ms(times["BEAST discrete (256-bin tokens)"], 50)
    print(
        f"\nDiffusion Policy (8 DDIM) / BEAST discrete plan latency (p50): **{ratio:.2f}x** (target >= 5x)"
    )


if __name__ == "__main__":
    main()
