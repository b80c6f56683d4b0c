"""How trained policies react to the after-contact board motion of ``wipe``.

For each checkpoint (``--policy name=DIR``; RDP: its ``ldp`` directory) and each controller
setting (``--ctrl "key=value ..."``, default the sim robot's), runs lockstep episodes on eval
seeds 1000... and reports, besides the score, how the commanded TCP height follows the true
board height after contact (``after_contact`` episodes, from 1 s after first contact to the end
of the path):

* **follow slope**: least-squares slope of the commanded z on the board height (1 = the
  command moves with the board; 0 = it ignores it);
* **lag**: the delay (ms) at which the commanded z correlates best with the board height;
* **force RMS error** around the expert's 10 N and the fraction of that time in the 5-15 N band.

``--withheld`` adds, for every RDP checkpoint, the same policy with its fast signal withheld at
run time (each step decodes with the last signal its plan saw), which isolates what the fast
loop contributes. One torch thread::

    .venv/bin/python benchmarks/wipe_reaction.py --policy dp=runs/demo/dp --policy rdp=runs/demo/rdp/ldp --withheld
    .venv/bin/python benchmarks/wipe_reaction.py --policy dp=runs/demo/dp --ctrl "plan_period=0.5 inference_latency=0.3"
    .venv/bin/python benchmarks/wipe_reaction.py --policy dp=runs/demo/dp --task perturb_speed=4
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

FOLLOW_FROM_CONTACT_S = 1.0  # the board starts moving 0.3-0.8 s after first contact
PATH_END_S = 7.4  # the expert's path ends at 7.6 s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--policy", action="append", required=True, help="name=CHECKPOINT_DIR (repeatable)")
    ap.add_argument("--ctrl", action="append", default=None, help='controller overrides, e.g. "plan_period=0.5"')
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--withheld", action="store_true", help="also run every rdp* policy with its fast signal withheld")
    ap.add_argument("--inference-latency", type=float, default=0.1)
    ap.add_argument("--task", nargs="*", default=[], metavar="KEY=VALUE",
                    help="wipe task overrides, e.g. perturb_speed=4 or scene_variation=0")
    args = ap.parse_args()

    import torch

    from tactkit.config import parse_overrides
    from tactkit.experiments.evaluation import (
        EvalSettings,
        FastSignalWithheld,
        evaluate_policy,
        surface_follow,
    )
    from tactkit.policies.inference import load_policy
    from tactkit.real.setup import load_robot_setup
    from tactkit.sysinfo import machine_summary

    torch.set_num_threads(1)
    task = parse_overrides(args.task)
    policies: dict[str, Any] = {}
    for spec in args.policy:
        name, _, path = spec.partition("=")
        if not path:
            ap.error(f"--policy needs name=CHECKPOINT_DIR, got {spec!r}")
        policies[name] = load_policy(path)
        if args.withheld and name.startswith("rdp"):
            policies[f"{name}, fast signal withheld"] = FastSignalWithheld(policies[name])
    print(f"machine: {machine_summary()}; torch {torch.__version__}, one thread")
    for ctrl in args.ctrl or [""]:
        over = [f"inference_latency={args.inference_latency}", *ctrl.split()]
        settings = EvalSettings(load_robot_setup("sim", over).controller, dict(task), trace=True)
        print(f"\n## wipe, {task}; controller {' '.join(over)}; eval seeds 1000-{999 + args.seeds}\n")
        print("| policy | none | after_contact (per seed) | follow slope | lag (ms) | force RMS error (N) | in band |")
        print("|---|---|---|---|---|---|---|")
        for name, policy in policies.items():
            none = evaluate_policy("wipe", policy, args.seeds, ("none",), settings, seed0=1000)
            after = evaluate_policy("wipe", policy, args.seeds, ("after_contact",), settings, seed0=1000)
            fm = [surface_follow(r.trace, FOLLOW_FROM_CONTACT_S, PATH_END_S, 10.0, (5.0, 15.0)) for r in after]
            mean = {k: float(np.mean([x[k] for x in fm])) for k in fm[0]}
            per_seed = " / ".join(f"{r.score:.2f}" for r in after)
            print(f"| {name} | {np.mean([r.score for r in none]):.2f} | {np.mean([r.score for r in after]):.2f} ({per_seed}) | "
                  f"{mean['slope']:.2f} | {mean['lag_ms']:.0f} | {mean['force_rms']:.1f} | {mean['in_band']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
