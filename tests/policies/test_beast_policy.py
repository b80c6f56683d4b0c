"""BEAST policy end to end on a tiny store: training through the shared loop (CLI and API),
overfitting, checkpoint round trip, plan = tokenizer decode, continuity across plans."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from policy_helpers import training_rows

from tactkit.cli.main import main as cli_main
from tactkit.policies.beast.policy import BeastPolicy
from tactkit.policies.checkpoint import load_checkpoint
from tactkit.policies.inference import load_policy
from tactkit.policies.pipeline import train

STATE = "observation.state.tcp_pose"


def make_store(path: Path, episodes: int = 2, seconds: float = 2.0) -> None:
    """State-only demos: the arm follows a smooth path, the action is the pose 1/24 s ahead."""
    from tactkit.store import POSE_NAMES, EpisodeStore, StreamSpec

    def pose(t: np.ndarray, phase: float) -> np.ndarray:
        yaw = 0.3 * np.sin(0.5 * t + phase)
        xyz = [0.4 + 0.1 * np.sin(t + phase), 0.1 * np.cos(0.7 * t + phase), 0.2 + 0.02 * t]
        quat = [np.cos(yaw / 2), 0 * t, 0 * t, np.sin(yaw / 2)]
        return np.stack(xyz + quat, -1)

    streams = {
        STATE: StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
        "observation.state.gripper_width": StreamSpec("float32", (1,), 100.0, "m"),
        "action.tcp_pose": StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
        "action.gripper_width": StreamSpec("float32", (1,), 100.0, "m"),
    }
    store = EpisodeStore.create(str(path), streams)
    t = np.arange(0, seconds, 0.01)
    for e in range(episodes):
        grip = (0.04 + 0.02 * (t > seconds / 2)).astype(np.float32)[:, None]
        with store.begin_episode(task="synthetic") as rec:
            rec.append_many(STATE, t, pose(t, 0.8 * e))
            rec.append_many("action.tcp_pose", t, pose(t + 1 / 24, 0.8 * e))
            rec.append_many("observation.state.gripper_width", t, grip)
            rec.append_many("action.gripper_width", t, grip)


# state observations and a small transformer: trains in seconds on one busy core
TINY = [
    "size=tiny", f"obs_keys=[{STATE},observation.state.gripper_width]", "batch_size=16", "warmup_steps=10",
    "ema_decay=0.9", "lr=3e-3", "log_every=1", "beast.d_model=32", "beast.n_layers=2", "beast.n_heads=2",
    "beast.num_ctrl=6",
]  # fmt: skip
DISCRETE_STEPS, CONT_STEPS = 300, 150


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("beast")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # module fixtures run before the per-test one-thread fixture
    store = root / "store.zarr"
    make_store(store)
    rc = cli_main(["train", "beast", "--data", str(store), "--out", str(root / "discrete"), *TINY,
                   f"num_steps={DISCRETE_STEPS}", "--no-progress"])  # fmt: skip
    assert rc == 0
    train("beast", store, [*TINY, f"num_steps={CONT_STEPS}", "beast.head=continuous", "beast.continuity=c1"],
          root / "continuous", progress=False)  # fmt: skip
    torch.set_num_threads(threads)
    return {"store": store, "discrete": root / "discrete", "continuous": root / "continuous"}


@pytest.fixture(scope="module")
def aligned(runs):
    from tactkit.store import EpisodeStore, align

    return align(EpisodeStore.open(str(runs["store"])), fps=24.0)


def _window(rb, i0: int) -> dict[str, np.ndarray]:
    w = {k: np.asarray(rb.data[k][i0 : i0 + 2]) for k in rb.data if k.startswith("observation.")}
    w["timestamp"] = np.asarray(rb.data["timestamp"][i0 : i0 + 2])
    return w


def test_training_overfits_the_tiny_store(runs, aligned):
    d = training_rows(runs["discrete"])
    assert len(d) == DISCRETE_STEPS
    # cross-entropy over 256 bins starts near ln(256) = 5.5
    assert np.mean([r["loss"] for r in d[:5]]) > 5.0 and np.mean([r["loss"] for r in d[-20:]]) < 3.7
    assert (
        np.mean([r["token_acc"] for r in d[:5]]) < 0.05
        and np.mean([r["token_acc"] for r in d[-20:]]) > 0.1
    )
    c = training_rows(runs["continuous"])
    assert np.mean([r["loss"] for r in c[-20:]]) < 0.3 * np.mean([r["loss"] for r in c[:5]])
    # the plans reproduce the demonstrated future poses (metres) far better than holding still
    end = int(aligned.episode_ends[0])
    for kind in ("discrete", "continuous"):
        policy = load_policy(runs[kind], continuity="none")
        errs, hold = [], []
        for i0 in range(0, end - 16, 5):
            plan = policy.plan(_window(aligned, i0))
            truth = np.asarray(aligned.data["action.tcp_pose"][i0 + 2 : i0 + 16])[:, :3]
            errs.append(np.abs(plan.actions[:, :3] - truth).mean())
            hold.append(np.abs(truth - np.asarray(aligned.data[STATE][i0 + 1, :3])).mean())
        assert np.mean(errs) < 0.008 and np.mean(errs) < 0.6 * np.mean(hold), (
            kind,
            np.mean(errs),
            np.mean(hold),
        )


def test_checkpoint_round_trip_gives_identical_plans(runs, aligned, tmp_path):
    from tactkit.policies.checkpoint import save_checkpoint

    ck = load_checkpoint(runs["discrete"])
    names = {p.relative_to(ck.path).as_posix() for p in ck.path.rglob("*") if p.is_file()}
    assert names == {
        "config.json",
        "model.safetensors",
        "normalizer.safetensors",
    }  # no pickle anywhere
    assert np.isfinite(ck.model.tokenizer.low).all() and ck.model.tokenizer.bins == 256
    save_checkpoint(tmp_path / "copy", ck.cfg, ck.model, ck.codec, ck.pcas, ck.extra, ck.step)
    a, b = load_policy(runs["discrete"]), load_policy(tmp_path / "copy")
    np.testing.assert_array_equal(a.tokenizer.low, b.tokenizer.low)
    np.testing.assert_array_equal(a.tokenizer.high, b.tokenizer.high)
    for i0 in (0, 7, 20):
        pa, pb = a.plan(_window(aligned, i0)), b.plan(_window(aligned, i0))
        np.testing.assert_array_equal(pa.state.tokens, pb.state.tokens)
        np.testing.assert_array_equal(pa.actions, pb.actions)
        np.testing.assert_array_equal(a.step(pa, pa.t0 + 0.123), b.step(pb, pb.t0 + 0.123))


@pytest.mark.parametrize("continuity", ["none", "c0"])
def test_plan_sampled_at_chunk_steps_equals_tokenizer_decode(runs, aligned, continuity):
    policy: BeastPolicy = load_policy(runs["discrete"], continuity=continuity, decode="argmax")
    tok = policy.tokenizer
    prev = None
    for i0 in (3, 6):  # the second plan is pinned to the first (c0)
        plan = policy.plan(_window(aligned, i0))
        st = plan.state
        prev_action = (
            policy.evaluate(prev, st.t_chunk)
            if (prev is not None and continuity == "c0")
            else None
        )
        decoded = tok.decode(st.tokens, prev_action=prev_action)[
            0
        ]  # [chunk_len, A], network units
        expected = policy.to_actions(torch.from_numpy(decoded))
        assert plan.horizon == tok.chunk_len == 14 and plan.t0 == pytest.approx(st.t_chunk)
        np.testing.assert_array_equal(plan.actions, expected)
        for i in range(plan.horizon):  # step() at the chunk's step times samples the same spline
            np.testing.assert_allclose(
                policy.step(plan, plan.t0 + i * plan.dt), expected[i], atol=1e-9
            )
        # between steps the spline moves smoothly (not a held step) and holds after the end
        mid = policy.step(plan, plan.t0 + 2.5 * plan.dt)
        assert not np.allclose(mid[:3], expected[2, :3]) and not np.allclose(
            mid[:3], expected[3, :3]
        )
        np.testing.assert_allclose(policy.step(plan, plan.t_end + 1.0), expected[-1], atol=1e-9)
        prev = st


@pytest.mark.parametrize(
    "kind,continuity", [("discrete", "none"), ("discrete", "c0"), ("continuous", "c1")]
)
def test_continuity_across_consecutive_plans(runs, aligned, kind, continuity):
    policy: BeastPolicy = load_policy(runs[kind], continuity=continuity)
    spline = list(policy.tokenizer.spline_dims)
    gaps, vel_gaps = [], []
    prev = policy.plan(_window(aligned, 2))
    for i0 in range(4, 30, 3):  # a new plan every 3 control steps, inside the previous chunk
        plan = policy.plan(_window(aligned, i0))
        t = plan.state.t_chunk
        gaps.append(
            np.abs(policy.evaluate(plan.state, t) - policy.evaluate(prev.state, t))[0, spline].max()
        )
        vel_gaps.append(
            np.abs(policy.velocity(plan.state, t) - policy.velocity(prev.state, t))[spline].max()
        )
        # dataset units: the pose commanded just before and at the switch agree (C0)
        if continuity != "none":
            np.testing.assert_allclose(
                policy.step(plan, t)[:7], policy.step(prev, t)[:7], atol=1e-9
            )
        prev = plan
    if continuity == "none":
        assert max(gaps) > 1e-3  # without pinning consecutive predictions do not meet exactly
    else:
        assert max(gaps) < 1e-12
    if continuity == "c1":
        assert max(vel_gaps) < 1e-9
    policy.reset()  # forgets the previous plan: the next one is free again
    assert policy._prev is None


def test_numpy_step_decode_matches_the_torch_codec(runs):
    policy: BeastPolicy = load_policy(runs["discrete"])
    rng = np.random.default_rng(0)
    y = rng.normal(size=(300, policy.tokenizer.action_dim))
    y[:50, 3:9] = rng.normal(size=(50, 6)) * 1e-3  # near-degenerate 6-D rotations
    y[50:60, 3:9] = [[-1, 0, 0, 0, -1, 0]] * 10  # 180-degree turn: the w branch is not the largest
    expected = policy.to_actions(torch.from_numpy(y))
    np.testing.assert_allclose(policy.actions_np(y), expected, atol=1e-12)
    one = np.concatenate([policy.actions_np(y[i : i + 1]) for i in range(len(y))])
    np.testing.assert_allclose(one, expected, atol=1e-12)


def test_plans_cross_a_process_boundary_and_bad_plans_are_refused(runs, aligned):
    import pickle

    from tactkit.policies.interface import Plan

    policy = load_policy(runs["continuous"])
    plan = policy.plan(_window(aligned, 5))
    policy.step(plan, plan.t0 + 0.1)  # builds the per-plan splines in plan.state
    copy = pickle.loads(pickle.dumps(plan))  # the spawned slow process pickles plans
    for t in (plan.t0 - 1.0, plan.t0 + 0.07, plan.t_end + 0.5):
        np.testing.assert_array_equal(policy.step(copy, t), policy.step(plan, t))
    with pytest.raises(TypeError, match="not a BEAST plan"):
        policy.step(Plan(plan.t0, plan.dt, plan.actions), plan.t0)
    with pytest.raises(ValueError, match="continuity"):
        load_policy(runs["continuous"], continuity="c2")


def test_beast_drives_the_lockstep_controller_at_a_fast_rate(runs):
    """The real controller (lockstep, simulated latency) runs BEAST on a stand-in arm; the
    fast loop samples the spline at 120 Hz, five times the training rate."""
    from tactkit.clock import SimClock
    from tactkit.real.controller import ControllerConfig
    from tactkit.real.fake import FakeRobot, FakeRobotConfig
    from tactkit.real.runtime import LockstepRuntime

    policy = load_policy(runs["discrete"])
    clock = SimClock()
    robot = FakeRobot(FakeRobotConfig(initial_pose=(0.45, 0.05, 0.2, 1.0, 0.0, 0.0, 0.0)), clock)
    config = ControllerConfig(fast_rate_hz=120.0, inference_latency=0.03, plan_period=0.25)
    targets = []
    rt = LockstepRuntime(robot, policy, config, clock)
    stats = rt.run(1.5, on_tick=lambda t, s, c: targets.append(c.arms["arm"].tcp_target[:3].copy()))
    assert stats.fault is None and stats.plans >= 5
    assert stats.fast_steps > 120  # 120 Hz from the first plan on (~0.25 s in), not 24 Hz
    steps = np.linalg.norm(np.diff(np.asarray(targets), axis=0), axis=1)
    assert steps.max() < 1e-3  # under 0.5 m/s at 500 Hz: speed-limited interpolation, no jumps
    assert np.linalg.norm(np.asarray(targets[-1]) - targets[0]) > 0.005  # it moved along its plans


def test_a_plan_used_before_its_chunk_starts_extends_the_spline_back(runs, aligned):
    policy: BeastPolicy = load_policy(runs["continuous"], continuity="none")
    plan = policy.plan(_window(aligned, 8))
    t_c, t_obs = plan.state.t_chunk, float(aligned.data["timestamp"][9])
    eps = 1e-4 * policy.dt
    f = policy.evaluate(plan.state, np.array([t_c - eps, t_c, t_c + eps, t_obs, t_obs - 1.0]))
    spline = list(policy.tokenizer.spline_dims)
    left, right = (f[1] - f[0]) / eps, (f[2] - f[1]) / eps
    # the path runs smoothly through the chunk start (C1), it does not hold the start point
    np.testing.assert_allclose(
        left[spline], right[spline], rtol=1e-2, atol=1e-3 * np.abs(right).max()
    )
    assert np.abs(right[spline]).max() > 1e-3 and not np.allclose(f[3], f[1])
    np.testing.assert_array_equal(f[4], f[3])  # clamped at the newest observation


def _logits(tok, *bin_sets: np.ndarray, gap: float = 30.0) -> torch.Tensor:
    """Slot logits ``[1, N * A, bins]``: ``gap`` above the rest at each slot's bins in every one
    of ``bin_sets`` (equal mass on each), so other bins weigh < bins * e^-gap ~ 1e-11."""
    out = torch.zeros(1, tok.num_ctrl * tok.action_dim, tok.bins, dtype=torch.float32)
    for bins in bin_sets:
        out[0, np.arange(out.shape[1]), torch.from_numpy(bins)] = gap
    return out


def _check_expectation_decoding(policy: BeastPolicy, window, monkeypatch, rng) -> None:
    """Properties of the mean-bin decoding on known logits (raises AssertionError if one fails):
    peaked logits decode to the peak bin's value; two equal peaks to their midpoint, and the
    plan's positions (affine in the control points) to the mean of the two peaks' plans."""
    tok = policy.tokenizer
    slots = tok.num_ctrl * tok.action_dim
    i = rng.integers(0, tok.bins - 1, slots)
    j = np.minimum(i + rng.integers(1, 40, slots), tok.bins - 1)  # a second, higher bin per slot
    batch = policy.obs_batch(window)

    def decode(*bin_sets):
        monkeypatch.setattr(policy.model, "slot_outputs", lambda b: _logits(tok, *bin_sets))
        params, _ = policy.model.predict(batch, policy.decode)
        return params.double().numpy(), policy.plan(window).actions

    p_i, a_i = decode(i)
    p_j, a_j = decode(j)
    p_ij, a_ij = decode(i, j)
    value = lambda bins: tok.tokens_to_params(bins[None]).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(p_i, value(i), atol=1e-9)
    np.testing.assert_allclose(p_j, value(j), atol=1e-9)
    np.testing.assert_allclose(p_ij, 0.5 * (value(i) + value(j)), atol=1e-9)
    np.testing.assert_allclose(a_ij[:, :3], 0.5 * (a_i[:, :3] + a_j[:, :3]), atol=1e-9)


def test_expectation_decoding_takes_each_slots_mean_bin(runs, aligned, monkeypatch):
    """The default discrete decoding: control points at the mean of each slot's bin
    distribution (between bins), against argmax's most likely bin."""
    mean_policy: BeastPolicy = load_policy(runs["discrete"], continuity="none")
    arg_policy: BeastPolicy = load_policy(runs["discrete"], continuity="none", decode="argmax")
    assert mean_policy.decode == "expectation"
    window = _window(aligned, 6)
    # on the trained network: no tokens, and the mean and the mode differ, but stay close on
    # this briefly trained tiny store (max 1.3 cm)
    plan = mean_policy.plan(window)
    assert plan.state.tokens is None
    gap = np.abs(plan.actions[:, :3] - arg_policy.plan(window).actions[:, :3])
    assert 0 < gap.max() < 0.03
    with pytest.raises(ValueError, match="decode"):
        load_policy(runs["discrete"], decode="sample")
    _check_expectation_decoding(mean_policy, window, monkeypatch, np.random.default_rng(0))


def test_expectation_check_rejects_the_mode(runs, aligned, monkeypatch):
    """Mutation check: argmax decoding (the mode: one of two equal bins) fails the properties."""
    arg_policy: BeastPolicy = load_policy(runs["discrete"], continuity="none", decode="argmax")
    with pytest.raises(AssertionError):
        _check_expectation_decoding(arg_policy, _window(aligned, 6), monkeypatch, np.random.default_rng(0))
