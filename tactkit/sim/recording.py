"""Recording scripted-expert episodes into the episode store, with real-session stream names.

Every sensor sample is kept at its own rate and capture time (cameras, tactile, wrench), the
robot state at ``state_rate_hz``, and the commanded action at the control rate, exactly as a
real recording session would (see :meth:`SimTask.streams`). Timestamps are simulation
seconds from the episode start (``start_time = 0``).

Noise injection (DART, Laskey et al. 2017): with ``noise > 0`` the robot executes the expert's
action plus a random disturbance of each arm's commanded position (an Ornstein-Uhlenbeck
process: ``noise`` m standard deviation, ``noise_tau`` s correlation time), while the store
records the expert's own action. The demonstrations then visit states off the expert's path
and show the corrections back, which is what a policy that drifts needs to learn.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.sim.tasks import PERTURBATIONS, make_expert, make_task
from tactkit.sim.tasks.base import SimTask

log = logging.getLogger(__name__)

#: ``--perturb mixed`` cycles through these, episode by episode
MIXED = PERTURBATIONS


class EpisodeBuffer:
    """Collects one episode's streams in memory (observer on the task's world)."""

    def __init__(self, env: SimTask) -> None:
        self.env = env
        self.times: dict[str, list[float]] = defaultdict(list)
        self.values: dict[str, list[np.ndarray]] = defaultdict(list)
        self._seen: dict[str, int] = {}
        self._state_every = max(1, round(1.0 / (env.config.state_rate_hz * env.world.dt)))
        env.world.add_observer(self._on_step)
        self._on_step(force=True)

    def _on_step(self, force: bool = False) -> None:
        for s in self.env.sensors.values():
            sample = s.read_latest()
            if sample is not None and self._seen.get(sample.key) != sample.seq:
                self._seen[sample.key] = sample.seq
                self.times[sample.key].append(sample.capture_time)
                self.values[sample.key].append(sample.value)
        if force or self.env.world.step_count % self._state_every == 0:
            t = self.env.clock.now()
            for key, v in self.env.state_values().items():
                self.times[key].append(t)
                self.values[key].append(v)

    def add_action(self, t: float, action: np.ndarray) -> None:
        i = 0
        for key, n in self.env.action_keys:
            self.times[key].append(t)
            self.values[key].append(np.asarray(action[i:i + n], dtype=np.float32))
            i += n

    def write(self, rec: Any) -> None:
        for key in sorted(self.times):
            rec.append_many(key, np.asarray(self.times[key], dtype=np.float64), np.stack(self.values[key]))


class ActionNoise:
    """DART disturbance of the executed actions: an Ornstein-Uhlenbeck process on each arm's
    commanded position (std ``std`` m, correlation time ``tau`` s), seeded per episode."""

    def __init__(self, env: SimTask, std: float, tau: float, rng: np.random.Generator) -> None:
        if std < 0 or tau <= 0:
            raise ValueError(f"noise must be >= 0 and noise_tau > 0, got {std}, {tau}")
        self.std, self.rng = std, rng
        self.decay = float(np.exp(-1.0 / (env.config.control_hz * tau)))
        starts = np.cumsum([0] + [n for _, n in env.action_keys])
        self.offsets = [int(starts[i]) for i, (key, _) in enumerate(env.action_keys) if key.endswith("tcp_pose")]
        self.state = np.zeros((len(self.offsets), 3))

    def __call__(self, action: np.ndarray) -> np.ndarray:
        if self.std == 0:
            return action
        self.state = self.decay * self.state + np.sqrt(1 - self.decay**2) * self.std * self.rng.standard_normal(
            self.state.shape)
        out = action.copy()
        for off, d in zip(self.offsets, self.state):
            out[off:off + 3] += d
        return out


def run_recorded_episode(env: SimTask, seed: int, noise: float = 0.0,
                         noise_tau: float = 0.3) -> tuple[EpisodeBuffer, dict[str, Any]]:
    """One expert episode on ``seed`` with every stream buffered; ``noise`` > 0 executes the
    expert's actions with a DART disturbance (module docstring) and records the clean ones."""
    obs = env.reset(seed)
    expert = make_expert(env)
    disturb = ActionNoise(env, noise, noise_tau, np.random.default_rng([seed, 2]))
    buf = EpisodeBuffer(env)
    info = env.evaluate()
    while not env.done:
        a = expert.act(obs)
        buf.add_action(env.clock.now(), a)
        obs, _, _, _, info = env.step(disturb(a))
    return buf, info


def record_demos(task: str, episodes: int, out: str | Path, perturb: str = "mixed", seed: int = 0,
                 overwrite: bool = False, progress: bool = True, noise: float = 0.0, noise_tau: float = 0.3,
                 min_score: float | None = None, **overrides: Any) -> dict[str, Any]:
    """Record ``episodes`` expert episodes of ``task`` (seeds ``seed``, ``seed + 1``, ...).

    ``perturb``: one mode, ``"mixed"`` (every mode in turn) or a comma-separated list of modes
    taken in turn (e.g. ``"none,after_contact"``). ``noise``/``noise_tau``: DART noise
    injection (module docstring; 0 = none). ``min_score``: an episode the expert scores below it
    (a disturbance made it drop the box, say) is discarded, as an operator would, and the next
    seed recorded instead, up to twice ``episodes`` attempts."""
    from tqdm import tqdm

    from tactkit.store import EpisodeStore

    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    modes = MIXED if perturb == "mixed" else tuple(m.strip() for m in perturb.split(","))
    for m in modes:
        if m not in PERTURBATIONS:
            raise ValueError(f"perturb must be 'mixed' or one of {PERTURBATIONS}, got {perturb!r}")
    envs = {m: make_task(task, perturb=m, **overrides) for m in modes}
    first = envs[modes[0]]
    first.reset(seed)
    streams = first.streams()
    attrs = {"source": "tactkit.sim", "task": task, "perturb": perturb, "seed": seed, "noise": noise,
             "noise_tau": noise_tau,
             "control_hz": first.config.control_hz, "action_keys": [k for k, _ in first.action_keys],
             # the arms' Cartesian impedance stiffness (N/m, N·m/rad): policies that map force into
             # action space (ImplicitRDP's virtual target x + K^-1 f) read it from here
             "impedance_stiffness": {a.name: list(a.gains.stiffness) for a in first.robot_config().arms}}
    store = EpisodeStore.create(str(out), streams=streams, attrs=attrs, overwrite=overwrite)
    scores: list[float] = []
    discarded: list[int] = []
    bar = tqdm(total=episodes, desc=f"sim demos {task}", unit="ep", disable=not progress)
    i = -1
    while len(scores) < episodes:
        i += 1
        if i >= 2 * episodes and min_score is not None:
            bar.close()
            raise RuntimeError(f"{task}: the expert scored below {min_score} on {len(discarded)} of {i} seeds "
                               f"({discarded[:10]}...); lower the noise ({noise} m) or min_score")
        mode = modes[len(scores) % len(modes)]
        env = envs[mode]
        buf, info = run_recorded_episode(env, seed + i, noise, noise_tau)
        if min_score is not None and info["score"] < min_score:
            discarded.append(seed + i)
            log.info("%s seed %d (%s): expert scored %.3f < %.3f, discarded", task, seed + i, mode, info["score"],
                     min_score)
            env.close()
            continue
        motion = getattr(env, "motion", None) if mode == "after_contact" else None
        rec = store.begin_episode(task=task, metadata={"seed": seed + i, "perturb": mode, "noise": noise,
                                                       "motion": motion.kind if motion is not None else None,
                                                       "score": info["score"], "raw_score": info["raw_score"]},
                                  start_time=0.0)
        buf.write(rec)
        rec.commit(success=info["success"], note=f"scripted expert, perturb={mode}")
        scores.append(info["score"])
        bar.update(1)
        bar.set_postfix(score=f"{np.mean(scores):.3f}", discarded=len(discarded))
        env.close()
    bar.close()
    return {"episodes": episodes, "mean_score": float(np.mean(scores)), "min_score": float(np.min(scores)),
            "discarded_seeds": discarded, "out": str(out)}
