"""The quickstart (``make demo`` -> ``tactkit demo``): demos -> RDP and DP -> closed-loop comparison.

1. record scripted-expert demonstrations of a simulated task (perturbation modes mixed);
2. train Reactive Diffusion Policy (tokenizer with the tactile pad as its fast signal, then
   latent diffusion) and Diffusion Policy (same observations minus the fast loop) briefly;
3. evaluate both with the real controller in lockstep under every perturbation mode, on the
   same seeds;
4. print the comparison table and write ``report.md`` with plots (score per mode, and the
   pad height/force of one after-contact episode per policy).

Sized for 2 CPU cores in well under 15 minutes with the defaults.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tactkit.experiments.evaluation import (
    EpisodeResult,
    EvalSettings,
    results_table,
    summarize,
)
from tactkit.sim.perturbations import PERTURBATIONS
from tactkit.store.schema import action_key, image_key, state_key, tactile_key, wrench_key

log = logging.getLogger(__name__)

CAMERA = image_key("external")
IMAGE, CROP = 64, 56  # px: the 96 px camera resized/cropped (the path's dots survive; 32 px loses them)


@dataclass
class QuickstartConfig:
    task: str = "wipe"
    demos: int = 12  # expert episodes (perturbation modes cycled)
    train_steps: int = 300  # per training stage
    size: str = "tiny"  # configs/policy/size_<size>.yaml
    episodes: int = 3  # evaluation seeds per perturbation mode
    modes: tuple[str, ...] = PERTURBATIONS
    demo_seed: int = 0
    demo_perturb: str = "mixed"  # perturbation modes of the demos (record_demos' ``perturb``)
    eval_seed0: int = 1000
    inference_latency: float = 0.1  # s, simulated slow-policy latency
    out: Path = Path("runs/demo")
    extra_train: list[str] = field(default_factory=list)  # key=value for both policies
    # torch intra-op threads. Tiny networks gain nothing from more, and on a busy machine
    # oversubscribed OpenMP threads made training ~10x slower (measured: 5 vs 70 samples/s).
    torch_threads: int = 1
    # Observations: with ``cameras`` the planners see the external camera; without, TCP pose +
    # touch only (fast to train; pair it with ``task_overrides={"scene_variation": 0.0}`` so the
    # scene is the same every seed and only the touch-only perturbations differ).
    cameras: bool = True
    task_overrides: dict[str, Any] = field(default_factory=dict)  # for demos and evaluation


FIXED_SCENE_TASK = {"scene_variation": 0.0, "expert_feedback": "force"}


def fixed_scene(cfg: QuickstartConfig) -> QuickstartConfig:
    """The CI-sized wipe setting (docs/controller.md): the nominal scene every seed, demos of the
    force-feedback expert without and with after-contact perturbation, TCP pose + touch (no
    camera). ``tests/experiments/test_experiments_regression.py`` runs it at 12 demos x 600 steps."""
    if cfg.task != "wipe":
        raise ValueError(f"the fixed-scene setting exists for task 'wipe' only, got {cfg.task!r}")
    cfg.cameras = False
    cfg.demo_perturb = "none,after_contact"
    cfg.task_overrides = {**FIXED_SCENE_TASK, **cfg.task_overrides}
    return cfg


def tactile_keys(task: str) -> str:
    """The tactile streams of a task's pads, comma-separated, as the policy overrides list them
    (``observation.tactile.<pad>.marker_offset``; one per arm on ``lift``)."""
    from tactkit.sim.tasks import make_task

    return ",".join(tactile_key(c.name) for c in make_task(task).tactile_configs())


def task_arms(task: str) -> tuple[str, ...]:
    """Arm names of a simulated task (``("arm",)`` for wipe/peel, ``("left", "right")`` for lift)."""
    from tactkit.sim.tasks import make_task

    return tuple(a.name for a in make_task(task).robot_config().arms)


def policy_overrides(
    kind: str, tactile: str, camera: bool = True, arms: tuple[str, ...] = ()
) -> tuple[str, list[str]]:
    """(training kind, overrides) for the compared policies.

    Every planner sees the external camera (the task's path is random per seed and only
    visible in the image) and the TCP pose; ``*_tactile`` planners also see the tactile pad;
    ``beast*`` mirror ``dp*``. RDP's planner sees what DP's sees, and its tokenizer decodes with
    the tactile pad (``rdp``) or the wrench (``rdp_force``) as its fast signal, so the two differ
    by the fast loop only. ``rdp_plan_touch`` also gives RDP's planner the pad (measured worse:
    the planner copies the touch that its own commands cause, docs/controller.md).
    ``camera=False`` drops the camera. With several ``arms`` (a bimanual task) the state and
    action keys name each arm (``observation.state.left.tcp_pose``, ``action.right.tcp_pose``...),
    ``tactile`` lists every pad (``tactile_keys``) and ``rdp_force`` reacts to every arm's wrench.
    """
    img = [f"image_shape=[{IMAGE},{IMAGE}]", f"crop_shape=[{CROP},{CROP}]"] if camera else []
    cam = f"{CAMERA}," if camera else ""
    multi = len(arms) > 1
    state = ",".join(state_key(a, "tcp_pose", multi) for a in arms or ("arm",))
    wrench = ",".join(wrench_key(a, multi) for a in arms or ("arm",))
    acts = ["action_keys=[" + ",".join(action_key(a, q, True) for a in arms for q in ("tcp_pose", "gripper_width")) + "]"
            ] if multi else []
    table = {
        "rdp": ("rdp", [f"at.fast_keys=[{tactile}]", f"ldp.obs_keys=[{cam}{state}]", *[f"ldp.{x}" for x in img]]),
        "rdp_force": ("rdp", [f"at.fast_keys=[{wrench}]", f"ldp.obs_keys=[{cam}{state}]",
                              *[f"ldp.{x}" for x in img]]),
        "rdp_plan_touch": ("rdp", [f"at.fast_keys=[{tactile}]", f"ldp.obs_keys=[{cam}{state},{tactile}]",
                                   *[f"ldp.{x}" for x in img]]),
        "dp": ("dp", [f"obs_keys=[{cam}{state}]", *img]),
        "dp_tactile": ("dp", [f"obs_keys=[{cam}{state},{tactile}]", *img]),
        "beast": ("beast", [f"obs_keys=[{cam}{state}]", *img]),
        "beast_tactile": ("beast", [f"obs_keys=[{cam}{state},{tactile}]", *img]),
        "beast_continuous": ("beast", [f"obs_keys=[{cam}{state}]", *img, "beast.head=continuous"]),
    }
    if kind not in table:
        raise KeyError(f"unknown quickstart policy {kind!r}; known: {', '.join(table)}")
    train_kind, over = table[kind]
    return train_kind, [*over, *acts]


def train_policy(kind: str, data: Path, out: Path, cfg: QuickstartConfig, tactile: str) -> Path:
    """Train one compared policy; returns the directory ``load_policy`` takes."""
    from tactkit.policies.pipeline import train

    train_kind, over = policy_overrides(kind, tactile, cfg.cameras, task_arms(cfg.task))
    train(train_kind, data, [f"size={cfg.size}", f"num_steps={cfg.train_steps}", *over, *cfg.extra_train],
          out, progress=False)
    return out / "ldp" if train_kind == "rdp" else out


def run_quickstart(
    cfg: QuickstartConfig, policies: tuple[str, ...] = ("rdp", "dp"), say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole quickstart; returns the summary written to ``<out>/results.json``."""
    import torch
    from tqdm import tqdm

    from tactkit.experiments.evaluation import evaluate_policy
    from tactkit.policies.inference import load_policy
    from tactkit.real.setup import load_robot_setup
    from tactkit.sim.recording import record_demos

    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = out / "demos.zarr"
    say(f"[1/3] recording {cfg.demos} expert demos of {cfg.task} -> {data}")
    demo_info = record_demos(cfg.task, cfg.demos, data, perturb=cfg.demo_perturb, seed=cfg.demo_seed, overwrite=True,
                             progress=True, cameras=cfg.cameras, **cfg.task_overrides)
    timings["demos_s"] = time.perf_counter() - t0
    tactile = tactile_keys(cfg.task)

    ckpts: dict[str, Path] = {}
    for kind in policies:
        t = time.perf_counter()
        say(f"[2/3] training {kind} ({cfg.train_steps} steps per stage, size {cfg.size})")
        ckpts[kind] = train_policy(kind, data, out / kind, cfg, tactile)
        timings[f"train_{kind}_s"] = time.perf_counter() - t

    setup = load_robot_setup("sim", [f"inference_latency={cfg.inference_latency}"])
    settings = EvalSettings(setup.controller, dict(cfg.task_overrides), None, trace=True)
    rows: dict[str, list[EpisodeResult]] = {}
    total = len(policies) * len(cfg.modes) * cfg.episodes
    say(f"[3/3] evaluating {', '.join(policies)}: {cfg.episodes} seeds x {len(cfg.modes)} perturbation modes")
    with tqdm(total=total, desc="closed-loop eval", unit="ep") as bar:
        for kind in policies:
            t = time.perf_counter()
            policy = load_policy(ckpts[kind])

            def progress(r: EpisodeResult, kind: str = kind) -> None:
                bar.update(1)
                bar.set_postfix(policy=kind, perturb=r.perturb, score=f"{r.score:.2f}")

            rows[kind] = evaluate_policy(cfg.task, policy, cfg.episodes, cfg.modes, settings, cfg.eval_seed0, progress)
            timings[f"eval_{kind}_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    table = results_table(rows)
    summary = {
        "task": cfg.task, "demos": cfg.demos, "demo_mean_score": demo_info["mean_score"],
        "train_steps": cfg.train_steps, "size": cfg.size, "eval_seeds": [cfg.eval_seed0 + i for i in range(cfg.episodes)],
        "inference_latency": cfg.inference_latency, "timings": timings,
        "summary": {k: summarize(v) for k, v in rows.items()},
        "episodes": {k: [{f: getattr(r, f) for f in ("perturb", "seed", "score", "success", "plans", "fast_steps", "safety", "fault")}
                         for r in v] for k, v in rows.items()},
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    write_report(out, cfg, rows, table, summary)
    say(f"\n{cfg.task}: score mean ± std (success rate) per perturbation mode\n")
    say(table)
    say(f"\nreport: {out / 'report.md'} ({timings['total_s'] / 60:.1f} min)")
    return summary


def write_report(out: Path, cfg: QuickstartConfig, rows: dict[str, list[EpisodeResult]], table: str,
                 summary: dict[str, Any]) -> Path:
    """``report.md`` + ``scores.png`` (score per mode) + ``contact.png`` (one after-contact episode)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    modes = [m for m in (*PERTURBATIONS, "all") if m in next(iter(summary["summary"].values()))]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    width = 0.8 / max(1, len(rows))
    for i, (label, s) in enumerate(summary["summary"].items()):
        x = np.arange(len(modes)) + i * width
        ax.bar(x, [s[m]["score"] for m in modes], width, yerr=[s[m]["std"] for m in modes], label=label, capsize=3)
    ax.set_xticks(np.arange(len(modes)) + width * (len(rows) - 1) / 2, modes)
    ax.set_ylabel("normalised score")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{cfg.task}: closed-loop score by perturbation ({cfg.episodes} seeds)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=120)
    plt.close(fig)

    fig, (a1, a2) = plt.subplots(2, 1, figsize=(6.4, 4.8), sharex=True)
    for label, rs in rows.items():
        ep = next((r for r in rs if r.perturb == "after_contact" and r.trace is not None), None)
        if ep is None:
            continue
        tr = ep.trace
        a1.plot(tr["t"], tr["z"], label=f"{label} measured")
        a1.plot(tr["t"], tr["z_cmd"], "--", label=f"{label} commanded")
        a2.plot(tr["t"], tr["fz"], label=label)
    a1.set_ylabel("pad height z (m)")
    a1.legend(fontsize=7)
    a2.set_ylabel("contact force fz (N)")
    a2.set_xlabel("time (s)")
    a2.legend(fontsize=7)
    a1.set_title("after-contact perturbation: first seed")
    fig.tight_layout()
    fig.savefig(out / "contact.png", dpi=120)
    plt.close(fig)

    t = summary["timings"]
    lines = [
        f"# tactkit quickstart: RDP vs DP on `{cfg.task}`", "",
        f"- demonstrations: {cfg.demos} scripted-expert episodes (perturbation modes: {cfg.demo_perturb}), "
        f"expert mean score {summary['demo_mean_score']:.3f}",
        f"- training: {cfg.train_steps} steps per stage, network size `{cfg.size}`, CPU",
        f"- evaluation: real controller in lockstep (500 Hz robot loop, simulated inference latency "
        f"{cfg.inference_latency * 1e3:.0f} ms), seeds {summary['eval_seeds']} per perturbation mode", "",
        "## Scores (mean ± std, success rate)", "", table, "",
        "![scores](scores.png)", "",
        "## Reacting to touch", "",
        "Pad height and contact force through one after-contact episode (the board moves after the "
        "pad touches it). RDP's fast loop re-decodes the plan at tactile rate; DP replays its chunk.", "",
        "![contact](contact.png)", "",
        "## Time", "",
        "| stage | seconds |", "|---|---|",
        *[f"| {k[:-2]} | {v:.0f} |" for k, v in t.items()],
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
