"""Running experts and open-loop replays; the reactivity gap.

The reactivity gap of a task at a seed: the expert's score under ``after_contact`` minus the
score of *open-loop replay* — the actions the expert produced on the same seed without
perturbation, replayed blindly (no feedback) under ``after_contact``. The seed fixes the
scene, so the replay is the right motion for the unperturbed world; only touch reveals the
change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tactkit.sim.tasks import make_expert, make_task


def run_expert(task: str, seed: int, perturb: str = "none", **overrides: Any) -> tuple[dict[str, Any], np.ndarray]:
    """Expert episode; returns (final evaluate() dict, actions [steps, action_size])."""
    env = make_task(task, perturb=perturb, **overrides)
    env.reset(seed)
    expert = make_expert(env)
    actions = []
    info: dict[str, Any] = env.evaluate()
    while not env.done:
        a = expert.act(None)
        actions.append(a)
        _, _, _, _, info = env.step(a)
    env.close()
    return info, np.asarray(actions)


def run_open_loop(task: str, seed: int, actions: np.ndarray, perturb: str = "after_contact",
                  **overrides: Any) -> dict[str, Any]:
    """Replay ``actions`` blindly (one per control step) on ``seed``; returns evaluate()."""
    env = make_task(task, perturb=perturb, **overrides)
    env.reset(seed)
    info: dict[str, Any] = env.evaluate()
    for a in actions:
        if env.done:
            break
        _, _, _, _, info = env.step(a)
    env.close()
    return info


def reactivity_gap(task: str, seed: int, **overrides: Any) -> dict[str, float]:
    """Expert vs open-loop replay under ``after_contact`` on one seed."""
    _, nominal = run_expert(task, seed, "none", **overrides)
    expert, _ = run_expert(task, seed, "after_contact", **overrides)
    replay = run_open_loop(task, seed, nominal, "after_contact", **overrides)
    return {"expert": expert["score"], "open_loop": replay["score"], "gap": expert["score"] - replay["score"]}
