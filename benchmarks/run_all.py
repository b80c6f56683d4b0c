"""Run every benchmark of ``benchmarks/`` and keep each one's report (``make bench``).

    python benchmarks/run_all.py                 # full settings: the figures of docs/results.md (hours)
    python benchmarks/run_all.py --quick         # short settings: a smoke run of every script (minutes)
    python benchmarks/run_all.py --only tracker_speed,store_record --quick
    python benchmarks/run_all.py --list

Each script runs in its own process (a crash or a hang in one does not stop the others); its
output goes to ``<out>/<name>.txt`` and the summary (exit code, seconds) to ``<out>/summary.md``.
Scripts that evaluate trained checkpoints take them from ``runs/demo`` (``make demo``) and are
skipped, with a line saying so, where those do not exist. Exit code: 1 if any script failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


@dataclass(frozen=True)
class Bench:
    full: tuple[str, ...] = ()  # arguments that give the published figures
    quick: tuple[str, ...] = ()  # arguments of a short smoke run
    needs: tuple[str, ...] = field(default=())  # paths (relative to the repository) that must exist


DEMO = ("runs/demo/dp", "runs/demo/rdp/ldp")

#: every benchmark script (name = file stem) -> how to run it
BENCHES: dict[str, Bench] = {
    "beast_error_vs_n": Bench((), ("--dataset", "min_jerk/D7/T16", "--settings", "quick")),
    "controller_paper_table": Bench(
        (),
        ("--tasks", "wipe", "--policies", "dp,rdp", "--demos", "2", "--steps", "20", "--episodes", "1",
         "--modes", "none", "--workers", "1", "--out", "runs/bench_quick/paper_table")),
    "controller_soak": Bench(("--minutes", "60"), ("--minutes", "0.5", "--episode-s", "10", "--sample-s", "5")),
    "controller_timing": Bench((), ("--duration", "2", "--loads", "0")),
    "implicit_rdp_latency": Bench(("--threads", "1"), ("--threads", "1", "--iters", "20", "--plan-iters", "4",
                                                      "--seconds", "0.5", "--rates", "24,60")),
    "heldout_motions": Bench(
        ("--policy", "dp=runs/demo/dp", "--policy", "rdp=runs/demo/rdp/ldp", "--task", "wipe", "--seeds", "10"),
        ("--policy", "dp=runs/demo/dp", "--policy", "rdp=runs/demo/rdp/ldp", "--task", "wipe", "--seeds", "1",
         "--motions", "triangle", "--workers", "1"), needs=DEMO),
    "learning_curve": Bench(("--task", "wipe", "--demos", "10,25,50,100", "--episodes", "10"),
                            ("--task", "wipe", "--demos", "2", "--steps", "20", "--episodes", "1", "--modes", "none",
                             "--workers", "1", "--out", "runs/bench_quick/learning_curve")),
    "policy_beast_latency": Bench(("--threads", "1"), ("--threads", "1", "--size", "tiny", "--iters", "3",
                                                       "--step-iters", "50")),
    "policy_beast_sim": Bench(
        ("--task", "wipe", "--demos", "40", "--steps", "3000", "--episodes", "10", "--modes", "none,after_contact",
         "--policies", "dp,rdp,beast,beast_continuous"),
        ("--task", "wipe", "--demos", "2", "--steps", "20", "--episodes", "1", "--modes", "none",
         "--policies", "dp,beast", "--out", "runs/bench_quick/beast_sim")),
    "policy_latency": Bench(("--threads", "1"), ("--threads", "1", "--size", "tiny", "--iters", "20",
                                                 "--plan-iters", "4")),
    "policy_train_throughput": Bench(("--threads", "1"), ("--threads", "1", "--size", "tiny", "--steps", "3")),
    "rdp_decoder_touch": Bench(("--policy", "runs/demo/rdp/ldp", "--data", "runs/demo/demos.zarr"),
                               ("--policy", "runs/demo/rdp/ldp", "--data", "runs/demo/demos.zarr", "--every", "20"),
                               needs=("runs/demo/rdp/ldp", "runs/demo/demos.zarr")),
    "sim_experts": Bench(("--seeds", "50", "--workers", "2"), ("--seeds", "1", "--tasks", "wipe")),
    "sim_speed": Bench(),
    "store_lerobot": Bench(("--episodes", "50"), ("--synthetic", "2")),
    "store_record": Bench(("--seconds", "60"), ("--seconds", "3")),
    "store_sampler": Bench(("--budget", "10"), ("--episodes", "4", "--steps", "50", "--windows", "100",
                                                "--budget", "1")),
    "store_scale": Bench(("--sizes", "10,100,1000,10000", "--workers", "2", "--baseline-max", "100",
                          "--verify-max", "1000", "--align-max", "1000"),
                         ("--sizes", "10", "--workers", "1", "--sections", "scale")),
    "teleop_flood": Bench(("--seconds", "10", "bridge.realtime_priority=50"), ("--seconds", "2")),
    "teleop_fuzz": Bench(("--curve",), ("--messages", "2000")),
    "teleop_latency": Bench((), ("--quick",)),
    "teleop_operator": Bench(("--tasks", "wipe", "peel", "--episodes", "10"), ("--tasks", "wipe", "--episodes", "1")),
    "tokenizer_bench": Bench((), ("--quick",)),
    "tracker_accuracy": Bench((), ("--frames", "5")),
    "tracker_speed": Bench((), ("--frames", "30")),
    "transport_latency": Bench((), ("--seconds", "1")),
    "wipe_reaction": Bench(
        ("--policy", "dp=runs/demo/dp", "--policy", "rdp=runs/demo/rdp/ldp", "--withheld", "--seeds", "10", "--ctrl", "",
         "--ctrl", "plan_period=0.5", "--ctrl", "plan_period=0.5 inference_latency=0.3"),
        ("--policy", "dp=runs/demo/dp", "--policy", "rdp=runs/demo/rdp/ldp", "--seeds", "1"), needs=DEMO),
}


def scripts_on_disk() -> set[str]:
    """Names of the benchmark scripts in this directory (every one must be in BENCHES)."""
    return {p.stem for p in HERE.glob("*.py") if p.stem != "run_all"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="short smoke settings instead of the published ones")
    ap.add_argument("--only", default="", help="comma-separated script names (default: all)")
    ap.add_argument("--out", default="runs/bench", help="directory for each script's report")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per script (default: none)")
    ap.add_argument("--list", action="store_true", help="list the scripts and their arguments, run nothing")
    args = ap.parse_args(argv)

    missing = sorted(scripts_on_disk() - set(BENCHES))
    if missing:
        print(f"benchmarks/run_all.py does not know {', '.join(missing)}: add them to BENCHES", file=sys.stderr)
        return 2
    names = [n.strip() for n in args.only.split(",") if n.strip()] or sorted(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; known: {', '.join(sorted(BENCHES))}", file=sys.stderr)
        return 2
    if args.list:
        for n in names:
            b = BENCHES[n]
            print(f"{n}: {' '.join(b.quick if args.quick else b.full) or '(defaults)'}")
        return 0

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, failed = [], 0
    for n in names:
        b = BENCHES[n]
        absent = [p for p in b.needs if not (ROOT / p).exists()]
        if absent:
            print(f"{n}: skipped ({', '.join(absent)} missing: run `make demo` first)", flush=True)
            rows.append((n, "skipped", 0.0))
            continue
        cmd = [sys.executable, str(HERE / f"{n}.py"), *(b.quick if args.quick else b.full)]
        print(f"{n}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        try:
            with open(out / f"{n}.txt", "w") as log:
                rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=args.timeout).returncode
        except subprocess.TimeoutExpired:
            rc = "timeout"
        dt = time.perf_counter() - t0
        failed += rc != 0
        print(f"  -> {'ok' if rc == 0 else f'FAILED ({rc})'} in {dt:.0f} s, report {out / f'{n}.txt'}", flush=True)
        rows.append((n, "ok" if rc == 0 else f"failed ({rc})", dt))
    table = ["| benchmark | result | seconds |", "|---|---|---|", *[f"| {n} | {r} | {s:.0f} |" for n, r, s in rows]]
    (out / "summary.md").write_text(f"settings: {'quick' if args.quick else 'full'}\n\n" + "\n".join(table) + "\n")
    print("\n".join(table))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
