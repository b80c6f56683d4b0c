"""The quickstart (``make demo`` -> ``tactkit demo``): demos -> RDP and DP -> paired comparison.

1. record scripted-expert demonstrations of a simulated task (every perturbation mode, the
   after-contact motions drawn from the training family, DART noise injection), random scenes;
2. train Reactive Diffusion Policy (tokenizer with the tactile pad as its fast signal, then
   latent diffusion) and Diffusion Policy, in parallel processes when ``workers`` > 1;
3. evaluate both with the real controller in lockstep on the same seeds under every
   perturbation mode, at the RDP paper's timing (``schedule``);
4. print the comparison (means with 95% bootstrap intervals, paired differences) and write
   ``report.md`` with plots.

Planners see the TCP pose and the scene's low-dimensional state (``state``, the default) or the
external camera (``camera``). Sized for 2 CPU cores in under 10 minutes with the defaults.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import logging
import multiprocessing as mp
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tactkit.experiments.evaluation import (
    SCHEDULES,
    EpisodeResult,
    EvalSettings,
    PolicySource,
    differences_table,
    results_table,
    schedule_controller,
    summarize,
)
from tactkit.sim.perturbations import PERTURBATIONS
from tactkit.store.schema import (
    ENVIRONMENT_STATE_KEY,
    action_key,
    image_key,
    state_key,
    tactile_key,
    wrench_key,
)

log = logging.getLogger(__name__)

CAMERA = image_key("external")
IMAGE, CROP = 64, 56  # px: the 96 px camera resized/cropped (the path's dots survive; 32 px loses them)
#: the chunk-executing baselines run at the RDP paper's DP timing: 16 steps at 12 Hz
CHUNK_POLICY = ["fps=12", "horizon=16"]


@dataclass
class QuickstartConfig:
    task: str = "wipe"
    demos: int = 40  # expert episodes (perturbation modes cycled)
    train_steps: int = 3000  # per training stage (RDP's tokenizer: twice that)
    size: str = "tiny"  # configs/policy/size_<size>.yaml
    episodes: int = 10  # evaluation seeds per perturbation mode (paired across policies)
    modes: tuple[str, ...] = PERTURBATIONS
    demo_seed: int = 0
    demo_perturb: str = "mixed"  # perturbation modes of the demos (record_demos' ``perturb``)
    demo_noise: float = 0.001  # m, DART noise injection while recording (0: none)
    demo_min_score: float = 0.8  # demos the expert scores below this are discarded (a seed more is recorded)
    eval_seed0: int = 1000
    schedule: str = "paper"  # tactkit.experiments.evaluation.SCHEDULES
    observations: str = "state"  # "state" (TCP pose + environment state) or "camera"
    out: Path = Path("runs/demo")
    extra_train: list[str] = field(default_factory=list)  # key=value for every policy
    # torch intra-op threads per process. Tiny networks gain nothing from more, and on a busy
    # machine oversubscribed OpenMP threads made training ~10x slower (5 vs 70 samples/s).
    torch_threads: int = 1
    workers: int = 2  # processes for training (one policy each) and for evaluation episodes
    task_overrides: dict[str, Any] = field(default_factory=dict)  # for demos and evaluation

    def __post_init__(self) -> None:
        if self.observations not in ("state", "camera"):
            raise ValueError(f"observations must be 'state' or 'camera', got {self.observations!r}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        for name in ("demos", "train_steps", "episodes", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def cameras(self) -> bool:
        return self.observations == "camera"


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
    kind: str, tactile: str, observations: str = "state", arms: tuple[str, ...] = ()
) -> tuple[str, list[str]]:
    """(training kind, overrides) for the compared policies.

    Every planner sees the TCP pose and the scene: its low-dimensional state
    (``observations="state"``: the board and path, the object's pose and size) or the external
    camera (``"camera"``). ``*_tactile`` planners also see the tactile pad; ``beast*`` mirror
    ``dp*``. RDP's planner sees what DP's sees, and its tokenizer decodes with the tactile pad
    (``rdp``) or the wrench (``rdp_force``) as its fast signal, so the two differ by the fast
    loop only. ``rdp_plan_touch``
    also gives RDP's planner the pad (measured worse: the planner copies the touch that its own
    commands cause, docs/controller.md). ``implicit_rdp`` (ImplicitRDP) reacts to the wrench
    inside one transformer (docs/implicit-rdp.md). DP and DP + tactile run at the RDP paper's DP timing
    (16 steps at 12 Hz). With several ``arms`` (a bimanual task) the state and action keys name
    each arm, ``tactile`` lists every pad and ``rdp_force`` reacts to every arm's wrench.
    """
    if observations not in ("state", "camera"):
        raise ValueError(f"observations must be 'state' or 'camera', got {observations!r}")
    camera = observations == "camera"
    img = [f"image_shape=[{IMAGE},{IMAGE}]", f"crop_shape=[{CROP},{CROP}]"] if camera else []
    multi = len(arms) > 1
    state = ",".join(state_key(a, "tcp_pose", multi) for a in arms or ("arm",))
    scene = CAMERA if camera else ENVIRONMENT_STATE_KEY
    wrench = ",".join(wrench_key(a, multi) for a in arms or ("arm",))
    acts = ["action_keys=[" + ",".join(action_key(a, q, True) for a in arms for q in ("tcp_pose", "gripper_width")) + "]"
            ] if multi else []
    planner = f"{scene},{state}"
    rdp = [f"ldp.obs_keys=[{planner}]", *[f"ldp.{x}" for x in img]]
    table = {
        "rdp": ("rdp", [f"at.fast_keys=[{tactile}]", *rdp]),
        "rdp_force": ("rdp", [f"at.fast_keys=[{wrench}]", *rdp]),
        "rdp_plan_touch": ("rdp", [f"at.fast_keys=[{tactile}]", *rdp, f"ldp.obs_keys=[{planner},{tactile}]"]),
        "dp": ("dp", [f"obs_keys=[{planner}]", *CHUNK_POLICY, *img]),
        "dp_tactile": ("dp", [f"obs_keys=[{planner},{tactile}]", *CHUNK_POLICY, *img]),
        "beast": ("beast", [f"obs_keys=[{planner}]", *img]),
        "beast_tactile": ("beast", [f"obs_keys=[{planner},{tactile}]", *img]),
        "beast_continuous": ("beast", [f"obs_keys=[{planner}]", *img, "beast.head=continuous"]),
        # one transformer, the wrench as its fast tokens along a 32-step chunk (RDP's schedule)
        "implicit_rdp": ("implicit_rdp", [f"obs_keys=[{planner}]", f"fast_keys=[{wrench}]", "horizon=32", *img]),
    }
    if kind not in table:
        raise KeyError(f"unknown quickstart policy {kind!r}; known: {', '.join(table)}")
    train_kind, over = table[kind]
    return train_kind, [*over, *acts]


def train_policy(kind: str, data: Path, out: Path, cfg: QuickstartConfig, tactile: str | None = None) -> Path:
    """Train one compared policy; returns the directory ``load_policy`` takes."""
    import torch

    from tactkit.policies.pipeline import train

    torch.set_num_threads(cfg.torch_threads)
    train_kind, over = policy_overrides(kind, tactile or tactile_keys(cfg.task), cfg.observations, task_arms(cfg.task))
    steps = [f"num_steps={cfg.train_steps}"] + ([f"at.num_steps={2 * cfg.train_steps}"] if train_kind == "rdp" else [])
    train(train_kind, data, [f"size={cfg.size}", *steps, *over, *cfg.extra_train], out, progress=False)
    return out / "ldp" if train_kind == "rdp" else out


def _train_job(kind: str, data: Path, out: Path, cfg: QuickstartConfig) -> tuple[str, Path, float]:
    t0 = time.perf_counter()
    path = train_policy(kind, data, out, cfg)
    return kind, path, time.perf_counter() - t0


@dataclass
class Comparison:
    """What :func:`run_comparison` produced: per schedule, per policy, the episode results."""

    rows: dict[str, dict[str, list[EpisodeResult]]]  # schedule -> policy -> results
    timing: dict[str, dict[str, dict[str, float]]]  # schedule -> policy -> plan period, latency
    timings: dict[str, float]  # stage -> seconds
    demo_info: dict[str, Any]
    checkpoints: dict[str, Path]


def run_comparison(cfg: QuickstartConfig, policies: tuple[str, ...], schedules: tuple[str, ...] = ("paper",),
                   say: Callable[[str], None] = print) -> Comparison:
    """Record demos, train ``policies`` (in parallel processes) and evaluate each of them on
    the same seeds under every mode of ``cfg`` at every schedule."""
    import torch
    from tqdm import tqdm

    from tactkit.experiments.evaluation import evaluate_policy
    from tactkit.real.setup import load_robot_setup
    from tactkit.sim.recording import record_demos

    unknown = [s for s in schedules if s not in SCHEDULES]
    if unknown:
        raise ValueError(f"unknown schedule {unknown[0]!r}; known: {', '.join(SCHEDULES)}")
    torch.set_num_threads(cfg.torch_threads)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    data = out / "demos.zarr"
    say(f"[1/3] recording {cfg.demos} expert demos of {cfg.task} (modes {cfg.demo_perturb}, DART noise "
        f"{cfg.demo_noise * 1e3:.1f} mm) -> {data}")
    demo_info = record_demos(cfg.task, cfg.demos, data, perturb=cfg.demo_perturb, seed=cfg.demo_seed, overwrite=True,
                             progress=True, cameras=cfg.cameras, noise=cfg.demo_noise,
                             min_score=cfg.demo_min_score, **cfg.task_overrides)
    timings["demos_s"] = time.perf_counter() - t0

    say(f"[2/3] training {', '.join(policies)} ({cfg.train_steps} steps per stage, size {cfg.size}, "
        f"{min(cfg.workers, len(policies))} processes)")
    t = time.perf_counter()
    ckpts: dict[str, Path] = {}
    if cfg.workers > 1 and len(policies) > 1:
        with cf.ProcessPoolExecutor(min(cfg.workers, len(policies)), mp.get_context("spawn")) as pool:
            jobs = [pool.submit(_train_job, kind, data, out / kind, cfg) for kind in policies]
            for job in tqdm(cf.as_completed(jobs), total=len(jobs), desc="training", unit="policy"):
                kind, path, seconds = job.result()
                ckpts[kind] = path
                timings[f"train_{kind}_s"] = seconds
    else:
        for kind in tqdm(policies, desc="training", unit="policy"):
            _, ckpts[kind], timings[f"train_{kind}_s"] = _train_job(kind, data, out / kind, cfg)
    timings["training_s"] = time.perf_counter() - t

    base = load_robot_setup("sim").controller
    rows: dict[str, dict[str, list[EpisodeResult]]] = {}
    timing: dict[str, dict[str, dict[str, float]]] = {}
    total = len(schedules) * len(policies) * len(cfg.modes) * cfg.episodes
    say(f"[3/3] evaluating {', '.join(policies)}: {cfg.episodes} paired seeds x {len(cfg.modes)} perturbation modes"
        f" x {len(schedules)} schedule(s)")
    with tqdm(total=total, desc="closed-loop eval", unit="ep") as bar:
        for name in schedules:
            rows[name], timing[name] = {}, {}
            for kind in policies:
                t = time.perf_counter()
                source = PolicySource(str(ckpts[kind]))
                policy = source.build()
                controller = schedule_controller(base, SCHEDULES[name], policy)
                timing[name][kind] = {"plan_period_s": controller.plan_period,
                                      "inference_latency_s": controller.inference_latency}
                settings = EvalSettings(controller, dict(cfg.task_overrides), None, trace=name == schedules[0],
                                        torch_threads=cfg.torch_threads)

                def progress(r: EpisodeResult, kind: str = kind, name: str = name) -> None:
                    bar.update(1)
                    bar.set_postfix(schedule=name, policy=kind, perturb=r.perturb, score=f"{r.score:.2f}")

                rows[name][kind] = evaluate_policy(cfg.task, source if cfg.workers > 1 else policy, cfg.episodes,
                                                   cfg.modes, settings, cfg.eval_seed0, progress, workers=cfg.workers)
                timings[f"eval_{name}_{kind}_s"] = time.perf_counter() - t
    timings["total_s"] = time.perf_counter() - t0
    return Comparison(rows, timing, timings, demo_info, ckpts)


def comparison_summary(cfg: QuickstartConfig, c: Comparison) -> dict[str, Any]:
    """JSON-ready summary of a comparison (what ``results.json`` holds)."""
    return {
        "task": cfg.task, "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()},
        "demo_mean_score": c.demo_info["mean_score"],
        "eval_seeds": [cfg.eval_seed0 + i for i in range(cfg.episodes)],
        "timing": c.timing, "timings": c.timings,
        "summary": {name: {k: summarize(v) for k, v in rows.items()} for name, rows in c.rows.items()},
        "episodes": {name: {k: [{f: getattr(r, f) for f in ("perturb", "seed", "score", "success", "plans",
                                                            "fast_steps", "ticks", "max_force", "safety", "fault")}
                                for r in v] for k, v in rows.items()} for name, rows in c.rows.items()},
    }


def run_quickstart(
    cfg: QuickstartConfig, policies: tuple[str, ...] = ("rdp", "dp"), say: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run the whole quickstart; returns the summary written to ``<out>/results.json``."""
    c = run_comparison(cfg, policies, (cfg.schedule,), say)
    out = Path(cfg.out)
    rows = c.rows[cfg.schedule]
    table = results_table(rows)
    diffs = differences_table(rows, policies[-1]) if len(policies) > 1 else ""
    summary = comparison_summary(cfg, c)
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    write_report(out, cfg, rows, table, diffs, summary)
    say(f"\n{cfg.task}: mean score [95% bootstrap interval] (success rate), {cfg.episodes} paired seeds per mode; "
        f"{SCHEDULES[cfg.schedule].describe()}\n")
    say(table)
    if diffs:
        say("\n" + diffs)
    say(f"\nreport: {out / 'report.md'} ({c.timings['total_s'] / 60:.1f} min)")
    return summary


def write_report(out: Path, cfg: QuickstartConfig, rows: dict[str, list[EpisodeResult]], table: str, diffs: str,
                 summary: dict[str, Any]) -> Path:
    """``report.md`` + ``scores.png`` (mean score and 95% interval per mode) + ``contact.png``
    (pad height and force through one after-contact episode per policy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    per_policy = summary["summary"][cfg.schedule]
    modes = [m for m in (*PERTURBATIONS, "all") if m in next(iter(per_policy.values()))]
    fig, ax = plt.subplots(figsize=(6.4, 3.2))
    width = 0.8 / max(1, len(rows))
    for i, (label, s) in enumerate(per_policy.items()):
        x = np.arange(len(modes)) + i * width
        mean = np.array([s[m]["score"] for m in modes])
        lo, hi = np.array([s[m]["ci"][0] for m in modes]), np.array([s[m]["ci"][1] for m in modes])
        ax.bar(x, mean, width, yerr=[mean - lo, hi - mean], label=label, capsize=3)
    ax.set_xticks(np.arange(len(modes)) + width * (len(rows) - 1) / 2, modes)
    ax.set_ylabel("normalised score")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{cfg.task}: closed-loop score, 95% interval ({cfg.episodes} paired seeds)")
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

    schedule = SCHEDULES[cfg.schedule]
    timing = summary.get("timing", {}).get(cfg.schedule, {})
    t = summary["timings"]
    lines = [
        f"# tactkit quickstart: RDP vs DP on `{cfg.task}`", "",
        f"- demonstrations: {cfg.demos} scripted-expert episodes (perturbation modes: {cfg.demo_perturb}; "
        f"after-contact motions from the training family; DART noise {cfg.demo_noise * 1e3:.1f} mm), "
        f"expert mean score {summary['demo_mean_score']:.3f}; random scenes",
        f"- observations: {'the external camera' if cfg.cameras else 'the scene state'} and the TCP pose for every "
        "planner; RDP's decoder also reacts to the tactile pad at sensor rate",
        f"- training: {cfg.train_steps} steps per stage, network size `{cfg.size}`, CPU",
        f"- evaluation: the real controller in lockstep (500 Hz robot loop), seeds {summary['eval_seeds']} for "
        f"every policy and perturbation mode (paired)",
        f"- timing ({schedule.name} schedule): " + "; ".join(
            f"{k} plans every {v['plan_period_s']:.2f} s with {v['inference_latency_s'] * 1e3:.0f} ms latency"
            for k, v in timing.items()),
        "",
        "## Scores: mean [95% bootstrap interval] (success rate)", "", table, "",
        *(["## Paired differences (same seeds)", "", diffs, ""] if diffs else []),
        "![scores](scores.png)", "",
        "## Reacting to touch", "",
        "Pad height and contact force through one after-contact episode (the board moves after the "
        "pad touches it). RDP's fast loop re-decodes the plan at tactile rate; DP executes its chunk.", "",
        "![contact](contact.png)", "",
        "## Time", "",
        "| stage | seconds |", "|---|---|",
        *[f"| {k[:-2]} | {v:.0f} |" for k, v in t.items()],
    ]
    path = out / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path
