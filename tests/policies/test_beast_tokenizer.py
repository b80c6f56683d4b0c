"""BEAST B-spline tokenizer: basis properties, fitting, tokens, continuity, persistence."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from tactkit.policies.beast import BeastTokenizer
from tactkit.policies.beast.bspline import (
    clamped_uniform_knots,
    cox_de_boor_matrix,
    derivative_scales,
    design_matrix,
)


def smooth_chunks(rng: np.random.Generator, n: int, t: int, d: int) -> np.ndarray:
    s = np.linspace(0.0, 1.0, t)[None, :, None]
    freq = rng.uniform(0.2, 1.2, (n, 1, d))
    phase = rng.uniform(0, 2 * np.pi, (n, 1, d))
    amp = rng.uniform(0.05, 0.5, (n, 1, d))
    return amp * np.sin(2 * np.pi * freq * s + phase) + rng.normal(0, 0.2, (n, 1, d))


@pytest.mark.parametrize(("n", "p"), [(5, 4), (8, 4), (12, 3), (6, 1), (7, 0)])
def test_basis_partition_of_unity_and_matches_cox_de_boor(n: int, p: int) -> None:
    x = np.linspace(0, 1, 41)
    b = design_matrix(x, n, p)
    np.testing.assert_allclose(b.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(b >= -1e-15)
    np.testing.assert_allclose(b, cox_de_boor_matrix(x, n, p), atol=1e-12)


def test_knots_clamped_uniform() -> None:
    u = clamped_uniform_knots(8, 4)
    np.testing.assert_allclose(u, [0, 0, 0, 0, 0, 1 / 4, 2 / 4, 3 / 4, 1, 1, 1, 1, 1])


def test_endpoint_interpolation() -> None:
    rng = np.random.default_rng(0)
    tok = BeastTokenizer(3, 20, 9, degree=4)
    ctrl = rng.normal(size=(4, 9, 3))
    curve = tok.evaluate(ctrl)
    np.testing.assert_allclose(curve[:, 0], ctrl[:, 0], atol=1e-12)
    np.testing.assert_allclose(curve[:, -1], ctrl[:, -1], atol=1e-12)


def test_n_equals_p_plus_1_is_bezier() -> None:
    p = 4
    x = np.linspace(0, 1, 33)
    bern = np.stack([comb(p, i) * x**i * (1 - x) ** (p - i) for i in range(p + 1)], axis=1)
    np.testing.assert_allclose(design_matrix(x, p + 1, p), bern, atol=1e-12)


def test_derivative_scales_match_finite_differences() -> None:
    n, p = 9, 4
    a0, a1 = derivative_scales(n, p)
    ctrl = np.random.default_rng(1).normal(size=n)
    h = 1e-6
    b = design_matrix([0.0, h, 1.0 - h, 1.0], n, p) @ ctrl
    assert abs((b[1] - b[0]) / h - a0 * (ctrl[1] - ctrl[0])) < 1e-3
    assert abs((b[3] - b[2]) / h - a1 * (ctrl[-1] - ctrl[-2])) < 1e-3


@pytest.mark.parametrize(("t", "n", "p"), [(16, 8, 4), (10, 10, 4), (32, 6, 3), (16, 5, 4)])
def test_exact_reconstruction_in_span(t: int, n: int, p: int) -> None:
    rng = np.random.default_rng(2)
    ctrl = rng.normal(size=(5, n, 4))
    # default (tiny) ridge: the curve is reproduced; without ridge also the control points
    tok = BeastTokenizer(4, t, n, degree=p, gripper_dims=(3,))
    actions = tok.evaluate(ctrl)
    np.testing.assert_allclose(tok.evaluate(tok.fit_controls(actions)), actions, atol=1e-6)
    exact = BeastTokenizer(4, t, n, degree=p, gripper_dims=(3,), ridge=0.0)
    np.testing.assert_allclose(exact.fit_controls(actions), ctrl, atol=1e-8)


def test_degree0_gripper_fit_is_segment_mean() -> None:
    rng = np.random.default_rng(3)
    t, n = 20, 6
    tok = BeastTokenizer(2, t, n, degree=4, gripper_dims=(1,))
    actions = rng.normal(size=(3, t, 2))
    ctrl = tok.fit_controls(actions)
    seg = np.minimum(np.floor(np.linspace(0, 1, t) * n), n - 1).astype(int)
    for j in range(n):
        np.testing.assert_allclose(ctrl[:, j, 1], actions[:, seg == j, 1].mean(axis=1), atol=1e-6)
    # the spline dimension is not piecewise constant
    assert np.ptp(tok.evaluate(ctrl)[:, seg == 0, 0]) > 0


def test_tokens_roundtrip_shape_order_and_error() -> None:
    rng = np.random.default_rng(4)
    data = smooth_chunks(rng, 400, 16, 5)
    tok = BeastTokenizer(5, 16, 8, gripper_dims=(4,)).fit(data[:300])
    test = data[300:]
    tokens = tok.encode(test)
    assert tokens.shape == (100, 40) and tokens.dtype == np.int64
    assert tokens.min() >= 0 and tokens.max() < 256
    params = tok.encode_continuous(test)
    # control-point-major: token k is control point k // D, dimension k % D
    expect = np.rint(np.clip((params + 1) * 127.5, 0, 255)).astype(np.int64)
    np.testing.assert_array_equal(tokens.reshape(100, 8, 5), expect)
    # decode is the exact inverse of the quantisation
    ctrl = tok.controls_from_tokens(tokens)
    np.testing.assert_allclose(tok.normalize_controls(ctrl), tokens.reshape(100, 8, 5) / 127.5 - 1, atol=1e-12)
    err = tok.decode(tokens) - test
    # smooth dims (dim 4 is piecewise constant); chunks beyond the percentile bounds are clipped
    per_chunk = np.sqrt(np.mean(err[..., :4] ** 2, axis=(1, 2)))
    assert np.median(per_chunk) < 0.003 and np.sqrt(np.mean(err[..., :4] ** 2)) < 0.01
    assert np.sqrt(np.mean(err[..., 4] ** 2)) < 0.05
    cont = tok.decode_continuous(params) - test
    assert np.sqrt(np.mean(cont**2)) < np.sqrt(np.mean(err**2))


def test_decode_at_other_times_resamples_the_same_curve() -> None:
    rng = np.random.default_rng(5)
    tok = BeastTokenizer(3, 16, 7).fit(smooth_chunks(rng, 50, 16, 3))
    tokens = tok.encode(smooth_chunks(rng, 2, 16, 3))
    at_steps = tok.decode(tokens)
    fine = tok.decode(tokens, times=np.linspace(0, 1, 61))  # 4x the rate: every 4th sample is a step
    assert fine.shape == (2, 61, 3)
    np.testing.assert_allclose(fine[:, ::4], at_steps, atol=1e-12)


@pytest.mark.parametrize("velocity", [False, True])
def test_continuity_boundary_gap(velocity: bool) -> None:
    rng = np.random.default_rng(6)
    t = 16
    data = smooth_chunks(rng, 200, t, 4)
    data[..., 3] = (data[..., 3] > 0) * 0.08
    tok = BeastTokenizer(4, t, 8, gripper_dims=(3,)).fit(data)
    first, nxt = data[:20], data[20:40] + 0.3  # a jump the fit alone would not close
    ctrl_prev = tok.controls_from_tokens(tok.encode(first))
    last, vel = tok.end_state(ctrl_prev)
    np.testing.assert_allclose(last, tok.evaluate(ctrl_prev)[:, -1], atol=1e-12)
    kw = {"prev_velocity": vel} if velocity else {}
    tokens = tok.encode(nxt, prev_action=last, **kw)
    dec = tok.decode(tokens, prev_action=last, **kw)
    assert np.abs(dec[:, 0, :3] - last[:, :3]).max() <= 1e-6
    free = tok.decode(tok.encode(nxt))
    assert np.abs(free[:, 0, :3] - last[:, :3]).max() > 0.1  # without continuity there is a gap
    if velocity:
        h = 1e-6
        ctrl_next = tok.controls_from_tokens(tokens, prev_action=last, prev_velocity=vel)
        ends = tok.evaluate(ctrl_next, times=[0.0, h])
        start_vel = (ends[:, 1] - ends[:, 0]) / h / (t - 1)
        np.testing.assert_allclose(start_vel[:, :3], vel[:, :3], atol=1e-4)
        # pinned points come from prev_action exactly, whatever their tokens say
        scrambled = tokens.copy()
        pinned_pos = [0, 1, 2, 4, 5, 6]  # control points 0 and 1 of the three spline dims
        scrambled[:, pinned_pos] = rng.integers(0, 256, (20, 6))
        dec2 = tok.decode(scrambled, prev_action=last, prev_velocity=vel)
        np.testing.assert_allclose(dec2, dec, atol=1e-12)


def test_save_load_bit_identical(tmp_path) -> None:
    rng = np.random.default_rng(7)
    data = smooth_chunks(rng, 100, 10, 7)
    tok = BeastTokenizer(7, 10, 6, degree=3, gripper_dims=(6,), bins=128).fit(data)
    tok.save(tmp_path / "tok")
    back = BeastTokenizer.load(tmp_path / "tok")
    assert back.low.tobytes() == tok.low.tobytes() and back.high.tobytes() == tok.high.tobytes()
    assert back.config() == tok.config()
    np.testing.assert_array_equal(back.encode(data), tok.encode(data))
    assert not list(tmp_path.glob("**/*.pkl"))
    with pytest.raises(FileNotFoundError, match="beast.json"):
        BeastTokenizer.load(tmp_path / "missing")


def test_numpy_and_torch_agree() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(8)
    data = smooth_chunks(rng, 64, 16, 7)
    tok = BeastTokenizer(7, 16, 8, gripper_dims=(6,)).fit(data)
    prev = data[:, 0] + 0.1
    xt = torch.as_tensor(data, dtype=torch.float64)
    prev_t = torch.as_tensor(prev)
    np.testing.assert_allclose(tok.encode_continuous(xt, prev).numpy(), tok.encode_continuous(data, prev), atol=1e-6)
    tokens = tok.encode(data, prev)
    tokens_t = tok.encode(xt, prev_t)
    assert tokens_t.dtype == torch.long
    np.testing.assert_array_equal(tokens_t.numpy(), tokens)
    dec_t = tok.decode(tokens_t, prev_action=prev_t, times=np.linspace(0, 1, 25))
    assert isinstance(dec_t, torch.Tensor)
    np.testing.assert_allclose(dec_t.double().numpy(), tok.decode(tokens, prev, times=np.linspace(0, 1, 25)), atol=1e-6)
    # float32 tensors stay float32 and agree to float32 precision
    dec32 = tok.decode_continuous(torch.as_tensor(tok.encode_continuous(data), dtype=torch.float32))
    assert dec32.dtype == torch.float32
    np.testing.assert_allclose(dec32.numpy(), tok.decode_continuous(tok.encode_continuous(data)), atol=1e-5)


def test_bad_input_errors() -> None:
    tok = BeastTokenizer(3, 16, 6)
    good = np.zeros((2, 16, 3))
    with pytest.raises(RuntimeError, match="fit"):
        tok.encode(good)
    tok.fit(smooth_chunks(np.random.default_rng(9), 20, 16, 3))
    with pytest.raises(ValueError, match=r"actions must have shape \[B, 16, 3\]"):
        tok.encode(np.zeros((2, 15, 3)))
    with pytest.raises(ValueError, match="actions must have shape"):
        tok.encode(np.zeros((16, 3)))
    bad = good.copy()
    bad[1, 3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        tok.encode(bad)
    with pytest.raises(ValueError, match="too short"):
        BeastTokenizer(3, 5, 8, degree=4)
    with pytest.raises(ValueError, match="num_ctrl must be"):
        BeastTokenizer(3, 16, 4, degree=4)
    with pytest.raises(ValueError, match="gripper_dims"):
        BeastTokenizer(3, 16, 6, gripper_dims=(3,))
    tokens = tok.encode(good)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode(tokens + 256)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode(tokens - 300)
    with pytest.raises(ValueError, match=r"shape \[B, 18\]"):
        tok.decode(tokens[:, :-1])
    with pytest.raises(ValueError, match="integers"):
        tok.decode(tokens.astype(np.float64))
    with pytest.raises(ValueError, match="prev_action must have shape"):
        tok.decode(tokens, prev_action=np.zeros(4))
    with pytest.raises(ValueError, match="times must lie in"):
        tok.decode(tokens, times=[0.0, 1.5])
    with pytest.raises(ValueError, match="prev_velocity"):
        tok.decode(tokens, prev_velocity=np.zeros(3))


def test_any_substitution_decodes() -> None:
    rng = np.random.default_rng(10)
    tok = BeastTokenizer(7, 16, 6, gripper_dims=(6,)).fit(smooth_chunks(rng, 50, 16, 7))
    tokens = tok.encode(smooth_chunks(rng, 30, 16, 7))
    pos = rng.integers(0, tokens.shape[1], (30, 5))
    tokens[np.arange(30)[:, None], pos] = rng.integers(0, 256, (30, 5))
    res = tok.decode_batch(list(tokens))
    assert res.valid.all() and np.isfinite(res.actions).all()
    short = tok.decode_batch([tokens[0], tokens[1][:-2]])
    assert list(short.valid) == [True, False] and np.isnan(short.actions[1]).all()


def test_c1_with_few_control_points_warns(caplog) -> None:
    rng = np.random.default_rng(11)
    data = smooth_chunks(rng, 20, 16, 2)
    tok = BeastTokenizer(2, 16, 5, degree=4).fit(data)
    prev, vel = data[:, 0], np.zeros((20, 2))
    with caplog.at_level("WARNING", logger="tactkit.policies.beast.tokenizer"):
        tok.encode(data, prev_action=prev, prev_velocity=vel)
    assert "can amplify errors" in caplog.text
    caplog.clear()
    wide = BeastTokenizer(2, 16, 8, degree=4).fit(data)
    with caplog.at_level("WARNING", logger="tactkit.policies.beast.tokenizer"):
        wide.encode(data, prev_action=prev, prev_velocity=vel)
    assert "can amplify errors" not in caplog.text


def test_numpy_fast_path_layouts_and_dtypes() -> None:
    """The batch-innermost numpy path gives the plain formulas for any input layout and dtype."""
    rng = np.random.default_rng(12)
    data = smooth_chunks(rng, 300, 16, 7)
    tok = BeastTokenizer(7, 16, 8, gripper_dims=(3, 6)).fit(data[:200])
    x = data[200:]
    ctrl = tok.fit_controls(x)
    width = tok.high - tok.low
    expect = np.rint(np.clip((ctrl - tok.low) * ((tok.bins - 1) / width), 0, tok.bins - 1)).astype(np.int64)
    tokens = tok.encode(x)
    np.testing.assert_array_equal(tokens.reshape(100, 8, 7), expect)
    # [B, T, D] views of other memory layouts, float32 and integer actions
    for xin in (np.asfortranarray(x), np.ascontiguousarray(x.transpose(1, 2, 0)).transpose(2, 0, 1), x[::-1][::-1]):
        np.testing.assert_array_equal(tok.encode(xin), tokens)
    np.testing.assert_array_equal(tok.encode(x.astype(np.float32)), tok.encode(x.astype(np.float32).astype(np.float64)))
    np.testing.assert_array_equal(tok.encode(np.rint(x * 10).astype(np.int32)), tok.encode(np.rint(x * 10)))
    # decode: exact dequantisation then the basis, whatever the token dtype or memory order
    dec = tok.decode(tokens)
    ctrl_q = tokens.reshape(100, 8, 7) * (width / (tok.bins - 1)) + tok.low
    np.testing.assert_allclose(dec, tok.evaluate(ctrl_q), atol=1e-12)
    for t in (np.ascontiguousarray(tokens), tokens.astype(np.int32), tokens.astype(np.uint8), tokens.astype(np.uint64)):
        np.testing.assert_array_equal(tok.decode(t), dec)
    # out-of-vocabulary tokens of every integer width are caught (negatives included)
    for bad in (tokens.astype(np.int8) - 100, tokens.astype(np.int16) + 256, np.full_like(tokens, -1)):
        with pytest.raises(ValueError, match="outside the vocabulary"):
            tok.decode(bad)
    # huge values clip to the end bins, as the plain formula does
    huge = tok.encode(x * 1e100)
    assert huge.min() >= 0 and huge.max() == tok.bins - 1


def test_repin_leaves_its_input_alone_and_nan_raises_without_warnings() -> None:
    import warnings

    rng = np.random.default_rng(13)
    data = smooth_chunks(rng, 50, 16, 4)
    tok = BeastTokenizer(4, 16, 8, gripper_dims=(3,)).fit(data)
    ctrl = tok.controls_from_tokens(tok.encode(data[:1]))
    before = ctrl.copy()
    pinned = tok._repin(ctrl, data[0, 0] + 1.0, None)
    np.testing.assert_array_equal(ctrl, before)
    np.testing.assert_allclose(pinned[0, 0, :3], data[0, 0, :3] + 1.0)
    for value in (np.nan, np.inf, -np.inf):
        bad = data.copy()
        bad[7, 5, 3] = value  # a gripper dim
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="NaN or inf"):
                tok.encode(bad)
            with pytest.raises(ValueError, match="NaN or inf"):
                tok.fit_controls(bad, prev_action=data[:, 0])
