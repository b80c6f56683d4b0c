"""BEAST at run time: ``plan`` predicts a B-spline in one forward pass, ``step`` samples it.

A :class:`~tactkit.policies.interface.Plan` of this policy carries the spline itself in
``plan.state``: ``ctrl`` (control points ``[N, A]`` in the network's normalised action
space), ``t_chunk`` (time of the spline's start, u = 0) and ``duration`` (time of u = 1
minus ``t_chunk``), plus the predicted ``tokens`` (discrete head). ``plan.actions`` is the
spline sampled on the training grid, for the controller's bookkeeping; ``step(plan, t)``
evaluates the spline at ``t`` itself, so a 500 Hz loop gets a smooth trajectory rather
than a held chunk step. After the chunk the spline holds its end point; before its start
(a plan installed early, when the inference latency is below ``latency_steps * dt``) the
first polynomial piece is extended back to the newest observation, so the commanded path
keeps moving instead of jumping to the start point and waiting.

Continuity (``beast.continuity``): the control points of the pose dimensions are pinned so
the new spline starts where the previous plan's spline is at the new chunk's start (C0),
and with ``c1`` also with its velocity; gripper dimensions are never pinned. The previous
plan is the last one this policy object returned (``reset`` forgets it).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy.interpolate import BSpline

from tactkit.policies.beast.bspline import clamped_uniform_knots
from tactkit.policies.beast.network import BeastModel
from tactkit.policies.inference import TorchPolicy
from tactkit.policies.interface import Plan


class BeastPolicy(TorchPolicy):
    fast_key = None

    def __init__(self, *args: Any, continuity: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.model: BeastModel
        self.tokenizer = self.model.tokenizer
        self.continuity = self.cfg.beast.continuity if continuity is None else continuity
        if self.continuity not in ("none", "c0", "c1"):
            raise ValueError(f"continuity must be none, c0 or c1, got {self.continuity!r}")
        self.chunk_len = self.model.chunk_len
        self.duration = (self.chunk_len - 1) * self.dt
        self._prev: dict[str, Any] | None = None
        self._np_decode: list[tuple[bool, int, np.ndarray, np.ndarray]] | None = None

    def reset(self) -> None:
        super().reset()
        self._prev = None

    # ------------------------------------------------------------------ spline helpers
    def spline_u(self, state: dict[str, Any], t: float | np.ndarray) -> np.ndarray:
        """Spline parameter of time(s) ``t``: clamped to the chunk's end, and before its start
        to ``u_min`` (the newest observation), down to which the first polynomial piece is
        extrapolated."""
        u = (np.asarray(t, dtype=np.float64) - state["t_chunk"]) / state["duration"]
        return np.clip(np.atleast_1d(u), state.get("u_min", 0.0), 1.0)

    def _splines(self, state: dict[str, Any]) -> tuple[BSpline | None, BSpline | None]:
        """scipy splines of the pose (degree p) and gripper (degree 0) dimensions, built once per plan."""
        if "splines" not in state:
            tok, ctrl = self.tokenizer, state["ctrl"]
            pose = grip = None
            if tok.spline_dims:
                pose = BSpline(
                    clamped_uniform_knots(tok.num_ctrl, tok.degree),
                    ctrl[:, list(tok.spline_dims)],
                    tok.degree,
                )
            if tok.gripper_dims:
                grip = BSpline(
                    clamped_uniform_knots(tok.num_ctrl, 0), ctrl[:, list(tok.gripper_dims)], 0
                )
            state["splines"] = (pose, grip)
        return state["splines"]

    def evaluate(self, state: dict[str, Any], t: float | np.ndarray) -> np.ndarray:
        """Normalised network actions ``[len(t), A]`` of a plan's spline at times ``t``."""
        u = self.spline_u(state, t)
        pose, grip = self._splines(state)
        tok = self.tokenizer
        out = np.empty((u.shape[0], tok.action_dim))
        if pose is not None:
            out[:, list(tok.spline_dims)] = pose(u)
        if grip is not None:
            out[:, list(tok.gripper_dims)] = grip(u)
        return out

    def velocity(self, state: dict[str, Any], t: float) -> np.ndarray:
        """Derivative per control step (``dt``) of the spline at ``t`` (gripper dims: 0)."""
        tok = self.tokenizer
        dims = list(tok.spline_dims)
        out = np.zeros(tok.action_dim)
        if dims and tok.degree > 0:
            spl = BSpline(
                clamped_uniform_knots(tok.num_ctrl, tok.degree), state["ctrl"][:, dims], tok.degree
            )
            du = spl.derivative()(self.spline_u(state, t)[0])
            out[dims] = du * (self.dt / state["duration"])
        return out

    def _continuity(self, t_chunk: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        prev = self._prev
        if self.continuity == "none" or prev is None:
            return None, None
        if not prev["t_chunk"] - 1e-9 <= t_chunk <= prev["t_chunk"] + prev["duration"] + 1e-9:
            return None, None  # the previous plan does not reach this chunk's start
        pos = self.evaluate(prev, t_chunk)
        vel = self.velocity(prev, t_chunk)[None] if self.continuity == "c1" else None
        return pos, vel

    # ------------------------------------------------------------------ Policy
    @torch.inference_mode()
    def plan(self, window: dict[str, np.ndarray]) -> Plan:
        t_obs = self.window_time(window)
        params, tokens = self.model.predict(self.obs_batch(window))
        t_chunk = t_obs + self.cfg.latency_steps * self.dt  # the chunk the network was trained on
        prev_action, prev_velocity = self._continuity(t_chunk)
        tok_np = None if tokens is None else tokens.cpu().numpy()
        if tok_np is not None:
            ctrl = self.tokenizer.controls_from_tokens(tok_np, prev_action, prev_velocity)[0]
        else:
            ctrl = self.tokenizer.unnormalize_controls(params.cpu().numpy())
            ctrl = self.tokenizer._repin(ctrl, prev_action, prev_velocity)[0]
        state = {
            "ctrl": np.ascontiguousarray(ctrl),
            "t_chunk": t_chunk,
            "duration": self.duration,
            "tokens": tok_np,
            # a plan installed before its chunk starts (latency below latency_steps * dt)
            # continues the first polynomial piece back to the observation, not a held start
            "u_min": -(t_chunk - t_obs) / self.duration,
        }
        t0 = t_obs + self.latency_steps * self.dt
        n = self.cfg.horizon - self.first_step
        shift = self.latency_steps - self.cfg.latency_steps
        if shift == 0:  # the training grid: exactly the tokenizer's chunk steps
            y = self.tokenizer.evaluate(state["ctrl"][None])[0, :n]
        else:
            y = self.evaluate(state, t0 + np.arange(n) * self.dt)
        self._prev = state
        return Plan(t0=t0, dt=self.dt, actions=self.to_actions(torch.from_numpy(y)), state=state)

    @torch.inference_mode()
    def step(self, plan: Plan, t: float, fast_signal: np.ndarray | None = None) -> np.ndarray:
        if "ctrl" not in plan.state:
            raise ValueError("not a BEAST plan: plan.state has no spline control points ('ctrl')")
        return self.actions_np(self.evaluate(plan.state, t))[0]

    def actions_np(self, y: np.ndarray) -> np.ndarray:
        """:meth:`to_actions` in numpy (float64): the robot loop's path, ~20x cheaper than torch
        on one action. Same formulas as :mod:`tactkit.policies.rotation`."""
        if self._np_decode is None:
            self._np_decode = []
            for k in self.action_keys:
                spec = self.codec.specs[k]
                scale, offset = (v.double().cpu().numpy() for v in self.codec.normalizer.params[k])
                self._np_decode.append((spec.kind == "pose", spec.dim, scale, offset))
        parts, i = [], 0
        for is_pose, dim, scale, offset in self._np_decode:
            x = (y[:, i : i + dim] - offset) / scale
            if is_pose:
                q = rot6d_to_quat_scalar(x[0, 3:9]) if len(x) == 1 else rot6d_to_quat_np(x[:, 3:9])
                x = np.concatenate([x[:, :3], q.reshape(-1, 4)], -1)
            parts.append(x)
            i += dim
        return np.concatenate(parts, -1)


def rot6d_to_quat_np(r: np.ndarray) -> np.ndarray:
    """6-D rotation ``[n, 6]`` -> unit quaternion ``[n, 4]`` (w, x, y, z), w >= 0 (Gram-Schmidt,
    then the largest-component branch, as :func:`tactkit.policies.rotation.rot6d_to_quat`)."""
    a1, a2 = r[:, :3], r[:, 3:6]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - (b1 * a2).sum(-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    b3 = np.cross(b1, b2)
    m = np.stack([b1, b2, b3], axis=-1)
    m00, m01, m02 = m[:, 0, 0], m[:, 0, 1], m[:, 0, 2]
    m10, m11, m12 = m[:, 1, 0], m[:, 1, 1], m[:, 1, 2]
    m20, m21, m22 = m[:, 2, 0], m[:, 2, 1], m[:, 2, 2]
    cands = np.stack([
        np.stack([1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01], -1),
        np.stack([m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20], -1),
        np.stack([m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21], -1),
        np.stack([m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22], -1),
    ], axis=-2)  # fmt: skip
    best = np.argmax(np.einsum("nkk->nk", cands), axis=-1)
    q = cands[np.arange(len(best)), best]
    q = q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)
    return np.where(q[:, :1] < 0, -q, q)


def rot6d_to_quat_scalar(r: np.ndarray) -> np.ndarray:
    """:func:`rot6d_to_quat_np` for one rotation, in Python floats (a few microseconds)."""
    a = [float(v) for v in r]
    n1 = max(math.sqrt(a[0] * a[0] + a[1] * a[1] + a[2] * a[2]), 1e-12)
    b1 = [a[0] / n1, a[1] / n1, a[2] / n1]
    d = b1[0] * a[3] + b1[1] * a[4] + b1[2] * a[5]
    c = [a[3] - d * b1[0], a[4] - d * b1[1], a[5] - d * b1[2]]
    n2 = max(math.sqrt(c[0] * c[0] + c[1] * c[1] + c[2] * c[2]), 1e-12)
    b2 = [c[0] / n2, c[1] / n2, c[2] / n2]
    b3 = [
        b1[1] * b2[2] - b1[2] * b2[1],
        b1[2] * b2[0] - b1[0] * b2[2],
        b1[0] * b2[1] - b1[1] * b2[0],
    ]
    (m00, m01, m02), (m10, m11, m12), (m20, m21, m22) = zip(b1, b2, b3)  # rows of [b1 b2 b3]
    cands = (
        (1 + m00 + m11 + m22, m21 - m12, m02 - m20, m10 - m01),
        (m21 - m12, 1 + m00 - m11 - m22, m01 + m10, m02 + m20),
        (m02 - m20, m01 + m10, 1 - m00 + m11 - m22, m12 + m21),
        (m10 - m01, m02 + m20, m12 + m21, 1 - m00 - m11 + m22),
    )
    q = cands[max(range(4), key=lambda k: cands[k][k])]
    n = max(math.sqrt(sum(v * v for v in q)), 1e-12)
    out = np.array(q) / n
    return -out if out[0] < 0 else out
