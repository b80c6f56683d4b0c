"""``tactkit control --policy CKPT --robot sim:wipe|flexiv|franka|ur|fake [key=value ...]``.

Runs a trained policy through the real-time controller. ``sim:<task>`` runs one lockstep
episode of a simulated task (deterministic, prints the score); every other robot runs on the
wall clock, until ``--duration`` or Ctrl-C: the slow policy in its own process and the 500 Hz
robot loop (driver, interpolation, safety filter, watchdog) in another, which brakes and holds
on its own if this process dies or stalls (``--robot-loop thread`` keeps it in this process).
Settings come from ``configs/robot/<robot>.yaml`` (driver + controller + safety + watchdog)
with ``key=value`` overrides, spelled as for ``tactkit teleop``: ``robot.host=...`` (or just
``host=...``), ``controller.safety.max_force=30``.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "control",
        help="run a policy on a robot (real arm, fake arm, or sim:<task>) through the safety-filtered controller",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--policy", required=True, help="checkpoint or run directory (tactkit train output)")
    p.add_argument("--robot", required=True, help="sim:<task>, flexiv, franka, ur, fake, or a robot YAML path")
    p.add_argument("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C; sim: the episode)")
    p.add_argument("--sensor", action="append", default=[], help="sensor config (configs/sensor name or YAML), repeatable")
    p.add_argument("--perturb", default="none", help="sim only: none, before_contact or after_contact")
    p.add_argument("--seed", type=int, default=0, help="sim only: episode seed")
    p.add_argument("--device", default="cpu", help="torch device for the policy")
    p.add_argument("--robot-loop", choices=("process", "thread"), default="process",
                   help="run the robot loop in its own process (default) or in a thread of this one")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation before moving a real arm")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="robot/controller settings")
    p.set_defaults(func=_control)


def grid_for(n_markers: int) -> tuple[int, int]:
    """A marker grid (rows, cols) with ``n_markers`` markers, as square as possible (rows <= cols)."""
    for rows in range(int(n_markers ** 0.5), 1, -1):
        if n_markers % rows == 0 and n_markers // rows >= 2:
            return rows, n_markers // rows
    raise ValueError(f"no synthetic marker grid has {n_markers} markers (need rows x cols, both >= 2)")


def synthetic_sensor_configs(keys: list[str], raw_shapes: dict[str, tuple[int, ...]]) -> list:
    """Synthetic sensor configs that produce ``keys`` (camera images and tactile marker
    offsets, named as the keys name them; a tactile grid with the checkpoint's marker count)."""
    from tactkit.sensors.cameras import SyntheticCameraConfig
    from tactkit.sensors.tactile import SyntheticTactileConfig
    from tactkit.sensors.tracker import TrackerConfig

    out = []
    for key in keys:
        parts = key.split(".")
        if key.startswith("observation.images.") and len(parts) == 3:
            out.append(SyntheticCameraConfig(name=parts[2], width=160, height=120))
        elif key.startswith("observation.tactile.") and key.endswith(".marker_offset") and len(parts) == 4:
            shape = raw_shapes.get(key, (63, 2))
            out.append(SyntheticTactileConfig(name=parts[2], tracker=TrackerConfig(grid=grid_for(int(shape[0])))))
        else:
            raise ValueError(f"no synthetic sensor produces {key!r}")
    return out


def policy_sensor_keys(policy, robot) -> list[str]:
    """Keys the policy reads (observations and fast signals) that the robot's state does not
    provide: what its sensors must deliver."""
    from tactkit.store.schema import robot_state_streams

    from_robot = set(robot_state_streams(robot.arm_features(), 1.0))
    keys: list[str] = []
    for k in (*policy.obs_keys, *policy.fast_keys):
        if k not in from_robot and k not in keys:
            keys.append(k)
    return keys


def _control(args: argparse.Namespace) -> int:
    bad = [o for o in args.overrides if "=" not in o]
    if bad:
        raise ValueError(f"unexpected argument {bad[0]!r}: settings are KEY=VALUE")
    if args.robot.startswith("sim:"):
        return _control_sim(args)
    import functools

    import numpy as np

    from tactkit.policies.inference import load_policy
    from tactkit.real.robot import ROBOTS
    from tactkit.real.robot_process import RobotProcessRuntime, build_robot
    from tactkit.real.runtime import WallClockRuntime
    from tactkit.real.setup import load_robot_setup
    from tactkit.real.slow_process import SlowPolicyProcess
    from tactkit.real.summary import describe_plans, describe_safety
    from tactkit.sensors.config import build_sensor, build_sensors

    setup = load_robot_setup(args.robot, args.overrides)
    if setup.robot is None:
        raise ValueError(f"robot {args.robot!r} is a simulated robot; use --robot sim:<task>")
    safety = setup.controller.safety
    print(f"robot {setup.name} ({setup.robot_type}) at {setup.controller.robot_rate_hz:.0f} Hz; workspace "
          f"{list(safety.workspace_min)}..{list(safety.workspace_max)} m, max speed {safety.max_linear_speed} m/s, "
          f"max force {safety.max_force} N ({safety.wrench_action})")
    policy = load_policy(args.policy, device=args.device)
    robot = ROBOTS.build(setup.robot)
    sensors = build_sensors(args.sensor)
    provided = {k for s in sensors for k in s.streams()}
    missing = [k for k in policy_sensor_keys(policy, robot) if k not in provided]
    if missing and setup.robot_type == "fake":
        codec = getattr(policy, "codec", None)
        shapes = {k: tuple(spec.raw_shape) for k, spec in getattr(codec, "specs", {}).items()}
        extra = [build_sensor(cfg) for cfg in synthetic_sensor_configs(missing, shapes)]
        print("dry run: synthetic sensors for " + ", ".join(
            f"{k} ({type(cfg).__name__.removesuffix('Config')} {cfg.name!r})"
            for k, cfg in zip(missing, (s.config for s in extra))))
        sensors += extra
    elif missing:
        raise ValueError(f"the policy reads {', '.join(missing)}, which neither the robot nor the sensors "
                         f"({', '.join(sorted(provided)) or 'none given'}) provide; pass --sensor CONFIG "
                         "(configs/sensor, e.g. gelsight_rig)")
    if setup.robot_type != "fake" and not args.yes:
        if input("move the real arm under this policy? [y/N] ").strip().lower() not in ("y", "yes"):
            print("aborted")
            return 1
    slow = SlowPolicyProcess(functools.partial(load_policy, args.policy, args.device))
    for s in sensors:
        s.connect()
    if args.robot_loop == "process":  # the robot is built again in the robot process (drivers hold sockets)
        runtime = RobotProcessRuntime(functools.partial(build_robot, setup.robot), policy, setup.controller, slow, sensors)
    else:
        runtime = WallClockRuntime(robot, policy, setup.controller, slow, sensors)
    try:
        report = runtime.run(args.duration)
    except KeyboardInterrupt:
        runtime.stop()
        print("stopped", file=sys.stderr)
        return 130
    finally:
        for s in sensors:
            s.disconnect()
    r = report.robot_loop.as_ms()
    print(f"robot loop ({args.robot_loop}): {r['ticks']} ticks, {r['missed']} missed, period error p50 {r['error_p50_ms']:.3f} ms "
          f"p99 {r['error_p99_ms']:.3f} ms max {r['error_max_ms']:.3f} ms")
    st = report.stats
    lat = np.asarray(st.sample_to_command) * 1e3
    horizon = getattr(getattr(policy, "cfg", None), "horizon", None)
    print(f"{describe_plans(st.plans, st.plan_steps_dropped, horizon)}; fast steps {st.fast_steps}"
          + (f", sample->command p99 {np.percentile(lat, 99):.2f} ms" if lat.size else ""))
    print(describe_safety(st.safety, max(1, int(r["ticks"]))))
    if st.fault:
        print(f"FAULT: {st.fault}", file=sys.stderr)
        return 2
    return 0


def _control_sim(args: argparse.Namespace) -> int:
    from tactkit.experiments.evaluation import EvalSettings, run_sim_episode
    from tactkit.policies.inference import load_policy
    from tactkit.real.setup import load_robot_setup
    from tactkit.real.summary import describe_plans, describe_safety
    from tactkit.sim.perturbations import parse_modes
    from tactkit.sim.tasks import task_config

    task = args.robot.split(":", 1)[1]
    (mode,) = parse_modes(args.perturb)
    setup = load_robot_setup("sim", args.overrides)
    overrides = {"episode_s": args.duration} if args.duration else {}
    policy = load_policy(args.policy, device=args.device)
    r = run_sim_episode(task, policy, args.seed, mode, EvalSettings(setup.controller, overrides))
    print(f"{task} seed {r.seed} perturb {r.perturb}: score {r.score:.3f} (raw {r.raw_score:.3f}, "
          f"{'success' if r.success else 'failure'}); fast steps {r.fast_steps}, fault {r.fault or 'none'}; "
          f"{r.wall_s:.1f} s")
    ticks = max(1, round(task_config(task, **overrides).episode_s * setup.controller.robot_rate_hz))
    horizon = getattr(getattr(policy, "cfg", None), "horizon", None)
    print(describe_plans(r.plans, r.plan_steps_dropped, horizon))
    print(describe_safety(r.safety, ticks))
    return 0
