"""BEAST tokenizer: the public methods the policy uses (evaluate with derivatives and
extrapolation, pin, set_bounds) against independent references, and the policy's contract."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy.interpolate import BSpline

import tactkit.policies.beast as beast_pkg
from tactkit.policies.beast import BeastTokenizer
from tactkit.policies.beast.bspline import clamped_uniform_knots


def _tok(**kw) -> BeastTokenizer:
    return BeastTokenizer(4, 16, 7, degree=3, gripper_dims=(3,), **kw)


def test_evaluate_matches_scipy_splines_with_derivative_and_extrapolation() -> None:
    rng = np.random.default_rng(0)
    tok = _tok()
    ctrl = rng.normal(size=(2, 7, 4))
    u = np.array([-0.3, -0.01, 0.0, 0.2, 0.5, 0.77, 1.0, 1.2])
    pose = BSpline(clamped_uniform_knots(7, 3), ctrl[0, :, :3], 3)  # extrapolates by default
    grip = BSpline(clamped_uniform_knots(7, 0), ctrl[0, :, 3:], 0)
    y = tok.evaluate(ctrl, u, extrapolate=True)
    np.testing.assert_allclose(y[0, :, :3], pose(u), atol=1e-12)
    np.testing.assert_allclose(y[0, :, 3:], grip(u), atol=1e-12)
    dy = tok.evaluate(ctrl, u, derivative=1, extrapolate=True)
    np.testing.assert_allclose(dy[0, :, :3], pose.derivative()(u), atol=1e-10)
    assert not dy[..., 3].any()  # piecewise-constant gripper: no velocity
    # inside [0, 1] extrapolation changes nothing; outside it is refused unless asked for
    np.testing.assert_array_equal(tok.evaluate(ctrl, u[2:7]), y[:, 2:7])
    with pytest.raises(ValueError, match="times must lie in"):
        tok.evaluate(ctrl, u)
    # the chunk steps by default, for positions and derivatives alike
    steps = np.linspace(0, 1, 16)
    np.testing.assert_allclose(tok.evaluate(ctrl, derivative=1), tok.evaluate(ctrl, steps, derivative=1), atol=0)
    # end_state: last action exactly, velocity per chunk step = d/du / (T - 1)
    last, vel = tok.end_state(ctrl)
    np.testing.assert_array_equal(last, ctrl[:, -1])
    np.testing.assert_allclose(vel[0, :3], pose.derivative()(1.0) / 15, atol=1e-10)
    assert not vel[:, 3].any()


def test_pin_sets_exactly_the_pinned_pose_points() -> None:
    rng = np.random.default_rng(1)
    tok = _tok()
    ctrl = rng.normal(size=(3, 7, 4))
    prev, vel = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    c0 = tok.pin(ctrl, prev)
    np.testing.assert_array_equal(c0[:, 0, :3], prev[:, :3])
    np.testing.assert_array_equal(c0[:, 0, 3], ctrl[:, 0, 3])  # gripper never pinned
    np.testing.assert_array_equal(c0[:, 1:], ctrl[:, 1:])
    c1 = tok.pin(ctrl, prev[0], vel[0])  # [D] pins broadcast over the batch
    start = tok.evaluate(c1, [0.0], derivative=1)[:, 0, :3] / 15
    np.testing.assert_allclose(start, np.broadcast_to(vel[0, :3], (3, 3)), atol=1e-12)
    np.testing.assert_array_equal(c1[:, 2:], ctrl[:, 2:])
    np.testing.assert_array_equal(tok.pin(ctrl), ctrl)
    with pytest.raises(ValueError, match="prev_action must have shape"):
        tok.pin(ctrl, np.zeros((2, 4)))


def test_fit_with_pins_is_the_constrained_least_squares_optimum() -> None:
    """The free control points minimise the error given the pinned ones (checked with lstsq)."""
    rng = np.random.default_rng(2)
    tok = _tok(ridge=0.0)
    x = rng.normal(size=(2, 16, 4))
    prev, vel = rng.normal(size=(2, 4)), rng.normal(size=(2, 4))
    for k, kw in ((1, {}), (2, {"prev_velocity": vel})):
        c = tok.fit_controls(x, prev, **kw)
        pinned = tok.pin(np.zeros((2, 7, 4)), prev, kw.get("prev_velocity"))[:, :k, :3]
        np.testing.assert_array_equal(c[:, :k, :3], pinned)
        for b in range(2):
            rhs = x[b, :, :3] - tok.basis[:, :k] @ pinned[b]
            free = np.linalg.lstsq(tok.basis[:, k:], rhs, rcond=None)[0]
            np.testing.assert_allclose(c[b, k:, :3], free, atol=1e-9)


def test_set_bounds_validates_and_forgets() -> None:
    tok = _tok()
    low, high = -np.ones((7, 4)), np.ones((7, 4))
    tok.set_bounds(low, high)
    assert tok.fitted and tok.low is not low  # a copy: the caller's array stays theirs
    tokens = tok.encode(np.zeros((1, 16, 4)))
    assert np.all(tokens == 128)  # 0 sits at level 127.5 of [-1, 1] in 256 bins: rounds to even
    with pytest.raises(ValueError, match="shape"):
        tok.set_bounds(low[:, :3], high)
    with pytest.raises(ValueError, match="high > low"):
        tok.set_bounds(high, low)
    with pytest.raises(ValueError, match="finite"):
        tok.set_bounds(low * np.nan, high)
    tok.set_bounds(None, None)
    assert not tok.fitted
    with pytest.raises(RuntimeError, match="fit"):
        tok.encode(np.zeros((1, 16, 4)))


def test_torch_tensors_keep_their_device_and_dtype() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 16, 4))
    tok = _tok().fit(x)
    xt = torch.as_tensor(x, dtype=torch.float32)
    tokens = tok.encode(xt)
    assert tokens.dtype == torch.long and tokens.device == xt.device
    np.testing.assert_array_equal(tokens.numpy(), tok.encode(x.astype(np.float32)))
    params = tok.tokens_to_params(tokens, like=torch.zeros(1, dtype=torch.float64))
    assert params.dtype == torch.float64
    assert tok.tokens_to_params(tokens).dtype == torch.get_default_dtype()
    ctrl = tok.controls_from_tokens(tokens.numpy())
    last, vel = tok.end_state(ctrl)  # numpy in, numpy out
    last_t, vel_t = tok.end_state(torch.as_tensor(ctrl))  # tuples of tensors come back as tensors
    assert isinstance(last, np.ndarray) and isinstance(last_t, torch.Tensor) and last_t.dtype == torch.float64
    np.testing.assert_array_equal(last_t.numpy(), last)
    np.testing.assert_array_equal(vel_t.numpy(), vel)


def test_the_policy_and_network_use_only_public_tokenizer_names() -> None:
    """Issue 17: the BEAST policy no longer reaches into the tokenizer (``_repin``, bounds, caches)."""
    root = Path(beast_pkg.__file__).parent
    for name in ("policy.py", "network.py"):
        tree = ast.parse((root / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "tokenizer":
                assert not node.attr.startswith("_"), f"{name}:{node.lineno} uses tokenizer.{node.attr}"
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    for t in ast.walk(target):
                        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Attribute) and t.value.attr == "tokenizer":
                            pytest.fail(f"{name}:{node.lineno} writes tokenizer.{t.attr}; use set_bounds")
