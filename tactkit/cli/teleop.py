"""``tactkit teleop``: the TactAR-style teleoperation bridge, optionally recording.

    tactkit teleop --robot sim:wipe --record runs/teleop.zarr      # simulated wipe task
    tactkit headset sim --episodes 3                                # ... driven by a simulated operator
    tactkit teleop --robot sim:wipe --quest --record runs/q.zarr   # the published TactAR Quest app
    tactkit teleop --robot flexiv --keys keys/ bridge.upstream=tcp://0.0.0.0:5555 ...

Headsets connect to ``bridge.upstream`` (poses, control) and ``bridge.feedback``. Episodes
start / stop with the headset's A button (discard: B) or from the keyboard here: type
``s`` (start), ``e`` (end, success), ``f`` (end, failure), ``d`` (discard), ``q`` (quit) + Enter.
Settings: ``configs/teleop/default.yaml`` (``--config``) with ``key=value`` overrides; safety
limits from ``configs/robot/<robot>.yaml``.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("teleop", help="teleoperation bridge (headset <-> robot), recording episodes",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--robot", required=True, help="sim:<task> (e.g. sim:wipe) or a robot setup (configs/robot)")
    p.add_argument("--record", metavar="PATH", help="episode store to record into (created or appended)")
    p.add_argument("--sensors", help="sensor rig for a real robot (configs/sensor/<name>.yaml), e.g. gelsight_rig")
    p.add_argument("--config", default="default", help="teleop config name or path (default: default)")
    p.add_argument("--keys", help="CURVE key directory (tactkit keys generate); required off loopback")
    p.add_argument("--insecure", action="store_true", help="allow a non-loopback bind without CURVE")
    p.add_argument("--upstream", help="override bridge.upstream, e.g. tcp://127.0.0.1:5555")
    p.add_argument("--feedback", help="override bridge.feedback, e.g. tcp://127.0.0.1:5556")
    p.add_argument("--quest", action="store_true", help="also serve the published TactAR Quest app")
    p.add_argument("--quest-port", type=int, help="override quest.http_port (default 8082)")
    p.add_argument("--task", default="", help="task name stored with each episode (default: the sim task)")
    p.add_argument("--seed", type=int, default=0, help="scene seed of the first episode, +1 per episode (default 0)")
    p.add_argument("--scene", default=None, metavar="ENDPOINT",
                   help="sim only: where to publish what `tactkit headset sim` sees of the scene "
                        "(loopback; default tcp://127.0.0.1:5557; 'none' to not publish)")
    p.add_argument("--realtime-factor", type=float, default=1.0, help="simulation speed vs wall clock")
    p.add_argument("--exit-after-episodes", type=int, default=0, help="quit once this many are committed")
    p.add_argument("--duration", type=float, default=0.0, help="quit after this many seconds (0: never)")
    p.add_argument("--no-keyboard", action="store_true", help="do not read episode keys from stdin")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="bridge.* / quest.* set the teleop config; any other key the robot setup, as for "
                        "`tactkit control` (host=... or robot.host=..., controller.safety.max_force=30)")
    p.set_defaults(func=_teleop)


def split_overrides(items: list[str]) -> tuple[list[str], list[str]]:
    """(teleop config overrides, robot setup overrides): ``bridge.*`` / ``quest.*`` go to the
    teleop config; everything else to the robot setup, spelled as for ``tactkit control``
    (``robot.host=...`` or ``host=...``, ``controller.safety.max_force=30``)."""
    bad = [o for o in items if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument {bad[0]!r}: settings are KEY=VALUE")
    teleop = [o for o in items if o.split("=", 1)[0].split(".", 1)[0] in ("bridge", "quest")]
    return teleop, [o for o in items if o not in teleop]


def _keyboard(session, stop: threading.Event) -> None:
    keys = {"s": ("start_episode", {}), "e": ("stop_episode", {"success": True}),
            "f": ("stop_episode", {"success": False}), "d": ("discard_episode", {})}
    for line in sys.stdin:
        key = line.strip().lower()[:1]
        if key == "q":
            stop.set()
            return
        if key in keys:
            command, kwargs = keys[key]
            session.bridge.request(command, **kwargs)


def _teleop(args: argparse.Namespace) -> int:
    from tactkit.teleop.session import TeleopSession, load_teleop_config

    overrides, robot_overrides = split_overrides(args.overrides)
    for flag, key in ((args.upstream, "bridge.upstream"), (args.feedback, "bridge.feedback"),
                      (args.keys, "bridge.keys"), (args.quest_port, "quest.http_port")):
        if flag is not None:
            overrides.append(f"{key}={flag}")
    if args.insecure:
        overrides.append("bridge.insecure=true")
    config = load_teleop_config(args.config, overrides)
    scene = None
    if args.robot.startswith("sim:"):
        from tactkit.teleop.simscene import DEFAULT_SCENE_ENDPOINT

        scene = None if args.scene == "none" else (args.scene or DEFAULT_SCENE_ENDPOINT)
    elif args.scene:
        raise ValueError("--scene is for simulated robots (--robot sim:<task>)")
    session = TeleopSession(args.robot, config, record=args.record, task=args.task, seed=args.seed,
                            realtime_factor=args.realtime_factor, quest=args.quest, sensors=args.sensors,
                            robot_overrides=tuple(robot_overrides), scene=scene)
    stop = threading.Event()
    try:
        session.start()
    except BaseException:
        session.stop()
        raise
    b = session.bridge
    print(f"teleop: upstream {b.endpoints['upstream']}  feedback {b.endpoints['feedback']}  "
          f"CURVE {'on' if config.bridge.keys else 'off'}" +
          (f"  TactAR app: POST http://{config.quest.http_host}:{session.adapter.http_port}/unity"
           if session.adapter else ""), flush=True)
    if sys.stdin.isatty() and not args.no_keyboard:
        print("keys: s=start e=end(success) f=end(failure) d=discard q=quit (+Enter)", flush=True)
        threading.Thread(target=_keyboard, args=(session, stop), daemon=True).start()
    tty = sys.stderr.isatty()
    t0 = time.monotonic()
    last_print = 0.0
    try:
        while not stop.is_set():
            time.sleep(0.1)
            if b.error is not None:
                raise RuntimeError(f"bridge stopped: {b.error!r}")
            now = time.monotonic()
            if now - last_print >= (0.5 if tty else 5.0):
                line = session.status_line()
                print(("\r" + line[:160].ljust(160)) if tty else line, end="" if tty else "\n",
                      file=sys.stderr, flush=True)
                last_print = now
            rec = session.recorder
            if args.exit_after_episodes and rec is not None and rec.episodes >= args.exit_after_episodes:
                break
            if args.duration and now - t0 >= args.duration:
                break
    except KeyboardInterrupt:  # Ctrl-C is how a session ends: finish the store work, then summarise
        if tty:
            print(file=sys.stderr)
        print("teleop: stopping (Ctrl-C): an episode still recording is discarded, committed ones are kept",
              file=sys.stderr, flush=True)
    finally:
        session.stop()
        if tty:
            print(file=sys.stderr)
    print(session.summary())
    return 0
