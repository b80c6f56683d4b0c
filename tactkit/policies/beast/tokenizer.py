"""BEAST: B-spline encoded action sequence tokenizer.

An action chunk ``[T, D]`` becomes ``N`` control points per dimension of a clamped uniform
B-spline of degree ``p`` (gripper dimensions: degree 0, each control point the mean of its
segment), fitted by closed-form ridge least squares with operators precomputed once. Control
points are normalised per parameter with robust percentile bounds fitted from data, then
either quantised to ``bins`` integer tokens or kept continuous in [-1, 1]. Token order is
control-point-major: all dimensions of control point 0, then of control point 1, ...

Chunk step ``i`` of ``T`` sits at spline time ``i / (T - 1)``; decoding may use any times in
[0, 1], so a chunk can be resampled at another rate.

Continuity across chunks (spline dimensions only; gripper dimensions are never pinned):

* C0 (``prev_action``): control point 0 is pinned to the previous chunk's last action, so the
  decoded chunk starts exactly there (a clamped spline interpolates its first control point).
  The remaining control points are the least-squares optimum given the pin.
* C1 (``prev_action`` and ``prev_velocity``): control point 1 is pinned as well so that the
  start velocity (per chunk step) equals ``prev_velocity``; ``C'(0) = p / u[p+1] (c1 - c0)``.

Pinned parameters are still emitted as tokens (the token count stays ``N * D``), but decoding
rebuilds them from ``prev_action`` / ``prev_velocity`` exactly, never from their quantised
tokens, so the boundary gap is zero up to floating-point rounding.

numpy arrays and torch tensors are both accepted; tensors stay on their device and dtype
(operators are cached per device and dtype; torch is imported only when a tensor is passed).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.policies.beast.bspline import (
    derivative_scales,
    design_matrix,
    ridge_pinv,
)
from tactkit.policies.tokenizers.base import ActionTokenizer, DecodeResult

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
CONFIG_FILE = "beast.json"
ARRAYS_FILE = "bounds.npz"

Array = Any  # np.ndarray or torch.Tensor


def _is_torch(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch")


# float64 -> int64 rounding without a separate rint + cast: for |v| < 2**51, ``v + 1.5 * 2**52``
# lands in [2**52, 2**53) where the spacing is 1, so the addition rounds v to the nearest
# integer (ties to even, exactly like np.rint) and that integer sits in the low mantissa bits
_MAGIC = 6755399441055744.0  # 1.5 * 2**52
_MAGIC_BITS = np.int64(np.float64(_MAGIC).view(np.int64))
_MAGIC_MAX_BINS = 2**50  # tokens in [0, 2**50) convert exactly both ways

try:  # the clip ufunc itself: np.clip adds a few microseconds of Python dispatch per call
    from numpy._core.umath import clip as _clip
except ImportError:  # numpy < 2
    _clip = np.clip

_NP_LIKE = np.empty(0)  # selects the numpy operators in _mats
_UNSIGNED = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}

# decoded outputs of at least this many entries come out of the GEMM as [D * B, T'] (transposed
# operands), which OpenBLAS runs faster there than the [T', D * B] product (measured)
_TRANSPOSED_EVAL_MIN = 1 << 16

# transposing [B, K, D] -> [K, D, B] in blocks of the batch is faster once K * D rows of
# stride B no longer fit the caches well (measured on the benchmark sizes)
_BLOCK_ROWS = 160


# scratch buffers (internal temporaries of the numpy path) in this size range are kept per
# thread and reused: allocating and freeing them on every call lets malloc return the memory
# to the OS and fault it in again (measured: ~250-530 page faults per encode+decode at D14,
# T16-32). Smaller ones are allocated fresh: malloc hands back recently freed, cache-warm memory.
_SCRATCH_MIN_BYTES = 256 << 10
_SCRATCH_MAX_BYTES = 8 << 20

# per-parameter constants are tiled to the full [N, D, B] shape up to this many entries (plain
# contiguous loops, about twice as fast as broadcasting along B when everything is in cache);
# beyond it the extra memory traffic costs more than it saves (measured)
_TILE_MAX = 20480


def _kdb(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``[B, K, D]`` -> ``[K, D, B]`` C-contiguous float64: a view if ``x`` already is one, else a copy.

    The numpy path keeps every array in this batch-innermost layout: operators apply as one
    GEMM on the ``[K, D * B]`` view, per-parameter constants broadcast along the batch, and
    the ``[B, K, D]`` arrays handed back are transposed views of it.
    """
    y = x.transpose(1, 2, 0)
    if y.flags.c_contiguous and y.dtype == np.float64:
        return y
    if out is None:
        out = np.empty(y.shape)
    b = x.shape[0]
    rows = y.shape[0] * y.shape[1]
    block = b if rows <= _BLOCK_ROWS else (128 if rows <= 2 * _BLOCK_ROWS else 64)
    for i in range(0, b, block):
        np.copyto(out[:, :, i:i + block], y[:, :, i:i + block], casting="same_kind")
    return out


def _finite_sumsq(y: np.ndarray) -> bool:
    """Whether the sum of squares of a C-contiguous array (one BLAS dot) is finite.

    False if any entry is NaN or inf; also (rarely, and harmlessly for the callers, which then
    check exactly) if finite entries overflow.
    """
    flat = y.reshape(-1)
    return math.isfinite(np.dot(flat, flat))


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
        for field, value, low in (("action_dim", action_dim, 1), ("chunk_len", chunk_len, 2), ("bins", bins, 2)):
            if int(value) != value or value < low:
                raise ValueError(f"{field} must be an integer >= {low}, got {value!r}")
        if int(degree) != degree or degree < 0:
            raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
        if int(num_ctrl) != num_ctrl or num_ctrl < degree + 1:
            raise ValueError(f"num_ctrl must be an integer >= degree + 1 = {degree + 1}, got {num_ctrl!r}")
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
        basis_s = design_matrix(steps, self.num_ctrl, self.degree)
        basis_g = design_matrix(steps, self.num_ctrl, 0)
        for label, basis, used in (("spline", basis_s, self.spline_dims), ("gripper (degree 0)", basis_g, self.gripper_dims)):
            rank = np.linalg.matrix_rank(basis)
            if used and rank < self.num_ctrl:
                raise ValueError(
                    f"chunk_len={self.chunk_len} is too short for degree={self.degree if label == 'spline' else 0} "
                    f"and num_ctrl={self.num_ctrl}: the {label} basis at the chunk steps has rank {rank} < num_ctrl"
                )
        self._a0, self._a1 = derivative_scales(self.num_ctrl, self.degree)
        n = self.num_ctrl
        mats: dict[str, np.ndarray] = {
            "eval_s": basis_s,
            "eval_g": basis_g,
            "fit_s": ridge_pinv(basis_s, self.ridge),
            "fit_g": ridge_pinv(basis_g, self.ridge),
        }
        if n >= 2:
            p1 = ridge_pinv(basis_s[:, 1:], self.ridge)
            mats.update(fit_c0=p1, fit_c0_col0=p1 @ basis_s[:, 0])
        if n >= 3:
            p2 = ridge_pinv(basis_s[:, 2:], self.ridge)
            mats.update(fit_c1=p2, fit_c1_col0=p2 @ basis_s[:, 0], fit_c1_col1=p2 @ basis_s[:, 1])
        self._base_mats = mats
        # dims reordered as [spline..., gripper...] and back
        self._perm = np.array(self.spline_dims + self.gripper_dims, dtype=np.int64)
        self._inv_perm = np.argsort(self._perm)
        self._identity_perm = not self.gripper_dims
        self._warned_c1 = False
        self._cache: dict[Any, dict[str, Any]] = {}
        self._times_cache: dict[bytes, tuple[np.ndarray, np.ndarray]] = {}
        self._scratch_bufs: dict[tuple[int, str], np.ndarray] = {}

    # ------------------------------------------------------------------ properties
    @property
    def vocab_size(self) -> int:
        return self.bins

    @property
    def tokens_per_chunk(self) -> int:
        return self.num_ctrl * self.action_dim

    @property
    def fitted(self) -> bool:
        return self.low is not None

    # ------------------------------------------------------------------ backend helpers
    def _mats(self, like: Array) -> dict[str, Any]:
        """Operators (and bounds) as arrays of ``like``'s backend, device and dtype; cached."""
        if _is_torch(like):
            key: Any = ("torch", str(like.device), str(like.dtype))
        else:
            key = "numpy"
        mats = self._cache.get(key)
        if mats is None:
            src = dict(self._base_mats)
            if self.low is not None:
                width = self.high - self.low
                src.update(low=self.low, width=width, step=width / (self.bins - 1), inv_step=(self.bins - 1) / width)
            mats = {k: self._to_backend(v, like) for k, v in src.items()}
            mats["perm"] = self._to_backend(self._perm, like, index=True)
            mats["inv_perm"] = self._to_backend(self._inv_perm, like, index=True)
            if key == "numpy":
                mats["grip"] = np.array(self.gripper_dims, dtype=np.int64)
                mats["spline"] = np.array(self.spline_dims, dtype=np.int64) if self.gripper_dims else slice(None)
            self._cache[key] = mats
        return mats

    def _tiled(self, batch: int) -> dict[str, Any]:
        """numpy bounds ``low``, ``step``, ``inv_step`` shaped to combine with ``[N, D, batch]`` arrays.

        Small batches get them tiled to the full shape (cached for the last batch size): plain
        contiguous loops. Large ones broadcast ``[N, D, 1]`` (see ``_TILE_MAX``).
        """
        m = self._cache.get("numpy") or self._mats(_NP_LIKE)
        tiled = m.get("tiled")
        if tiled is None or tiled["batch"] != batch:
            shape = (self.num_ctrl, self.action_dim, batch)
            tiled = {"batch": batch}
            for k in ("low", "step", "inv_step"):
                col = m[k][:, :, None]
                tiled[k] = np.ascontiguousarray(np.broadcast_to(col, shape)) if math.prod(shape) <= _TILE_MAX else col
            m["tiled"] = tiled
        return tiled

    def _scratch(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """A reusable float64 buffer for an internal temporary (per thread; never handed to the caller)."""
        if not _SCRATCH_MIN_BYTES <= 8 * math.prod(shape) <= _SCRATCH_MAX_BYTES:
            return np.empty(shape)
        key = (threading.get_ident(), name)
        buf = self._scratch_bufs.get(key)
        if buf is None or buf.shape != shape:
            if len(self._scratch_bufs) >= 32:
                self._scratch_bufs.clear()
            buf = self._scratch_bufs[key] = np.empty(shape)
        return buf

    @staticmethod
    def _to_backend(value: Any, like: Array, index: bool = False) -> Array:
        if _is_torch(like):
            import torch

            if _is_torch(value):
                return value.to(device=like.device, dtype=torch.long if index else like.dtype)
            arr = np.asarray(value)
            return torch.as_tensor(arr, dtype=torch.long if index else like.dtype, device=like.device)
        if _is_torch(value):
            value = value.detach().cpu().numpy()
        return np.asarray(value, dtype=np.int64 if index else np.float64)

    @staticmethod
    def _cat(parts: list[Array], axis: int) -> Array:
        if _is_torch(parts[0]):
            import torch

            return torch.cat(parts, dim=axis)
        return np.concatenate(parts, axis=axis)

    def _split(self, x: Array, mats: dict[str, Any]) -> tuple[Array, Array]:
        """Last axis -> (spline dims, gripper dims)."""
        if not self._identity_perm:
            x = x[..., mats["perm"]]
        ns = len(self.spline_dims)
        return x[..., :ns], x[..., ns:]

    def _join(self, xs: Array, xg: Array, mats: dict[str, Any]) -> Array:
        if self._identity_perm:
            return xs
        return self._cat([xs, xg], -1)[..., mats["inv_perm"]]

    def _check_floats(self, x: Array, name: str, shape_tail: tuple[int, ...], batch: str = "B", finite: bool = True) -> Array:
        """Dtype and shape check (``ValueError`` naming the problem) and, unless ``finite=False``, a NaN/inf check.

        With ``finite=False`` (numpy) the caller checks the result of its first GEMM instead,
        and a non-float64 array is converted by that path's layout copy, not here.
        """
        if _is_torch(x):
            import torch

            if not torch.is_floating_point(x):
                raise ValueError(f"{name} must be a floating tensor, got dtype {x.dtype}")
            bad = x.ndim != len(shape_tail) + 1 or tuple(x.shape[1:]) != shape_tail
            finite = bool(torch.isfinite(x).all()) if not bad else True
        else:
            x = np.asarray(x)
            kind = x.dtype.kind
            if kind not in "fiu" and not np.issubdtype(x.dtype, np.number):
                raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
            if finite or kind not in "fiu":
                x = x.astype(np.float64, copy=False)
            bad = x.shape[1:] != shape_tail or x.ndim != len(shape_tail) + 1
            # a sum is finite only if every term is (cheap fast path; exact check on failure)
            finite = bool(math.isfinite(x.sum()) or np.isfinite(x).all()) if finite and not bad else True
        if bad:
            raise ValueError(f"{name} must have shape [{', '.join(map(str, (batch, *shape_tail)))}], got {tuple(x.shape)}")
        if not finite:
            raise ValueError(f"{name} contain NaN or inf")
        return x

    def _check_prev(self, value: Array | None, name: str, like: Array, batch: int) -> Array | None:
        if value is None:
            return None
        v = self._to_backend(value, like)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or v.shape[1] != self.action_dim or v.shape[0] not in (1, batch):
            raise ValueError(f"{name} must have shape [B, {self.action_dim}] or [{self.action_dim}], got {tuple(v.shape)}")
        finite = bool(v.isfinite().all()) if _is_torch(v) else bool(np.isfinite(v).all())
        if not finite:
            raise ValueError(f"{name} contain NaN or inf")
        return v

    def _require_fitted(self) -> None:
        if self.low is None:
            raise RuntimeError("BeastTokenizer has no parameter bounds: call fit(actions) or load(path) first")

    def _pin_mode(self, prev_action: Array | None, prev_velocity: Array | None) -> int:
        if prev_velocity is not None and prev_action is None:
            raise ValueError("prev_velocity (C1 continuity) needs prev_action as well")
        if prev_action is None or not self.spline_dims:
            return 0
        if prev_velocity is None:
            if self.num_ctrl < 2:
                raise ValueError("C0 continuity needs num_ctrl >= 2")
            return 1
        if self.num_ctrl < 3 or self.degree < 1:
            raise ValueError("C1 continuity needs num_ctrl >= 3 and degree >= 1")
        if self.num_ctrl < 2 * self.degree and not self._warned_c1:
            # measured: chained C1 with few free control points amplifies velocity errors
            log.warning(
                "C1 continuity with num_ctrl=%d < 2 * degree=%d can amplify errors from chunk to chunk "
                "(see docs/beast.md); prefer C0 or more control points", self.num_ctrl, 2 * self.degree,
            )
            self._warned_c1 = True
        return 2

    def _pinned_ctrl(self, prev_s: Array, vel_s: Array | None) -> list[Array]:
        """Pinned control points of the spline dims, each ``[B, 1, Ds]``."""
        c0 = prev_s[:, None, :]
        if vel_s is None:
            return [c0]
        # C'(0) per chunk step = a0 (c1 - c0) / (T - 1)
        return [c0, c0 + vel_s[:, None, :] * ((self.chunk_len - 1) / self._a0)]

    # ------------------------------------------------------------------ continuous core
    def fit_controls(self, actions: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Least-squares control points ``[B, N, D]`` in action units (no normalisation)."""
        if not _is_torch(actions):
            return self._fit_np(*self._np_fit_args(actions, prev_action, prev_velocity), check=True).transpose(2, 0, 1)
        x = self._check_floats(actions, "actions", (self.chunk_len, self.action_dim))
        mode = self._pin_mode(prev_action, prev_velocity)
        mats = self._mats(x)
        xs, xg = self._split(x, mats)
        parts_g = self._apply(mats["fit_g"], xg)
        if mode == 0:
            cs = self._apply(mats["fit_s"], xs)
        else:
            batch = x.shape[0]
            prev = self._check_prev(prev_action, "prev_action", x, batch)
            vel = self._check_prev(prev_velocity, "prev_velocity", x, batch)
            prev_s, _ = self._split(prev, mats)
            vel_s = self._split(vel, mats)[0] if vel is not None else None
            pinned = self._pinned_ctrl(prev_s, vel_s)
            pinned = [p.expand(batch, -1, -1) if _is_torch(p) else np.broadcast_to(p, (batch,) + p.shape[1:]) for p in pinned]
            if mode == 1:
                rest = self._apply(mats["fit_c0"], xs) - mats["fit_c0_col0"][None, :, None] * pinned[0]
            else:
                rest = (
                    self._apply(mats["fit_c1"], xs)
                    - mats["fit_c1_col0"][None, :, None] * pinned[0]
                    - mats["fit_c1_col1"][None, :, None] * pinned[1]
                )
            cs = self._cat([*pinned, rest], 1)
        return self._join(cs, parts_g, mats)

    # ------------------------------------------------------------------ numpy core ([K, D, B] layout)
    def _np_fit_args(
        self, actions: Any, prev_action: Any, prev_velocity: Any
    ) -> tuple[np.ndarray, int, np.ndarray | None, np.ndarray | None]:
        x = self._check_floats(actions, "actions", (self.chunk_len, self.action_dim), finite=False)
        mode = self._pin_mode(prev_action, prev_velocity)
        if mode == 0:
            return x, 0, None, None
        prev = self._check_prev(prev_action, "prev_action", x, x.shape[0])
        return x, mode, prev, self._check_prev(prev_velocity, "prev_velocity", x, x.shape[0])

    def _fit_np(self, x: np.ndarray, mode: int, prev: np.ndarray | None, vel: np.ndarray | None, check: bool) -> np.ndarray:
        """Control points ``[N, D, B]`` (fresh, C-contiguous) of numpy actions ``[B, T, D]``.

        One GEMM with the (pinned) spline operator over every dimension, then the gripper
        dimensions are overwritten by the degree-0 fit and the pinned rows by their values.
        ``check``: raise on NaN/inf actions, found from the GEMM result (every action entry
        enters it; an exact check of ``x`` runs only if that result is not finite).
        """
        n, d, b = self.num_ctrl, self.action_dim, x.shape[0]
        m = self._cache.get("numpy") or self._mats(_NP_LIKE)
        xk = _kdb(x, self._scratch("x", (self.chunk_len, d, b)))  # [T, D, B]
        # NaN/inf actions are reported by the check below (ValueError), not as a matmul RuntimeWarning
        with np.errstate(invalid="ignore"):
            x2 = xk.reshape(self.chunk_len, d * b)
            out = np.empty((n, d, b))
            np.matmul(m[("fit_s", "fit_c0", "fit_c1")[mode]], x2, out=out[mode:].reshape(n - mode, d * b))
            if check:
                self._check_fit_finite(out[mode:], x)
            if mode:
                c0 = prev.T  # [D, 1 or B]
                rest = out[mode:]
                if mode == 1:
                    rest -= m["fit_c0_col0"][:, None, None] * c0
                else:
                    c1 = c0 + vel.T * ((self.chunk_len - 1) / self._a0)
                    rest -= m["fit_c1_col0"][:, None, None] * c0
                    rest -= m["fit_c1_col1"][:, None, None] * c1
                    out[1] = c1
                out[0] = c0
            if self.gripper_dims:
                g = m["grip"]
                xg = xk[:, g, :].reshape(self.chunk_len, g.size * b)
                out[:, g, :] = (m["fit_g"] @ xg).reshape(n, g.size, b)
        return out

    @staticmethod
    def _check_fit_finite(y: np.ndarray, x: np.ndarray) -> None:
        """``ValueError`` if the actions ``x`` behind the fit result ``y`` hold NaN/inf (exact check only on suspicion)."""
        if not _finite_sumsq(y) and not np.isfinite(x).all():
            raise ValueError("actions contain NaN or inf")

    def _quantize_np(self, c: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Control points ``[N, D, B]`` (consumed in place) -> tokens ``[B, N * D]``; checks ``x`` via ``c``."""
        n, d, b = c.shape
        tiled = self._tiled(b)
        c -= tiled["low"]
        c *= tiled["inv_step"]
        self._check_fit_finite(c, x)
        _clip(c, 0.0, float(self.bins - 1), out=c)
        if self.bins <= _MAGIC_MAX_BINS:  # clipped values lie in [0, bins - 1]: the magic rounding is exact
            c += _MAGIC  # rounds to the nearest integer (ties to even), see _MAGIC
            q = c.view(np.int64)
            q -= _MAGIC_BITS
        else:
            np.rint(c, out=c)
            q = c.astype(np.int64)
        # [B, N * D] view of the [N, D, B] buffer: decode reads it without a transpose
        return q.transpose(2, 0, 1).reshape(b, n * d)

    def _dequantize_np(self, t: np.ndarray, scratch: bool = False) -> np.ndarray:
        """Checked integer tokens ``[B, N * D]`` -> control points ``[N, D, B]`` in action units.

        A fresh array, or with ``scratch`` a reused one for a temporary that stays inside the call.
        """
        n, d, b = self.num_ctrl, self.action_dim, t.shape[0]
        tv = t.reshape(b, n, d).transpose(1, 2, 0)
        tiled = self._tiled(b)
        c = self._scratch("ctrl", (n, d, b)) if scratch else np.empty((n, d, b))
        if self.bins <= _MAGIC_MAX_BINS:
            # int -> float via the magic constant: exact for 0 <= token < 2**51, cheaper than a cast
            if tv.dtype.kind == "u" and tv.dtype.itemsize == 8:
                tv = tv.astype(np.int64)
            np.add(tv, _MAGIC_BITS, out=c.view(np.int64))
            c -= _MAGIC
        else:
            np.copyto(c, tv, casting="unsafe")
        c *= tiled["step"]
        c += tiled["low"]
        return c

    def _repin_np(self, c: np.ndarray, mode: int, prev: np.ndarray | None, vel: np.ndarray | None) -> None:
        """Overwrite the pinned control points of ``c [N, D, B]`` (spline dims) in place."""
        if mode == 0:
            return
        s = (self._cache.get("numpy") or self._mats(_NP_LIKE))["spline"]
        c0 = prev.T[s]
        c[0, s, :] = c0
        if mode == 2:
            c[1, s, :] = c0 + vel.T[s] * ((self.chunk_len - 1) / self._a0)

    def _np_pins(self, c: np.ndarray, prev_action: Any, prev_velocity: Any) -> tuple[int, Any, Any]:
        mode = self._pin_mode(prev_action, prev_velocity)
        if mode == 0:
            return 0, None, None
        b = c.shape[2]
        like = c[:0]
        return mode, self._check_prev(prev_action, "prev_action", like, b), self._check_prev(prev_velocity, "prev_velocity", like, b)

    def _eval_np(self, c: np.ndarray, times: Any) -> np.ndarray:
        """Actions ``[B, T', D]`` (a view of ``[T', D, B]``) of control points ``[N, D, B]``."""
        n, d, b = c.shape
        m = self._cache.get("numpy") or self._mats(_NP_LIKE)
        eval_s, eval_g = (m["eval_s"], m["eval_g"]) if times is None else self._eval_mats(times, m, c)
        tp = eval_s.shape[0]
        g = m["grip"]
        if tp * d * b < _TRANSPOSED_EVAL_MIN:
            y = (eval_s @ c.reshape(n, d * b)).reshape(tp, d, b)
            if g.size:
                y[:, g, :] = (eval_g @ c[:, g, :].reshape(n, g.size * b)).reshape(tp, g.size, b)
            return y.transpose(2, 0, 1)
        y = (c.reshape(n, d * b).T @ eval_s.T).reshape(d, b, tp)
        if g.size:
            y[g] = (c[:, g, :].reshape(n, g.size * b).T @ eval_g.T).reshape(g.size, b, tp)
        return y.transpose(1, 2, 0)

    @staticmethod
    def _apply(op: Array, x: Array) -> Array:
        """``op [M, K] @ x [B, K, d] -> [B, M, d]`` for tensors (numpy arrays take the ``_*_np`` path)."""
        b, _, d = x.shape
        return op @ x if d else x.new_zeros((b, op.shape[0], 0))

    def _eval_mats(self, times: Any, mats: dict[str, Any], like: Array) -> tuple[Array, Array]:
        if times is None:
            return mats["eval_s"], mats["eval_g"]
        if _is_torch(times):
            times = times.detach().cpu().numpy()  # basis is built on the host, once per distinct times
        t = np.ascontiguousarray(times, dtype=np.float64)
        key = t.tobytes()
        hit = self._times_cache.get(key)
        if hit is None:
            hit = (design_matrix(t, self.num_ctrl, self.degree), design_matrix(t, self.num_ctrl, 0))
            if len(self._times_cache) > 64:
                self._times_cache.clear()
            self._times_cache[key] = hit
        return self._to_backend(hit[0], like), self._to_backend(hit[1], like)

    def evaluate(self, ctrl: Array, times: Any = None) -> Array:
        """Actions ``[B, T', D]`` of control points ``[B, N, D]`` at the chunk steps or ``times`` in [0, 1]."""
        c = self._check_floats(ctrl, "control points", (self.num_ctrl, self.action_dim))
        return self._evaluate(c, times)

    def _evaluate(self, c: Array, times: Any = None) -> Array:
        if not _is_torch(c):
            return self._eval_np(_kdb(c), times)
        mats = self._mats(c)
        eval_s, eval_g = self._eval_mats(times, mats, c)
        cs, cg = self._split(c, mats)
        return self._join(self._apply(eval_s, cs), self._apply(eval_g, cg), mats)

    def end_state(self, ctrl: Array) -> tuple[Array, Array]:
        """``(last action [B, D], velocity per chunk step at the end [B, D])`` of control points.

        Feed them as ``prev_action`` / ``prev_velocity`` of the next chunk for C0 / C1
        continuity. Gripper dimensions (piecewise constant) have zero velocity.
        """
        c = self._check_floats(ctrl, "control points", (self.num_ctrl, self.action_dim))
        last = c[:, -1, :]
        vel = (c[:, -1, :] - c[:, -2, :]) * (self._a1 / (self.chunk_len - 1)) if self.num_ctrl >= 2 else last * 0
        if self.gripper_dims:
            mask = np.zeros(self.action_dim)
            mask[list(self.spline_dims)] = 1.0
            vel = vel * self._to_backend(mask, c)
        return last, vel

    # ------------------------------------------------------------------ normalisation
    def fit(self, actions: Array) -> BeastTokenizer:
        """Fit per-parameter bounds (robust percentiles of the control points) on ``[num_chunks, T, D]``."""
        if _is_torch(actions):
            actions = actions.detach().cpu().double().numpy()
        x = self._check_floats(actions, "actions", (self.chunk_len, self.action_dim), batch="num_chunks")
        if x.shape[0] < 1:
            raise ValueError("fit needs at least one chunk")
        ctrl = self.fit_controls(x)
        low = np.percentile(ctrl, self.percentiles[0], axis=0)
        high = np.percentile(ctrl, self.percentiles[1], axis=0)
        mid = 0.5 * (low + high)
        tiny = 1e-6 * np.maximum(1.0, np.abs(mid))
        narrow = (high - low) < tiny
        self.low = np.where(narrow, mid - 0.5 * tiny, low)
        self.high = np.where(narrow, mid + 0.5 * tiny, high)
        self._cache.clear()
        log.info("BEAST fitted on %d chunks: %d tokens per chunk", x.shape[0], self.tokens_per_chunk)
        return self

    def normalize_controls(self, ctrl: Array) -> Array:
        """Control points (action units) -> parameters in [-1, 1] (outside if beyond the bounds)."""
        self._require_fitted()
        m = self._mats(ctrl)
        return 2.0 * (ctrl - m["low"]) / m["width"] - 1.0

    def unnormalize_controls(self, params: Array) -> Array:
        self._require_fitted()
        m = self._mats(params)
        return (params + 1.0) * 0.5 * m["width"] + m["low"]

    def _repin(self, ctrl: Array, prev_action: Array | None, prev_velocity: Array | None) -> Array:
        """Replace pinned control points by their exact values from the previous chunk."""
        mode = self._pin_mode(prev_action, prev_velocity)
        if mode == 0:
            return ctrl
        if not _is_torch(ctrl):
            c = np.array(np.asarray(ctrl).transpose(1, 2, 0), dtype=np.float64, order="C")  # never modify the caller's array
            self._repin_np(c, *self._np_pins(c, prev_action, prev_velocity))
            return c.transpose(2, 0, 1)
        batch = ctrl.shape[0]
        mats = self._mats(ctrl)
        prev = self._check_prev(prev_action, "prev_action", ctrl, batch)
        vel = self._check_prev(prev_velocity, "prev_velocity", ctrl, batch)
        cs, cg = self._split(ctrl, mats)
        pinned = self._pinned_ctrl(self._split(prev, mats)[0], self._split(vel, mats)[0] if vel is not None else None)
        if pinned[0].shape[0] != batch:
            pinned = [p.expand(batch, -1, -1) if _is_torch(p) else np.broadcast_to(p, (batch,) + p.shape[1:]) for p in pinned]
        cs = self._cat([*pinned, cs[:, len(pinned):]], 1)
        return self._join(cs, cg, mats)

    # ------------------------------------------------------------------ public token API
    def encode_continuous(self, actions: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Normalised control points ``[B, N, D]`` (in [-1, 1] within the fitted bounds)."""
        self._require_fitted()
        return self.normalize_controls(self.fit_controls(actions, prev_action, prev_velocity))

    def decode_continuous(
        self,
        params: Array,
        prev_action: Array | None = None,
        times: Any = None,
        prev_velocity: Array | None = None,
    ) -> Array:
        """Actions ``[B, T', D]`` from normalised control points ``[B, N, D]``."""
        p = self._check_floats(params, "params", (self.num_ctrl, self.action_dim))
        if not _is_torch(p):
            self._require_fitted()
            c = _kdb(self.unnormalize_controls(p))  # a fresh array (or a view of one)
            self._repin_np(c, *self._np_pins(c, prev_action, prev_velocity))
            return self._eval_np(c, times)
        return self._evaluate(self._repin(self.unnormalize_controls(p), prev_action, prev_velocity), times)

    def encode(self, actions: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Integer tokens ``[B, N * D]`` in ``[0, bins)``, control-point-major."""
        self._require_fitted()
        if not _is_torch(actions):
            args = self._np_fit_args(actions, prev_action, prev_velocity)
            return self._quantize_np(self._fit_np(*args, check=False), args[0])
        import torch

        ctrl = self.fit_controls(actions, prev_action, prev_velocity)
        m = self._mats(ctrl)
        q = torch.round(torch.clamp((ctrl - m["low"]) * m["inv_step"], 0.0, self.bins - 1)).to(torch.long)
        return q.reshape(q.shape[0], self.tokens_per_chunk)

    def check_tokens(self, tokens: Array) -> Array:
        """Validate ``[B, N * D]`` integer tokens in ``[0, bins)``; returns them (numpy int64 or tensor)."""
        n = self.tokens_per_chunk
        if _is_torch(tokens):
            import torch

            if tokens.dtype.is_floating_point or tokens.dtype == torch.bool:
                raise ValueError(f"tokens must be integers, got dtype {tokens.dtype}")
        else:
            tokens = np.asarray(tokens)
            if tokens.dtype.kind not in "iu":
                raise ValueError(f"tokens must be integers, got dtype {tokens.dtype}")
        if tokens.ndim != 2 or tokens.shape[1] != n:
            raise ValueError(
                f"tokens must have shape [B, {n}] (num_ctrl {self.num_ctrl} x action_dim {self.action_dim}), got {tuple(tokens.shape)}"
            )
        if _is_torch(tokens):
            if tokens.numel():
                self._check_range(int(tokens.min()), int(tokens.max()))
        elif tokens.size:
            kind, size = tokens.dtype.kind, tokens.dtype.itemsize
            if kind == "u":
                suspect = int(tokens.max()) >= self.bins
            elif self.bins <= 2 ** (8 * size - 1):
                # one pass: read as unsigned, a negative token becomes >= 2**(bits - 1) >= bins
                suspect = int(tokens.view(_UNSIGNED[size]).max()) >= self.bins
            else:
                suspect = True
            if suspect:
                self._check_range(int(tokens.min()), int(tokens.max()))
        return tokens

    def _check_range(self, lo: int, hi: int) -> None:
        if lo < 0 or hi >= self.bins:
            raise ValueError(f"tokens outside the vocabulary [0, {self.bins}): found range [{lo}, {hi}]")

    def tokens_to_params(self, tokens: Array, like: Array | None = None) -> Array:
        """Token ids -> normalised parameters ``[B, N, D]`` (floating: torch default dtype for tensors)."""
        t = self.check_tokens(tokens)
        if _is_torch(t):
            import torch

            dtype = like.dtype if like is not None and _is_torch(like) else torch.get_default_dtype()
            u = t.to(dtype) * (2.0 / (self.bins - 1)) - 1.0
        else:
            u = t.astype(np.float64) * (2.0 / (self.bins - 1)) - 1.0
        return u.reshape(u.shape[0], self.num_ctrl, self.action_dim)

    def _dequantize(self, tokens: Array) -> Array:
        """Token ids -> control points ``[B, N, D]`` in action units (exact inverse of the bins)."""
        t = self.check_tokens(tokens)
        if _is_torch(t):
            import torch

            q = t.to(torch.get_default_dtype())
            m = self._mats(q)
            return q.reshape(q.shape[0], self.num_ctrl, self.action_dim) * m["step"] + m["low"]
        return self._dequantize_np(t).transpose(2, 0, 1)

    def decode(
        self,
        tokens: Array,
        prev_action: Array | None = None,
        times: Any = None,
        prev_velocity: Array | None = None,
    ) -> Array:
        """Actions ``[B, T', D]`` from tokens ``[B, N * D]`` (exact inverse of the quantisation).

        ``prev_action`` ``[B, D]`` pins the start (C0); with ``prev_velocity`` also the start
        velocity per chunk step (C1). ``times`` in [0, 1] resamples (default: the chunk steps).
        """
        self._require_fitted()
        if not _is_torch(tokens):
            c = self._dequantize_np(self.check_tokens(tokens), scratch=True)
            self._repin_np(c, *self._np_pins(c, prev_action, prev_velocity))
            return self._eval_np(c, times)
        return self._evaluate(self._repin(self._dequantize(tokens), prev_action, prev_velocity), times)

    def controls_from_tokens(self, tokens: Array, prev_action: Array | None = None, prev_velocity: Array | None = None) -> Array:
        """Control points ``[B, N, D]`` (action units) as :meth:`decode` uses them, e.g. for :meth:`end_state`."""
        self._require_fitted()
        if not _is_torch(tokens):
            c = self._dequantize_np(self.check_tokens(tokens))
            self._repin_np(c, *self._np_pins(c, prev_action, prev_velocity))
            return c.transpose(2, 0, 1)
        return self._repin(self._dequantize(tokens), prev_action, prev_velocity)

    # ------------------------------------------------------------------ ActionTokenizer batch API
    def encode_batch(self, actions: np.ndarray) -> list[np.ndarray]:
        return list(np.asarray(self.encode(actions)))

    def decode_batch(self, tokens: Sequence[np.ndarray]) -> DecodeResult:
        out = np.full((len(tokens), self.chunk_len, self.action_dim), np.nan)
        valid = np.zeros(len(tokens), dtype=bool)
        errors: list[str | None] = [None] * len(tokens)
        good = []
        for i, row in enumerate(tokens):
            row = np.asarray(row)
            try:
                self.check_tokens(row[None, :])
                good.append(i)
            except ValueError as exc:
                errors[i] = str(exc)
        if good:
            out[good] = self.decode(np.stack([np.asarray(tokens[i], dtype=np.int64) for i in good]))
            valid[good] = True
        return DecodeResult(out, valid, errors)

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "type": "BeastTokenizer",
            "action_dim": self.action_dim,
            "chunk_len": self.chunk_len,
            "num_ctrl": self.num_ctrl,
            "degree": self.degree,
            "gripper_dims": list(self.gripper_dims),
            "bins": self.bins,
            "ridge": self.ridge,
            "percentiles": list(self.percentiles),
        }

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
        cfg_path = root / CONFIG_FILE
        if not cfg_path.is_file():
            raise FileNotFoundError(f"no BEAST tokenizer at {root}: missing {CONFIG_FILE}")
        cfg = json.loads(cfg_path.read_text())
        if cfg.get("type") != "BeastTokenizer" or cfg.get("format") != FORMAT_VERSION:
            raise ValueError(f"{cfg_path}: not a BEAST tokenizer of format {FORMAT_VERSION} (type={cfg.get('type')!r}, format={cfg.get('format')!r})")
        tok = cls(
            cfg["action_dim"],
            cfg["chunk_len"],
            cfg["num_ctrl"],
            degree=cfg["degree"],
            gripper_dims=tuple(cfg["gripper_dims"]),
            bins=cfg["bins"],
            ridge=cfg["ridge"],
            percentiles=tuple(cfg["percentiles"]),
        )
        with np.load(root / ARRAYS_FILE, allow_pickle=False) as arrays:
            low, high = arrays["low"], arrays["high"]
        shape = (tok.num_ctrl, tok.action_dim)
        if low.shape != shape or high.shape != shape:
            raise ValueError(f"{root / ARRAYS_FILE}: bounds must have shape {shape}, got {low.shape} and {high.shape}")
        tok.low, tok.high = low, high
        return tok
