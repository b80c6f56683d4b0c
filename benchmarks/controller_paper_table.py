"""The RDP paper's comparison, in simulation, with statistics that can tell: DP, DP + tactile,
RDP (tactile), RDP (force) (and ImplicitRDP, BEAST with --policies) on wipe, peel and lift.

For every task: record scripted-expert demos (random scenes, every perturbation mode, the
after-contact motions drawn from the training family, DART noise), train every policy on the
same demos (two at a time), and evaluate each with the real controller in lockstep under
none / before_contact / after_contact on the same seeds (>= 10 per cell, paired), at the RDP
paper's timing (``paper``: RDP every 0.67 s, DP every 1.25 s at 12 Hz, 167 ms latency) and,
with ``--sweep``, with every policy planning every 0.25 / 0.5 / 1.0 s. Prints per task and
schedule a table of means with 95% bootstrap intervals, the share of robot ticks a motion limit
bound, wrench-limit ticks and the largest contact force, and the paired differences to DP;
writes ``<out>/paper_table.json`` and ``<out>/paper_table.md``. One torch thread per process::

    .venv/bin/python benchmarks/controller_paper_table.py                       # the full table (2 CPUs: see docs/results.md)
    .venv/bin/python benchmarks/controller_paper_table.py --tasks wipe --sweep  # one task with the timing sweep
    .venv/bin/python benchmarks/controller_paper_table.py --observations camera --tasks peel
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

POLICIES = ("dp", "dp_tactile", "rdp", "rdp_force")
LABELS = {"dp": "DP", "dp_tactile": "DP + tactile", "rdp": "RDP (tactile)", "rdp_force": "RDP (force)",
          "implicit_rdp": "ImplicitRDP", "beast": "BEAST", "beast_tactile": "BEAST + tactile",
          "beast_continuous": "BEAST (continuous)", "rdp_plan_touch": "RDP (touch in the planner)"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", default="wipe,peel,lift")
    ap.add_argument("--policies", default=",".join(POLICIES))
    ap.add_argument("--demos", type=int, default=40)
    ap.add_argument("--noise", type=float, default=0.001, help="DART noise while recording, m")
    ap.add_argument("--steps", type=int, default=3000, help="training steps per stage")
    ap.add_argument("--size", default="tiny")
    ap.add_argument("--episodes", type=int, default=10, help="paired seeds per perturbation mode")
    ap.add_argument("--modes", default="all", help="perturbation modes (default all)")
    ap.add_argument("--observations", default="state", choices=["state", "camera"])
    ap.add_argument("--sweep", action="store_true", help="also evaluate at plan periods 0.25 / 0.5 / 1.0 s")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="runs/paper_table")
    args = ap.parse_args(argv)

    import logging

    from tactkit.experiments.evaluation import SCHEDULES, differences_table, results_table
    from tactkit.experiments.quickstart import QuickstartConfig, comparison_summary, run_comparison
    from tactkit.sim.perturbations import parse_modes
    from tactkit.sysinfo import machine_summary

    logging.getLogger("tactkit.real.safety").setLevel(logging.ERROR)
    policies = tuple(p for p in args.policies.split(",") if p)
    schedules = ("paper", "0.25", "0.5", "1.0") if args.sweep else ("paper",)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    header = (f"machine: {machine_summary()}; {args.demos} demos (DART {args.noise * 1e3:.1f} mm), {args.steps} "
              f"training steps per stage, size {args.size}, {args.episodes} paired seeds per mode, "
              f"observations: {args.observations}")
    print(header, flush=True)
    report: dict = {"header": header, "args": vars(args), "tasks": {}}
    md = [f"# The paper's table in simulation\n\n{header}\n\ncommand: `python benchmarks/controller_paper_table.py "
          f"{' '.join(argv) if argv is not None else ''}`\n"]
    t_all = time.perf_counter()
    for task in args.tasks.split(","):
        cfg = QuickstartConfig(task=task, demos=args.demos, train_steps=args.steps, size=args.size,
                               episodes=args.episodes, modes=parse_modes(args.modes), demo_noise=args.noise,
                               observations=args.observations, out=out / task, workers=args.workers)
        c = run_comparison(cfg, policies, schedules)
        report["tasks"][task] = comparison_summary(cfg, c)
        for name in schedules:
            rows = {LABELS.get(k, k): v for k, v in c.rows[name].items()}
            table = results_table(rows)
            diffs = differences_table(rows, LABELS["dp"]) if "dp" in policies and len(policies) > 1 else ""
            title = (f"## {task}, {SCHEDULES[name].describe()}; expert {c.demo_info['mean_score']:.2f}; "
                     f"{c.timings['total_s'] / 60:.1f} min for the task")
            print(f"\n{title}\n\n{table}\n\n{diffs}", flush=True)
            md += [title, "", table, "", diffs, ""]
    minutes = (time.perf_counter() - t_all) / 60
    md.append(f"Total: {minutes:.1f} min.")
    report["total_min"] = minutes
    (out / "paper_table.json").write_text(json.dumps(report, indent=2))
    (out / "paper_table.md").write_text("\n".join(md) + "\n")
    print(f"\n{minutes:.1f} min; wrote {out / 'paper_table.json'} and {out / 'paper_table.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
