"""Closed-loop evaluation in simulation: the real controller, lockstep, on a PyBullet task.

Each episode builds the task for a seed, wires its :class:`~tactkit.sim.robot.SimRobot` and
simulated sensors into a :class:`~tactkit.real.runtime.LockstepRuntime` (the same controller
code that drives a real arm, with the slow policy's inference latency simulated) and scores
it with the task's metric. Seeds are shared across perturbation modes and policies, so
comparisons are paired. Importing this module does not import pybullet or torch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.policies.interface import FastSignal, Plan, Policy
from tactkit.real.controller import ControllerConfig
from tactkit.sim.perturbations import PERTURBATIONS

log = logging.getLogger(__name__)

@dataclass
class EpisodeResult:
    task: str
    perturb: str
    seed: int
    score: float
    success: bool
    raw_score: float
    plans: int
    fast_steps: int
    plan_steps_dropped: int
    safety: dict[str, int]
    fault: str | None
    wall_s: float
    video: str | None = None
    #: per robot tick (with ``EvalSettings.trace``): t, measured TCP z, commanded z, measured fz,
    #: and the true contact-surface height where the task has one (wipe's board; NaN elsewhere)
    trace: dict[str, np.ndarray] | None = None


@dataclass
class EvalSettings:
    """What every episode of an evaluation shares."""

    controller: ControllerConfig = field(default_factory=ControllerConfig)
    task_overrides: dict[str, Any] = field(default_factory=dict)
    video_dir: Path | None = None  # write one MP4 per episode (cameras, force, touch, score) here
    trace: bool = False  # keep a per-tick trace of height and force (for plots)
    #: per-episode observers: ``factory(task_name, perturb, seed, task)`` returns an object whose
    #: ``tick(now, state, cmd, plans)`` runs after every robot tick and ``finish(info)`` after
    #: scoring (``tactkit.experiments.viewer.RerunEvalLog``: ``tactkit eval --rerun``)
    observers: list[Callable[..., Any]] = field(default_factory=list)


class FastSignalWithheld:
    """An ablation: ``policy`` with its fast loop fed nothing. Each step decodes with the last
    fast signal its plan saw (the observation window's), so only the planner reacts to touch."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy

    def __getattr__(self, name: str) -> Any:
        return getattr(self.policy, name)

    def step(self, plan: Plan, t: float, fast: FastSignal | None = None) -> np.ndarray:
        return self.policy.step(plan, t, None)


def surface_follow(
    trace: dict[str, np.ndarray], after_contact_s: float, until_s: float, force_target: float,
    band: tuple[float, float], max_lag_s: float = 0.6,
) -> dict[str, float]:
    """How the commanded height followed the moving contact surface in one traced episode,
    from ``after_contact_s`` after first contact (fz > 1 N) to ``until_s``:

    ``slope`` (least squares of commanded z on surface z; 1 = moves with it, 0 = ignores it),
    ``lag_ms`` (delay of the best correlation, up to ``max_lag_s``), ``force_rms`` (N, around
    ``force_target``) and ``in_band`` (fraction of that time with the force inside ``band``).
    NaN (in band 0) if the episode never made contact."""
    t, fz, zc, surf = trace["t"], trace["fz"], trace["z_cmd"], trace["surface_z"]
    contact = np.flatnonzero(fz > 1.0)
    m = (t > t[contact[0]] + after_contact_s) & (t < until_s) if contact.size else np.zeros(len(t), bool)
    if m.sum() < 3:
        return {"slope": math.nan, "lag_ms": math.nan, "force_rms": math.nan, "in_band": 0.0}
    b, c = surf[m] - surf[m].mean(), zc[m] - zc[m].mean()
    slope = float(np.dot(c, b) / max(float(np.dot(b, b)), 1e-12))
    dt = float(np.median(np.diff(t)))
    lags = np.arange(0, min(int(max_lag_s / dt), len(b) - 2))
    corr = [float(np.corrcoef(b[: len(b) - k], c[k:])[0, 1]) if np.std(c[k:]) > 0 and np.std(b[: len(b) - k]) > 0
            else 0.0 for k in lags]
    f = fz[m]
    return {"slope": slope, "lag_ms": float(lags[int(np.argmax(corr))] * dt * 1e3),
            "force_rms": float(np.sqrt(np.mean((f - force_target) ** 2))),
            "in_band": float(np.mean((f > band[0]) & (f < band[1])))}


def policy_needs_cameras(policy: Policy) -> bool:
    return any(k.startswith("observation.images.") for k in policy.obs_keys)


def run_sim_episode(
    task_name: str, policy: Policy, seed: int, perturb: str, settings: EvalSettings | None = None
) -> EpisodeResult:
    """One closed-loop episode of ``policy`` on ``task_name`` (lockstep, deterministic)."""
    from tactkit.real.runtime import LockstepRuntime
    from tactkit.sim.tasks import make_task

    settings = settings or EvalSettings()
    factories = list(settings.observers)
    if settings.video_dir is not None:
        from tactkit.experiments.viewer import EpisodeVideo

        factories.append(EpisodeVideo(settings.video_dir))
    overrides = dict(settings.task_overrides)
    overrides.setdefault("cameras", policy_needs_cameras(policy) or any(getattr(f, "needs_cameras", False) for f in factories))
    task = make_task(task_name, perturb=perturb, **overrides)
    t0 = time.perf_counter()
    try:
        task.reset(seed)
        observers = [f(task_name, perturb, seed, task) for f in factories]
        trace: list[tuple[float, float, float, float, float]] = []
        arm0 = task.arm_names[0]

        def on_tick(now: float, state: Any, cmd: Any) -> bool:
            if settings.trace:
                a = state.arms[arm0]
                trace.append((now, float(a.tcp_pose[2]), float(cmd.arms[arm0].tcp_target[2]), float(a.wrench[2]),
                              task.surface_height()))
            for o in observers:
                o.tick(now, state, cmd, runtime.core.plans)
            return task.done

        runtime = LockstepRuntime(
            task.robot, policy, settings.controller, task.clock,
            sensors=list(task.sensors.values()), advance_to=task.world.run_until,
        )
        stats = runtime.run(task.config.episode_s, on_tick=on_tick)
        info = task.evaluate()
        written = [o.finish(info) for o in observers]
        video = next((str(p) for p in written if p is not None), None)
    finally:
        task.close()
    return EpisodeResult(
        task=task_name, perturb=perturb, seed=seed, score=float(info["score"]), success=bool(info["success"]),
        raw_score=float(info["raw_score"]), plans=stats.plans, fast_steps=stats.fast_steps,
        plan_steps_dropped=stats.plan_steps_dropped, safety=dict(stats.safety), fault=stats.fault,
        wall_s=time.perf_counter() - t0, video=video,
        trace={k: np.array(v) for k, v in zip(("t", "z", "z_cmd", "fz", "surface_z"), zip(*trace))} if trace else None,
    )


def evaluate_policy(
    task_name: str,
    policy: Policy,
    episodes: int,
    modes: Iterable[str],
    settings: EvalSettings | None = None,
    seed0: int = 1000,
    progress: Callable[[EpisodeResult], None] | None = None,
) -> list[EpisodeResult]:
    """``episodes`` seeds (``seed0 + i``) under each perturbation mode."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    results = []
    for mode in modes:
        for i in range(episodes):
            r = run_sim_episode(task_name, policy, seed0 + i, mode, settings)
            results.append(r)
            if progress is not None:
                progress(r)
    return results


def summarize(results: list[EpisodeResult]) -> dict[str, dict[str, float]]:
    """Per perturbation mode: mean/std score, success rate, episodes (and ``all`` over modes)."""
    out: dict[str, dict[str, float]] = {}
    groups: dict[str, list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault(r.perturb, []).append(r)
    if len(groups) > 1:
        groups["all"] = list(results)
    for mode, rs in groups.items():
        scores = np.array([r.score for r in rs])
        out[mode] = {
            "score": float(scores.mean()),
            "std": float(scores.std()),
            "success": float(np.mean([r.success for r in rs])),
            "episodes": float(len(rs)),
        }
    return out


def results_table(rows: dict[str, list[EpisodeResult]]) -> str:
    """Markdown table: one row per policy label, mean score (success rate) per mode."""
    modes = [m for m in (*PERTURBATIONS, "all") if any(m in summarize(rs) for rs in rows.values())]
    lines = ["| policy | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for label, rs in rows.items():
        s = summarize(rs)
        cells = [f"{s[m]['score']:.2f} ± {s[m]['std']:.2f} ({s[m]['success'] * 100:.0f}%)" if m in s else "-" for m in modes]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def measure_inference_latency(policy: Policy, window: dict[str, np.ndarray], repeats: int = 3) -> float:
    """Median wall time (s) of ``policy.plan(window)`` - to configure the lockstep latency."""
    times = []
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        policy.plan(window)
        times.append(time.perf_counter() - t0)
    policy.reset()
    return float(np.median(times))


def first_window(task_name: str, policy: Policy, seed: int = 0, overrides: dict[str, Any] | None = None) -> dict[str, np.ndarray]:
    """An observation window from the start of an episode (for latency measurement)."""
    from tactkit.real.controller import ControllerCore
    from tactkit.sim.tasks import make_task

    overrides = dict(overrides or {})
    overrides.setdefault("cameras", policy_needs_cameras(policy))
    task = make_task(task_name, **overrides)
    try:
        task.reset(seed)
        core = ControllerCore(policy, task.arm_names, ControllerConfig())
        core.start(task.robot.read_state(), task.clock.now())
        for _ in range(math.ceil(policy.n_obs_steps * policy.dt * 1000) + 5):
            task.world.step_physics(1)
            core.on_state(task.robot.read_state())
            for s in task.sensors.values():
                sample = s.read_latest()
                if sample is not None:
                    core.on_sample(sample)
        window = core.window()
        if window is None:
            raise KeyError(f"task {task_name!r} does not provide {core.obs.missing(policy.obs_keys)} for this policy")
        return window
    finally:
        task.close()


def write_video(frames: list[np.ndarray], path: Path, fps: float) -> Path:
    """RGB frames -> H.264 MP4 (:mod:`tactkit.video`, PyAV)."""
    from tactkit.video import write_video as write_h264

    return write_h264(frames, path, fps)


def episode_rows(results: list[EpisodeResult]) -> list[dict[str, Any]]:
    """Results as plain dicts (JSON-ready)."""
    return [{k: v for k, v in dataclasses.asdict(r).items() if k != "trace"} for r in results]
