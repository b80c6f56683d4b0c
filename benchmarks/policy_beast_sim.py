"""BEAST beside Diffusion Policy and RDP in simulation: scores and smoothness of the commanded motion.

For one task: record scripted-expert demos (perturbation modes mixed, cameras, state,
tactile), train each policy briefly on them with the quickstart's settings
(:func:`tactkit.experiments.quickstart.train_policy`), and run each with the real controller in
lockstep on the same seeds under each perturbation mode. Reported per policy: the task
score (mean ± std, success rate) per mode, and the RMS jerk / acceleration of the commanded
TCP position at the robot rate (500 Hz, after interpolation and the safety filter), over
every episode. BEAST rows can also run with a faster fast loop (``--fast-hz 500``: its
``step`` samples the spline at the robot rate; DP's holds its chunk step) and per continuity
mode (``--beast-continuity``).

    .venv/bin/python benchmarks/policy_beast_sim.py --task wipe --demos 12 --steps 300 --episodes 3

Checkpoints and demos are kept in ``--out`` and reused when present (``--retrain`` to redo).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.sysinfo import cpu_model

LABELS = {"dp": "DP", "dp_tactile": "DP + tactile", "rdp": "RDP (tactile)", "rdp_force": "RDP (force)",
          "beast": "BEAST", "beast_tactile": "BEAST + tactile", "beast_continuous": "BEAST (continuous)"}  # fmt: skip




def run_episode(
    task_name: str, policy: Any, seed: int, perturb: str, controller: Any,
    task_overrides: dict[str, Any] | None = None,
) -> tuple[Any, np.ndarray]:
    """One lockstep episode (as :func:`tactkit.experiments.evaluation.run_sim_episode`), also
    returning the commanded TCP positions ``[ticks, 3]`` of the first arm."""
    from tactkit.experiments.evaluation import EpisodeResult, policy_needs_cameras
    from tactkit.real.runtime import LockstepRuntime
    from tactkit.sim.tasks import make_task

    task = make_task(task_name, perturb=perturb, cameras=policy_needs_cameras(policy), **(task_overrides or {}))
    cmds: list[np.ndarray] = []
    t0 = time.perf_counter()
    try:
        task.reset(seed)
        arm = task.arm_names[0]

        def on_tick(now: float, state: Any, cmd: Any) -> bool:
            cmds.append(np.array(cmd.arms[arm].tcp_target[:3], dtype=np.float64))
            return task.done

        rt = LockstepRuntime(task.robot, policy, controller, task.clock, sensors=list(task.sensors.values()),
                             advance_to=task.world.run_until)  # fmt: skip
        stats = rt.run(task.config.episode_s, on_tick=on_tick)
        info = task.evaluate()
    finally:
        task.close()
    res = EpisodeResult(
        task=task_name, perturb=perturb, seed=seed, score=float(info["score"]), success=bool(info["success"]),
        raw_score=float(info["raw_score"]), plans=stats.plans, fast_steps=stats.fast_steps,
        plan_steps_dropped=stats.plan_steps_dropped, safety=dict(stats.safety), fault=stats.fault,
        wall_s=time.perf_counter() - t0,
    )  # fmt: skip
    return res, np.asarray(cmds)


def motion_stats(paths: list[np.ndarray], dt: float) -> dict[str, float]:
    """RMS acceleration and jerk (finite differences at the robot period) over all paths."""
    acc, jerk = [], []
    for p in paths:
        if len(p) < 4:
            continue
        v = np.diff(p, axis=0) / dt
        a = np.diff(v, axis=0) / dt
        j = np.diff(a, axis=0) / dt
        acc.append(np.linalg.norm(a, axis=1))
        jerk.append(np.linalg.norm(j, axis=1))
    a, j = np.concatenate(acc), np.concatenate(jerk)
    return {"rms_acc": float(np.sqrt(np.mean(a**2))), "rms_jerk": float(np.sqrt(np.mean(j**2))),
            "p50_jerk": float(np.percentile(j, 50)), "p90_jerk": float(np.percentile(j, 90)),
            "p99_jerk": float(np.percentile(j, 99))}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--task", default="wipe")
    ap.add_argument("--policies", default="dp,rdp,beast")
    ap.add_argument("--demos", type=int, default=12)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--episodes", type=int, default=3)
    ap.add_argument("--modes", default="none,before_contact,after_contact")
    ap.add_argument("--seed0", type=int, default=1000)
    ap.add_argument("--inference-latency", type=float, default=0.1)
    ap.add_argument(
        "--fast-hz", type=float, default=0.0, help="also run --fast-policies at this fast-loop rate"
    )
    ap.add_argument(
        "--fast-policies", default="beast", help="policies also run at --fast-hz (default beast)"
    )
    ap.add_argument(
        "--beast-continuity", default="c0", help="BEAST rows per continuity mode, e.g. none,c0,c1"
    )
    ap.add_argument(
        "--train-extra", default="", help="extra KEY=VALUE training overrides, space separated"
    )
    ap.add_argument("--fixed-scene", action="store_true",
                    help="the same board and path every seed (scene_variation=0); planners see the scene state")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/beast_sim")
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args()

    import dataclasses

    import torch

    torch.set_num_threads(args.threads)
    from tactkit.experiments.evaluation import results_table, summarize
    from tactkit.experiments.quickstart import (
        QuickstartConfig,
        tactile_keys,
        train_policy,
    )
    from tactkit.policies.inference import load_policy
    from tactkit.real.setup import load_robot_setup
    from tactkit.sim.recording import record_demos

    out = Path(args.out) / args.task
    data = out / "demos.zarr"
    cfg = QuickstartConfig(task=args.task, demos=args.demos, train_steps=args.steps, size=args.size,
                           extra_train=args.train_extra.split())  # fmt: skip
    if args.fixed_scene:
        cfg.task_overrides = {"scene_variation": 0.0}
    t0 = time.perf_counter()
    if args.retrain or not data.exists():
        info = record_demos(
            args.task, args.demos, data, perturb=cfg.demo_perturb, seed=0, overwrite=True,
            cameras=cfg.cameras, noise=cfg.demo_noise, **cfg.task_overrides,
        )
        (out / "demos.json").write_text(
            json.dumps({"mean_score": info["mean_score"], "demos": args.demos})
        )
    expert = json.loads((out / "demos.json").read_text())["mean_score"]
    t_demos = time.perf_counter() - t0
    eval_overrides = {k: v for k, v in cfg.task_overrides.items() if k != "expert_feedback"}
    tactile = tactile_keys(args.task)
    controller = load_robot_setup("sim", [f"inference_latency={args.inference_latency}"]).controller
    modes = [m for m in args.modes.split(",") if m]
    rows: dict[str, list[Any]] = {}
    motion: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {"demos_s": t_demos}
    for kind in [p for p in args.policies.split(",") if p]:
        t = time.perf_counter()
        ck_dir = out / kind / ("ldp" if kind.startswith("rdp") else "")
        if args.retrain or not (ck_dir / "checkpoint" / "config.json").is_file():
            train_policy(kind, data, out / kind, cfg, tactile)
        timings[f"train_{kind}_s"] = time.perf_counter() - t
        rates = [0.0] + (
            [args.fast_hz] if args.fast_hz > 0 and kind in args.fast_policies.split(",") else []
        )
        conts = args.beast_continuity.split(",") if kind.startswith("beast") else [None]
        variants: list[tuple[str, Any, dict[str, Any]]] = []
        for cont in conts:
            for hz in rates:
                ctrl = dataclasses.replace(controller, fast_rate_hz=hz) if hz > 0 else controller
                label = LABELS.get(kind, kind) + (
                    f" {cont.upper()}" if cont and len(conts) > 1 else ""
                )
                label += f", step at {hz:.0f} Hz" if hz > 0 else ""
                variants.append((label, ctrl, {"continuity": cont} if cont else {}))
        for label, ctrl, kwargs in variants:
            policy = load_policy(ck_dir, **kwargs)
            t = time.perf_counter()
            results, paths = [], []
            for mode in modes:
                for i in range(args.episodes):
                    r, p = run_episode(args.task, policy, args.seed0 + i, mode, ctrl, eval_overrides)
                    results.append(r)
                    paths.append(p)
                    print(f"  {label:>28} {mode:>14} seed {r.seed}: score {r.score:.3f} plans {r.plans} "
                          f"fast {r.fast_steps} ({r.wall_s:.0f} s)", flush=True)  # fmt: skip
            rows[label] = results
            motion[label] = motion_stats(paths, 1.0 / controller.robot_rate_hz)
            motion[label]["safety_ticks"] = float(
                np.mean([sum(r.safety.values()) for r in results])
            )
            timings[f"eval_{label}_s"] = time.perf_counter() - t

    setting = " (fixed scene, scene state, no camera)" if args.fixed_scene else ""
    print(f"\n## {args.task}{setting}: {args.demos} demos (expert {expert:.2f}), {args.steps} training steps per stage "
          f"(size {args.size}), seeds {args.seed0}..{args.seed0 + args.episodes - 1} per mode, simulated inference "
          f"latency {args.inference_latency * 1e3:.0f} ms\n")  # fmt: skip
    print(
        f"machine: {os.cpu_count()} CPUs (`nproc`), {cpu_model()}, load average {os.getloadavg()[0]:.1f}\n"
    )
    print("### Score: mean ± std (success rate)\n")
    print(results_table(rows))
    print("\n### Commanded TCP motion (500 Hz robot loop, all episodes)\n")
    print(
        "| policy | RMS jerk (m/s³) | p50 jerk | p90 jerk | p99 jerk | RMS accel (m/s²) "
        "| safety-limited tick-limits / episode |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, m in motion.items():
        print(
            f"| {label} | {m['rms_jerk']:.0f} | {m['p50_jerk']:.0f} | {m['p90_jerk']:.0f} | {m['p99_jerk']:.0f} | {m['rms_acc']:.3f} | {m['safety_ticks']:.0f} |"
        )
    out.mkdir(parents=True, exist_ok=True)
    report = {"task": args.task, "demos": args.demos, "expert_mean_score": expert, "steps": args.steps,
              "size": args.size, "episodes": args.episodes, "modes": modes, "seed0": args.seed0,
              "inference_latency": args.inference_latency, "machine": f"{os.cpu_count()} CPUs, {cpu_model()}",
              "summary": {k: summarize(v) for k, v in rows.items()}, "motion": motion, "timings": timings}  # fmt: skip
    (out / "beast_sim.json").write_text(json.dumps(report, indent=2))
    print(f"\nwrote {out / 'beast_sim.json'}")


if __name__ == "__main__":
    main()
