"""Training throughput (samples/s) of each policy on a small synthetic store.

Each policy trains for a fixed number of optimiser steps through the real pipeline
(``tactkit.policies.pipeline.train_stage``: store -> align -> windows -> fit) and the loop's
own samples/s figure is reported (data loading included, checkpoint writing excluded).

    .venv/bin/python benchmarks/policy_train_throughput.py [--size small|tiny] [--steps 30] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from tactkit.policies.pipeline import train_stage
from tactkit.policies.synthetic import make_synthetic_store
from tactkit.sysinfo import cpu_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="small")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        store = root / "store.zarr"
        make_synthetic_store(store, episodes=4, seconds=3.0, image_hw=(64, 64))
        common = [f"size={args.size}", f"num_steps={args.steps}", f"batch_size={args.batch}", "warmup_steps=1",
                  "image_shape=[64,64]", "crop_shape=[56,56]", "ckpt_every=100000"]  # fmt: skip
        runs = [
            ("at (RDP tokenizer)", "at", None, []),
            ("ldp (RDP latent diffusion)", "ldp", None, [f"at_checkpoint={root / 'at' / 'checkpoint'}"]),
            ("dp (Diffusion Policy)", "dp", None, []),
            ("dp + tactile embedding", "dp", "dp_tactile", []),
        ]
        for name, kind, config, extra in runs:
            out = root / (kind if config is None else config)
            res = train_stage(kind, store, [*common, *extra], out, progress=False, config=config)
            rows.append((name, res.samples_per_s, res.final_loss))
    print(f"## Policy training throughput ({args.size} size)\n")
    print(f"machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}; torch {torch.__version__}, "
          f"{args.threads} intra-op thread(s), single process (accelerate), batch {args.batch}, {args.steps} steps; "
          "store: 4 episodes x 3 s, aligned at 24 Hz, images 64x64 -> crop 56x56\n")
    print("| policy | samples/s | loss at end |")
    print("|---|---:|---:|")
    for name, rate, loss in rows:
        print(f"| {name} | {rate:.0f} | {loss:.3f} |")


if __name__ == "__main__":
    main()
