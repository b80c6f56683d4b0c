"""BEAST: B-spline encoded action sequence tokenizer.

An action chunk ``X [T, D]`` becomes ``N`` control points ``C [N, D]`` of a clamped uniform
B-spline per dimension (:mod:`~tactkit.policies.beast.bspline`): degree ``p`` for the pose
dimensions, degree 0 for gripper dimensions (each control point is then the mean of its
segment). Chunk step ``i`` sits at spline time ``u_i = i / (T - 1)``; with the basis matrix
``B[i, j] = b_j(u_i)`` and per-parameter bounds ``lo, hi`` (percentiles of training control
points):

    fit         C = (BᵀB + λI)⁻¹ Bᵀ X                          ridge least squares, λ = ``ridge``
    evaluate    X = B(u) C                                     at the chunk steps or any u in [0, 1]
    normalise   P = 2 (C - lo) / (hi - lo) - 1                 [-1, 1] within the bounds
    quantise    k = round(clip((C - lo) (bins - 1) / (hi - lo), 0, bins - 1))
    dequantise  C = lo + k (hi - lo) / (bins - 1)

Tokens are control-point-major: all dimensions of control point 0, then of control point 1, ...

Continuity with the previous chunk pins the first control points of the pose dimensions:

* C0 (``prev_action``): ``c_0 = prev_action``; a clamped spline starts at its first control point.
* C1 (and ``prev_velocity``, per chunk step): ``c_1 = c_0 + v (T - 1) / a_0``, because
  ``C'(0) = a_0 (c_1 - c_0)`` per unit ``u`` (:func:`~tactkit.policies.beast.bspline.derivative_scales`).

With ``k`` points pinned the others are the least-squares optimum given them,
``C[k:] = F_k (X - B[:, :k] C[:k])``, ``F_k`` the ridge operator of ``B[:, k:]``. Pinned points
keep their token slots, but decoding rebuilds them from ``prev_action`` / ``prev_velocity``,
never from their tokens, so the boundary gap is zero.

The maths is numpy float64. torch tensors are accepted too (the policy network trains on them)
and answered with tensors on the same device: one host round trip per call, nothing beside a
network step.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tactkit.policies.beast.bspline import derivative_scales, design_matrix, ridge_pinv
from tactkit.policies.tokenizers.base import ActionTokenizer, DecodeResult

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "beast.json"
ARRAYS_FILE = "bounds.npz"
_SETTINGS = ("action_dim", "chunk_len", "num_ctrl", "degree", "gripper_dims", "bins", "ridge", "percentiles")

Array = Any  # np.ndarray, or a torch.Tensor where a method says so
_Method = TypeVar("_Method", bound=Callable[..., Any])


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch")


def accepts_tensors(method: _Method) -> _Method:
    """Let a numpy method take torch tensors: they go in as numpy arrays, and the results come
    back as tensors on the first tensor's device (integers as ``torch.long``, floats in the
    first floating tensor's dtype, else torch's default dtype)."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        tensors = [a for a in (*args, *kwargs.values()) if _is_tensor(a)]
        if not tensors:
            return method(self, *args, **kwargs)
        import torch

        dtype = next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())
        args = tuple(a.detach().cpu().numpy() if _is_tensor(a) else a for a in args)
        kwargs = {k: v.detach().cpu().numpy() if _is_tensor(v) else v for k, v in kwargs.items()}
        out = method(self, *args, **kwargs)

        def back(y: np.ndarray) -> Any:
            return torch.as_tensor(y, device=tensors[0].device, dtype=torch.long if y.dtype.kind in "iu" else dtype)

        return tuple(map(back, out)) if isinstance(out, tuple) else back(out)

    return wrapper  # type: ignore[return-value]


class BeastTokenizer(ActionTokenizer):
    """B-spline action tokenizer with a fixed ``num_ctrl * action_dim`` tokens per chunk."""

    name = "beast"

    def __init__(
        self,
        action_dim: int,
        chunk_len: int,
        num_ctrl: int,
        degree: int = 4,
        gripper_dims: Sequence[int] = (),
        bins: int = 256,
        *,
        ridge: float = 1e-8,
        percentiles: tuple[float, float] = (0.1, 99.9),
    ) -> None:
        for field, value, low in (("action_dim", action_dim, 1), ("chunk_len", chunk_len, 2), ("bins", bins, 2),
                                  ("degree", degree, 0), ("num_ctrl", num_ctrl, degree + 1)):
            if int(value) != value or value < low:
                raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
        grip = sorted({int(d) for d in gripper_dims})
        if any(d < 0 or d >= action_dim for d in grip):
            raise ValueError(f"gripper_dims must lie in [0, {action_dim}), got {tuple(gripper_dims)}")
        if not (ridge >= 0.0 and np.isfinite(ridge)):
            raise ValueError(f"ridge must be finite and >= 0, got {ridge!r}")
        lo_q, hi_q = (float(q) for q in percentiles)
        if not 0.0 <= lo_q < hi_q <= 100.0:
            raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles}")

        self.action_dim, self.chunk_len, self.num_ctrl = int(action_dim), int(chunk_len), int(num_ctrl)
        self.degree, self.bins, self.ridge = int(degree), int(bins), float(ridge)
        self.gripper_dims = tuple(grip)
        self.spline_dims = tuple(d for d in range(action_dim) if d not in grip)
        self.percentiles = (lo_q, hi_q)
        self.low: np.ndarray | None = None  # [N, D] parameter bounds (action units)
        self.high: np.ndarray | None = None

        steps = np.linspace(0.0, 1.0, self.chunk_len)
        self.basis = design_matrix(steps, self.num_ctrl, self.degree)  # [T, N] pose dims
        self.basis_gripper = design_matrix(steps, self.num_ctrl, 0)  # [T, N] gripper dims
        for label, basis, deg, used in (("spline", self.basis, self.degree, self.spline_dims),
                                        ("gripper (degree 0)", self.basis_gripper, 0, self.gripper_dims)):
            rank = np.linalg.matrix_rank(basis)
            if used and rank < self.num_ctrl:
                raise ValueError(f"chunk_len={self.chunk_len} is too short for degree={deg} and num_ctrl={self.num_ctrl}: "
                                 f"the {label} basis at the chunk steps has rank {rank} < num_ctrl")
        # fit operators F_k with the first k control points pinned (k = 0, 1, 2)
        self._fit_ops = [ridge_pinv(self.basis[:, k:], self.ridge) for k in range(min(3, self.num_ctrl))]
        self._fit_op_gripper = ridge_pinv(self.basis_gripper, self.ridge)
        self._a0 = derivative_scales(self.num_ctrl, self.degree)[0]
        self._warned_c1 = False

    @property
    def vocab_size(self) -> int:
        return self.bins

    @property
    def tokens_per_chunk(self) -> int:
        return self.num_ctrl * self.action_dim

    @property
    def fitted(self) -> bool:
        return self.low is not None

    # ------------------------------------------------------------------ checks
    def _floats(self, x: Any, name: str, tail: tuple[int, ...], batch: str = "B") -> np.ndarray:
        """``x`` as float64 of shape ``[batch, *tail]``, or a ``ValueError`` naming the problem."""
        x = np.asarray(x)
        if x.dtype.kind not in "fiu":
            raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
        if x.ndim != len(tail) + 1 or x.shape[1:] != tail:
            raise ValueError(f"{name} must have shape [{', '.join(map(str, (batch, *tail)))}], got {x.shape}")
        x = x.astype(np.float64, copy=False)
        if not np.isfinite(x).all():
            raise ValueError(f"{name} contain NaN or inf")
        return x

    def _require_fitted(self) -> tuple[np.ndarray, np.ndarray]:
        if self.low is None or self.high is None:
            raise RuntimeError("BeastTokenizer has no parameter bounds: call fit(actions) or load(path) first")
        return self.low, self.high - self.low

    @accepts_tensors
    def check_tokens(self, tokens: Array) -> np.ndarray:
        """Validate ``[B, N * D]`` integer tokens in ``[0, bins)``; returns them as int64."""
        t = np.asarray(tokens)
        n = self.tokens_per_chunk
        if t.dtype.kind not in "iu":
            raise ValueError(f"tokens must be integers, got dtype {t.dtype}")
        if t.ndim != 2 or t.shape[1] != n:
            raise ValueError(f"tokens must have shape [B, {n}] (num_ctrl {self.num_ctrl} x action_dim "
                             f"{self.action_dim}), got {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= self.bins):
            raise ValueError(f"tokens outside the vocabulary [0, {self.bins}): found range [{t.min()}, {t.max()}]")
        return t.astype(np.int64, copy=False)

    # ------------------------------------------------------------------ the spline
    @accepts_tensors
    def fit_controls(self, actions: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Least-squares control points ``[B, N, D]`` (action units) of actions ``[B, T, D]``."""
        x = self._floats(actions, "actions", (self.chunk_len, self.action_dim))
        pins = self._pins(prev_action, prev_velocity, len(x))
        if pins is None:
            c = self._fit_ops[0] @ x
        else:
            k = pins.shape[1]
            c = np.concatenate([pins, self._fit_ops[k] @ (x - self.basis[:, :k] @ pins)], axis=1)
        g = list(self.gripper_dims)
        if g:
            c[..., g] = self._fit_op_gripper @ x[..., g]
        return c

    @accepts_tensors
    def evaluate(self, ctrl: Array, times: Any = None, *, derivative: int = 0, extrapolate: bool = False) -> Array:
        """Actions ``[B, T', D]`` of control points ``[B, N, D]`` at the chunk steps or ``times``.

        ``times`` are spline times in [0, 1]; with ``extrapolate`` any time, the first / last
        polynomial piece continuing beyond [0, 1]. ``derivative=1`` gives d/du (divide by
        ``T - 1`` for the velocity per chunk step; gripper dimensions: 0).
        """
        c = self._floats(ctrl, "control points", (self.num_ctrl, self.action_dim))
        if times is None and derivative == 0:
            basis, basis_gripper = self.basis, self.basis_gripper
        else:
            times = np.linspace(0.0, 1.0, self.chunk_len) if times is None else times
            basis, basis_gripper = (design_matrix(times, self.num_ctrl, p, derivative, extrapolate) for p in (self.degree, 0))
        y = basis @ c
        g = list(self.gripper_dims)
        if g:
            y[..., g] = basis_gripper @ c[..., g]
        return y

    @accepts_tensors
    def end_state(self, ctrl: Array) -> tuple[Array, Array]:
        """``(last action [B, D], velocity per chunk step at the end [B, D])`` of control points:
        the ``prev_action`` / ``prev_velocity`` of the next chunk for C0 / C1 continuity."""
        last, du = (self.evaluate(ctrl, [1.0], derivative=k)[:, 0] for k in (0, 1))
        return last, du / (self.chunk_len - 1)  # u advances 1 / (T - 1) per chunk step

    # ------------------------------------------------------------------ continuity
    def _prev(self, value: Any, name: str, batch: int) -> np.ndarray:
        v = np.asarray(value, dtype=np.float64)
        v = v[None] if v.ndim == 1 else v
        if v.ndim != 2 or v.shape[1] != self.action_dim or v.shape[0] not in (1, batch):
            raise ValueError(f"{name} must have shape [B, {self.action_dim}] or [{self.action_dim}], got {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError(f"{name} contain NaN or inf")
        return np.broadcast_to(v, (batch, self.action_dim))

    def _pins(self, prev_action: Any, prev_velocity: Any, batch: int) -> np.ndarray | None:
        """The pinned control points ``[B, k, D]`` (k = 1 for C0, 2 for C1), or None without pins."""
        if prev_velocity is not None and prev_action is None:
            raise ValueError("prev_velocity (C1 continuity) needs prev_action as well")
        if prev_action is None or not self.spline_dims:
            return None
        c0 = self._prev(prev_action, "prev_action", batch)
        if prev_velocity is None:
            if self.num_ctrl < 2:
                raise ValueError("C0 continuity needs num_ctrl >= 2")
            return c0[:, None, :]
        if self.num_ctrl < 3 or self.degree < 1:
            raise ValueError("C1 continuity needs num_ctrl >= 3 and degree >= 1")
        if self.num_ctrl < 2 * self.degree and not self._warned_c1:
            # measured: chained C1 with few free control points amplifies velocity errors
            log.warning("C1 continuity with num_ctrl=%d < 2 * degree=%d can amplify errors from chunk to chunk "
                        "(see docs/beast.md); prefer C0 or more control points", self.num_ctrl, 2 * self.degree)
            self._warned_c1 = True
        c1 = c0 + self._prev(prev_velocity, "prev_velocity", batch) * ((self.chunk_len - 1) / self._a0)
        return np.stack([c0, c1], axis=1)

    @accepts_tensors
    def pin(self, ctrl: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Control points ``[B, N, D]`` (a copy) with the pinned ones of the pose dimensions set to
        their exact values from ``prev_action`` (C0) and ``prev_velocity`` (C1)."""
        c = np.array(self._floats(ctrl, "control points", (self.num_ctrl, self.action_dim)))
        pins = self._pins(prev_action, prev_velocity, len(c))
        if pins is not None:
            s = list(self.spline_dims)
            c[:, : pins.shape[1], s] = pins[..., s]
        return c

    _repin = pin  # the name the tokenizer tests use

    # ------------------------------------------------------------------ bounds and normalisation
    def fit(self, actions: Array) -> BeastTokenizer:
        """Fit per-parameter bounds (robust percentiles of the control points) on ``[num_chunks, T, D]``."""
        if _is_tensor(actions):
            actions = actions.detach().cpu().numpy()
        x = self._floats(actions, "actions", (self.chunk_len, self.action_dim), batch="num_chunks")
        if len(x) < 1:
            raise ValueError("fit needs at least one chunk")
        ctrl = self.fit_controls(x)
        low = np.percentile(ctrl, self.percentiles[0], axis=0)
        high = np.percentile(ctrl, self.percentiles[1], axis=0)
        mid = 0.5 * (low + high)
        tiny = 1e-6 * np.maximum(1.0, np.abs(mid))  # a constant parameter still gets a width
        narrow = (high - low) < tiny
        self.set_bounds(np.where(narrow, mid - 0.5 * tiny, low), np.where(narrow, mid + 0.5 * tiny, high))
        log.info("BEAST fitted on %d chunks: %d tokens per chunk", len(x), self.tokens_per_chunk)
        return self

    def set_bounds(self, low: np.ndarray | None, high: np.ndarray | None) -> None:
        """Set the parameter bounds ``[N, D]`` (e.g. from a checkpoint), or forget them with None."""
        if low is None or high is None:
            self.low = self.high = None
            return
        lo, hi = np.array(low, dtype=np.float64), np.array(high, dtype=np.float64)
        shape = (self.num_ctrl, self.action_dim)
        if lo.shape != shape or hi.shape != shape:
            raise ValueError(f"bounds must have shape {shape}, got {lo.shape} and {hi.shape}")
        if not (np.isfinite(lo).all() and np.isfinite(hi).all() and (hi > lo).all()):
            raise ValueError("bounds must be finite with high > low")
        self.low, self.high = lo, hi

    @accepts_tensors
    def normalize_controls(self, ctrl: Array) -> Array:
        """Control points (action units) -> parameters in [-1, 1] (outside if beyond the bounds)."""
        low, width = self._require_fitted()
        return 2.0 * (np.asarray(ctrl, dtype=np.float64) - low) / width - 1.0

    @accepts_tensors
    def unnormalize_controls(self, params: Array) -> Array:
        """Parameters -> control points (action units)."""
        low, width = self._require_fitted()
        return (np.asarray(params, dtype=np.float64) + 1.0) * 0.5 * width + low

    # ------------------------------------------------------------------ continuous parameters
    @accepts_tensors
    def encode_continuous(self, actions: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Normalised control points ``[B, N, D]`` (in [-1, 1] within the fitted bounds)."""
        self._require_fitted()
        return self.normalize_controls(self.fit_controls(actions, prev_action, prev_velocity))

    @accepts_tensors
    def decode_continuous(self, params: Array, prev_action: Array | None = None, times: Any = None,
                          prev_velocity: Array | None = None) -> Array:
        """Actions ``[B, T', D]`` from normalised control points ``[B, N, D]``."""
        p = self._floats(params, "params", (self.num_ctrl, self.action_dim))
        return self.evaluate(self.pin(self.unnormalize_controls(p), prev_action, prev_velocity), times)

    # ------------------------------------------------------------------ tokens
    @accepts_tensors
    def encode(self, actions: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Integer tokens ``[B, N * D]`` in ``[0, bins)``, control-point-major."""
        low, width = self._require_fitted()
        c = self.fit_controls(actions, prev_action, prev_velocity)
        level = np.clip((c - low) * ((self.bins - 1) / width), 0, self.bins - 1)
        return np.rint(level).astype(np.int64).reshape(len(c), self.tokens_per_chunk)

    @accepts_tensors
    def tokens_to_params(self, tokens: Array, like: Array | None = None) -> Array:
        """Token ids -> normalised parameters ``[B, N, D]``; a tensor ``like`` gives the result's
        dtype (torch's default dtype otherwise)."""
        t = self.check_tokens(tokens)
        return (t * (2.0 / (self.bins - 1)) - 1.0).reshape(len(t), self.num_ctrl, self.action_dim)

    @accepts_tensors
    def controls_from_tokens(self, tokens: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Control points ``[B, N, D]`` (action units) as :meth:`decode` uses them, e.g. for :meth:`end_state`."""
        low, width = self._require_fitted()
        t = self.check_tokens(tokens)
        c = t.reshape(len(t), self.num_ctrl, self.action_dim) * (width / (self.bins - 1)) + low
        return self.pin(c, prev_action, prev_velocity)

    @accepts_tensors
    def decode(self, tokens: Array, prev_action: Array | None = None, times: Any = None,
               prev_velocity: Array | None = None) -> Array:
        """Actions ``[B, T', D]`` from tokens ``[B, N * D]`` (exact inverse of the quantisation).

        ``prev_action`` ``[B, D]`` pins the start (C0); with ``prev_velocity`` also the start
        velocity per chunk step (C1). ``times`` in [0, 1] resamples (default: the chunk steps).
        """
        return self.evaluate(self.controls_from_tokens(tokens, prev_action, prev_velocity), times)

    # ------------------------------------------------------------------ ActionTokenizer batch API
    def encode_batch(self, actions: np.ndarray) -> list[np.ndarray]:
        return list(self.encode(actions))

    def decode_batch(self, tokens: Sequence[np.ndarray]) -> DecodeResult:
        out = np.full((len(tokens), self.chunk_len, self.action_dim), np.nan)
        errors: list[str | None] = [None] * len(tokens)
        for i, row in enumerate(tokens):
            try:
                self.check_tokens(np.asarray(row)[None, :])
            except ValueError as exc:
                errors[i] = str(exc)
        valid = np.array([e is None for e in errors], dtype=bool)
        if valid.any():
            out[valid] = self.decode(np.stack([np.asarray(tokens[i]) for i in np.flatnonzero(valid)]))
        return DecodeResult(out, valid, errors)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, "type": "BeastTokenizer", **{k: getattr(self, k) for k in _SETTINGS}}

    def save(self, path: str | Path) -> Path:
        """Write ``path/beast.json`` (settings) and ``path/bounds.npz`` (float64 bounds); no pickle."""
        self._require_fitted()
        out = Path(path)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(self.config(), indent=2) + "\n")
        np.savez(out / ARRAYS_FILE, low=self.low, high=self.high)
        return out

    @classmethod
    def load(cls, path: str | Path) -> BeastTokenizer:
        """Load a tokenizer written by :meth:`save`; bounds come back bit-identical."""
        root = Path(path)
        if not (root / CONFIG_FILE).is_file():
            raise FileNotFoundError(f"no BEAST tokenizer at {root}: missing {CONFIG_FILE}")
        cfg = json.loads((root / CONFIG_FILE).read_text())
        if cfg.get("type") != "BeastTokenizer" or cfg.get("format") != FORMAT_VERSION:
            raise ValueError(f"{root / CONFIG_FILE}: not a BEAST tokenizer of format {FORMAT_VERSION} "
                             f"(type={cfg.get('type')!r}, format={cfg.get('format')!r})")
        tok = cls(**{k: cfg[k] for k in _SETTINGS})
        with np.load(root / ARRAYS_FILE, allow_pickle=False) as arrays:
            try:
                tok.set_bounds(arrays["low"], arrays["high"])
            except ValueError as exc:
                raise ValueError(f"{root / ARRAYS_FILE}: {exc}") from exc
        return tok
