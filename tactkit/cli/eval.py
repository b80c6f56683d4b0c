"""``tactkit eval --policy CKPT --task wipe|peel|lift --episodes N --perturb none|before_contact|after_contact|all``.

Closed-loop evaluation in simulation with the real controller in lockstep (the slow policy's
inference latency simulated). Seeds ``--seed0 .. --seed0+N-1`` are shared by every mode and
every ``--policy`` (repeat it, optionally as LABEL=PATH, to compare policies side by side), so
comparisons are paired: the table gives each mean with its 95% bootstrap interval, and the
paired differences to the first policy. ``--schedule`` sets when each policy plans (default
``paper``: the RDP paper's timing; 0.25 / 0.5 / 1.0: every policy plans that often).
``--workers N`` runs episodes in N processes (same results as a serial run). ``--out DIR``
writes results.json (and ``--video`` one MP4 per episode).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval",
        help="evaluate policies in simulation (lockstep controller, perturbations, results table)",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policy", action="append", required=True, help="checkpoint/run dir, or LABEL=PATH; repeatable")
    p.add_argument("--task", required=True, help="simulated task: wipe, peel or lift")
    p.add_argument("--episodes", type=int, default=10, help="seeds per perturbation mode (default 10)")
    p.add_argument("--perturb", default="all", help="none, before_contact, after_contact or all (default)")
    p.add_argument("--seed0", type=int, default=1000, help="first episode seed (default 1000)")
    p.add_argument("--schedule", default="paper",
                   help="when policies plan: paper (default; fast-loop policies every 0.67 s, chunk-executing ones "
                        "every 1.25 s, 167 ms latency) or 0.25 / 0.5 / 1.0 (every policy, s)")
    p.add_argument("--workers", type=int, default=1, help="parallel episode processes (default 1)")
    p.add_argument("--inference-latency", default=None,
                   help="simulated slow-policy latency in s, or 'measured' (timed once on this machine)")
    p.add_argument("--video", action="store_true", help="write an MP4 of the external camera per episode (needs --out)")
    p.add_argument("--rerun", default=None, metavar="FILE.rrd",
                   help="log every episode to a rerun recording: measured vs commanded pose, force, plans, cameras, touch")
    p.add_argument("--out", default=None, help="directory for results.json and videos")
    p.add_argument("--device", default="cpu", help="torch device for the policies")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: lockstep inference of small nets)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="controller settings (configs/robot/sim.yaml), or task.FIELD=VALUE for the task")
    p.set_defaults(func=_eval)


def _parse_policies(specs: list[str]) -> dict[str, str]:
    from pathlib import Path

    out: dict[str, str] = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep:
            path = spec
            label = Path(spec.rstrip("/")).name or spec
        if label in out:
            raise ValueError(f"--policy label {label!r} given twice; use LABEL=PATH")
        out[label] = path
    return out


def run_summaries(task: str, task_overrides: dict, rows: dict, robot_rate_hz: float) -> str:
    """Per policy: its safety-filter counts and dropped plan steps, summed over its episodes,
    as shares of the robot ticks they ran (:mod:`tactkit.real.summary`)."""
    from collections import Counter

    from tactkit.real.summary import describe_plans, describe_safety
    from tactkit.sim.tasks import task_config

    ticks_per_episode = max(1, round(task_config(task, **task_overrides).episode_s * robot_rate_hz))
    out = []
    for label, results in rows.items():
        safety: Counter = Counter()
        for r in results:
            safety.update(r.safety)
        plans, dropped = sum(r.plans for r in results), sum(r.plan_steps_dropped for r in results)
        ticks = sum(getattr(r, "ticks", 0) for r in results) or ticks_per_episode * len(results)
        out.append(f"{label} ({len(results)} episodes):")
        out.append("  " + describe_safety(safety, ticks).replace("\n", "\n  "))
        out.append("  " + describe_plans(plans, dropped))
    return "\n".join(out)


def _eval(args: argparse.Namespace) -> int:
    import dataclasses
    import json
    from pathlib import Path

    import yaml

    from tactkit.sim.tasks import TASKS

    if args.task not in TASKS:  # bad input first: before the heavy imports
        raise KeyError(f"unknown task {args.task!r}; known: {', '.join(sorted(TASKS))}")
    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    if args.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {args.workers}")
    if args.rerun and args.workers > 1:
        raise ValueError("--rerun logs episodes as they run in this process: use it with --workers 1")
    if args.video and not args.out:
        raise ValueError("--video needs --out DIR to write the videos to")
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument {bad[0]!r}: settings are KEY=VALUE")
    from tqdm import tqdm

    from tactkit.experiments.evaluation import (
        SCHEDULES,
        EvalSettings,
        PolicySource,
        differences_table,
        episode_rows,
        evaluate_policy,
        first_window,
        measure_inference_latency,
        results_table,
        schedule_controller,
        summarize,
    )
    from tactkit.real.setup import load_robot_setup
    from tactkit.sim.perturbations import parse_modes

    if args.schedule not in SCHEDULES:
        raise ValueError(f"--schedule must be one of {', '.join(SCHEDULES)}, got {args.schedule!r}")
    task_over = {o.split("=", 1)[0][5:]: yaml.safe_load(o.split("=", 1)[1]) for o in args.overrides if o.startswith("task.")}
    ctrl_over = [o for o in args.overrides if not o.startswith("task.")]
    modes = parse_modes(args.perturb)
    policies = _parse_policies(args.policy)
    import logging

    import torch

    torch.set_num_threads(max(1, args.threads))
    if not getattr(args, "verbose", 0):  # limit hits are counted per episode in results.json
        logging.getLogger("tactkit.real.safety").setLevel(logging.ERROR)
    out = Path(args.out) if args.out else None
    schedule = SCHEDULES[args.schedule]
    rerun_log = None
    if args.rerun:
        from tactkit.experiments.viewer import RerunEvalLog

        rerun_log = RerunEvalLog(args.rerun)
    rows = {}
    all_results = {}
    for label, path in policies.items():
        source = PolicySource(path, (("device", args.device),))
        policy = source.build()
        base = load_robot_setup("sim", ctrl_over).controller
        controller = schedule_controller(base, schedule, policy)
        # explicit controller settings win over the schedule
        controller = load_robot_setup("sim", [f"plan_period={controller.plan_period}",
                                              f"inference_latency={controller.inference_latency}", *ctrl_over]).controller
        if args.inference_latency == "measured":
            latency = measure_inference_latency(policy, first_window(args.task, policy, overrides=task_over))
            print(f"{label}: measured inference latency {latency * 1e3:.1f} ms (plan, median of 3)")
            controller = dataclasses.replace(controller, inference_latency=latency)
        elif args.inference_latency is not None:
            controller = dataclasses.replace(controller, inference_latency=float(args.inference_latency))
        settings = EvalSettings(controller, task_over, (out / "videos" / label) if args.video and out else None,
                                torch_threads=max(1, args.threads))
        print(f"{label}: plan every {controller.plan_period:.2f} s, inference latency "
              f"{controller.inference_latency * 1e3:.0f} ms ({args.schedule} schedule)")
        if rerun_log is not None:
            rerun_log.label = label
            settings.observers.append(rerun_log)
        total = args.episodes * len(modes)
        with tqdm(total=total, desc=f"{label} {args.task}", unit="ep") as bar:
            def progress(r, bar=bar, label=label) -> None:
                bar.update(1)
                bar.set_postfix(perturb=r.perturb, score=f"{r.score:.2f}")
                tqdm.write(f"  {label} {r.perturb:>14} seed {r.seed}: score {r.score:.3f} "
                           f"({'ok' if r.success else 'fail'}) plans {r.plans} fast {r.fast_steps} "
                           f"max force {r.max_force:.0f} N" + (f" FAULT {r.fault}" if r.fault else ""))

            results = evaluate_policy(args.task, source if args.workers > 1 else policy, args.episodes, modes,
                                      settings, args.seed0, progress, workers=args.workers)
        rows[label] = results
        all_results[label] = {"path": path, "summary": summarize(results), "episodes": episode_rows(results),
                              "plan_period": controller.plan_period,
                              "inference_latency": controller.inference_latency}
    if rerun_log is not None:
        rerun_log.close()
        print(f"wrote {args.rerun}")
    print(f"\n{args.task}: mean score [95% bootstrap interval] (success rate), {args.episodes} paired seeds from "
          f"{args.seed0} per mode; {schedule.describe()}\n")
    print(results_table(rows))
    if len(rows) > 1:
        print()
        print(differences_table(rows, next(iter(rows))))
    print()
    print(run_summaries(args.task, task_over, rows, controller.robot_rate_hz))
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps({"task": args.task, "schedule": args.schedule,
                                                      "policies": all_results}, indent=2))
        print(f"\nwrote {out / 'results.json'}")
    return 0
