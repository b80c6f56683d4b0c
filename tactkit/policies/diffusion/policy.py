"""Diffusion Policy at run time: ``plan`` samples a chunk, ``step`` indexes it."""

from __future__ import annotations

import numpy as np
import torch

from tactkit.policies.inference import TorchPolicy
from tactkit.policies.interface import FastSignal, Plan


class DiffusionPolicy(TorchPolicy):
    @torch.inference_mode()
    def plan(self, window: dict[str, np.ndarray]) -> Plan[None]:
        t_obs = self.window_time(window)
        batch = self.obs_batch(window)
        y = self.model.sample_actions(batch, self.generator)[0]  # [horizon, A] normalised
        actions = self.to_actions(y[self.first_step :], self.action_offset(window))
        return Plan(t0=t_obs + self.latency_steps * self.dt, dt=self.dt, actions=actions)

    def step(self, plan: Plan[None], t: float, fast: FastSignal | None = None) -> np.ndarray:
        return plan.actions[plan.index_at(t)].copy()
