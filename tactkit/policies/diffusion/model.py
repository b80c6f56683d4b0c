"""Diffusion Policy (Chi et al.) in action space: a conditional 1-D U-Net denoises a chunk of
``horizon`` normalised actions (poses as xyz + 6-D rotation), conditioned on the shared
observation encoder over ``n_obs_steps``; DDIM sampling."""

from __future__ import annotations

import torch
from torch import nn

from tactkit.policies.config import PolicyConfig
from tactkit.policies.diffusion_utils import ddim_sample, diffusion_loss, make_scheduler
from tactkit.policies.features import FeatureCodec
from tactkit.policies.networks import ConditionalUnet1D, ObservationEncoder


class DiffusionPolicyModel(nn.Module):
    def __init__(self, cfg: PolicyConfig, codec: FeatureCodec) -> None:
        super().__init__()
        self.cfg = cfg
        self.codec = codec
        self.action_dim = codec.dim(cfg.action_keys)
        self.obs_encoder = ObservationEncoder(
            codec, cfg.obs_keys, cfg.n_obs_steps, tuple(cfg.crop_shape), cfg.resnet_width, cfg.image_feature_dim
        )
        self.unet = ConditionalUnet1D(
            self.action_dim, self.obs_encoder.out_dim, cfg.down_dims,
            cfg.diffusion_step_embed_dim, cfg.kernel_size, cfg.n_groups,
        )  # fmt: skip
        self.scheduler = make_scheduler(cfg.num_train_timesteps, cfg.prediction_type)

    def forward(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        return self.compute_loss(batch)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        actions = self.codec.encode(batch, self.cfg.action_keys)[:, : self.cfg.horizon]
        cond = self.obs_encoder(batch)
        loss = diffusion_loss(lambda x, t: self.unet(x, t, cond), self.scheduler, actions)
        return loss, {}

    @torch.no_grad()
    def sample_actions(self, batch: dict[str, torch.Tensor], generator: torch.Generator | None = None) -> torch.Tensor:
        """Normalised action chunk ``[B, horizon, A]``."""
        cond = self.obs_encoder(batch)
        shape = (cond.shape[0], self.cfg.horizon, self.action_dim)
        return ddim_sample(
            lambda x, t: self.unet(x, t, cond), self.scheduler, shape, self.cfg.num_inference_steps, cond.device, generator
        )
