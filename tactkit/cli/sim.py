"""``tactkit sim``: record scripted-expert demos, view an episode, evaluate experts."""

from __future__ import annotations

import argparse
from typing import Any


def _overrides(items: list[str]) -> dict[str, Any]:
    from tactkit.config import parse_overrides

    return parse_overrides(items or [])


def _demos(args: argparse.Namespace) -> int:
    from tactkit.cli.dataset import _check_overwrite
    from tactkit.sim.recording import record_demos

    _check_overwrite(args.out, args.overwrite)
    overrides = _overrides(args.set)
    if args.no_cameras:
        overrides["cameras"] = False
    summary = record_demos(args.task, args.episodes, args.out, perturb=args.perturb, seed=args.seed,
                           overwrite=args.overwrite, progress=True, noise=args.noise, noise_tau=args.noise_tau,
                           min_score=args.min_score, **overrides)
    print(f"recorded {summary['episodes']} {args.task} episodes to {summary['out']}: "
          f"mean score {summary['mean_score']:.3f}, min {summary['min_score']:.3f}"
          + (f"; discarded seeds {summary['discarded_seeds']}" if summary["discarded_seeds"] else ""))
    return 0


def _view(args: argparse.Namespace) -> int:
    from tactkit.sim.view import render_episode

    info = render_episode(args.task, args.out, seed=args.seed, perturb=args.perturb, frames=args.frames,
                          **_overrides(args.set))
    print(f"wrote {args.out} (score {info['score']:.3f}, success {info['success']})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    sim = subparsers.add_parser("sim", help="PyBullet simulation: expert demos, episode viewer")
    sub = sim.add_subparsers(dest="sim_command", metavar="SIM_COMMAND", required=True)

    d = sub.add_parser("demos", help="record scripted-expert episodes into an episode store")
    d.add_argument("--task", required=True, choices=["wipe", "peel", "lift"])
    d.add_argument("--episodes", type=int, default=50)
    d.add_argument("--out", required=True, help="episode store path (directory or fsspec URL)")
    d.add_argument("--perturb", default="mixed",
                   help="none | before_contact | after_contact | mixed (cycle through the three) | a comma-separated list (cycled)")
    d.add_argument("--seed", type=int, default=0, help="seed of the first episode (+1 per episode)")
    d.add_argument("--no-cameras", action="store_true", help="skip rendering (no image streams)")
    d.add_argument("--noise", type=float, default=0.0,
                   help="DART noise injection: std (m) of a disturbance of the executed positions; the "
                        "expert's own actions are recorded (default 0: none)")
    d.add_argument("--noise-tau", type=float, default=0.3, help="correlation time (s) of the noise (default 0.3)")
    d.add_argument("--min-score", type=float, default=None,
                   help="discard episodes the expert scores below this and record the next seed instead")
    d.add_argument("--overwrite", action="store_true", help="replace the store at --out if it exists")
    d.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="task config overrides, e.g. camera_rate_hz=24")
    d.set_defaults(func=_demos)

    v = sub.add_parser("view", help="save an image strip (.png) or video (.mp4) of an expert episode")
    v.add_argument("--task", required=True, choices=["wipe", "peel", "lift"])
    v.add_argument("--out", required=True)
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--perturb", default="after_contact")
    v.add_argument("--frames", type=int, default=8)
    v.add_argument("--set", nargs="*", metavar="KEY=VALUE")
    v.set_defaults(func=_view)
