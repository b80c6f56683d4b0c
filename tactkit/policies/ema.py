"""Exponential moving average of a model's weights (the weights a trained policy runs with).

Decay warms up as ``min(max_decay, (1 + step) / (10 + step))`` so early averages are not
dominated by the random initialisation. Buffers (none are running statistics here: every
norm is a GroupNorm) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, max_decay: float = 0.999) -> None:
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        self.max_decay = max_decay
        self.step = 0

    def decay(self) -> float:
        return min(self.max_decay, (1 + self.step) / (10 + self.step))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.decay()
        ema_params = dict(self.model.named_parameters())
        for name, p in model.named_parameters():
            ema_params[name].lerp_(p.detach(), 1.0 - d)
        ema_bufs = dict(self.model.named_buffers())
        for name, b in model.named_buffers():
            ema_bufs[name].copy_(b)
        self.step += 1
