"""ImplicitRDP without training: the virtual target, causality in chunk steps, consistent
inference (a fast step is the full re-denoise, bit for bit), config errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from policy_helpers import make_codec, unit_quats

from tactkit.config import ConfigError
from tactkit.policies.config import load_policy_config
from tactkit.policies.implicit_rdp.network import ImplicitRDPModel
from tactkit.policies.implicit_rdp.virtual_target import (
    prepare_config,
    stiffness_for,
    virtual_target,
)

POSE, WRENCH, GRIP = "observation.state.tcp_pose", "observation.wrench", "observation.state.gripper_width"
K = [1500.0, 1200.0, 2500.0]
H, TO = 16, 2


def make_cfg(*over: str):
    return load_policy_config("implicit_rdp", [
        "size=tiny", f"obs_keys=[{POSE},{GRIP}]", f"fast_keys=[{WRENCH}]", f"target_keys=[{POSE}]",
        f"irdp.stiffness=[{','.join(map(str, K))}]", *over,
    ])  # fmt: skip


def make_model(*over: str, seed: int = 0) -> ImplicitRDPModel:
    torch.manual_seed(seed)
    return ImplicitRDPModel(make_cfg(*over), make_codec()).eval()


def batch(b: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        POSE: torch.cat([torch.randn(b, H, 3, generator=g), unit_quats(b, H, generator=g)], -1),
        GRIP: torch.rand(b, H, 1, generator=g),
        WRENCH: 10 * torch.randn(b, H, 6, generator=g),
        "action.tcp_pose": torch.cat([torch.randn(b, H, 3, generator=g), unit_quats(b, H, generator=g)], -1),
        "action.gripper_width": torch.rand(b, H, 1, generator=g),
    }


# ---------------------------------------------------------------- the virtual target
def test_virtual_target_is_x_plus_k_inverse_f_and_recovers_the_impedance_command():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 7))
    f = rng.normal(scale=20.0, size=(50, 6))
    vt = virtual_target(x, f, K, wrench_sign=1.0)
    np.testing.assert_array_equal(vt, x[:, :3] + f[:, :3] / np.array(K))
    torch.testing.assert_close(virtual_target(torch.from_numpy(x), torch.from_numpy(f), K, 1.0), torch.from_numpy(vt),
                               rtol=0, atol=0)  # fmt: skip
    # an arm at rest under impedance control: its spring K (x_cmd - x) balances the external
    # force on the tool, f_ext = K (x - x_cmd) (pressing down reads fz > 0); the virtual target
    # with tactkit's sign convention is the commanded position
    x_cmd = rng.normal(size=(50, 3))
    f_ext = np.array(K) * (x[:, :3] - x_cmd)
    np.testing.assert_allclose(virtual_target(x, f_ext, K, wrench_sign=-1.0), x_cmd, atol=1e-12)


def test_model_aux_channels_are_the_normalised_virtual_target_relative_to_the_anchor():
    m = make_model()
    b = batch()
    y = m.targets(b)
    assert y.shape == (2, H, m.action_dim + 3) and m.aux_dim == 3
    vt = b[POSE][..., :3] - b[WRENCH][..., :3] / torch.tensor(K)  # wrench_sign = -1
    vt = vt - b[POSE][:, TO - 1 : TO, :3]  # relative_actions: the same anchor as the actions
    scale, offset = make_codec().normalizer.params["action.tcp_pose"]  # the action's own xyz units
    torch.testing.assert_close(y[..., -3:], vt * scale[:3] + offset[:3])
    assert m.targets(b)[..., : m.action_dim].equal(m.codec.encode(b, m.cfg.action_keys))


def test_aux_target_ablation_switch():
    none = make_model("irdp.aux_target=none")
    assert none.aux_dim == 0 and none.targets(batch()).shape[-1] == none.action_dim
    force = make_model("irdp.aux_target=force")
    b = batch()
    scale, offset = make_codec().normalizer.params[WRENCH]
    torch.testing.assert_close(force.targets(b)[..., -3:], b[WRENCH][..., :3] * scale[:3] + offset[:3])
    loss, info = make_model().train()(b)
    assert loss.isfinite() and set(info) == {"action_mse", "aux_mse"}
    assert set(none.train()(b)[1]) == {"action_mse"}


def test_stiffness_comes_from_the_config_or_the_store_attributes(tmp_path):
    from tactkit.store import EpisodeStore, StreamSpec

    cfg = make_cfg("irdp.stiffness=null", "target_keys=[]")
    plain = tmp_path / "plain.zarr"
    streams = {POSE: StreamSpec("float64", (7,), 100.0, "m")}
    EpisodeStore.create(str(plain), streams)
    with pytest.raises(ConfigError, match=r"irdp.stiffness=\[kx,ky,kz\].*impedance_stiffness"):
        prepare_config(cfg, plain)
    sim = tmp_path / "sim.zarr"
    EpisodeStore.create(str(sim), streams, attrs={"impedance_stiffness": {"arm": [1500.0, 1500.0, 2500.0, 60, 60, 60]}})
    got = prepare_config(cfg, sim)
    assert stiffness_for(got.irdp.stiffness, "") == [1500.0, 1500.0, 2500.0]
    assert got.target_keys == [POSE]  # the wrench is a fast key already: sampled over the chunk
    # the config wins over the store; no virtual target, no stiffness needed, no target keys
    assert stiffness_for(prepare_config(make_cfg(), sim).irdp.stiffness, "") == K
    assert prepare_config(make_cfg("irdp.aux_target=none", "irdp.stiffness=null", "target_keys=[]"), plain).target_keys == []
    with pytest.raises(ConfigError, match="irdp.stiffness must hold >= 3 positive"):
        make_cfg("irdp.stiffness=[1500,0,2500]")
    with pytest.raises(ValueError, match=r"needs \['observation.state.tcp_pose'\] over the whole horizon"):
        ImplicitRDPModel(make_cfg("target_keys=[]"), make_codec())


# ---------------------------------------------------------------- causality and consistency
def _denoise_inputs(m: ImplicitRDPModel, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    slow = m.slow_tokens({k: v[:1] for k, v in batch(seed=seed).items()})
    fast = torch.randn(1, H, m.fast_dim, generator=g)
    noise = torch.randn(1, H, m.out_dim, generator=g)
    return slow, fast, noise


@pytest.mark.parametrize("over", [(), ("irdp.n_cond_layers=2",), ("fast_delay_steps=2",)])
def test_a_fast_token_at_step_s_changes_no_action_before_s(over):
    m = make_model(*over)
    slow, fast, noise = _denoise_inputs(m)
    y = m.denoise(slow, fast, noise)
    delay = m.fast_delay
    for s in (0, 3, 9, H - 1):
        other = fast.clone()
        other[:, s] += 3.0
        y2 = m.denoise(slow, other, noise)
        # with a delay the signal of step s reaches step s + delay (step 0's also pads the start)
        first = s + delay if s > 0 else 0
        assert torch.equal(y2[:, :first], y[:, :first])  # bit for bit
        if first < H:
            assert (y2[:, first] - y[:, first]).abs().max() > 1e-4  # and it does act there


def test_re_denoising_with_the_same_noise_and_fast_tokens_is_bit_exact():
    m = make_model()
    slow, fast, noise = _denoise_inputs(m)
    y = m.denoise(slow, fast, noise)
    assert torch.equal(y, m.denoise(slow, fast.clone(), noise.clone()))
    assert not torch.equal(y, m.denoise(slow, fast, torch.randn_like(noise)))


def test_the_training_loss_sees_no_future_fast_signal():
    m = make_model()
    b = batch()
    x0 = m.targets(b)
    fast = m.codec.encode(b, m.cfg.fast_keys)
    t = torch.tensor([40, 80])
    noisy = m.scheduler.add_noise(x0, torch.randn_like(x0), t)
    pred = m.predict(noisy, m.time_emb(t), m.memory_kv(m.slow_tokens(b), m.fast_tokens(fast)))
    fast[:, 7:] = 0.0
    pred2 = m.predict(noisy, m.time_emb(t), m.memory_kv(m.slow_tokens(b), m.fast_tokens(fast)))
    assert torch.equal(pred[:, :7], pred2[:, :7]) and not torch.equal(pred[:, 7:], pred2[:, 7:])


def _held(b: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``b`` with the wrench after the observation window held at the window's newest value
    (what ``plan`` feeds the chunk's later steps)."""
    out = dict(b)
    out[WRENCH] = torch.cat([b[WRENCH][:, :TO], b[WRENCH][:, TO - 1 : TO].expand(-1, H - TO, -1)], dim=1)
    return out


def _loss(m: ImplicitRDPModel, b: dict[str, torch.Tensor], seed: int = 3) -> float:
    torch.manual_seed(seed)
    with torch.no_grad():
        return float(m.compute_loss(b)[0])


def test_fast_dropout_trains_on_the_plan_time_fast_signal():
    """irdp.fast_dropout: that fraction of training samples sees, after the observation window,
    the window's newest fast signal held (the input ``plan`` gives the chunk), so the slow tokens
    must carry the plan; without it the network can read its lateral motion off the friction it
    causes (docs/implicit-rdp.md, closed-loop failure on wipe)."""
    b, held = batch(), _held(batch())
    assert not torch.equal(b[WRENCH], held[WRENCH])
    # (no auxiliary target here: the virtual target is computed from the recorded wrench, which
    # the dropout leaves alone; only the network's fast input changes)
    always = make_model("irdp.fast_dropout=1.0", "irdp.aux_target=none").train()
    assert _loss(always, b) == _loss(always, held)  # every sample trains on the held signal
    never = make_model("irdp.fast_dropout=0.0", "irdp.aux_target=none").train()
    assert _loss(never, b) != _loss(never, held)
    # per sample: with p = 0.5 some samples see their own signal, others the held one
    half = make_model("irdp.fast_dropout=0.5", "irdp.aux_target=none").train()
    losses = {_loss(half, b, seed) == _loss(half, held, seed) for seed in range(12)}
    assert losses == {True, False}
    # inference (eval mode) never drops: a step sees the signals that arrived
    assert _loss(always.eval(), b) != _loss(always.eval(), held)
    with pytest.raises(ConfigError, match="fast_dropout"):
        make_cfg("irdp.fast_dropout=1.5")
    assert make_cfg().irdp.fast_dropout == 0.5  # what tactkit train and the quickstart use


def test_fast_channels_hide_the_other_fast_channels_in_training_and_at_run_time():
    """irdp.fast_channels=[2]: the network sees the normal force only; the lateral force and the
    torques (friction the policy's own motion causes) change neither the loss nor a denoise."""
    m = make_model("irdp.fast_channels=[2]", "irdp.aux_target=none")
    b = batch()
    lateral = dict(b)
    lateral[WRENCH] = b[WRENCH].clone()
    lateral[WRENCH][..., [0, 1, 3, 4, 5]] += 5.0
    normal = dict(b)
    normal[WRENCH] = b[WRENCH].clone()
    normal[WRENCH][..., 2] += 5.0
    m.train()
    assert _loss(m, b) == _loss(m, lateral) and _loss(m, b) != _loss(m, normal)
    m.eval()
    slow, fast, noise = _denoise_inputs(m)
    moved = fast.clone()
    moved[..., [0, 1, 3, 4, 5]] += 1.0
    assert torch.equal(m.denoise(slow, fast, noise), m.denoise(slow, moved, noise))
    moved[..., 2] += 1.0
    assert not torch.equal(m.denoise(slow, fast, noise), m.denoise(slow, moved, noise))
    with pytest.raises(ValueError, match="fast signal has 6 channels"):
        make_model("irdp.fast_channels=[6]")
    with pytest.raises(ConfigError, match="fast_channels"):
        make_cfg("irdp.fast_channels=[]")


@pytest.mark.parametrize("prediction_type", ["sample", "epsilon"])
def test_the_lean_ddim_step_is_diffusers_ddim(prediction_type):
    m = make_model(f"prediction_type={prediction_type}")
    slow, fast, noise = _denoise_inputs(m)
    mem_kv = m.memory_kv(slow, m.fast_tokens(fast))
    sched = m.scheduler
    sched.set_timesteps(m.cfg.num_inference_steps)
    x = noise
    with torch.no_grad():
        for t in sched.timesteps:
            x = sched.step(m.predict(x, m.time_emb(t.reshape(1)), mem_kv), t, x).prev_sample
    torch.testing.assert_close(m.denoise(slow, fast, noise), x, rtol=1e-5, atol=1e-5)


def test_config_rejects_bad_irdp_settings():
    with pytest.raises(ConfigError, match="multiple of irdp.n_heads"):
        make_cfg("irdp.d_model=30", "irdp.n_heads=4")
    with pytest.raises(ConfigError, match="aux_target"):
        make_cfg("irdp.aux_target=wrench")
    with pytest.raises(ValueError, match="needs fast_keys"):
        ImplicitRDPModel(dataclasses.replace(make_cfg(), fast_keys=[]), make_codec())


def test_sizes_tiny_small_paper_scale_the_transformer():
    sizes = {s: load_policy_config("implicit_rdp", [f"size={s}"]).irdp for s in ("tiny", "small", "paper")}
    assert [sizes[s].d_model for s in ("tiny", "small", "paper")] == [64, 128, 256]
    assert [sizes[s].n_layers for s in ("tiny", "small", "paper")] == [2, 4, 8]
    counts = []
    for s in ("tiny", "small", "paper"):
        torch.manual_seed(0)
        m = ImplicitRDPModel(make_cfg(f"size={s}"), make_codec())
        counts.append(sum(p.numel() for n, p in m.named_parameters() if not n.startswith("obs_encoder")))
    assert counts[0] < counts[1] < counts[2]
