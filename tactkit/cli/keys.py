"""``tactkit keys generate DIR``: CURVE key pairs for the teleoperation bridge and its headsets.

Writes ``DIR/bridge.key_secret`` (stays on the workstation), ``DIR/bridge.key`` (give it to
headsets), one key pair per client and ``DIR/allowed/<client>.key`` (the allow-list the
bridge loads). Start the bridge with ``tactkit teleop --keys DIR``; a client uses
``--keys DIR --client-name NAME`` with its own ``NAME.key_secret`` and ``bridge.key``.
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("keys", help="CURVE keys for the teleoperation bridge",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="keys_command", metavar="SUBCOMMAND", required=True)
    g = sub.add_parser("generate", help="create bridge + client key pairs and the allow-list")
    g.add_argument("dir", help="directory for the keys (created)")
    g.add_argument("--clients", nargs="+", default=["headset", "quest", "desk"],
                   help="client names to create and allow (default: headset quest desk)")
    g.set_defaults(func=_generate)


def _generate(args: argparse.Namespace) -> int:
    from tactkit.teleop.security import generate_keys

    try:
        files = generate_keys(args.dir, clients=tuple(args.clients))
    except FileExistsError as exc:
        raise ValueError(str(exc)) from None
    for name, path in files.items():
        print(f"{name:>10}: {path}")
    print(f"allow-list: {args.dir}/allowed/ ({len(files) - 1} clients)")
    return 0
