"""``tactkit tokenizer``: action tokenizer tools (benchmark of BEAST vs FAST vs binning)."""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("tokenizer", help="action tokenizers (BEAST, FAST, binning)")
    sub = parser.add_subparsers(dest="tokenizer_command", metavar="ACTION", required=True)
    bench = sub.add_parser("bench", help="benchmark BEAST against FAST and binning; prints a markdown table")
    bench.add_argument("--data", metavar="STORE", help="also benchmark the action.* streams of this episode store")
    bench.add_argument("--fps", type=float, default=10.0, help="control rate for aligning --data (default 10)")
    bench.add_argument("--out", metavar="DIR", default="bench_out/tokenizer", help="where to write .md/.json/.png")
    bench.add_argument("--quick", action="store_true", help="small smoke-size run (D=7, T=16, few chunks)")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--blas-threads", type=int, default=1,
                       help="BLAS threads (default 1: what one control-loop thread gets; stable timings on shared machines)")
    bench.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    import logging
    import os
    from pathlib import Path

    if "numpy" in sys.modules:
        logging.getLogger(__name__).warning("numpy already loaded: --blas-threads has no effect")
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.blas_threads)

    from tactkit.cli._extras import require

    require("matplotlib", "viz", "tactkit tokenizer bench (its plot)")
    from tactkit.experiments.tokenizer_bench import BenchSettings, run_bench
    from tactkit.experiments.tokenizer_report import write_outputs

    settings = BenchSettings.quick() if args.quick else BenchSettings()
    settings.seed = args.seed
    if args.data is not None and not Path(args.data).exists() and "://" not in args.data:
        raise FileNotFoundError(f"--data {args.data}: no such store")
    result = run_bench(settings, data=args.data, fps=args.fps, progress=sys.stderr.isatty())
    md, png = write_outputs(result, settings, Path(args.out), _command(args))
    print(md)
    print(f"\nwrote {Path(args.out) / 'tokenizer_bench.md'}, {Path(args.out) / 'tokenizer_bench.json'}, {png}")
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that reproduces this run, from the parsed options (benchmarks/ and
    run_all.py call in with their own sys.argv, which named the wrong settings)."""
    parts = ["tactkit tokenizer bench"]
    if args.quick:
        parts.append("--quick")
    if args.data is not None:
        parts += ["--data", args.data, "--fps", f"{args.fps:g}"]
    if args.seed != 0:
        parts += ["--seed", str(args.seed)]
    if args.blas_threads != 1:
        parts += ["--blas-threads", str(args.blas_threads)]
    return " ".join(parts + ["--out", str(args.out)])
