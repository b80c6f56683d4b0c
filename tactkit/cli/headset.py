"""``tactkit headset``: reference headset clients for the teleoperation bridge.

    tactkit headset sim --episodes 3      # a simulated operator (scripted, noisy, delayed, feels feedback)
    tactkit headset desk                  # keyboard (or SpaceMouse) at a desk, no headset needed

Both speak the real protocol to ``tactkit teleop`` (default tcp://127.0.0.1:5555 / :5556);
with CURVE pass ``--keys DIR --client-name NAME``.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("headset", help="reference headset clients (simulated operator, desk)",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="headset_command", metavar="CLIENT", required=True)
    for name, helptext in (("sim", "simulated operator: records episodes through the bridge"),
                           ("desk", "keyboard / SpaceMouse client")):
        c = sub.add_parser(name, help=helptext)
        c.add_argument("--upstream", default="tcp://127.0.0.1:5555")
        c.add_argument("--feedback", default="tcp://127.0.0.1:5556")
        c.add_argument("--keys", help="CURVE key directory (with this client's key pair and bridge.key)")
        c.add_argument("--client-name", default="headset" if name == "sim" else "desk")
        if name == "sim":
            c.add_argument("--episodes", type=int, default=1)
            c.add_argument("--seed", type=int, default=0)
            c.add_argument("--reaction", type=float, default=0.2, help="reaction delay, s (default 0.2)")
            c.add_argument("--force", type=float, default=10.0, help="normal force the operator aims for, N")
            c.add_argument("--wipe-s", type=float, default=3.5, help="duration of the wipe stroke, s")
            c.set_defaults(func=_sim)
        else:
            c.add_argument("--step", type=float, default=0.005, help="metres per key press")
            c.set_defaults(func=_desk)


def _client(args: argparse.Namespace):
    from tactkit.teleop.client import HeadsetClient

    return HeadsetClient(args.upstream, args.feedback, keys=args.keys, client_name=args.client_name)


def _sim(args: argparse.Namespace) -> int:
    from tactkit.teleop.operator import OperatorConfig, SimOperator

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    cfg = OperatorConfig(seed=args.seed, reaction_s=args.reaction, target_force=args.force, wipe_s=args.wipe_s)
    with _client(args) as client:
        op = SimOperator(client, cfg)
        try:
            summaries = op.run(args.episodes)
        except TimeoutError as exc:
            print(f"error: {exc} (is `tactkit teleop` running at {args.upstream}?)")
            return 1
        except RuntimeError as exc:  # the bridge refused a control request
            print(f"error: {exc}")
            return 1
    for s in summaries:
        print(f"episode {s['episode']}: contact {s['contact']}, felt force in band {s['force_in_band']:.0%}, "
              f"success {s['success']}")
    return 0


def _desk(args: argparse.Namespace) -> int:
    import sys

    from tactkit.teleop.desk import run_desk

    if not sys.stdin.isatty():
        raise ValueError("tactkit headset desk needs an interactive terminal")
    with _client(args) as client:
        run_desk(client, step=args.step)
    return 0
