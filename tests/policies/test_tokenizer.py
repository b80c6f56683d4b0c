import pytest
import torch
from policy_helpers import make_batch, make_codec

from tactkit.policies.rdp.tokenizer import AsymmetricTokenizer

ACTIONS = ["action.tcp_pose", "action.gripper_width"]
FAST = ["observation.tactile.left.marker_offset"]


def _tok(**kw) -> AsymmetricTokenizer:
    torch.manual_seed(0)
    return AsymmetricTokenizer(make_codec(), ACTIONS, FAST, horizon=32, channels=32, **kw)


def test_encoder_shapes_and_latent_cond():
    tok = _tok()
    a = torch.randn(5, 32, 10)
    mu, logvar = tok.encode(a)
    assert mu.shape == logvar.shape == (5, 8, 16)
    assert tok.latent_cond(mu).shape == (5, 128)
    with pytest.raises(ValueError, match=r"\[B, 32, 10\]"):
        tok.encode(torch.randn(5, 16, 10))


def test_streaming_step_equals_prefix_rerun():
    """The tokenizer's own contract: decode_step carries the recurrent state exactly as a re-run
    of decode over the prefix. The policy's plan / step streaming (window prefix, fast delays)
    is tested in test_pipeline.py::test_rdp_streaming_steps_equal_prefix_decoder."""
    tok = _tok().eval()
    g = torch.Generator().manual_seed(1)
    cond = torch.randn(3, tok.cond_dim, generator=g)
    fast = torch.randn(3, 32, 15, generator=g)
    h = None
    for t in range(32):
        a_t, h = tok.decode_step(cond, fast[:, t], h)
        prefix, _ = tok.decode(cond, fast[:, : t + 1])
        assert (a_t - prefix[:, -1]).abs().max() < 1e-6, t
    full, h_full = tok.decode(cond, fast)
    assert torch.allclose(h, h_full, atol=1e-6)


def test_decoder_reacts_to_fast_signal():
    tok = _tok().eval()
    cond = torch.randn(1, tok.cond_dim)
    a1, _ = tok.decode_step(cond, torch.zeros(1, 15), None)
    a2, _ = tok.decode_step(cond, torch.ones(1, 15), None)
    assert not torch.allclose(a1, a2)
    with pytest.raises(ValueError, match="15"):
        tok.decode_step(cond, torch.zeros(1, 6), None)


def test_loss_is_l1_plus_weighted_kl():
    tok = _tok(kl_weight=0.5).eval()  # eval: z = mean, deterministic
    batch = make_batch(4, 32)
    loss, info = tok.compute_loss(batch)
    assert loss.ndim == 0
    assert abs(loss.item() - (info["l1"] + 0.5 * info["kl"])) < 1e-5


def test_overfits_one_batch():
    tok = _tok()
    batch = make_batch(8, 32, seed=3)
    opt = torch.optim.Adam(tok.parameters(), lr=3e-3)
    first = None
    for _ in range(300):
        loss, info = tok.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        first = first or info["l1"]
    # random targets in [-1, 1]: mean |x| ~ 0.5; memorising 8 chunks drives L1 well below
    assert info["l1"] < 0.2 < first


def test_fast_delay_hides_each_steps_own_signal_from_the_decoder():
    fast = torch.arange(4.0).reshape(1, 4, 1).expand(1, 4, 15)
    assert torch.equal(_tok().delayed(fast), fast)
    assert _tok(fast_delay=1).delayed(fast)[0, :, 0].tolist() == [0.0, 0.0, 1.0, 2.0]
    assert _tok(fast_delay=9).delayed(fast)[0, :, 0].tolist() == [0.0] * 4
    # trained with a delay, the loss of a chunk does not depend on its last step's fast signal
    batch = make_batch(2, 32)
    key = FAST[0]
    other = dict(batch)
    other[key] = batch[key].clone()
    other[key][:, 31] += 0.5
    for delay, same in ((1, True), (0, False)):
        tok = _tok(fast_delay=delay).eval()
        assert (tok.compute_loss(batch)[0] == tok.compute_loss(other)[0]).item() is same, delay
    with pytest.raises(ValueError, match="fast_delay"):
        _tok(fast_delay=-1)
