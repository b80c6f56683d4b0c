"""Closed-loop evaluation in simulation: the real controller, lockstep, on a PyBullet task.

Each episode builds the task for a seed, wires its :class:`~tactkit.sim.robot.SimRobot` and
simulated sensors into a :class:`~tactkit.real.runtime.LockstepRuntime` (the same controller
code that drives a real arm, with the slow policy's inference latency simulated) and scores
it with the task's metric. Seeds are shared across perturbation modes and policies, so
comparisons are paired (:mod:`tactkit.experiments.stats` gives their bootstrap intervals).

Episodes are independent and deterministic given (policy, task, seed, mode, settings), so
:func:`evaluate_policy` can spread them over worker processes (``workers``) and still return
exactly what a serial run returns (one torch thread per process in both cases).

Timing (:data:`SCHEDULES`): a claim about a policy says which schedule it holds at. ``paper``
follows the RDP paper's real-robot setup in seconds: a policy with a fast loop (RDP) gets a
new chunk every 0.67 s (16 steps at 24 Hz), a chunk-executing policy (DP, BEAST) every 1.25 s
(15 of 16 steps at 12 Hz), both with ~4 steps (0.167 s) of inference latency; the others plan
every 0.25 / 0.5 / 1.0 s whatever the policy. Importing this module does not import pybullet
or torch.
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import math
import multiprocessing as mp
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.experiments.stats import Estimate, bootstrap_mean, paired_difference
from tactkit.policies.interface import FastSignal, Plan, Policy
from tactkit.real.controller import ControllerConfig
from tactkit.sim.perturbations import PERTURBATIONS, parse_modes

log = logging.getLogger(__name__)

__all__ = ["PERTURBATIONS", "parse_modes"]  # re-exported for the CLI and benchmarks

#: the safety filter's limits on the commanded motion (speed and acceleration: ``*_rate``; the
#: gripper); "wrench" and "workspace" are reported on their own (tactkit.real.safety)
MOTION_LIMITS = ("linear_rate", "angular_rate", "rate", "gripper_width", "gripper_force")


@dataclass(frozen=True)
class Schedule:
    """When policies plan: ``reactive`` for policies with a fast loop (``policy.fast_keys``),
    ``chunked`` for those that execute their chunk; s between plans, and the simulated latency."""

    name: str
    reactive: float
    chunked: float
    inference_latency: float = 4 / 24

    def plan_period(self, policy: Policy) -> float:
        return self.reactive if policy.fast_keys else self.chunked

    def describe(self, policy: Policy | None = None) -> str:
        if policy is not None:
            return (f"{self.name}: a new chunk every {self.plan_period(policy):.2f} s, "
                    f"{self.inference_latency * 1e3:.0f} ms latency")
        if self.reactive == self.chunked:
            return f"plan every {self.reactive:.2f} s, {self.inference_latency * 1e3:.0f} ms latency"
        return (f"{self.name}: fast-loop policies plan every {self.reactive:.2f} s, chunk-executing ones every "
                f"{self.chunked:.2f} s, {self.inference_latency * 1e3:.0f} ms latency")


#: ``paper`` (the default) and the sweep
SCHEDULES: dict[str, Schedule] = {
    "paper": Schedule("paper", reactive=16 / 24, chunked=15 / 12),
    "0.25": Schedule("0.25", 0.25, 0.25),
    "0.5": Schedule("0.5", 0.5, 0.5),
    "1.0": Schedule("1.0", 1.0, 1.0),
}


def schedule_controller(base: ControllerConfig, schedule: Schedule | str, policy: Policy) -> ControllerConfig:
    """``base`` with the plan period and latency of ``schedule`` for ``policy``; warns when the
    policy's chunk ends before the next plan arrives (the controller then holds its last step)."""
    sched = SCHEDULES[schedule] if isinstance(schedule, str) else schedule
    period = sched.plan_period(policy)
    chunk_s = getattr(policy, "chunk_duration", None)
    if chunk_s is not None and chunk_s < period + sched.inference_latency - 1e-9:
        log.warning("a %.2f s chunk ends before the next plan (every %.2f s + %.0f ms latency): the last step is held",
                    chunk_s, period, sched.inference_latency * 1e3)
    return dataclasses.replace(base, plan_period=period, inference_latency=sched.inference_latency)


@dataclass(frozen=True)
class PolicySource:
    """A policy any process can build: a checkpoint (or run) directory, ``load_policy`` options,
    and the fast-signal-withheld ablation. Picklable, hashable."""

    path: str
    options: tuple[tuple[str, Any], ...] = ()
    withheld: bool = False

    def build(self) -> Policy:
        from tactkit.policies.inference import load_policy

        policy = load_policy(self.path, **dict(self.options))
        return FastSignalWithheld(policy) if self.withheld else policy


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
    safety: dict[str, int]  # limit name -> robot ticks it bound
    fault: str | None
    wall_s: float
    ticks: int = 0  # robot ticks run
    max_force: float = 0.0  # N, largest measured contact force (any arm's wrist) of the episode
    video: str | None = None
    #: per robot tick (with ``EvalSettings.trace``): t, measured TCP z, commanded z, measured fz,
    #: and the true contact-surface height where the task has one (wipe's board; NaN elsewhere)
    trace: dict[str, np.ndarray] | None = None

    def limited_share(self, limits: Iterable[str] = MOTION_LIMITS) -> float:
        """Share of robot ticks on which any of ``limits`` bound the command (upper bound: a tick
        limited twice counts twice)."""
        return sum(self.safety.get(k, 0) for k in limits) / max(self.ticks, 1)


@dataclass
class EvalSettings:
    """What every episode of an evaluation shares."""

    controller: ControllerConfig = field(default_factory=ControllerConfig)
    task_overrides: dict[str, Any] = field(default_factory=dict)
    video_dir: Path | None = None  # write one MP4 per episode (cameras, force, touch, score) here
    trace: bool = False  # keep a per-tick trace of height and force (for plots)
    torch_threads: int = 1  # per process: serial and parallel runs give identical results
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
    import torch

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
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.torch_threads)
    t0 = time.perf_counter()
    try:
        task.reset(seed)
        max_force = [0.0]
        observers = [f(task_name, perturb, seed, task) for f in factories]
        trace: list[tuple[float, float, float, float, float]] = []
        arm0 = task.arm_names[0]

        def on_tick(now: float, state: Any, cmd: Any) -> bool:
            for a in state.arms.values():
                f = a.wrench
                max_force[0] = max(max_force[0], math.sqrt(float(f[0] * f[0] + f[1] * f[1] + f[2] * f[2])))
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
        torch.set_num_threads(threads)
    return EpisodeResult(
        task=task_name, perturb=perturb, seed=seed, score=float(info["score"]), success=bool(info["success"]),
        raw_score=float(info["raw_score"]), plans=stats.plans, fast_steps=stats.fast_steps,
        plan_steps_dropped=stats.plan_steps_dropped, safety=dict(stats.safety), fault=stats.fault,
        wall_s=time.perf_counter() - t0, ticks=stats.robot_ticks, max_force=max_force[0], video=video,
        trace={k: np.array(v) for k, v in zip(("t", "z", "z_cmd", "fz", "surface_z"), zip(*trace))} if trace else None,
    )


# ----------------------------------------------------------------------------- parallel runs
_WORKER_POLICIES: dict[PolicySource, Policy] = {}


def _worker_init() -> None:
    logging.getLogger("tactkit.real.safety").setLevel(logging.ERROR)


def _worker_episode(source: PolicySource, task_name: str, seed: int, perturb: str,
                    settings: EvalSettings) -> EpisodeResult:
    policy = _WORKER_POLICIES.get(source)
    if policy is None:
        import torch

        torch.set_num_threads(settings.torch_threads)
        policy = _WORKER_POLICIES[source] = source.build()
    return run_sim_episode(task_name, policy, seed, perturb, settings)


def evaluate_policy(
    task_name: str,
    policy: Policy | PolicySource,
    episodes: int,
    modes: Iterable[str],
    settings: EvalSettings | None = None,
    seed0: int = 1000,
    progress: Callable[[EpisodeResult], None] | None = None,
    workers: int = 1,
) -> list[EpisodeResult]:
    """``episodes`` seeds (``seed0 + i``) under each perturbation mode, in that order.

    ``workers`` > 1 runs the episodes in that many spawned processes; ``policy`` must then be a
    :class:`PolicySource` (each process loads it once). The results equal a serial run's, bit
    for bit: every episode builds its own world and resets the policy's sampling noise.
    ``progress`` is called with each result as it finishes (in completion order)."""
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    settings = settings or EvalSettings()
    jobs = [(seed0 + i, mode) for mode in modes for i in range(episodes)]
    if workers == 1 or len(jobs) == 1:
        built = policy.build() if isinstance(policy, PolicySource) else policy
        results = []
        for seed, mode in jobs:
            r = run_sim_episode(task_name, built, seed, mode, settings)
            results.append(r)
            if progress is not None:
                progress(r)
        return results
    if not isinstance(policy, PolicySource):
        raise TypeError("evaluate_policy with workers > 1 needs a PolicySource (a checkpoint path each process loads)")
    results_by_job: dict[tuple[int, str], EpisodeResult] = {}
    with cf.ProcessPoolExecutor(min(workers, len(jobs)), mp.get_context("spawn"), initializer=_worker_init) as pool:
        futures = {pool.submit(_worker_episode, policy, task_name, seed, mode, settings): (seed, mode)
                   for seed, mode in jobs}
        for fut in cf.as_completed(futures):
            r = fut.result()
            results_by_job[futures[fut]] = r
            if progress is not None:
                progress(r)
    return [results_by_job[j] for j in jobs]


# ----------------------------------------------------------------------------- summaries
def _groups(results: list[EpisodeResult]) -> dict[str, list[EpisodeResult]]:
    groups: dict[str, list[EpisodeResult]] = {}
    for r in results:
        groups.setdefault(r.perturb, []).append(r)
    if len(groups) > 1:
        groups["all"] = list(results)
    return groups


def summarize(results: list[EpisodeResult]) -> dict[str, dict[str, Any]]:
    """Per perturbation mode (and ``all`` over modes): mean score with its bootstrap interval,
    std, success rate, episodes, the share of robot ticks on which a motion limit (rates,
    accelerations, gripper) bound the command, wrench-limit ticks per episode, and the largest
    contact force."""
    out: dict[str, dict[str, Any]] = {}
    for mode, rs in _groups(results).items():
        scores = np.array([r.score for r in rs])
        est = bootstrap_mean(scores)
        out[mode] = {
            "score": est.mean, "ci": [est.lo, est.hi], "std": float(scores.std()),
            "success": float(np.mean([r.success for r in rs])), "episodes": len(rs),
            "limited_share": float(np.mean([r.limited_share() for r in rs])),
            "wrench_ticks": float(np.mean([r.safety.get("wrench", 0) for r in rs])),
            "max_force": float(max(r.max_force for r in rs)),
            "limits": {k: float(np.mean([r.safety.get(k, 0) / max(r.ticks, 1) for r in rs]))
                       for k in sorted({k for r in rs for k in r.safety})},
        }
    return out


def _modes(rows: dict[str, list[EpisodeResult]]) -> list[str]:
    present = {r.perturb for rs in rows.values() for r in rs}
    modes = [m for m in PERTURBATIONS if m in present]
    return modes + (["all"] if len(modes) > 1 else [])


def results_table(rows: dict[str, list[EpisodeResult]]) -> str:
    """Markdown table: per policy label, mean score [95% bootstrap interval] (success rate) per
    mode, then the share of ticks a motion limit bound, wrench-limit ticks per episode and the
    largest contact force over every episode."""
    modes = _modes(rows)
    lines = ["| policy | " + " | ".join(modes) + " | motion-limited ticks | wrench-limit ticks / ep | max force |",
             "|---|" + "---|" * (len(modes) + 3)]
    for label, rs in rows.items():
        s = summarize(rs)
        cells = [f"{s[m]['score']:.2f} [{s[m]['ci'][0]:.2f}, {s[m]['ci'][1]:.2f}] ({s[m]['success'] * 100:.0f}%)"
                 if m in s else "-" for m in modes]
        every = s["all"] if "all" in s else next(iter(s.values()))
        lines.append(f"| {label} | " + " | ".join(cells)
                     + f" | {every['limited_share'] * 100:.1f}% | {every['wrench_ticks']:.1f} | {every['max_force']:.0f} N |")
    return "\n".join(lines)


def paired_differences(rows: dict[str, list[EpisodeResult]], baseline: str) -> dict[str, dict[str, Estimate]]:
    """``{label: {mode: mean paired difference to baseline, with its bootstrap interval}}`` over
    the (mode, seed) pairs both ran."""
    if baseline not in rows:
        raise KeyError(f"baseline {baseline!r} is not one of {list(rows)}")
    ref = {(r.perturb, r.seed): r.score for r in rows[baseline]}
    out: dict[str, dict[str, Estimate]] = {}
    for label, rs in rows.items():
        if label == baseline:
            continue
        mine = {(r.perturb, r.seed): r.score for r in rs}
        keys = [k for k in mine if k in ref]
        if not keys:
            raise ValueError(f"{label!r} and {baseline!r} share no (mode, seed) pair")
        out[label] = {}
        for mode in [*sorted({k[0] for k in keys}, key=PERTURBATIONS.index), "all"]:
            ks = [k for k in keys if mode == "all" or k[0] == mode]
            out[label][mode] = paired_difference([mine[k] for k in ks], [ref[k] for k in ks])
        if len(out[label]) == 2:  # one mode: "all" repeats it
            out[label].pop("all")
    return out


def differences_table(rows: dict[str, list[EpisodeResult]], baseline: str) -> str:
    """Markdown table of :func:`paired_differences`: mean difference [95% interval] per mode."""
    diffs = paired_differences(rows, baseline)
    modes = list(next(iter(diffs.values())))
    lines = [f"| vs {baseline} (paired seeds) | " + " | ".join(modes) + " |", "|---|" + "---|" * len(modes)]
    for label, d in diffs.items():
        lines.append(f"| {label} | " + " | ".join(d[m].fmt(signed=True) for m in modes) + " |")
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
