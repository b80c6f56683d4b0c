"""``tactkit robot check --robot NAME [key=value ...]``: check a new arm before its first episode.

Connects, checks the installed SDK against the driver, reads state for ``--duration``
seconds (rate, latency, jitter, timestamps, fields), checks the configured workspace contains
the current pose and the wrench at rest, and shows that a stale command makes the watchdog
hold. ``--move`` also moves each arm 1 cm at low speed inside the workspace and back and sends
the watchdog demonstration to the arm. Prints a pass/fail table with what to fix; exit code 1
if any check fails.

Settings come from ``configs/robot/<NAME>.yaml`` with ``key=value`` overrides, as for
``tactkit control`` (``host=172.16.0.2``, ``controller.safety.workspace_min=[0.3,-0.3,0.05]``).
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("robot", help="check a robot arm (connection, state, workspace, watchdog, 1 cm move)")
    sub = p.add_subparsers(dest="robot_command", metavar="SUBCOMMAND", required=True)
    chk = sub.add_parser(
        "check",
        help="run the checks a lab runs on a new arm; exit 1 if any fails",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    chk.add_argument("--robot", required=True, help="flexiv, franka, ur, fake, or a robot YAML path")
    chk.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="robot/controller settings")
    chk.add_argument("--duration", type=float, default=2.0, help="seconds of state reading (default 2)")
    chk.add_argument("--move", action="store_true", help="move each arm 1 cm and back and send the watchdog test")
    chk.add_argument("--speed", type=float, default=0.01, help="peak speed of the 1 cm moves in m/s (default 0.01)")
    chk.add_argument("--yes", action="store_true", help="do not ask before moving a real arm")
    chk.set_defaults(func=_check)


def _check(args: argparse.Namespace) -> int:
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument {bad[0]!r}: settings are KEY=VALUE")
    from tactkit.real.check import (
        FAIL,
        PASS,
        CheckOptions,
        CheckResult,
        check_robot,
        format_results,
    )
    from tactkit.real.robot import ROBOTS
    from tactkit.real.setup import load_robot_setup

    setup = load_robot_setup(args.robot, args.overrides)
    if setup.robot is None:
        raise ValueError(f"robot {args.robot!r} is simulated; robot check is for real (or fake) arms")
    options = CheckOptions(duration=args.duration, move=args.move, speed=args.speed)
    ctrl = setup.controller
    robot = ROBOTS.build(setup.robot)
    print(f"tactkit robot check: {setup.name} ({setup.robot_type}) at {robot.rate_hz:.0f} Hz, "
          f"{'moving 1 cm' if args.move else 'no motion (pass --move to move 1 cm)'}")
    if args.move and setup.robot_type != "fake" and not args.yes:
        answer = input(f"move the arm {options.distance * 100:.0f} cm at {options.speed * 100:.1f} cm/s and back? "
                       "Keep the E-stop at hand. [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    results = []
    check_sdk = getattr(robot, "check_sdk", None)
    if check_sdk is not None:
        try:
            label, problems = check_sdk()
        except ImportError as exc:
            results.append(CheckResult("sdk", FAIL, str(exc), "install the driver's extra (see the message)"))
            print(format_results(results))
            return 1
        results.append(CheckResult(
            "sdk", FAIL if problems else PASS,
            f"{label}: " + ("; ".join(problems) if problems else "every call the driver makes matches its signature"),
            "install a supported SDK version (docs/robots.md)" if problems else "",
        ))
    results += check_robot(robot, ctrl.safety, ctrl.watchdog, options)
    print(format_results(results))
    return 1 if any(r.status == FAIL for r in results) else 0
