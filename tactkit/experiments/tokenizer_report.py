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
        "row `beast_half` is BEAST as typically configured, N = T / 2 (at least p + 1), degree 4.",
        "",
        "## Targets",
        "",
        _table(["target", "measured", "met"], [[t["target"], t["measured"], "-" if t["pass"] is None else "yes" if t["pass"] else "**no**"]
                                             for t in result.targets]),
        "",
    ]
    if result.throughput:
        out += ["## Throughput (batch 256, encode + decode)", "",
                _table(["config", "BEAST us/chunk", "direct us/chunk", "speed-up", "scipy rebuild us/chunk", "speed-up", "fit agreement"],
                       [[r["config"], _f(r["beast_us_per_chunk"]), _f(r["direct_us_per_chunk"]), _f(r["speedup_vs_direct"]) + "x",
                         _f(r["rebuild_vec_us_per_chunk"]), _f(r["speedup_vs_rebuild_vec"]) + "x", _f(r["fit_agreement"], 2)]
                        for r in result.throughput]), ""]
    subs = sorted(int(k[9:]) for k in (result.rows[0] if result.rows else {}) if k.startswith("valid_sub"))
    header = ["dataset", "tokenizer", "tokens mean / p99", "MSE", "MSE pose / gripper", "max err", "jerk", "gap mean / max"]
    header += [f"valid / MSE @{k} sub" for k in subs]
    header += ["enc us b1 / b256", "dec us b1 / b256"]
    rows = []
    for r in result.rows:
        rows.append([r["dataset"], f"{r['tokenizer']} ({r['setting']})", f"{_f(r['tokens_mean'])} / {_f(r['tokens_p99'])}",
                     _f(r["mse"]), f"{_f(r['mse_pose'])} / {_f(r['mse_gripper'])}", _f(r["max_err"]), _f(r["jerk"]), f"{_f(r['gap_mean'])} / {_f(r['gap_max'])}"]
                    + [f"{r[f'valid_sub{k}']:.0%} / {_f(r[f'mse_sub{k}'])}" for k in subs]
                    + [f"{_f(r['enc_us_b1'])} / {_f(r['enc_us_b256'])}", f"{_f(r['dec_us_b1'])} / {_f(r['dec_us_b256'])}"])
    out += ["## Per dataset", "", _table(header, rows), ""]
    beast = [r for r in result.rows if r["tokenizer"].startswith("beast")]
    if beast:
        out += ["## BEAST continuity (chunks chained closed-loop)", "",
                _table(["dataset", "setting", "gap none / C0 / C1 (max)", "velocity jump none-free C0 / C1 (mean)", "MSE none / C0 / C1"],
                       [[r["dataset"], r["setting"], f"{_f(r['gap_max'])} / {_f(r['gap_c0_max'])} / {_f(r['gap_c1_max'])}",
                         f"{_f(r['vel_gap_c0_mean'])} / {_f(r['vel_gap_c1_mean'])}",
                         f"{_f(r['mse'])} / {_f(r['mse_c0'])} / {_f(r['mse_c1'])}"] for r in beast]), ""]
    return "\n".join(out)


def plot(result: BenchResult, path: Path) -> Path:
    """Error (MSE) against tokens per chunk: one panel per family and chunk length."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted({r["dataset"] for r in result.sweep})
    fams = list(dict.fromkeys(n.split("/")[0] for n in names))
    ts = sorted({n.split("/")[2] for n in names}, key=lambda x: int(x[1:]))
    fig, axes = plt.subplots(len(ts), len(fams), figsize=(3.2 * len(fams), 2.8 * len(ts)), squeeze=False)
    colours = {"beast": "tab:blue", "beast_spline_gripper": "tab:purple", "fast": "tab:orange", "binning": "tab:green"}
    for i, t in enumerate(ts):
        for j, fam in enumerate(fams):
            ax = axes[i][j]
            for name in names:
                f, d, tt = name.split("/")
                if f != fam or tt != t:
                    continue
                style = "-" if d == "D7" else "--"
                for tok in colours:
                    pts = sorted((r["tokens_mean"], r["mse"]) for r in result.sweep if r["dataset"] == name and r["tokenizer"] == tok)
                    if pts:
                        x, y = zip(*pts)
                        ax.plot(x, y, style, marker="o", ms=3, color=colours[tok], label=f"{tok} {d}")
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_title(f"{fam} {t}", fontsize=9)
            ax.tick_params(labelsize=7)
            if i == len(ts) - 1:
                ax.set_xlabel("tokens per chunk", fontsize=8)
            if j == 0:
                ax.set_ylabel("MSE (normalised)", fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=6, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
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
    return md, plot(result, out_dir / "tokenizer_bench.png")
