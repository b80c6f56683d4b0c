"""lift: bimanual streams, scoring on hand-made trajectories, expert vs open-loop replay."""

import numpy as np
import pytest

from tactkit.sim.tasks import make_task
from tactkit.sim.tasks.evaluate import reactivity_gap
from tactkit.sim.tasks.lift import PAD_ORIENTATION, T_LIFT, T_SQUEEZE


def test_bimanual_keys_and_actions():
    env = make_task("lift", cameras=True, camera_rate_hz=6.0)
    obs = env.reset(0)
    assert env.action_keys == [("action.left.tcp_pose", 7), ("action.left.gripper_width", 1),
                               ("action.right.tcp_pose", 7), ("action.right.gripper_width", 1)]
    for key in ("observation.wrench.left", "observation.wrench.right", "observation.state.left.tcp_pose",
                "observation.state.right.joint_positions", "observation.tactile.left.marker_offset",
                "observation.tactile.right.marker_offset", "observation.images.external",
                "observation.images.wrist_left"):
        assert key in obs, key
    assert set(env.streams()) >= set(obs)
    env.close()


def _clamp(seed, depth, episode_s=7.5):
    """Fixed squeeze ``depth`` (m into the box faces), lift 10 cm, no feedback."""
    env = make_task("lift", cameras=False, episode_s=episode_s)
    env.reset(seed)
    while not env.done:
        t = env.clock.now()
        lift = 0.0 if t < T_SQUEEZE else 0.10 * min(1.0, (t - T_SQUEEZE) / (T_LIFT - T_SQUEEZE))
        parts = []
        for arm in ("left", "right"):
            gap = 0.03 + (-depth - 0.03) * min(1.0, t / 1.5)  # close in 1.5 s
            pos = env.pad_target(arm, gap, lift)
            parts += [pos, PAD_ORIENTATION[arm], [0.0]]
        env.step(np.concatenate(parts))
    out = env.evaluate(), env.privileged()
    env.close()
    return out


@pytest.mark.slow
def test_lift_scoring_on_hand_made_trajectories():
    loose, _ = _clamp(0, -0.01, episode_s=4.5)  # pads 1 cm off the box: it stays on the table
    assert loose["raw_score"] == 0.0
    crush, priv = _clamp(0, 0.05, episode_s=2.5)  # 5 cm squeeze: far above the break threshold
    assert priv["crushed"] and crush["raw_score"] == 0.0
    firm, priv = _clamp(0, 0.006)  # ~9 N per pad: 3x the slip force of this light box
    assert not priv["crushed"] and firm["score"] > 0.95


@pytest.mark.slow
def test_lift_expert_beats_open_loop_replay():
    g = reactivity_gap("lift", 0, cameras=False)
    assert g["expert"] >= 0.9 and g["gap"] >= 0.3, g
