"""Trained policies on after-contact motions no training code generated (generalisation).

For each held-out motion of :mod:`tactkit.experiments.heldout_motions` (chirp, triangle,
square, sawtooth, bumps: the training family's size and speed, other shapes) and, as the
reference, the training family itself, evaluate every ``--policy`` under ``after_contact`` on
the same seeds at a schedule, and print mean scores with 95% bootstrap intervals and the paired
difference of each policy to the first one::

    .venv/bin/python benchmarks/heldout_motions.py --policy dp=runs/paper_table/wipe/dp \\
        --policy rdp=runs/paper_table/wipe/rdp/ldp --task wipe --seeds 10
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--policy", action="append", required=True, help="LABEL=CHECKPOINT_DIR (repeatable; first = reference)")
    ap.add_argument("--task", default="wipe")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--seed0", type=int, default=2000, help="first seed (default 2000: not the demos' nor eval's)")
    ap.add_argument("--schedule", default="paper")
    ap.add_argument("--motions", default="family,chirp,triangle,square,sawtooth,bumps")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)

    import logging

    from tactkit.experiments.evaluation import (
        SCHEDULES,
        EvalSettings,
        PolicySource,
        evaluate_policy,
        paired_differences,
        schedule_controller,
    )
    from tactkit.experiments.stats import bootstrap_mean
    from tactkit.real.setup import load_robot_setup
    from tactkit.sysinfo import machine_summary

    logging.getLogger("tactkit.real.safety").setLevel(logging.ERROR)
    sources = {}
    for spec in args.policy:
        label, sep, path = spec.partition("=")
        if not sep:
            ap.error(f"--policy needs LABEL=CHECKPOINT_DIR, got {spec!r}")
        sources[label] = PolicySource(path)
    base = load_robot_setup("sim").controller
    print(f"machine: {machine_summary()}; {args.task}, after_contact, seeds {args.seed0}-{args.seed0 + args.seeds - 1}, "
          f"{SCHEDULES[args.schedule].describe()}\n")
    labels = list(sources)
    print("| motion | " + " | ".join(labels) + " | " + " | ".join(f"{lab} − {labels[0]}" for lab in labels[1:]) + " |")
    print("|---|" + "---|" * (2 * len(labels) - 1))
    for motion in args.motions.split(","):
        spec = "family" if motion == "family" else f"tactkit.experiments.heldout_motions:{motion}"
        rows = {}
        for label, src in sources.items():
            policy = src.build()
            settings = EvalSettings(schedule_controller(base, args.schedule, policy), {"motion": spec})
            rows[label] = evaluate_policy(args.task, src, args.seeds, ("after_contact",), settings, args.seed0,
                                          workers=args.workers)
        means = [bootstrap_mean([r.score for r in rows[lab]]).fmt() for lab in labels]
        diffs = paired_differences(rows, labels[0]) if len(labels) > 1 else {}
        print(f"| {motion} | " + " | ".join(means) + " | "
              + " | ".join(diffs[lab]["after_contact"].fmt(signed=True) for lab in labels[1:]) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
