"""``tactkit demo``: record a synthetic multi-rate episode and print the store's summary.

The episode has the rig's streams (2 cameras 240x320 @ 30 Hz, 2 tactile 63x2 @ 60 Hz,
wrench + robot state + action @ 500 Hz). Re-running appends another episode.
"""

from __future__ import annotations

import argparse

DEFAULT_OUT = "runs/demo/store.zarr"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("demo", help="record a synthetic multi-rate episode and summarise the store")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"episode store to record into (default {DEFAULT_OUT})")
    p.add_argument("--seconds", type=float, default=3.0, help="episode length (default 3)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    from tactkit.cli.dataset import store_summary_text
    from tactkit.store import EpisodeStore, _paths
    from tactkit.store.synthetic import record_synthetic_episode, rig_streams

    if args.seconds <= 0:
        raise ValueError(f"--seconds must be > 0, got {args.seconds}")
    streams = rig_streams()
    if _paths.exists(args.out):
        store = EpisodeStore.open(args.out, mode="a")
        if store.streams != streams:
            raise ValueError(f"{args.out} holds a store with another schema; pass --out NEW_PATH")
    else:
        lp = _paths.local_path(args.out)
        if lp is not None:
            lp.parent.mkdir(parents=True, exist_ok=True)
        store = EpisodeStore.create(args.out, streams, attrs={"created_by": "tactkit demo"})
    ep = record_synthetic_episode(store, args.seconds, seed=args.seed + store.num_episodes,
                                  task="synthetic", start_time=0.0)
    print(f"recorded {ep.name}: {args.seconds:g} s, " +
          ", ".join(f"{k.split('.')[-1] if 'images' in k else k}={n}" for k, n in list(ep.lengths.items())[:3])
          + ", ...")
    print(store_summary_text(EpisodeStore.open(args.out).summary()))
    return 0
