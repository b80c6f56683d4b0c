"""ImplicitRDP at run time: consistent inference (the same DDIM noise, the fast signals so far).

``plan`` encodes the observation window into the slow tokens, draws the chunk's initial DDIM
noise and denoises the chunk with the fast signals known then (the window's own for the steps
it covers, the newest held after). Both the slow tokens and the noise stay in ``plan.state``.

``step(plan, t, fast)`` re-denoises the chunk with the fast signals that have arrived: chunk
steps already passed keep the signal they last saw, the current step gets the newest, later
steps hold it (they cannot influence the current action: the network is causal in chunk
steps). DDIM is deterministic given its noise, so the actions of steps already executed are
not contradicted, and the result is bit for bit the full re-denoise from the window with the
same noise and fast signals (tests/policies/test_implicit_rdp.py), without re-encoding the
observations: ``ImplicitRDPModel.denoise`` is the one code path both use.

Several calls within one chunk step (a sensor faster than the control grid) re-run that step
with the newest signal; moving to a later step commits the previous one with the last signal
it saw, and steps no call visited get the newest. A call with the same step and the same
signal as the previous one returns the previous result without denoising.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tactkit.policies.implicit_rdp.network import ImplicitRDPModel
from tactkit.policies.inference import TorchPolicy
from tactkit.policies.interface import FastSignal, Plan


@dataclass
class IrdpPlanState:
    """One plan's consistent-inference state; :meth:`ImplicitRDPPolicy.step` advances it."""

    slow: torch.Tensor  # [1, n_obs_steps, d] the slow tokens (the observation window's encoding)
    noise: torch.Tensor  # [1, horizon, out_dim] the initial DDIM noise, the same for every re-denoise
    fast: torch.Tensor  # [1, horizon, F] each chunk step's normalised fast signal so far
    i: int  # the plan step reached (its signal is still being updated)
    latest: torch.Tensor  # [1, F] the newest normalised fast signal
    offset: np.ndarray | None  # relative actions: what turns them absolute (None: absolute)
    last: tuple[tuple[int, bytes], np.ndarray] | None = None  # ((step, signal), action) of the last call


class ImplicitRDPPolicy(TorchPolicy):
    model: ImplicitRDPModel

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast_keys = tuple(self.cfg.fast_keys)

    @torch.inference_mode()
    def plan(self, window: dict[str, np.ndarray]) -> Plan[IrdpPlanState]:
        t_obs = self.window_time(window)
        batch = self.obs_batch(window)
        m = self.model
        slow = m.slow_tokens(batch)
        noise = torch.randn((1, m.horizon, m.out_dim), generator=self.generator, device=self.device)
        fast_obs = self.codec.encode(batch, list(self.fast_keys), self.n_obs_steps)  # [1, To, F]
        fast = torch.cat([fast_obs, fast_obs[:, -1:].expand(-1, m.horizon - self.n_obs_steps, -1)], dim=1)
        y = m.denoise(slow, fast, noise)[0, :, : m.action_dim]
        offset = self.action_offset(window)
        state = IrdpPlanState(slow=slow, noise=noise, fast=fast.clone(), i=0, latest=fast_obs[:, -1].clone(), offset=offset)
        return Plan(
            t0=t_obs + self.latency_steps * self.dt, dt=self.dt,
            actions=self.to_actions(y[self.first_step :], offset), state=state,
        )  # fmt: skip

    def fast_sequence(self, st: IrdpPlanState, i: int, f: torch.Tensor) -> torch.Tensor:
        """Update a plan's chunk of fast signals for plan step ``i`` with the newest signal ``f``:
        the step being left keeps the last signal it saw, steps no call visited get the newest."""
        first_new = self.first_step + (st.i + 1 if i > st.i else i)
        st.fast[:, first_new:] = f
        st.i = max(st.i, i)
        return st.fast

    @torch.inference_mode()
    def step(self, plan: Plan[IrdpPlanState], t: float, fast: FastSignal | None = None) -> np.ndarray:
        st = plan.state
        if not isinstance(st, IrdpPlanState):
            raise TypeError(f"not an ImplicitRDP plan: its state is {type(st).__name__}")
        i = plan.index_at(t)
        f = st.latest if fast is None else self.fast_tensor(fast)
        if i < st.i:  # a step before the current one: its signals are committed already
            return self._denoise_at(st, i)
        key = (i, f.cpu().numpy().tobytes())
        if st.last is not None and st.last[0] == key:
            return st.last[1].copy()
        self.fast_sequence(st, i, f)
        st.latest = f
        a = self._denoise_at(st, i)
        st.last = (key, a)
        return a.copy()

    def _denoise_at(self, st: IrdpPlanState, i: int) -> np.ndarray:
        y = self.model.denoise(st.slow, st.fast, st.noise)
        return self.to_actions(y[0, self.first_step + i, : self.model.action_dim], st.offset)
