"""``tactkit demo``: the quickstart - simulated demos, RDP and DP trained briefly, compared.

``make demo`` runs this: record scripted-expert demonstrations of a simulated contact task
(random scenes, the after-contact motions drawn from a family, DART noise), train Reactive
Diffusion Policy and Diffusion Policy, evaluate both with the real controller in lockstep on
the same seeds under every perturbation mode at the RDP paper's timing, print the comparison
(means with 95% bootstrap intervals and paired differences) and write ``<out>/report.md`` with
plots. Sized for 2 CPU cores: under 10 minutes with the defaults.

``tactkit demo --seconds S [--out STORE]`` instead records one synthetic multi-rate rig
episode (2 cameras, 2 tactile pads, wrench, robot state) into an episode store and prints
its summary - the episode-store walkthrough.
"""

from __future__ import annotations

import argparse

DEFAULT_OUT = "runs/demo"
DEFAULT_STORE = "runs/demo/store.zarr"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo",
        help="quickstart: sim demos -> train RDP and DP -> paired closed-loop comparison under perturbation + report",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", default=None, help=f"output directory (default {DEFAULT_OUT}; with --seconds: "
                                               f"the store, default {DEFAULT_STORE})")
    p.add_argument("--task", default="wipe", help="simulated task: wipe (default), peel or lift")
    p.add_argument("--demos", type=int, default=40, help="expert demonstrations to record (default 40)")
    p.add_argument("--noise", type=float, default=0.001, help="DART noise while recording the demos, m (default 0.001)")
    p.add_argument("--steps", type=int, default=3000, help="training steps per stage (default 3000)")
    p.add_argument("--size", default="tiny", help="network size: tiny, small or paper (default tiny)")
    p.add_argument("--episodes", type=int, default=10, help="paired evaluation seeds per perturbation mode (default 10)")
    p.add_argument("--perturb", default="all", help="none, before_contact, after_contact, a comma-separated list, or all (default)")
    p.add_argument("--policies", default="rdp,dp", help="compared policies: rdp, rdp_force, rdp_plan_touch, dp, dp_tactile, beast, beast_tactile, beast_continuous, implicit_rdp (default rdp,dp)")
    p.add_argument("--observations", default="state", choices=["state", "camera"],
                   help="what planners see besides the TCP pose: the scene state (default) or the external camera")
    p.add_argument("--schedule", default="paper",
                   help="when policies plan: paper (default: RDP every 0.67 s, DP every 1.25 s) or 0.25 / 0.5 / 1.0 s")
    p.add_argument("--workers", type=int, default=2, help="processes for training and evaluation (default 2)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per process (default 1)")
    p.add_argument("--seconds", type=float, default=None, help="record one synthetic rig episode of this length instead")
    p.add_argument("--seed", type=int, default=0, help="seed of the first demonstration")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.seconds is not None:
        return _synthetic_store_demo(args)
    from pathlib import Path

    from tactkit.cli._extras import require

    require("matplotlib", "viz", "tactkit demo (the report's plots)")
    from tactkit.experiments.quickstart import QuickstartConfig, policy_overrides, run_quickstart
    from tactkit.sim.perturbations import parse_modes

    policies = tuple(p.strip() for p in args.policies.split(",") if p.strip())
    for p in policies:
        policy_overrides(p, "observation.tactile.x.marker_offset")  # validates the name
    if args.noise < 0:
        raise ValueError(f"--noise must be >= 0, got {args.noise}")
    cfg = QuickstartConfig(
        task=args.task, demos=args.demos, train_steps=args.steps, size=args.size, episodes=args.episodes,
        modes=parse_modes(args.perturb), demo_seed=args.seed, demo_noise=args.noise, schedule=args.schedule,
        observations=args.observations, out=Path(args.out or DEFAULT_OUT), torch_threads=max(1, args.threads),
        workers=args.workers,
    )
    import logging

    if not getattr(args, "verbose", 0):  # safety-limit hits are counted in results.json
        logging.getLogger("tactkit.real.safety").setLevel(logging.ERROR)
    run_quickstart(cfg, policies)
    return 0


def _synthetic_store_demo(args: argparse.Namespace) -> int:
    from tactkit.cli.dataset import store_summary_text
    from tactkit.store import EpisodeStore, _paths
    from tactkit.store.synthetic import record_synthetic_episode, rig_streams

    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    out = args.out or DEFAULT_STORE
    streams = rig_streams()
    if _paths.exists(out):
        store = EpisodeStore.open(out, mode="a")
        if store.streams != streams:
            raise ValueError(f"{out} holds a store with another schema; pass --out NEW_PATH")
    else:
        lp = _paths.local_path(out)
        if lp is not None:
            lp.parent.mkdir(parents=True, exist_ok=True)
        store = EpisodeStore.create(out, streams, attrs={"created_by": "tactkit demo"})
    ep = record_synthetic_episode(store, args.seconds, seed=args.seed + store.num_episodes,
                                  task="synthetic", start_time=0.0)
    print(f"recorded {ep.name}: {args.seconds:g} s, " +
          ", ".join(f"{k.split('.')[-1] if 'images' in k else k}={n}" for k, n in list(ep.lengths.items())[:3])
          + ", ...")
    print(store_summary_text(EpisodeStore.open(out).summary()))
    return 0
