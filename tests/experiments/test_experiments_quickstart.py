import numpy as np
import pytest

from tactkit.experiments.evaluation import (
    EpisodeResult,
    differences_table,
    results_table,
    summarize,
)
from tactkit.experiments.quickstart import (
    QuickstartConfig,
    policy_overrides,
    tactile_keys,
    write_report,
)

TAC = "observation.tactile.pad.marker_offset"


def _result(perturb, seed, score, trace=True):
    t = np.linspace(0, 1, 50)
    tr = {"t": t, "z": 0.03 - 0.001 * t, "z_cmd": 0.029 - 0.001 * t, "fz": 10 * t} if trace else None
    return EpisodeResult("wipe", perturb, seed, score, score >= 0.8, score, 4, 30, 3, {"linear_rate": 50}, None, 1.0,
                         ticks=1000, max_force=12.0, trace=tr)


def test_report_has_table_intervals_differences_plots_and_timings(tmp_path):
    rows = {
        "rdp": [_result(m, s, 0.9) for m in ("none", "after_contact") for s in (1, 2)],
        "dp": [_result(m, s, 0.4 + 0.1 * s) for m in ("none", "after_contact") for s in (1, 2)],
    }
    table = results_table(rows)
    assert "| rdp | 0.90 [0.90, 0.90] (100%)" in table
    assert "| dp | 0.55 [0.50, 0.60] (0%)" in table
    assert "| 5.0% | 0.0 | 12 N |" in table  # 50 of 1000 ticks rate-limited, no wrench limit, peak force
    diffs = differences_table(rows, "dp")
    assert "| rdp | +0.35 [+0.30, +0.40] | +0.35 [+0.30, +0.40] | +0.35 [+0.30, +0.40] |" in diffs
    summary = {"demo_mean_score": 0.97, "eval_seeds": [1, 2], "timings": {"demos_s": 10.0, "total_s": 60.0},
               "timing": {"paper": {"rdp": {"plan_period_s": 0.667, "inference_latency_s": 0.167}}},
               "summary": {"paper": {k: summarize(v) for k, v in rows.items()}}}
    path = write_report(tmp_path, QuickstartConfig(episodes=2), rows, table, diffs, summary)
    text = path.read_text()
    assert "RDP vs DP" in text and table in text and diffs in text and "| demos | 10 |" in text
    assert "rdp plans every 0.67 s with 167 ms latency" in text and "seeds [1, 2]" in text
    assert (tmp_path / "scores.png").stat().st_size > 1000
    assert (tmp_path / "contact.png").stat().st_size > 1000


def test_policy_overrides_name_the_unknown_and_the_bad_observations():
    kind, over = policy_overrides("rdp", TAC, observations="camera")
    assert kind == "rdp" and f"at.fast_keys=[{TAC}]" in over
    assert any("observation.images.external" in o for o in over)
    with pytest.raises(KeyError, match="bc"):
        policy_overrides("bc", "x")
    with pytest.raises(ValueError, match="observations"):
        policy_overrides("dp", TAC, observations="lidar")
    with pytest.raises(ValueError, match="observations"):
        QuickstartConfig(observations="lidar")


def test_state_observations_drop_every_image_setting_and_chunk_policies_run_at_12_hz():
    for kind in ("rdp", "rdp_force", "rdp_plan_touch", "dp", "dp_tactile"):
        _, over = policy_overrides(kind, TAC)
        assert not any("images" in o or "image_shape" in o or "crop_shape" in o for o in over), over
    planner = "observation.environment_state,observation.state.tcp_pose"
    _, over = policy_overrides("rdp", TAC)
    assert f"ldp.obs_keys=[{planner}]" in over and f"at.fast_keys=[{TAC}]" in over
    assert policy_overrides("dp", TAC)[1] == [f"obs_keys=[{planner}]", "fps=12", "horizon=16"]
    _, over = policy_overrides("rdp_plan_touch", TAC)
    assert over[-1] == f"ldp.obs_keys=[{planner},{TAC}]"


def test_policy_overrides_name_each_arm_of_a_bimanual_task():
    from tactkit.experiments.quickstart import task_arms

    assert task_arms("lift") == ("left", "right") and task_arms("wipe") == ("arm",)
    tac = "observation.tactile.left.marker_offset"
    acts = ("action_keys=[action.left.tcp_pose,action.left.gripper_width,"
            "action.right.tcp_pose,action.right.gripper_width]")
    _, over = policy_overrides("dp", tac, arms=("left", "right"))
    assert over == ["obs_keys=[observation.environment_state,observation.state.left.tcp_pose,"
                    "observation.state.right.tcp_pose]", "fps=12", "horizon=16", acts]
    _, over = policy_overrides("rdp_force", tac, arms=("left", "right"))
    assert "at.fast_keys=[observation.wrench.left,observation.wrench.right]" in over and acts in over
    pads = tactile_keys("lift")
    assert pads == "observation.tactile.left.marker_offset,observation.tactile.right.marker_offset"
    assert f"at.fast_keys=[{pads}]" in policy_overrides("rdp", pads, arms=("left", "right"))[1]
    assert tactile_keys("wipe") == TAC
    # one arm: the keys carry no arm name and the policy configs' action keys stay
    assert not any(o.startswith("action_keys") for o in policy_overrides("dp", tac, arms=("arm",))[1])


@pytest.mark.slow
def test_quickstart_trains_and_runs_a_bimanual_policy(tmp_path):
    import torch

    from tactkit.experiments.evaluation import EvalSettings, run_sim_episode
    from tactkit.experiments.quickstart import train_policy
    from tactkit.policies.inference import load_policy
    from tactkit.sim.recording import record_demos

    torch.set_num_threads(1)
    record_demos("lift", 2, tmp_path / "d.zarr", perturb="none", progress=False, cameras=False, episode_s=2.0)
    cfg = QuickstartConfig(task="lift", train_steps=10)
    ckpt = train_policy("rdp", tmp_path / "d.zarr", tmp_path / "rdp", cfg)
    policy = load_policy(ckpt)
    assert policy.fast_keys == ("observation.tactile.left.marker_offset", "observation.tactile.right.marker_offset")
    seen = []
    step = policy.step
    policy.step = lambda plan, t, fast=None: seen.append(fast) or step(plan, t, fast)
    assert policy.action_keys == ("action.left.tcp_pose", "action.left.gripper_width",
                                  "action.right.tcp_pose", "action.right.gripper_width")
    r = run_sim_episode("lift", policy, 0, "none", EvalSettings(task_overrides={"episode_s": 1.0}))
    assert r.plans > 0 and r.fast_steps > r.plans and r.fault is None
    # the fast loop reacts to both pads: each step gets both arms' latest marker offsets
    assert seen and all(isinstance(f, dict) and set(f) == set(policy.fast_keys) for f in seen if f is not None)
