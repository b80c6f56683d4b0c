"""The RDP paper's comparison, in simulation: DP, DP + tactile, RDP (tactile), RDP (force).

For every task (default: each one the simulation provides among wipe, peel, lift): record
scripted-expert demos (perturbation modes mixed), train the four policies briefly on the same
demos, and evaluate each with the real controller in lockstep under none / before_contact /
after_contact perturbation on shared seeds ("all" is their mean). Prints one markdown table
per task with the number of demos, seeds and training steps, and writes
``<out>/paper_table.json``. Planners see the external camera and the TCP pose (as in
``tactkit demo``); ``--fixed-scene-wipe`` runs wipe in the CI-sized setting instead (the same
scene every seed, force-feedback demos without and with after-contact perturbation, TCP pose +
touch, no camera; docs/controller.md). One torch thread::

    .venv/bin/python benchmarks/controller_paper_table.py --demos 12 --steps 300 --episodes 3
    .venv/bin/python benchmarks/controller_paper_table.py --demos 20 --steps 1500 --fixed-scene-wipe
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

POLICIES = ("dp", "dp_tactile", "rdp", "rdp_force", "beast")
LABELS = {"dp": "DP", "dp_tactile": "DP + tactile", "rdp": "RDP (tactile)", "rdp_force": "RDP (force)", "beast": "BEAST",
          "beast_tactile": "BEAST + tactile", "beast_continuous": "BEAST (continuous)"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", default="wipe,peel,lift")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--demos", type=int, default=12)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--inference-latency", type=float, default=0.1)
    ap.add_argument("--fixed-scene-wipe", action="store_true", help="wipe in the CI-sized fixed-scene setting")
    ap.add_argument("--wipe-steps", type=int, default=None, help="training steps for wipe (default --steps)")
    ap.add_argument("--out", default="runs/paper_table")
    args = ap.parse_args()

    import torch
    from tqdm import tqdm

    from tactkit.experiments.evaluation import (
        EvalSettings,
        evaluate_policy,
        results_table,
        summarize,
    )
    from tactkit.experiments.quickstart import (
        QuickstartConfig,
        fixed_scene,
        tactile_keys,
        train_policy,
    )
    from tactkit.policies.inference import load_policy
    from tactkit.real.setup import load_robot_setup
    from tactkit.sim.perturbations import PERTURBATIONS
    from tactkit.sim.recording import record_demos
    from tactkit.sim.tasks import TASKS

    tasks = [t for t in args.tasks.split(",") if t in TASKS]
    skipped = [t for t in args.tasks.split(",") if t not in TASKS]
    policies = tuple(p for p in args.policies.split(",") if p)
    out = Path(args.out)
    controller = load_robot_setup("sim", [f"inference_latency={args.inference_latency}"]).controller
    torch.set_num_threads(1)
    report: dict = {"machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
                    "demos": args.demos, "steps": args.steps, "size": args.size, "episodes": args.episodes,
                    "inference_latency": args.inference_latency, "tasks": {}}
    for task in tasks:
        t0 = time.perf_counter()
        steps = (args.wipe_steps or args.steps) if task == "wipe" else args.steps
        cfg = QuickstartConfig(task=task, demos=args.demos, train_steps=steps, size=args.size)
        if task == "wipe" and args.fixed_scene_wipe:
            cfg = fixed_scene(cfg)
        data = out / task / "demos.zarr"
        info = record_demos(task, args.demos, data, perturb=cfg.demo_perturb, seed=0, overwrite=True,
                            cameras=cfg.cameras, progress=False, **cfg.task_overrides)
        settings = EvalSettings(controller, dict(cfg.task_overrides))
        tactile = tactile_keys(task)
        rows = {}
        for kind in tqdm(policies, desc=f"{task}: train + eval", unit="policy"):
            ckpt = train_policy(kind, data, out / task / kind, cfg, tactile)
            rows[LABELS[kind]] = evaluate_policy(task, load_policy(ckpt), args.episodes, PERTURBATIONS, settings)
        setting = ("fixed scene, TCP pose + touch, demos none/after_contact" if cfg.task_overrides
                   else "random scenes, camera + TCP pose, demos of every mode")
        report["tasks"][task] = {"expert_mean_score": info["mean_score"], "wall_s": time.perf_counter() - t0,
                                 "steps": steps, "setting": setting,
                                 "summary": {k: summarize(v) for k, v in rows.items()}}
        print(f"\n## {task} ({setting}): {args.demos} demos, {steps} training steps per stage (size {args.size}), "
              f"{args.episodes} seeds per mode, inference latency {args.inference_latency * 1e3:.0f} ms; "
              f"expert {info['mean_score']:.2f}; {(time.perf_counter() - t0) / 60:.1f} min\n", flush=True)
        print(results_table(rows), flush=True)
    if skipped:
        print(f"\n(not in this simulation build: {', '.join(skipped)})")
    out.mkdir(parents=True, exist_ok=True)
    (out / "paper_table.json").write_text(json.dumps(report, indent=2))
    print(f"\nmachine: {report['machine']}; wrote {out / 'paper_table.json'}")


if __name__ == "__main__":
    main()
