"""peel: scoring on hand-made trajectories, expert vs open-loop replay."""

import math

import numpy as np
import pytest

from tactkit.sim.tasks import make_task
from tactkit.sim.tasks.evaluate import reactivity_gap
from tactkit.sim.tasks.peel import ARC, blade_orientation


def _sweep(seed, standoff, episode_s=7.5):
    """Sweep the arc with a fixed standoff from the (unperturbed) surface, no feedback."""
    env = make_task("peel", perturb="none", cameras=False, episode_s=episode_s)
    env.reset(seed)
    while not env.done:
        t = env.clock.now()
        theta = -ARC + 2 * ARC * float(np.clip((t - 1.6) / 5.0, 0, 1))
        off = 0.03 if t < 1.0 else standoff
        env.step(np.r_[env.arc_point(theta, off), blade_orientation(theta), 0.0])
    out = env.evaluate()
    env.close()
    return out


@pytest.mark.slow
def test_peel_scoring_on_hand_made_trajectories():
    assert _sweep(1, 0.01, episode_s=4.0)["raw_score"] == 0.0  # 1 cm above the surface: no contact
    assert _sweep(1, -0.015)["raw_score"] < 0.1  # 1.5 cm deep at 2000 N/m: ~30 N
    good = _sweep(1, -0.0033)  # ~6.5 N
    assert good["score"] > 0.85


def test_blade_orientation_points_into_the_surface():
    from tactkit.sim.geometry import quat_to_matrix

    for theta in (-ARC, 0.0, ARC):
        z_tool = quat_to_matrix(blade_orientation(theta))[:, 2]
        np.testing.assert_allclose(z_tool, [0.0, -math.sin(theta), -math.cos(theta)], atol=1e-9)


@pytest.mark.slow
def test_peel_expert_beats_open_loop_replay():
    g = reactivity_gap("peel", 0, cameras=False)
    assert g["expert"] >= 0.9 and g["gap"] >= 0.3, g
