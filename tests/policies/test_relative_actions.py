"""relative_actions: pose actions relative to the newest observed TCP position (UMI-style)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_pipeline import TINY, _window

from tactkit.config import ConfigError
from tactkit.policies.config import load_policy_config
from tactkit.policies.data import WindowDataset, load_training_data, relative_action_stats
from tactkit.policies.inference import load_policy
from tactkit.policies.pipeline import train
from tactkit.policies.synthetic import make_synthetic_store

POSE, ACT = "observation.state.tcp_pose", "action.tcp_pose"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("rel") / "store.zarr"
    make_synthetic_store(path, episodes=2, seconds=2.0, image_hw=(24, 24))
    return path


def _items(store, relative: bool, **over):
    extra = [f"{k}={v}" for k, v in over.items()]
    cfg = load_policy_config("dp", [*TINY, f"relative_actions={str(relative).lower()}", *extra])
    data = load_training_data(store, cfg)
    ds = WindowDataset(data, cfg, np.ones(data.buffer.n_episodes, bool))
    return cfg, data, [ds[i] for i in range(len(ds))]


def test_windows_hold_actions_relative_to_the_newest_observed_position(store):
    cfg, _, rel = _items(store, True)
    _, _, ab = _items(store, False)
    assert cfg.action_anchors == {ACT: POSE} and len(rel) == len(ab) > 50
    last = cfg.n_obs_steps - 1
    for r, a in zip(rel, ab):
        np.testing.assert_allclose(r[ACT][:, :3], a[ACT][:, :3] - a[POSE][last, :3], atol=1e-6)
        assert torch.equal(r[ACT][:, 3:], a[ACT][:, 3:])  # rotation stays absolute
        assert torch.equal(r["action.gripper_width"], a["action.gripper_width"])


@pytest.mark.parametrize("n_obs", [1, 2, 3])
def test_relative_statistics_are_the_range_over_every_training_window(store, n_obs):
    cfg, data, items = _items(store, True, n_obs_steps=n_obs)
    rel = np.concatenate([it[ACT][:, :3].numpy() for it in items])
    stats = relative_action_stats(data.buffer, cfg)[ACT]
    np.testing.assert_allclose(stats["min"], rel.min(0), atol=1e-6)
    np.testing.assert_allclose(stats["max"], rel.max(0), atol=1e-6)
    # and the normaliser maps that range to [-1, 1]
    y = data.normalizer.normalize(ACT, torch.as_tensor(np.c_[rel, np.zeros((len(rel), 6))], dtype=torch.float32))
    assert y[:, :3].min() >= -1 - 1e-5 and y[:, :3].max() <= 1 + 1e-5


def test_config_refuses_relative_actions_it_cannot_anchor():
    with pytest.raises(ConfigError, match="BEAST"):
        load_policy_config("beast", ["relative_actions=true"])
    with pytest.raises(ConfigError, match="tcp_pose action"):
        load_policy_config("dp", ["relative_actions=true", "action_keys=[action.gripper_width]"])


def test_dp_and_rdp_plans_move_with_the_observed_pose(store, tmp_path):
    """With the network's output held fixed, shifting the observed TCP position by d shifts
    every planned and stepped position by exactly d (and nothing else)."""
    common = [*TINY, "relative_actions=true", "obs_keys=[observation.state.tcp_pose]"]
    train("dp", store, [*common, "num_steps=3"], tmp_path / "dp", progress=False)
    train("rdp", store, [*common[:-1], "ldp.obs_keys=[observation.state.tcp_pose]", "at.num_steps=3",
                         "ldp.num_steps=3"], tmp_path / "rdp", progress=False)
    dp, rdp = load_policy(tmp_path / "dp"), load_policy(tmp_path / "rdp" / "ldp")
    assert POSE in dp.obs_keys and POSE in rdp.obs_keys and rdp.cfg.relative_actions
    window = _window(store)
    shifted = dict(window)
    d = np.array([0.03, -0.02, 0.01])
    shifted[POSE] = window[POSE].copy()
    shifted[POSE][:, :3] += d
    y = torch.randn(1, dp.cfg.horizon, 10, generator=torch.Generator().manual_seed(0)).clamp(-1, 1)
    dp.model.sample_actions = lambda batch, gen: y
    z = torch.randn(1, rdp.cfg.latent_steps, rdp.cfg.latent_dim, generator=torch.Generator().manual_seed(1))
    rdp.model.sample_latent = lambda batch, gen: z
    for pol in (dp, rdp):
        a, b = pol.plan(window), pol.plan(shifted)
        np.testing.assert_allclose(b.actions[:, :3] - a.actions[:, :3], np.broadcast_to(d, a.actions[:, :3].shape),
                                   atol=1e-9)
        np.testing.assert_array_equal(b.actions[:, 3:], a.actions[:, 3:])
        t = a.t0 + 2.5 * a.dt
        np.testing.assert_allclose(pol.step(b, t)[:3] - pol.step(a, t)[:3], d, atol=1e-9)


def test_shipped_configs_are_relative_and_older_saved_configs_stay_absolute():
    from tactkit.policies.config import PolicyConfig

    for name in ("dp", "dp_tactile", "at", "ldp"):
        assert load_policy_config(name).relative_actions, name
    assert not load_policy_config("beast").relative_actions
    saved = load_policy_config("dp").to_dict()
    del saved["relative_actions"]  # a checkpoint written before the option existed
    assert PolicyConfig.from_dict(saved).relative_actions is False
