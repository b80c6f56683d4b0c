import numpy as np
import pytest

from tactkit.experiments.evaluation import (
    EvalSettings,
    results_table,
    run_sim_episode,
    summarize,
)
from tactkit.policies.interface import Plan, Policy
from tactkit.real.controller import ControllerConfig
from tactkit.real.setup import load_robot_setup


class PressDown(Policy):
    """Plans a descent onto the wipe board (5 cm per 16-step chunk: contact within 1.5 s);
    reads the tactile pad as its fast signal and records what each fast step received."""

    obs_keys = ("observation.state.tcp_pose", "observation.tactile.pad.marker_offset")
    n_obs_steps = 2
    action_keys = ("action.tcp_pose", "action.gripper_width")
    fast_keys = ("observation.tactile.pad.marker_offset",)
    dt = 1 / 24

    def __init__(self) -> None:
        self.fast_seen = 0
        self.steps: list[tuple[float, float]] = []  # (t, largest marker offset of the fast signal)

    def plan(self, w):
        p = w["observation.state.tcp_pose"][-1].astype(float)
        a = np.tile(np.r_[p, 0.0], (16, 1))
        a[:, 2] -= np.linspace(0, 0.05, 16)
        return Plan(float(w["timestamp"][-1]) + self.dt, self.dt, a)

    def step(self, plan, t, fast=None):
        if fast is not None:
            assert set(fast) == set(self.fast_keys) and fast[self.fast_keys[0]].shape == (63, 2)
            self.fast_seen += 1
        self.steps.append((t, np.nan if fast is None else float(np.abs(fast[self.fast_keys[0]]).max())))
        return plan.actions[plan.index_at(t)].copy()


def _press_episode(seed: int = 5):
    settings = EvalSettings(load_robot_setup("sim", ["inference_latency=0.1"]).controller, {"episode_s": 1.5}, trace=True)
    policy = PressDown()
    return run_sim_episode("wipe", policy, seed, "after_contact", settings), policy


@pytest.mark.slow
def test_sim_episode_closes_the_loop_and_is_bit_reproducible():
    (a, pa), (b, pb) = _press_episode(), _press_episode()
    assert a.plans >= 4 and a.fast_steps >= 30  # tactile at 30 Hz drives the fast loop
    # every fast step got the tactile pad's sample, and the pad felt the press
    assert pa.fast_seen == a.fast_steps == len(pa.steps)
    offsets = np.array([m for _, m in pa.steps])  # m; the pad touches the board after ~1.3 s
    assert offsets[:20].max() == 0.0 and offsets[-5:].min() > 0.01
    # bit-reproducible: every robot tick's trace and every fast step's time and signal, not
    # only the summary
    assert set(a.trace) == {"t", "z", "z_cmd", "fz", "surface_z"} and len(a.trace["t"]) > 500
    for key in a.trace:
        assert np.array_equal(a.trace[key], b.trace[key]), key
    assert np.array_equal(np.array(pa.steps), np.array(pb.steps))
    assert (a.score, a.raw_score, a.plans, a.fast_steps, a.safety) == (b.score, b.raw_score, b.plans, b.fast_steps, b.safety)
    # ... and the trace is specific to the seed (another scene, another run)
    c, _ = _press_episode(6)
    assert not np.array_equal(a.trace["z"], c.trace["z"])
    table = results_table({"press": [a, b]})
    assert "after_contact" in table and "press" in table
    assert summarize([a, b])["after_contact"]["episodes"] == 2.0
    assert isinstance(ControllerConfig().safety.max_force, float)


def test_surface_follow_measures_slope_lag_and_force_band():
    from tactkit.experiments.evaluation import surface_follow

    t = np.arange(0.0, 8.0, 0.002)
    surface = 0.03 + 0.005 * np.sin(2 * np.pi * 0.4 * t)
    fz = np.where(t > 0.5, 10.0 + 2.0 * np.sin(7 * t), 0.0)  # contact from 0.5 s, within 5-15 N
    follows = {"t": t, "fz": fz, "surface_z": surface,
               "z_cmd": 0.03 + 0.8 * 0.005 * np.sin(2 * np.pi * 0.4 * (t - 0.04)) - 0.004}
    r = surface_follow(follows, 1.0, 7.4, 10.0, (5.0, 15.0))
    assert r["slope"] == pytest.approx(0.8, abs=0.02) and r["lag_ms"] == pytest.approx(40, abs=4)
    assert r["force_rms"] == pytest.approx(2.0 / np.sqrt(2), rel=0.05) and r["in_band"] == 1.0
    ignores = dict(follows, z_cmd=np.full_like(t, 0.026), fz=np.where(t > 0.5, 20.0, 0.0))
    r = surface_follow(ignores, 1.0, 7.4, 10.0, (5.0, 15.0))
    assert r["slope"] == pytest.approx(0.0, abs=1e-9) and r["force_rms"] == pytest.approx(10.0) and r["in_band"] == 0.0
    never = surface_follow(dict(follows, fz=np.zeros_like(t)), 1.0, 7.4, 10.0, (5.0, 15.0))
    assert np.isnan(never["slope"]) and never["in_band"] == 0.0


@pytest.mark.slow
def test_traced_wipe_episode_records_the_moving_board_height():
    from real_fakes import ChunkPolicy

    from tactkit.experiments.evaluation import EvalSettings, run_sim_episode

    # pressing straight down on the board's first path point: contact, then the board moves
    policy = ChunkPolicy(goal=(0.42, 0.0, 0.0), speed=0.05, fast_keys=())
    policy.obs_keys = ("observation.state.tcp_pose",)
    r = run_sim_episode("wipe", policy, 1000, "after_contact",
                        EvalSettings(task_overrides={"scene_variation": 0.0, "episode_s": 4.0}, trace=True))
    surf = r.trace["surface_z"]
    assert set(r.trace) == {"t", "z", "z_cmd", "fz", "surface_z"} and np.isfinite(surf).all()
    assert surf[0] == pytest.approx(0.03, abs=1e-4)  # the nominal board top
    assert np.ptp(surf) > 0.003  # the after-contact perturbation moved it by millimetres


@pytest.mark.slow
def test_parallel_evaluation_equals_a_serial_run_bit_for_bit(tmp_path):
    """Episodes spread over spawned worker processes give exactly the serial results (scores,
    counters, per-tick traces), and come back in the serial order."""
    import dataclasses

    import torch

    from tactkit.experiments.evaluation import PolicySource, evaluate_policy
    from tactkit.policies.pipeline import train
    from tactkit.sim.recording import record_demos

    torch.set_num_threads(1)
    record_demos("wipe", 2, tmp_path / "d.zarr", perturb="none,after_contact", progress=False, cameras=False,
                 episode_s=1.5)
    train("dp", tmp_path / "d.zarr", ["size=tiny", "num_steps=5", "obs_keys=[observation.state.tcp_pose]"],
          tmp_path / "dp", progress=False)
    settings = EvalSettings(ControllerConfig(inference_latency=0.05), {"episode_s": 1.5}, trace=True)
    source = PolicySource(str(tmp_path / "dp"))
    serial = evaluate_policy("wipe", source, 2, ("none", "after_contact"), settings, seed0=7)
    seen = []
    parallel = evaluate_policy("wipe", source, 2, ("none", "after_contact"), settings, seed0=7,
                               progress=seen.append, workers=2)
    assert [(r.perturb, r.seed) for r in parallel] == [("none", 7), ("none", 8), ("after_contact", 7),
                                                      ("after_contact", 8)]
    assert sorted((r.perturb, r.seed) for r in seen) == sorted((r.perturb, r.seed) for r in parallel)
    for a, b in zip(serial, parallel):
        for f in dataclasses.fields(a):
            if f.name in ("wall_s", "trace"):
                continue
            assert getattr(a, f.name) == getattr(b, f.name), f.name
        for k in a.trace:
            assert np.array_equal(a.trace[k], b.trace[k], equal_nan=True), k
    assert not np.array_equal(serial[0].trace["z_cmd"], serial[1].trace["z_cmd"])  # the episodes differ
    with pytest.raises(TypeError, match="PolicySource"):
        evaluate_policy("wipe", source.build(), 2, ("none",), settings, workers=2)
