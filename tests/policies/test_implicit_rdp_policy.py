"""ImplicitRDP end to end on a tiny synthetic store: ``tactkit train implicit_rdp`` through the
shared loop, overfitting, checkpoint round trip, ``load_policy``, consistent inference against
the full re-denoise, reaction to the force, and the controller's plan/step contract."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from policy_helpers import training_rows

from tactkit.cli.main import main as cli_main
from tactkit.policies.checkpoint import load_checkpoint
from tactkit.policies.implicit_rdp.policy import ImplicitRDPPolicy
from tactkit.policies.inference import load_policy
from tactkit.policies.synthetic import make_synthetic_store

pytestmark = pytest.mark.slow

WRENCH = "observation.wrench"
STEPS = 200
# state observations (no camera) and the tiny transformer: trains in seconds on one busy core
TINY = [
    "size=tiny", "obs_keys=[observation.state.tcp_pose,observation.state.gripper_width]", "batch_size=16",
    "warmup_steps=10", "lr=3e-3", "ema_decay=0.9", "log_every=1", "irdp.stiffness=[1500,1500,2500]",
    # every sample sees its own force: here the force is the cause of the demos' height (wrench x /
    # 50), not a trace of the motion, and at 200 steps dropout 0.5 halves what teaches the reaction
    "irdp.fast_dropout=0",
]  # fmt: skip


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("irdp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    store = root / "store.zarr"
    make_synthetic_store(store, episodes=2, seconds=2.0)
    rc = cli_main(["train", "implicit_rdp", "--data", str(store), "--out", str(root / "run"), *TINY,
                   f"num_steps={STEPS}", "--no-progress"])  # fmt: skip
    torch.set_num_threads(threads)
    assert rc == 0
    return {"store": store, "run": root / "run"}


@pytest.fixture(scope="module")
def windows(run):
    """Aligned training data: observation windows and the fast signal, as the controller sees them."""
    from tactkit.store import EpisodeStore, align

    rb = align(EpisodeStore.open(str(run["store"])), fps=24.0)
    return {k: np.asarray(rb.data[k][:]) for k in rb.data.keys()}


def window_at(data: dict[str, np.ndarray], policy: ImplicitRDPPolicy, i: int) -> dict[str, np.ndarray]:
    w = {k: data[k][i - policy.n_obs_steps + 1 : i + 1] for k in policy.obs_keys}
    w["timestamp"] = data["timestamp"][i - policy.n_obs_steps + 1 : i + 1]
    return w


def test_overfitting_a_tiny_store_drives_the_loss_down(run):
    rows = training_rows(run["run"])
    loss = np.array([r["loss"] for r in rows])
    assert len(loss) == STEPS and {"action_mse", "aux_mse"} <= set(rows[-1])
    # measured: ~0.8 over the first 10 steps, ~0.016 over the last 20 (200 steps)
    assert loss[-20:].mean() < 0.03 and loss[-20:].mean() < 0.1 * loss[:10].mean()
    assert np.mean([r["aux_mse"] for r in rows[-20:]]) < 0.03  # the virtual target is learnt too
    saved = json.loads((run["run"] / "run_config.json").read_text())
    assert saved["policy"] == "implicit_rdp" and saved["irdp"]["stiffness"] == [1500.0, 1500.0, 2500.0]
    assert saved["target_keys"] == ["observation.state.tcp_pose"]  # added for the virtual target


def test_checkpoint_round_trip_and_load_policy(run, windows, tmp_path):
    from tactkit.policies.checkpoint import save_checkpoint

    ckpt = load_checkpoint(run["run"])
    assert ckpt.cfg.policy == "implicit_rdp" and ckpt.step == STEPS
    save_checkpoint(tmp_path / "copy", ckpt.cfg, ckpt.model, ckpt.codec, ckpt.pcas, ckpt.extra, ckpt.step)
    again = load_checkpoint(tmp_path / "copy")
    a, b = ckpt.model.state_dict(), again.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    p1, p2 = load_policy(run["run"]), load_policy(tmp_path / "copy")
    assert isinstance(p1, ImplicitRDPPolicy) and p1.fast_keys == (WRENCH,)
    w = window_at(windows, p1, 20)
    first = p1.plan(w).actions
    assert np.array_equal(first, p2.plan(w).actions)
    assert not np.array_equal(first, p1.plan(w).actions)  # a new plan draws new noise
    p1.reset()
    assert np.array_equal(first, p1.plan(w).actions)  # reset re-seeds it


def test_fast_steps_are_the_full_re_denoise_bit_for_bit(run, windows):
    """Every step equals re-denoising the whole chunk from the observation window with the
    plan's noise and the fast signals so far (the step being left keeps its last signal, steps
    no call visited get the newest): bit for bit, across ticks within a step and skipped steps."""
    policy = load_policy(run["run"])
    w = window_at(windows, policy, 20)
    plan = policy.plan(w)
    m, start = policy.model, policy.first_step
    batch = policy.obs_batch(w)
    seen = policy.codec.encode(batch, [WRENCH], policy.n_obs_steps)
    own = torch.cat([seen, seen[:, -1:].expand(-1, m.horizon - policy.n_obs_steps, -1)], dim=1).clone()
    with torch.inference_mode():
        ref = m.sample(batch, own, plan.state.noise)[0, start:, : m.action_dim]
    np.testing.assert_array_equal(plan.actions, policy.to_actions(ref, plan.state.offset))
    rng = np.random.default_rng(0)
    # (plan step, ticks in it): several ticks per step, then skipped steps 5-6 and 9-10
    schedule = [(0, 1), (1, 3), (2, 1), (4, 2), (7, 1), (8, 2), (11, 1)]
    last_i = 0
    for i, ticks in schedule:
        for tick in range(ticks):
            sig = np.asarray(windows[WRENCH][20 + i]) + rng.normal(0, 2.0, 6).astype(np.float32)
            t = plan.t0 + (i + tick / (ticks + 1)) * plan.dt
            a = policy.step(plan, t, {WRENCH: sig})
            f = policy.fast_tensor({WRENCH: sig})
            first_new = start + (last_i + 1 if i > last_i else i)
            own[:, first_new:] = f
            last_i = i
            with torch.inference_mode():
                y = m.sample(batch, own, plan.state.noise)[0, start + i, : m.action_dim]
            assert np.array_equal(a, policy.to_actions(y, plan.state.offset)), (i, tick)
    # steps already executed are not contradicted: the chunk's earlier actions stay as they were
    with torch.inference_mode():
        full = m.sample(batch, own, plan.state.noise)[0, :, : m.action_dim]
    assert np.array_equal(policy.step(plan, plan.t0 + 11 * plan.dt), policy.to_actions(full[start + 11], plan.state.offset))


def test_step_reacts_to_the_force_and_names_bad_signals(run, windows):
    """``step`` gets ``{fast key: raw value}``. In the synthetic demos the commanded height
    follows the contact shear (wrench x / 50), so the trained policy must move the action the
    same way when the force changes mid-chunk."""
    policy = load_policy(run["run"])
    w = window_at(windows, policy, 24)

    def fresh_plan():  # the same noise every time
        policy.reset()
        return policy.plan(w)

    plan = fresh_plan()
    sig = np.asarray(windows[WRENCH][28], dtype=np.float32)
    t = plan.t0 + 3 * plan.dt
    a = policy.step(plan, t, {WRENCH: sig})
    assert a.shape == (8,) and np.isclose(np.linalg.norm(a[3:7]), 1.0)
    assert np.array_equal(a, policy.step(plan, t, {WRENCH: sig}))  # answered from the step's cache
    push, pull = sig.copy(), sig.copy()
    push[0], pull[0] = 1.0, -1.0  # shear +-0.02: the demos' height correction is +-2 cm
    dz = policy.step(fresh_plan(), t, {WRENCH: push})[2] - policy.step(fresh_plan(), t, {WRENCH: pull})[2]
    assert dz > 0.01, dz  # measured: 0.020-0.028 m at three windows (200 steps; the demos: 0.04)
    with pytest.raises(ValueError, match="has 5 values"):
        policy.step(plan, t, {WRENCH: np.zeros(5)})
    with pytest.raises(ValueError, match="NaN"):
        policy.step(plan, t, {WRENCH: np.full(6, np.nan)})
    with pytest.raises(KeyError, match="missing 'observation.wrench'"):
        policy.step(plan, t, {"observation.tactile.x": np.zeros(3)})
    with pytest.raises(TypeError, match="not an ImplicitRDP plan"):
        policy.step(type(plan)(plan.t0, plan.dt, plan.actions, None), t, None)


def test_runs_in_the_lockstep_controller(run):
    """plan/step through the real controller on the stand-in arm: every fast step gets
    ``{"observation.wrench": the wrench the robot reports}``, commands stay finite, nothing faults."""
    from tactkit.clock import SimClock
    from tactkit.real.controller import ControllerConfig
    from tactkit.real.fake import FakeRobot, FakeRobotConfig
    from tactkit.real.runtime import LockstepRuntime

    policy = load_policy(run["run"])
    got = []
    step = policy.step

    def spy(plan, t, fast=None):
        got.append(fast)
        return step(plan, t, fast)

    policy.step = spy
    clock = SimClock()
    rt = LockstepRuntime(FakeRobot(FakeRobotConfig(), clock), policy, ControllerConfig(inference_latency=0.05, fast_rate_hz=60.0),
                         clock, ())  # fmt: skip
    log = []
    stats = rt.run(1.0, on_tick=lambda t, s, c: log.append(c.arms["arm"].tcp_target.copy()))
    assert stats.fault is None and stats.plans >= 3 and stats.fast_steps >= 50
    sigs = [s for s in got if s is not None]
    assert sigs and all(set(s) == {WRENCH} and np.shape(s[WRENCH]) == (6,) for s in sigs)
    assert np.isfinite(np.stack(log)).all()


def test_train_refuses_a_store_without_the_stiffness(run, tmp_path):
    from tactkit.config import ConfigError
    from tactkit.policies.pipeline import train

    with pytest.raises(ConfigError, match="impedance_stiffness"):
        train("implicit_rdp", run["store"], [t for t in TINY if "stiffness" not in t] + ["num_steps=1"], tmp_path / "x",
              progress=False)  # fmt: skip


def test_relative_actions_plans_and_steps_move_with_the_observed_pose(run, windows):
    """With the network's output held fixed, shifting the observed TCP position by d shifts
    every planned and stepped position by exactly d (and nothing else), as for DP and RDP."""
    policy = load_policy(run["run"])
    assert policy.cfg.relative_actions and policy.cfg.action_anchors == {"action.tcp_pose": "observation.state.tcp_pose"}
    y = torch.randn(1, policy.cfg.horizon, policy.model.out_dim, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    policy.model.denoise = lambda slow, fast, noise: y
    w = window_at(windows, policy, 20)
    shifted = dict(w)
    d = np.array([0.03, -0.02, 0.01])
    shifted["observation.state.tcp_pose"] = w["observation.state.tcp_pose"].copy()
    shifted["observation.state.tcp_pose"][:, :3] += d
    a, b = policy.plan(w), policy.plan(shifted)
    np.testing.assert_allclose(b.actions[:, :3] - a.actions[:, :3], np.broadcast_to(d, a.actions[:, :3].shape), atol=1e-9)
    np.testing.assert_array_equal(b.actions[:, 3:], a.actions[:, 3:])
    sig = {WRENCH: np.asarray(windows[WRENCH][22])}
    t = a.t0 + 2.5 * a.dt
    np.testing.assert_allclose(policy.step(b, t, sig)[:3] - policy.step(a, t, sig)[:3], d, atol=1e-9)
