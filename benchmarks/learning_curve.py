"""Score against the number of demonstrations, for DP and RDP (the quickstart's settings).

For each demo count: record that many scripted-expert demos (random scenes, every mode,
after-contact motions from the family, DART noise), train DP and RDP on them, evaluate both on
the same seeds under ``--modes`` at the paper's timing, and print one row per count: each
policy's mean score [95% bootstrap interval] per mode and the paired difference RDP − DP::

    .venv/bin/python benchmarks/learning_curve.py --task wipe --demos 10,25,50,100 --episodes 10
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="wipe")
    ap.add_argument("--demos", default="10,25,50,100", help="demo counts, comma-separated")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--modes", default="none,after_contact")
    ap.add_argument("--policies", default="rdp,dp")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="runs/learning_curve")
    args = ap.parse_args(argv)

    import logging

    from tactkit.experiments.evaluation import paired_differences, summarize
    from tactkit.experiments.quickstart import QuickstartConfig, run_comparison
    from tactkit.sim.perturbations import parse_modes
    from tactkit.sysinfo import machine_summary

    logging.getLogger("tactkit.real.safety").setLevel(logging.ERROR)
    policies = tuple(p for p in args.policies.split(",") if p)
    modes = parse_modes(args.modes)
    counts = [int(n) for n in args.demos.split(",")]
    print(f"machine: {machine_summary()}; {args.task}, {args.steps} steps per stage, {args.episodes} paired seeds per "
          f"mode, paper schedule", flush=True)
    cols = [f"{p} {m}" for p in policies for m in modes]
    diff = len(policies) > 1
    print("\n| demos | " + " | ".join(cols) + (f" | {policies[0]} − {policies[1]} all |" if diff else " |"))
    print("|---|" + "---|" * (len(cols) + int(diff)))
    report = {}
    for n in counts:
        t0 = time.perf_counter()
        cfg = QuickstartConfig(task=args.task, demos=n, train_steps=args.steps, episodes=args.episodes, modes=modes,
                               out=Path(args.out) / f"{args.task}_{n}", workers=args.workers)
        rows = run_comparison(cfg, policies, ("paper",), say=lambda s: None).rows["paper"]
        summ = {k: summarize(v) for k, v in rows.items()}
        cells = [f"{summ[p][m]['score']:.2f} [{summ[p][m]['ci'][0]:.2f}, {summ[p][m]['ci'][1]:.2f}]"
                 for p in policies for m in modes]
        d = paired_differences(rows, policies[1])[policies[0]]["all" if len(modes) > 1 else modes[0]] if diff else None
        print(f"| {n} | " + " | ".join(cells) + (f" | {d.fmt(signed=True)} |" if d else " |"), flush=True)
        report[n] = {"summary": summ, "minutes": (time.perf_counter() - t0) / 60}
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / f"{args.task}.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
