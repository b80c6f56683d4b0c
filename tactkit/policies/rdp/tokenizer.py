"""Asymmetric tokenizer: RDP's fast policy.

Encoder: 1-D convolutions over a normalised action chunk (``horizon`` steps -> ``horizon /
downsample`` latent steps), a Gaussian bottleneck (``latent_dim`` per latent step) and a 1x1
post-quantisation projection. Decoder: a GRU over the chunk's steps whose input at step ``t``
is the flattened latent concatenated with that step's fast signal (tactile embedding or
wrench), followed by a linear head. The decoder's :meth:`decode_step` advances one step and
carries the GRU state, so a control tick costs O(1) and equals re-running the prefix.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tactkit.policies.features import FeatureCodec


class AsymmetricTokenizer(nn.Module):
    def __init__(
        self,
        codec: FeatureCodec,
        action_keys: list[str],
        fast_keys: list[str],
        horizon: int = 32,
        downsample: int = 4,
        latent_dim: int = 16,
        channels: int = 64,
        gru_hidden: int = 32,
        kl_weight: float = 1e-6,
        fast_delay: int = 0,
    ) -> None:
        super().__init__()
        n_down = int(round(math.log2(downsample)))
        if 2**n_down != downsample or horizon % downsample:
            raise ValueError(f"downsample must be a power of 2 dividing horizon, got {downsample} / {horizon}")
        self.codec = codec
        self.action_keys = list(action_keys)
        self.fast_keys = list(fast_keys)
        self.horizon = horizon
        self.latent_steps = horizon // downsample
        self.latent_dim = latent_dim
        self.kl_weight = kl_weight
        if fast_delay < 0:
            raise ValueError(f"fast_delay must be >= 0, got {fast_delay}")
        self.fast_delay = fast_delay
        self.action_dim = codec.dim(self.action_keys)
        self.fast_dim = codec.dim(self.fast_keys)
        layers: list[nn.Module] = [nn.Conv1d(self.action_dim, channels, 5, padding=2), nn.Mish()]
        for _ in range(n_down):
            layers += [nn.Conv1d(channels, channels, 4, 2, 1), nn.GroupNorm(8 if channels % 8 == 0 else 1, channels), nn.Mish()]
        layers.append(nn.Conv1d(channels, 2 * latent_dim, 1))
        self.encoder = nn.Sequential(*layers)
        self.post_quant = nn.Conv1d(latent_dim, latent_dim, 1)
        self.cond_dim = self.latent_steps * latent_dim
        self.gru = nn.GRU(self.cond_dim + self.fast_dim, gru_hidden, batch_first=True)
        self.head = nn.Linear(gru_hidden, self.action_dim)

    # ---------------------------------------------------------------- encoder
    def encode(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised actions ``[B, horizon, A]`` -> mean, log-variance ``[B, latent_steps, latent_dim]``."""
        if actions.shape[1:] != (self.horizon, self.action_dim):
            raise ValueError(f"actions must be [B, {self.horizon}, {self.action_dim}], got {tuple(actions.shape)}")
        h = self.encoder(actions.transpose(1, 2))
        mu, logvar = h.chunk(2, dim=1)
        return mu.transpose(1, 2), logvar.clamp(-30.0, 20.0).transpose(1, 2)

    def latent_cond(self, z: torch.Tensor) -> torch.Tensor:
        """Latent ``[B, latent_steps, latent_dim]`` -> flattened decoder condition ``[B, cond_dim]``."""
        return self.post_quant(z.transpose(1, 2)).transpose(1, 2).flatten(1)

    # ---------------------------------------------------------------- decoder
    def decode(self, cond: torch.Tensor, fast: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the decoder over ``fast.shape[1]`` steps: ``cond [B, cond_dim]``, normalised
        ``fast [B, S, F]`` -> normalised actions ``[B, S, A]`` and the final GRU state ``[1, B, H]``."""
        if fast.shape[-1] != self.fast_dim:
            raise ValueError(f"fast signal has {fast.shape[-1]} features, expected {self.fast_dim}")
        x = torch.cat([cond[:, None, :].expand(-1, fast.shape[1], -1), fast], dim=-1)
        out, h = self.gru(x, h0)
        return self.head(out), h

    def decode_step(self, cond: torch.Tensor, fast_t: torch.Tensor, h: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One streaming step: ``fast_t [B, F]`` -> action ``[B, A]`` and the new state."""
        a, h = self.decode(cond, fast_t[:, None, :], h)
        return a[:, 0], h

    def delayed(self, fast: torch.Tensor) -> torch.Tensor:
        """Decoder inputs ``[B, S, F]`` for steps whose own fast signals are ``fast``: step ``t``
        gets the signal of step ``t - fast_delay`` (the first one before the start). With a
        delay the decoder never sees the touch its own step's command causes, as at run time."""
        k = min(self.fast_delay, fast.shape[1])
        if k == 0:
            return fast
        return torch.cat([fast[:, :1].expand(-1, k, -1), fast[:, : fast.shape[1] - k]], dim=1)

    # ---------------------------------------------------------------- training
    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        actions = self.codec.encode(batch, self.action_keys)[:, : self.horizon]
        fast = self.codec.encode(batch, self.fast_keys)[:, : self.horizon]
        mu, logvar = self.encode(actions)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        rec, _ = self.decode(self.latent_cond(z), self.delayed(fast))
        l1 = (rec - actions).abs().mean()
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        loss = l1 + self.kl_weight * kl
        return loss, {"l1": float(l1.detach()), "kl": float(kl.detach())}
