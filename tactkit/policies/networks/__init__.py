"""Shared networks: conditional 1-D U-Net, ResNet-18/GroupNorm image encoder, observation encoder."""

from tactkit.policies.networks.obs_encoder import ObservationEncoder
from tactkit.policies.networks.unet1d import ConditionalUnet1D
from tactkit.policies.networks.vision import ResNet18GN, crop_images

__all__ = ["ConditionalUnet1D", "ObservationEncoder", "ResNet18GN", "crop_images"]
