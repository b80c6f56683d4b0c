"""Observation encoder shared by every policy: images through a ResNet-18/GroupNorm each,
low-dimensional keys normalised and concatenated, features of all ``n_obs_steps`` flattened
into one global condition vector."""

from __future__ import annotations

import torch
from torch import nn

from tactkit.policies.features import FeatureCodec
from tactkit.policies.networks.vision import ResNet18GN, crop_images


class ObservationEncoder(nn.Module):
    def __init__(
        self,
        codec: FeatureCodec,
        obs_keys: list[str],
        n_obs_steps: int,
        crop_shape: tuple[int, int],
        resnet_width: int,
        image_feature_dim: int,
    ) -> None:
        super().__init__()
        self.codec = codec
        self.image_keys = [k for k in obs_keys if codec.specs[k].kind == "image"]
        self.lowdim_keys = [k for k in obs_keys if codec.specs[k].kind != "image"]
        self.n_obs_steps = n_obs_steps
        self.crop_shape = tuple(crop_shape)
        # One encoder per camera (nn.ModuleDict keys cannot hold dots).
        self.image_encoders = nn.ModuleList(ResNet18GN(resnet_width, image_feature_dim) for _ in self.image_keys)
        self.step_dim = len(self.image_keys) * image_feature_dim + codec.dim(self.lowdim_keys)
        self.out_dim = self.step_dim * n_obs_steps

    def encode_images(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        feats = []
        for key, enc in zip(self.image_keys, self.image_encoders):
            if key not in batch:
                raise KeyError(f"batch is missing image key {key!r}")
            img = batch[key][:, : self.n_obs_steps]  # [B, To, H, W, 3] uint8
            b, t = img.shape[:2]
            x = img.reshape(b * t, *img.shape[2:]).permute(0, 3, 1, 2).float() / 255.0
            x = crop_images(x, self.crop_shape, random=self.training)
            feats.append(enc(x).reshape(b, t, -1))
        return feats

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``[B, n_obs_steps * step_dim]`` global condition."""
        parts = self.encode_images(batch)
        if self.lowdim_keys:
            parts.append(self.codec.encode(batch, self.lowdim_keys, self.n_obs_steps))
        feat = torch.cat(parts, dim=-1)
        if feat.shape[1] != self.n_obs_steps:
            raise ValueError(f"observation window has {feat.shape[1]} steps, expected {self.n_obs_steps}")
        return feat.flatten(1)
