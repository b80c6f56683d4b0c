"""Markdown, JSON and PNG output of the tokenizer benchmark."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from tactkit.experiments.tokenizer_bench import BenchResult, BenchSettings
from tactkit.sysinfo import machine_summary as machine


def _f(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return "n/a"
    if x == 0:
        return "0"
    return f"{x:.{digits}g}" if abs(x) < 1e4 else f"{x:.3e}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def render_markdown(result: BenchResult, s: BenchSettings, command: str) -> str:
    out = [
        "# Action tokenizer benchmark",
        "",
        f"Command: `{command}`  ",
        f"Machine: {machine()}  ",
        f"Settings: families {', '.join(s.families)}; D in {[7 * a for a in s.arms]}; T in {list(s.chunk_lens)}; "
        f"{s.train_traj} training / {s.test_traj} test trajectories x {s.test_chunks_per_traj} chunks; seed {s.seed}; "
        f"BEAST degree {s.degree}, 256 bins; FAST scale {s.fast_scale:g}, vocab {s.fast_vocab}; binning 256 bins.  ",
        "Errors in normalised units (training min-max -> [-1, 1]); jerk and gaps over pose dims (grippers excluded). "
        "Row `beast` is sized to FAST's mean token count: N = floor(FAST tokens / D), degree min(4, N - 1); "
        "row `beast_half` is BEAST as typically configured, N = T / 2 (at least p + 1), degree 4. "
        "`clipped`: test control points outside BEAST's bounds (fitted on the training chunks), which the quantiser clamps.",
        "",
        "## Targets",
        "",
        _table(["target", "measured", "met"], [[t["target"], t["measured"], "-" if t["pass"] is None else "yes" if t["pass"] else "**no**"]
                                             for t in result.targets]),
        "",
    ]
    if result.throughput:
        out += ["## Throughput (batch 256, encode + decode)", "",
                _table(["config", "BEAST us/chunk", "direct us/chunk", "speed-up", "scipy-basis rebuild us/chunk", "speed-up", "fit agreement"],
                       [[r["config"], _f(r["beast_us_per_chunk"]), _f(r["direct_us_per_chunk"]), _f(r["speedup_vs_direct"]) + "x",
                         _f(r["rebuild_vec_us_per_chunk"]), _f(r["speedup_vs_rebuild_vec"]) + "x", _f(r["fit_agreement"], 2)]
                        for r in result.throughput]), ""]
    subs = sorted(int(k[9:]) for k in (result.rows[0] if result.rows else {}) if k.startswith("valid_sub"))
    header = ["dataset", "tokenizer", "tokens mean / p99", "MSE", "MSE pose / gripper", "max err", "jerk", "gap mean / max"]
    header += [f"valid / MSE @{k} sub" for k in subs]
    header += ["enc us b1 / b256", "dec us b1 / b256", "clipped"]
    rows = []
    for r in result.rows:
        rows.append([r["dataset"], f"{r['tokenizer']} ({r['setting']})", f"{_f(r['tokens_mean'])} / {_f(r['tokens_p99'])}",
                     _f(r["mse"]), f"{_f(r['mse_pose'])} / {_f(r['mse_gripper'])}", _f(r["max_err"]), _f(r["jerk"]), f"{_f(r['gap_mean'])} / {_f(r['gap_max'])}"]
                    + [f"{r[f'valid_sub{k}']:.0%} / {_f(r[f'mse_sub{k}'])}" for k in subs]
                    + [f"{_f(r['enc_us_b1'])} / {_f(r['enc_us_b256'])}", f"{_f(r['dec_us_b1'])} / {_f(r['dec_us_b256'])}",
                       f"{r['clipped']:.2%}" if "clipped" in r else "-"])
    out += ["## Per dataset", "", _table(header, rows), ""]
    beast = [r for r in result.rows if r["tokenizer"].startswith("beast")]
    if beast:
        out += ["## BEAST continuity (chunks chained closed-loop)", "",
                _table(["dataset", "setting", "gap none / C0 / C1 (max)", "velocity jump none-free C0 / C1 (mean)", "MSE none / C0 / C1"],
                       [[r["dataset"], r["setting"], f"{_f(r['gap_max'])} / {_f(r['gap_c0_max'])} / {_f(r['gap_c1_max'])}",
                         f"{_f(r['vel_gap_c0_mean'])} / {_f(r['vel_gap_c1_mean'])}",
                         f"{_f(r['mse'])} / {_f(r['mse_c0'])} / {_f(r['mse_c1'])}"] for r in beast]), ""]
    return "\n".join(out)


# the sweeps drawn, named as the tables name them
_CURVES = {"beast": ("tab:blue", "beast: N = p + 1 .. T, p = 4"), "fast": ("tab:orange", "fast: scale 2 .. 50"),
           "binning": ("tab:green", "binning: 256 bins")}
_DIMS = {"D7": ("-", "D = 7 (one arm)"), "D14": ("--", "D = 14 (two arms)")}


def plot(result: BenchResult, path: Path, s: BenchSettings | None = None) -> Path:
    """Error (MSE, all dims) against tokens per chunk: one panel per family and chunk length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    names = sorted({r["dataset"] for r in result.sweep})
    fams = list(dict.fromkeys(n.split("/")[0] for n in names))
    ts = sorted({n.split("/")[2] for n in names}, key=lambda x: int(x[1:]))
    height = 2.6 * len(ts) + 0.6  # inches: panels, the legend on top, the note at the bottom
    fig, axes = plt.subplots(len(ts), len(fams), figsize=(3.2 * len(fams), height), squeeze=False)
    for i, t in enumerate(ts):
        for j, fam in enumerate(fams):
            ax = axes[i][j]
            for name in names:
                f, d, tt = name.split("/")
                if f != fam or tt != t:
                    continue
                for tok, (colour, _) in _CURVES.items():
                    pts = sorted((r["tokens_mean"], r["mse"]) for r in result.sweep if r["dataset"] == name and r["tokenizer"] == tok)
                    if pts:
                        x, y = zip(*pts)
                        ax.plot(x, y, _DIMS.get(d, (":", ""))[0], marker="o", ms=3, color=colour)
            ax.set_xscale("log")
            ax.set_yscale("log")
            # labels at 1-2-5 steps within a decade, no minor labels (they overlapped)
            lo, hi = ax.get_ylim()
            ax.xaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0) if hi / lo < 100 else (1.0,)))
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-")))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.yaxis.set_minor_formatter(NullFormatter())
            ax.set_title(f"{fam} {t}", fontsize=9)
            ax.tick_params(labelsize=7)
            ax.grid(True, which="major", alpha=0.3)
            if i == len(ts) - 1:
                ax.set_xlabel("tokens per chunk", fontsize=8)
            if j == 0:
                ax.set_ylabel("MSE (normalised)", fontsize=8)
    handles = [Line2D([], [], color=c, marker="o", ms=3, label=label) for c, label in _CURVES.values()]
    handles += [Line2D([], [], color="grey", ls=ls, label=label) for ls, label in _DIMS.values()]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    clipped = [r["clipped"] for r in result.sweep if "clipped" in r]
    note = "MSE over all dims (grippers included) of held-out chunks"
    if s is not None:
        note += f" of {s.test_traj} trajectories, tokenizers fitted on {s.train_traj} others"
    if clipped:
        note += (f"; {min(clipped):.1%}-{max(clipped):.1%} of BEAST's test control points lie beyond its training bounds "
                 "and are clamped: where BEAST's error rises with N, that is why (docs/beast.md)")
    fig.text(0.5, 0.02 / height, note, fontsize=8, ha="center", va="bottom")
    fig.tight_layout(rect=(0, 0.25 / height, 1, 1 - 0.25 / height))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_outputs(result: BenchResult, s: BenchSettings, out_dir: Path, command: str) -> tuple[str, Path]:
    """Write ``tokenizer_bench.md``, ``tokenizer_bench.json`` and ``tokenizer_bench.png``; returns the markdown."""
    out_dir.mkdir(parents=True, exist_ok=True)
    md = render_markdown(result, s, command)
    (out_dir / "tokenizer_bench.md").write_text(md + "\n")
    payload = {"settings": asdict(s), "machine": machine(), "command": command, "targets": result.targets,
               "throughput": result.throughput, "rows": result.rows, "sweep": result.sweep}
    (out_dir / "tokenizer_bench.json").write_text(json.dumps(payload, indent=1, default=float) + "\n")
    return md, plot(result, out_dir / "tokenizer_bench.png", s)
