"""Latent diffusion policy: RDP's slow policy.

Diffuses over the asymmetric tokenizer's latents (``latent_steps x latent_dim``, 8 x 16 by
default), conditioned on image features and low-dimensional observations over
``n_obs_steps``. Targets are the encoder means of the (frozen) tokenizer, min-max normalised
with the latents' own statistics. The tokenizer is a submodule, so one checkpoint holds both.
"""

from __future__ import annotations

import torch
from torch import nn

from tactkit.policies.config import PolicyConfig
from tactkit.policies.diffusion_utils import ddim_sample, diffusion_loss, make_scheduler
from tactkit.policies.features import FeatureCodec
from tactkit.policies.networks import ConditionalUnet1D, ObservationEncoder
from tactkit.policies.rdp.tokenizer import AsymmetricTokenizer


class LatentDiffusionModel(nn.Module):
    def __init__(self, cfg: PolicyConfig, codec: FeatureCodec, tokenizer: AsymmetricTokenizer) -> None:
        super().__init__()
        self.cfg = cfg
        self.codec = codec
        self.tokenizer = tokenizer.requires_grad_(False)
        self.obs_encoder = ObservationEncoder(
            codec, cfg.obs_keys, cfg.n_obs_steps, tuple(cfg.crop_shape), cfg.resnet_width, cfg.image_feature_dim
        )
        self.unet = ConditionalUnet1D(
            tokenizer.latent_dim, self.obs_encoder.out_dim, cfg.latent_down_dims,
            cfg.diffusion_step_embed_dim, cfg.kernel_size, cfg.n_groups,
        )  # fmt: skip
        self.scheduler = make_scheduler(cfg.num_train_timesteps, cfg.prediction_type)
        # min-max map of the latents to [-1, 1], per latent channel; set by fit_latent_stats
        self.register_buffer("latent_scale", torch.ones(tokenizer.latent_dim))
        self.register_buffer("latent_offset", torch.zeros(tokenizer.latent_dim))

    def train(self, mode: bool = True) -> LatentDiffusionModel:
        super().train(mode)
        self.tokenizer.eval()  # frozen stage 1: deterministic encoder means
        return self

    @torch.no_grad()
    def target_latents(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = self.codec.encode(batch, self.tokenizer.action_keys)[:, : self.tokenizer.horizon]
        mu, _ = self.tokenizer.encode(actions)
        return mu

    @torch.no_grad()
    def fit_latent_stats(self, batches: list[dict[str, torch.Tensor]], eps: float = 1e-4) -> None:
        """Set the latent normaliser from the encoder means of ``batches``."""
        z = torch.cat([self.target_latents(b).flatten(0, 1) for b in batches])
        lo, hi = z.min(0).values, z.max(0).values
        rng = hi - lo
        small = rng < eps
        scale = torch.where(small, torch.ones_like(rng), 2.0 / rng.clamp_min(eps))
        self.latent_scale.copy_(scale)
        self.latent_offset.copy_(torch.where(small, -(hi + lo) / 2, -1.0 - lo * scale))

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        z = self.target_latents(batch) * self.latent_scale + self.latent_offset
        cond = self.obs_encoder(batch)
        loss = diffusion_loss(lambda x, t: self.unet(x, t, cond), self.scheduler, z)
        return loss, {}

    @torch.no_grad()
    def sample_latent(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """Latent (tokenizer units, not normalised) ``[B, latent_steps, latent_dim]``."""
        cond = self.obs_encoder(batch)
        shape = (cond.shape[0], self.tokenizer.latent_steps, self.tokenizer.latent_dim)
        zn = ddim_sample(
            lambda x, t: self.unet(x, t, cond), self.scheduler, shape, self.cfg.num_inference_steps, cond.device, generator
        )
        return (zn - self.latent_offset) / self.latent_scale
