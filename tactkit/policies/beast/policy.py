"""BEAST at run time: ``plan`` predicts a B-spline in one forward pass, ``step`` samples it.

A :class:`~tactkit.policies.interface.Plan` of this policy carries the spline itself in
``plan.state``: ``ctrl`` (control points ``[N, A]`` in the network's normalised action
space), ``t_chunk`` (time of the spline's start, u = 0) and ``duration`` (time of u = 1
minus ``t_chunk``), plus the predicted ``tokens`` (discrete head). ``plan.actions`` is the
spline sampled on the training grid, for the controller's bookkeeping; ``step(plan, t)``
evaluates the spline at ``t`` itself, so a 500 Hz loop gets a smooth trajectory rather
than a held chunk step. Plans and steps both evaluate it with the tokenizer
(``BeastTokenizer.evaluate``). After the chunk the spline holds its end point;
before its start (a plan installed early, when the inference latency is below
``latency_steps * dt``) the first polynomial piece is extended back to the newest
observation, so the commanded path keeps moving instead of jumping to the start point and
waiting.

Continuity (``beast.continuity``): the control points of the pose dimensions are pinned so
the new spline starts where the previous plan's spline is at the new chunk's start (C0),
and with ``c1`` also with its velocity; gripper dimensions are never pinned. The previous
plan is the last one this policy object returned (``reset`` forgets it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tactkit.policies.beast.network import BeastModel
from tactkit.policies.inference import TorchPolicy
from tactkit.policies.interface import FastSignal, Plan


@dataclass
class BeastPlanState:
    """One plan's spline (see the module docstring)."""

    ctrl: np.ndarray  # [N, A] control points, normalised action space
    t_chunk: float  # s, time of u = 0
    duration: float  # s, time of u = 1 minus t_chunk
    tokens: np.ndarray | None  # the predicted tokens (discrete head)
    u_min: float = 0.0  # u of the newest observation: before it the first piece is not extended


class BeastPolicy(TorchPolicy):

    def __init__(
        self, *args: Any, continuity: str | None = None, decode: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.model: BeastModel
        self.tokenizer = self.model.tokenizer
        self.continuity = self.cfg.beast.continuity if continuity is None else continuity
        if self.continuity not in ("none", "c0", "c1"):
            raise ValueError(f"continuity must be none, c0 or c1, got {self.continuity!r}")
        self.decode = self.cfg.beast.decode if decode is None else decode
        if self.decode not in ("argmax", "expectation"):
            raise ValueError(f"decode must be argmax or expectation, got {self.decode!r}")
        self.chunk_len = self.model.chunk_len
        self.duration = (self.chunk_len - 1) * self.dt
        self._prev: BeastPlanState | None = None

    def reset(self) -> None:
        super().reset()
        self._prev = None

    # ------------------------------------------------------------------ the plan's spline
    def spline_u(self, state: BeastPlanState, t: float | np.ndarray) -> np.ndarray:
        """Spline parameter of time(s) ``t``: clamped to the chunk's end, and before its start
        to ``u_min`` (the newest observation), down to which the first polynomial piece is
        extrapolated."""
        u = (np.asarray(t, dtype=np.float64) - state.t_chunk) / state.duration
        return np.clip(np.atleast_1d(u), state.u_min, 1.0)

    def evaluate(self, state: BeastPlanState, t: float | np.ndarray) -> np.ndarray:
        """Normalised network actions ``[len(t), A]`` of a plan's spline at times ``t``."""
        return self.tokenizer.evaluate(state.ctrl[None], self.spline_u(state, t), extrapolate=True)[0]

    def velocity(self, state: BeastPlanState, t: float) -> np.ndarray:
        """Derivative per control step (``dt``, the chunk step) of the spline at ``t`` (gripper dims: 0)."""
        u = self.spline_u(state, t)[:1]
        du = self.tokenizer.evaluate(state.ctrl[None], u, derivative=1, extrapolate=True)[0, 0]
        return du / (self.chunk_len - 1)  # u advances 1 / (chunk_len - 1) per control step

    def _continuity(self, t_chunk: float) -> tuple[np.ndarray | None, np.ndarray | None]:
        prev = self._prev
        if self.continuity == "none" or prev is None:
            return None, None
        if not prev.t_chunk - 1e-9 <= t_chunk <= prev.t_chunk + prev.duration + 1e-9:
            return None, None  # the previous plan does not reach this chunk's start
        pos = self.evaluate(prev, t_chunk)
        vel = self.velocity(prev, t_chunk)[None] if self.continuity == "c1" else None
        return pos, vel

    # ------------------------------------------------------------------ Policy
    @torch.inference_mode()
    def plan(self, window: dict[str, np.ndarray]) -> Plan[BeastPlanState]:
        t_obs = self.window_time(window)
        params, tokens = self.model.predict(self.obs_batch(window), self.decode)
        t_chunk = t_obs + self.cfg.latency_steps * self.dt  # the chunk the network was trained on
        prev_action, prev_velocity = self._continuity(t_chunk)
        tok_np = None if tokens is None else tokens.cpu().numpy()
        if tok_np is not None:
            ctrl = self.tokenizer.controls_from_tokens(tok_np, prev_action, prev_velocity)[0]
        else:
            ctrl = self.tokenizer.unnormalize_controls(params.cpu().numpy())
            ctrl = self.tokenizer.pin(ctrl, prev_action, prev_velocity)[0]
        state = BeastPlanState(
            ctrl=np.ascontiguousarray(ctrl), t_chunk=t_chunk, duration=self.duration, tokens=tok_np,
            # a plan installed before its chunk starts (latency below latency_steps * dt)
            # continues the first polynomial piece back to the observation, not a held start
            u_min=-(t_chunk - t_obs) / self.duration,
        )
        t0 = t_obs + self.latency_steps * self.dt
        n = self.cfg.horizon - self.first_step
        shift = self.latency_steps - self.cfg.latency_steps
        if shift == 0:  # the training grid: exactly the tokenizer's chunk steps
            y = self.tokenizer.evaluate(state.ctrl[None])[0, :n]
        else:
            y = self.evaluate(state, t0 + np.arange(n) * self.dt)
        self._prev = state
        return Plan(t0=t0, dt=self.dt, actions=self.to_actions(torch.from_numpy(y)), state=state)

    @torch.inference_mode()
    def step(self, plan: Plan[BeastPlanState], t: float, fast: FastSignal | None = None) -> np.ndarray:
        if not isinstance(plan.state, BeastPlanState):
            raise TypeError(f"not a BEAST plan: its state is {type(plan.state).__name__}")
        return self.actions_np(self.evaluate(plan.state, t))[0]
