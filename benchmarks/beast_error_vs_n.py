"""Why BEAST's error can rise with the number of control points: its pose MSE taken apart per N
(fit, quantisation, clamping at the bounds, bins, ridge, conditioning) on benchmark datasets.

    .venv/bin/python benchmarks/beast_error_vs_n.py            # the three cases of docs/beast.md
    .venv/bin/python benchmarks/beast_error_vs_n.py --dataset min_jerk/D7/T16 --settings quick
"""

from __future__ import annotations

import argparse

from tactkit.experiments.tokenizer_bench import (
    BenchSettings,
    beast_error_decomposition,
    synthetic_datasets,
)
from tactkit.sysinfo import machine_summary

CASES = (("min_jerk/D7/T16", "quick"), ("min_jerk/D7/T16", "full"), ("random_walk/D7/T32", "full"))
COLUMNS = ("fit", "quantised_unclamped", "encoded", "bounds_train_test", "bins_4096", "ridge_0")


def run(name: str, settings: str) -> None:
    s = BenchSettings.quick() if settings == "quick" else BenchSettings()
    family, dim, chunk = name.split("/")
    s.arms, s.chunk_lens = (int(dim[1:]) // 7,), (int(chunk[1:]),)
    ds = next(d for d in synthetic_datasets(s) if d.name == name)  # the benchmark's own seeds
    t = ds.chunk_len
    ns = sorted({n for n in (5, 6, t // 4, t // 3, t // 2, (3 * t) // 4, t) if 5 <= n <= t})
    print(f"\n{name}, {settings} settings: {len(ds.train)} training chunks ({s.train_traj} trajectories), "
          f"{ds.test.shape[0] * ds.test.shape[1]} test chunks; pose MSE, normalised units")
    print("| N | " + " | ".join(COLUMNS) + " | test params beyond bounds | bound width / data range | cond(B) |")
    print("|---" * (len(COLUMNS) + 4) + "|")
    for r in beast_error_decomposition(ds, ns, s.degree):
        print(f"| {r['N']} | " + " | ".join(f"{r[c]:.2g}" for c in COLUMNS)
              + f" | {r['clipped']:.1%} | {r['bound_width_over_range']:.2f} | {r['cond']:.3g} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", help="family/D<dim>/T<chunk>, e.g. min_jerk/D7/T16 (default: the docs' three cases)")
    ap.add_argument("--settings", choices=("full", "quick"), default="full", help="the tokenizer bench's data settings")
    args = ap.parse_args()
    print(machine_summary())
    for name, settings in ((args.dataset, args.settings),) if args.dataset else CASES:
        run(name, settings)


if __name__ == "__main__":
    main()
