"""``tactkit headset``: reference headset clients for the teleoperation bridge.

    tactkit headset sim --episodes 3      # a simulated operator: sees the sim scene, feels the feedback
    tactkit headset desk                  # keyboard (or SpaceMouse) at a desk, no headset needed

Both speak the real protocol to ``tactkit teleop`` (default tcp://127.0.0.1:5555 / :5556);
with CURVE pass ``--keys DIR --client-name NAME``. The simulated operator also reads what a
person would see of a simulated scene (the wipe path, the peel arc) from ``tactkit teleop
--robot sim:wipe|peel`` (``--scene``, default tcp://127.0.0.1:5557), and acts only through
the headset protocol and the clutch.
"""

from __future__ import annotations

import argparse
import sys


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
            from tactkit.teleop.simscene import DEFAULT_SCENE_ENDPOINT

            c.add_argument("--episodes", type=int, default=1)
            c.add_argument("--seed", type=int, default=0, help="the operator's own randomness (tremor, pace)")
            c.add_argument("--scene", default=DEFAULT_SCENE_ENDPOINT,
                           help=f"where `tactkit teleop` publishes the sim scene (default {DEFAULT_SCENE_ENDPOINT})")
            c.add_argument("--reaction", type=float, default=0.2, help="reaction delay, s (default 0.2)")
            c.add_argument("--force", type=float, default=None,
                           help="normal force the operator aims for, N (default: the middle of the task's band)")
            c.add_argument("--sweep-s", "--wipe-s", type=float, default=6.0, dest="sweep_s",
                           help="duration of the sweep along the path, s of robot time (default 6)")
            c.set_defaults(func=_sim)
        else:
            c.add_argument("--step", type=float, default=0.005, help="metres per key press")
            c.set_defaults(func=_desk)


def _client(args: argparse.Namespace):
    from tactkit.teleop.client import HeadsetClient

    return HeadsetClient(args.upstream, args.feedback, keys=args.keys, client_name=args.client_name)


def _sim(args: argparse.Namespace) -> int:
    from tactkit.teleop.operator import OperatorConfig, SimOperator
    from tactkit.teleop.simscene import SceneSubscriber

    if args.episodes < 1:
        raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
    cfg = OperatorConfig(seed=args.seed, reaction_s=args.reaction, target_force=args.force, sweep_s=args.sweep_s)
    scene = SceneSubscriber(args.scene)
    try:
        with _client(args) as client:
            op = SimOperator(client, scene, cfg)
            try:
                summaries = op.run(args.episodes)
            except TimeoutError as exc:
                print(f"error: {exc} (is `tactkit teleop --robot sim:<task>` running at {args.upstream}?)",
                      file=sys.stderr)
                return 1
            except RuntimeError as exc:  # the bridge refused a control request
                print(f"error: {exc}", file=sys.stderr)
                return 1
    finally:
        scene.close()
    for s in summaries:
        score = "n/a" if s["task_score"] is None else f"{s['task_score']:.3f}"
        print(f"episode {s['episode']} (scene seed {s['seed']}): operator verdict {s['verdict']} "
              f"(contact {s['contact']}, felt force in band {s['force_in_band']:.0%}"
              + (f", clutch squeezed again {s['reclutches']}x" if s["reclutches"] else "") + f"); task score {score}")
    return 0


def _desk(args: argparse.Namespace) -> int:
    from tactkit.teleop.desk import run_desk

    if not sys.stdin.isatty():
        raise ValueError("tactkit headset desk needs an interactive terminal")
    with _client(args) as client:
        run_desk(client, step=args.step)
    return 0
