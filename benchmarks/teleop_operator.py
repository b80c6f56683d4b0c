"""The simulated operator's competence: task scores of teleop sessions it records.

Runs what a user runs, in two processes over real sockets on 127.0.0.1: ``tactkit teleop
--robot sim:<task> --record STORE`` and ``tactkit headset sim --episodes N``; then reads the
stored episodes' task scores (``sim_score``, normalised to the scripted expert's level) and the
operator's own verdicts. Target (issue 19): mean score >= 0.8 on wipe and peel.

    .venv/bin/python benchmarks/teleop_operator.py --tasks wipe peel --episodes 10   # ~8 min
    .venv/bin/python benchmarks/teleop_operator.py --tasks wipe --episodes 2          # ~1 min
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tactkit.store import EpisodeStore
from tactkit.sysinfo import machine_summary


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session(task: str, episodes: int, seed: int, out: Path) -> tuple[list[dict], float]:
    """Record ``episodes`` with the simulated operator; (per-episode rows, wall seconds)."""
    cli = [sys.executable, "-m", "tactkit.cli.main"]
    up, fb, scene = (f"tcp://127.0.0.1:{_port()}" for _ in range(3))
    store = out / f"{task}.zarr"
    t0 = time.monotonic()
    bridge = subprocess.Popen([*cli, "teleop", "--robot", f"sim:{task}", "--record", str(store), "--seed", str(seed),
                               "--upstream", up, "--feedback", fb, "--scene", scene, "--no-keyboard",
                               "--exit-after-episodes", str(episodes), "--duration", str(60 + 120 * episodes)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        op = subprocess.run([*cli, "headset", "sim", "--episodes", str(episodes), "--upstream", up, "--feedback", fb,
                             "--scene", scene], capture_output=True, text=True, timeout=60 + 120 * episodes)
        log, _ = bridge.communicate(timeout=120)
    finally:
        if bridge.poll() is None:
            bridge.kill()
    if op.returncode != 0 or bridge.returncode != 0:
        raise RuntimeError(f"session failed:\n{op.stdout}{op.stderr}\n--- bridge ---\n{log[-3000:]}")
    rows = []
    for ep in EpisodeStore.open(store).episodes():
        md = ep.metadata
        rows.append({"seed": md["sim_seed"], "score": md["sim_score"], "verdict": md["success"],
                     "duration": ep.duration, "lag": md.get("sim_lag_s", 0.0)})
    return rows, time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["wipe", "peel"], choices=["wipe", "peel"])
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0, help="scene seed of the first episode")
    args = ap.parse_args()
    print(f"# simulated operator over the real protocol ({machine_summary()})\n")
    print("| task | episodes | mean score | min | >= 0.8 | operator verdict success | mean sim lag | wall |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            rows, wall = session(task, args.episodes, args.seed, Path(tmp))
            scores = np.array([r["score"] for r in rows])
            print(f"| {task} | {len(rows)} | **{scores.mean():.3f}** | {scores.min():.3f} | "
                  f"{int((scores >= 0.8).sum())} | {sum(bool(r['verdict']) for r in rows)} | "
                  f"{np.mean([r['lag'] for r in rows]):.1f} s | {wall:.0f} s |", flush=True)
            for r in rows:
                print(f"<!-- {task} seed {r['seed']}: score {r['score']:.3f}, verdict {r['verdict']}, "
                      f"{r['duration']:.1f} s, sim lag {r['lag']:.1f} s -->")


if __name__ == "__main__":
    main()
