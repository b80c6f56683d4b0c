"""Scripted experts on every task x perturbation, and the reactivity gap.

For each task and seed: the expert under ``none``, ``before_contact`` and ``after_contact``,
and the open-loop replay of the ``none`` expert's actions under ``after_contact`` (same seed,
so the same scene; no feedback). Scores are normalised to the expert's level
(``expert_level`` of the task config). Cameras are off: rendering does not change the physics.

    .venv/bin/python benchmarks/sim_experts.py --seeds 50 --workers 2 --json runs/sim_experts.json
    .venv/bin/python benchmarks/sim_experts.py --from-json runs/sim_experts.json   # table only
"""

from __future__ import annotations

import argparse
import json
import os
import time
from multiprocessing import Pool

import numpy as np

from tactkit.sysinfo import machine_summary


def job(args: tuple[str, int]) -> dict:
    from tactkit.sim.tasks.evaluate import run_expert, run_open_loop

    task, seed = args
    t0 = time.process_time()
    out = {"task": task, "seed": seed}
    info, actions = run_expert(task, seed, "none", cameras=False)
    out["none"] = info["raw_score"]
    for mode in ("before_contact", "after_contact"):
        out[mode] = run_expert(task, seed, mode, cameras=False)[0]["raw_score"]
    out["open_loop"] = run_open_loop(task, seed, actions, "after_contact", cameras=False)["raw_score"]
    out["cpu_s"] = time.process_time() - t0
    return out




def table(results: list[dict]) -> str:
    from tactkit.sim.tasks import task_config

    lines = [f"machine: {machine_summary()}",
             "settings: cameras off, tactile 30 Hz, wrench 100 Hz, physics 1 kHz, expert actions 24 Hz", ""]
    lines += ["| task | perturbation | seeds | mean score | min score | success | mean raw |",
              "|---|---|---|---|---|---|---|"]
    gaps = ["| task | expert (after_contact) | open-loop replay | mean gap | min gap | seeds with gap >= 0.3 |",
            "|---|---|---|---|---|---|"]
    for task in ("wipe", "peel", "lift"):
        rs = [r for r in results if r["task"] == task]
        if not rs:
            continue
        cfg = task_config(task)

        def norm(x, level=cfg.expert_level):
            return np.minimum(1.0, np.asarray(x) / level)

        for mode in ("none", "before_contact", "after_contact", "open_loop"):
            raw = np.array([r[mode] for r in rs])
            s = norm(raw)
            label = mode if mode != "open_loop" else "after_contact, open-loop replay"
            lines.append(f"| {task} | {label} | {len(rs)} | {s.mean():.3f} | {s.min():.3f} | "
                         f"{np.mean(s >= cfg.success_threshold):.2f} | {raw.mean():.3f} |")
        e = norm([r["after_contact"] for r in rs])
        o = norm([r["open_loop"] for r in rs])
        g = e - o
        gaps.append(f"| {task} | {e.mean():.3f} | {o.mean():.3f} | {g.mean():.3f} | {g.min():.3f} | "
                    f"{np.sum(g >= 0.3)}/{len(rs)} |")
    cpu = sum(r["cpu_s"] for r in results)
    return "\n".join(lines + [""] + gaps + ["", f"total CPU time {cpu:.0f} s for {len(results) * 4} episodes"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["wipe", "peel", "lift"])
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--reverse", action="store_true", help="run seeds from the last one down (to split a run)")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json", default="", help="write (and update as jobs finish) raw results here")
    ap.add_argument("--from-json", nargs="+", default=[], help="only print the table of earlier runs (merged)")
    args = ap.parse_args()
    if args.from_json:
        merged = {(r["task"], r["seed"]): r for path in args.from_json for r in json.load(open(path))}
        print(table(sorted(merged.values(), key=lambda r: (r["task"], r["seed"]))))
        return
    seeds = range(args.seeds - 1, -1, -1) if args.reverse else range(args.seeds)
    jobs = [(t, s) for s in seeds for t in args.tasks]
    results: list[dict] = []
    from tqdm import tqdm

    with Pool(args.workers) as pool:
        for r in tqdm(pool.imap_unordered(job, jobs), total=len(jobs), desc="task x seed"):
            results.append(r)
            if args.json:
                os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
                json.dump(results, open(args.json, "w"), indent=1)
    print(table(sorted(results, key=lambda r: (r["task"], r["seed"]))))


if __name__ == "__main__":
    main()
