"""Reactive Diffusion Policy at run time.

``plan`` samples a latent with the latent diffusion policy, runs the tokenizer's decoder over
the chunk steps already past (the observation window's own fast signals, then the newest one)
and returns the chunk as planned with the newest fast signal held. ``step`` runs one GRU step
on the latest fast signal: the state after the last finished plan step is kept in
``plan.state``, so each call costs one decoder step whatever the tick rate. Several calls
within one plan step (a sensor faster than the control grid) re-run that step with the newest
signal; moving to a later step commits the previous step with the last signal it saw.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from tactkit.policies.inference import TorchPolicy
from tactkit.policies.interface import FastSignal, Plan


@dataclass
class RdpPlanState:
    """The decoder's run-time state for one plan; :meth:`ReactiveDiffusionPolicy.step` advances it."""

    cond: torch.Tensor  # [1, cond_dim] the latent's decoder condition
    h: torch.Tensor | None  # GRU state after the last committed plan step (None: before step 0)
    i: int  # index of the plan step ``h_after`` belongs to
    h_after: torch.Tensor | None  # GRU state after step ``i`` decoded with the newest signal
    latest: torch.Tensor  # [1, F] the newest normalised fast signal
    offset: np.ndarray | None  # relative actions: what turns them absolute (None: absolute)


class ReactiveDiffusionPolicy(TorchPolicy):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tokenizer = self.model.tokenizer
        self.fast_keys = tuple(self.cfg.fast_keys)

    @torch.inference_mode()
    def plan(self, window: dict[str, np.ndarray]) -> Plan[RdpPlanState]:
        t_obs = self.window_time(window)
        batch = self.obs_batch(window)
        z = self.model.sample_latent(batch, self.generator)
        cond = self.tokenizer.latent_cond(z)
        fast_obs = self.codec.encode(batch, list(self.fast_keys), self.n_obs_steps)  # [1, To, F]
        start = self.first_step
        latest = fast_obs[:, -1:]
        # each chunk step's own signal: the window's for the steps it covers, then the newest held;
        # the decoder's inputs are those shifted by the tokenizer's fast_delay (none by default)
        seen = fast_obs[:, :start]
        own = torch.cat([seen, latest.expand(-1, self.tokenizer.horizon - seen.shape[1], -1)], dim=1)
        inputs = self.tokenizer.delayed(own)
        h = self.tokenizer.decode(cond, inputs[:, :start])[1] if start > 0 else None
        planned, _ = self.tokenizer.decode(cond, inputs[:, start:], h)
        offset = self.action_offset(window)
        state = RdpPlanState(cond=cond, h=h, i=0, h_after=None, latest=latest[:, 0], offset=offset)
        return Plan(t0=t_obs + self.latency_steps * self.dt, dt=self.dt, actions=self.to_actions(planned[0], offset),
                    state=state)

    @torch.inference_mode()
    def step(self, plan: Plan[RdpPlanState], t: float, fast: FastSignal | None = None) -> np.ndarray:
        st = plan.state
        if not isinstance(st, RdpPlanState):
            raise TypeError(f"not an RDP plan: its state is {type(st).__name__}")
        i = plan.index_at(t)
        f = st.latest if fast is None else self.fast_tensor(fast)
        while st.i < i:  # commit finished steps
            if st.h_after is None:  # a step no tick visited: decode it with the newest signal
                _, st.h_after = self.tokenizer.decode_step(st.cond, f, st.h)
            st.h, st.h_after = st.h_after, None
            st.i += 1
        a, st.h_after = self.tokenizer.decode_step(st.cond, f, st.h)
        st.latest = f
        return self.to_actions(a[0], st.offset)
