import numpy as np
import pytest
import torch
from policy_helpers import make_batch, make_codec

from tactkit.policies.ema import EMA
from tactkit.policies.features import Normalizer, make_spec
from tactkit.policies.networks import ConditionalUnet1D, ObservationEncoder, ResNet18GN, crop_images


def test_unet_shapes_and_conditioning():
    torch.manual_seed(0)
    net = ConditionalUnet1D(10, 24, down_dims=[16, 32, 64], step_embed_dim=16)
    x = torch.randn(3, 16, 10)
    cond = torch.randn(3, 24)
    y = net(x, torch.tensor([0, 5, 99]), cond)
    assert y.shape == (3, 16, 10) and y.dtype == torch.float32
    # scalar timestep broadcasts; the output depends on the step and on the condition
    y_scalar = net(x, 5, cond)
    assert torch.allclose(y_scalar[1], y[1], atol=1e-6)
    assert not torch.allclose(net(x, 50, cond), y_scalar)
    assert not torch.allclose(net(x, 5, cond + 1.0), y_scalar)
    with pytest.raises(ValueError, match="divisible"):
        net(torch.randn(1, 10, 10), 0, torch.randn(1, 24))


def test_unet_runs_on_8_step_latents():
    net = ConditionalUnet1D(16, 8, down_dims=[32, 64, 128])
    assert net(torch.randn(2, 8, 16), 3, torch.randn(2, 8)).shape == (2, 8, 16)


def test_resnet18_layout_and_groupnorm_only():
    net = ResNet18GN(width=8, out_dim=20)
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    # stem + 8 basic blocks x 2 convs + 3 downsampling shortcuts = ResNet-18's 20 convolutions
    assert len(convs) == 20
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert net(torch.rand(4, 3, 28, 28)).shape == (4, 20)


def test_crop_random_per_image_and_centre():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6).repeat(8, 1, 1, 1)
    c = crop_images(x, (4, 4), random=False)
    assert torch.equal(c, x[:, :, 1:5, 1:5])
    g = torch.Generator().manual_seed(0)
    r = crop_images(x, (4, 4), random=True, generator=g)
    assert r.shape == (16, 1, 4, 4)
    # every random crop is a contiguous window of its own image, and windows differ across images
    offsets = set()
    for i in range(16):
        hit = [(y, xx) for y in range(3) for xx in range(3) if torch.equal(r[i], x[i, :, y : y + 4, xx : xx + 4])]
        assert len(hit) == 1
        offsets.add(hit[0])
    assert len(offsets) > 1


def test_normalizer_minmax_and_rotation_untouched():
    specs = [make_spec("action.tcp_pose", (7,)), make_spec("action.gripper_width", (1,))]
    stats = {
        "action.tcp_pose": {"min": np.array([0, -1, 2, -1, -1, -1, -1.0]), "max": np.array([1, 1, 4, 1, 1, 1, 1.0])},
        "action.gripper_width": {"min": np.array([0.02]), "max": np.array([0.02])},  # constant
    }
    n = Normalizer.from_stats(specs, stats)
    lo = torch.tensor([0.0, -1, 2, 0.3, -0.2, 0.9, 0.1, -0.5, 0.4])
    hi = torch.tensor([1.0, 1, 4, 0.3, -0.2, 0.9, 0.1, -0.5, 0.4])
    y_lo, y_hi = n.normalize("action.tcp_pose", lo), n.normalize("action.tcp_pose", hi)
    assert torch.allclose(y_lo[:3], -torch.ones(3)) and torch.allclose(y_hi[:3], torch.ones(3))
    assert torch.equal(y_lo[3:], lo[3:])  # 6-D rotation left unnormalised
    assert torch.allclose(n.unnormalize("action.tcp_pose", y_lo), lo)
    g = n.normalize("action.gripper_width", torch.tensor([0.02]))
    assert torch.allclose(g, torch.zeros(1))  # a constant maps to 0, not inf
    with pytest.raises(KeyError, match="observation.wrench"):
        Normalizer.from_stats([make_spec("observation.wrench", (6,))], stats)


def test_normalizer_save_load(tmp_path):
    codec = make_codec()
    codec.normalizer.save(tmp_path / "n.safetensors")
    back = Normalizer.load(tmp_path / "n.safetensors")
    for k, (s, o) in codec.normalizer.params.items():
        assert torch.equal(back.params[k][0], s) and torch.equal(back.params[k][1], o)


def test_observation_encoder_shapes_and_train_eval_crop():
    codec = make_codec()
    keys = ["observation.images.wrist", "observation.state.tcp_pose", "observation.state.gripper_width",
            "observation.tactile.left.marker_offset"]  # fmt: skip
    enc = ObservationEncoder(codec, keys, 2, (28, 28), resnet_width=8, image_feature_dim=16)
    assert enc.step_dim == 16 + 9 + 1 + 15
    batch = make_batch(3, 16)
    enc.eval()
    a = enc(batch)
    assert a.shape == (3, 2 * enc.step_dim)
    assert torch.equal(a, enc(batch))  # centre crop: deterministic
    enc.train()
    assert not torch.equal(enc(batch), enc(batch))  # random crops differ
    del batch["observation.images.wrist"]
    with pytest.raises(KeyError, match="observation.images.wrist"):
        enc(batch)


def test_ema_tracks_weights():
    net = torch.nn.Linear(2, 2)
    ema = EMA(net, max_decay=0.5)
    with torch.no_grad():
        w0 = net.weight.clone()
        net.weight.add_(1.0)
    ema.update(net)  # step 0: decay min(0.5, 1/10) = 0.1
    assert torch.allclose(ema.model.weight, 0.1 * w0 + 0.9 * (w0 + 1.0))
    ema.update(net)  # step 1: decay min(0.5, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.model.weight, d * (0.1 * w0 + 0.9 * (w0 + 1)) + (1 - d) * (w0 + 1), atol=1e-6)
    assert not ema.model.weight.requires_grad


def test_codec_handles_multi_arm_keys_generically():
    from tactkit.policies.features import FeatureCodec

    keys = ["action.left.tcp_pose", "action.right.tcp_pose", "action.left.gripper_width", "action.right.gripper_width"]
    specs = {k: make_spec(k, (7,) if k.endswith("pose") else (1,)) for k in keys}
    stats = {k: {"min": -np.ones(7 if k.endswith("pose") else 1), "max": np.ones(7 if k.endswith("pose") else 1)} for k in keys}
    codec = FeatureCodec(specs, Normalizer.from_stats(list(specs.values()), stats))
    assert codec.dim(keys) == 9 + 9 + 1 + 1 and codec.raw_dim(keys) == 16
    g = torch.Generator().manual_seed(0)
    q = torch.randn(2, 5, 2, 4, generator=g)
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    batch = {
        "action.left.tcp_pose": torch.cat([torch.rand(2, 5, 3, generator=g), q[:, :, 0]], -1),
        "action.right.tcp_pose": torch.cat([torch.rand(2, 5, 3, generator=g), q[:, :, 1]], -1),
        "action.left.gripper_width": torch.rand(2, 5, 1, generator=g),
        "action.right.gripper_width": torch.rand(2, 5, 1, generator=g),
    }
    y = codec.encode(batch, keys)
    assert y.shape == (2, 5, 20)
    flat = codec.decode(y, keys)
    ref = torch.cat([batch[k] for k in keys], -1)
    assert flat.shape == (2, 5, 16) and torch.allclose(flat, ref, atol=1e-6)


def test_tactile_embedding_normaliser_keeps_the_pca_components_relative_sizes():
    import numpy as np
    import torch

    from tactkit.policies.features import Normalizer, make_spec

    tac = make_spec("observation.tactile.pad.marker_offset", (63, 2), pca_dim=3)
    flat = make_spec("observation.wrench", (6,))
    lo, hi = np.array([-0.5, 0.99, -1e-4]), np.array([1.5, 1.01, 1e-4])
    stats = {tac.key: {"min": lo, "max": hi}, flat.key: {"min": np.zeros(6), "max": np.arange(1.0, 7.0)}}
    n = Normalizer.from_stats([tac, flat], stats)
    y = n.normalize(tac.key, torch.tensor(np.stack([lo, hi]), dtype=torch.float32))
    assert torch.allclose(y[:, 0], torch.tensor([-1.0, 1.0]))  # the widest component spans [-1, 1]
    assert torch.allclose(y[:, 1], torch.tensor([-0.01, 0.01]), atol=1e-6)  # minor ones stay small, centred
    assert y[:, 2].abs().max() < 1e-3
    w = n.normalize(flat.key, torch.tensor(np.arange(1.0, 7.0), dtype=torch.float32))
    assert torch.allclose(w, torch.ones(6))  # other keys: per-dimension min-max as before


def test_diffusion_prediction_types_target_and_sampling():
    import pytest

    from tactkit.policies.diffusion_utils import ddim_sample, diffusion_loss, make_scheduler

    x0 = torch.rand(4, 8, 3) * 2 - 1
    # A denoiser that knows the answer has zero loss for its own target only.
    sample = make_scheduler(100, "sample")
    assert diffusion_loss(lambda x, t: x0, sample, x0).item() == 0.0
    assert diffusion_loss(lambda x, t: x0, make_scheduler(100, "epsilon"), x0).item() > 0.5
    # DDIM with an exact clean-sample predictor lands on it (up to the final clip at [-1, 1]).
    out = ddim_sample(lambda x, t: x0, sample, tuple(x0.shape), 8, torch.device("cpu"), torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, x0, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="prediction_type"):
        make_scheduler(100, "v_prediction")
