"""``tactkit tactile``: tactile embedding tools (PCA of marker offsets)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("tactile", help="tactile embedding (PCA of marker offsets)")
    sub = p.add_subparsers(dest="tactile_command", metavar="SUBCOMMAND", required=True)
    fit = sub.add_parser(
        "fit-pca",
        help="fit a PCA on recorded marker offsets and save it (.safetensors)",
        description="Fit the tactile PCA on marker offset streams of an episode store. With several "
        "--key options (or none: every observation.tactile.*.marker_offset stream) the samples of "
        "all keys are stacked, so one PCA serves every pad.",
    )
    fit.add_argument("store", help="episode store path or fsspec URL")
    fit.add_argument("--key", action="append", default=None,
                     help="marker offset stream key (repeatable; default: all tactile streams)")
    fit.add_argument("--components", type=int, default=15, help="number of components (default 15)")
    fit.add_argument("--episodes", type=str, default=None, help="episode indices, e.g. 0,1,5 (default all)")
    fit.add_argument("--out", required=True, help="output file, e.g. tactile_pca.safetensors")
    fit.set_defaults(func=_fit_pca)


def _fit_pca(args: argparse.Namespace) -> int:
    from tactkit.sensors.embedding import fit_pca_from_store, load_offsets_from_store

    episodes = None
    if args.episodes:
        try:
            episodes = [int(e) for e in args.episodes.split(",") if e.strip()]
        except ValueError:
            raise ValueError(f"--episodes must be comma-separated integers, got {args.episodes!r}") from None
    pca = fit_pca_from_store(args.store, args.key, n_components=args.components, episodes=episodes)
    path = pca.save(args.out)
    offsets, keys = load_offsets_from_store(args.store, args.key, episodes)
    ratio = pca.explained_variance_ratio
    print(f"fitted on {pca.metadata['n_samples']} samples of {', '.join(keys)} "
          f"({pca.n_markers} markers)")
    print(f"{pca.n_components} components explain {100 * ratio.sum():.2f}% of the variance "
          f"(first: {', '.join(f'{100 * r:.1f}%' for r in ratio[:5])})")
    print(f"reconstruction RMSE {pca.reconstruction_rmse(offsets):.3g} (offset units)")
    print(f"saved {path}")
    return 0
