"""Noise schedule and DDIM sampling shared by Diffusion Policy and the latent diffusion policy."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler

PREDICTION_TYPES = ("epsilon", "sample")


def make_scheduler(num_train_timesteps: int = 100, prediction_type: str = "epsilon") -> DDIMScheduler:
    """DDIM with the squared-cosine schedule. ``prediction_type``: the network predicts the noise
    (``"epsilon"``, Diffusion Policy's choice) or the clean sample (``"sample"``)."""
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    return DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        set_alpha_to_one=True,
        steps_offset=0,
        prediction_type=prediction_type,
    )


def diffusion_loss(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler: DDIMScheduler,
    x0: torch.Tensor,
) -> torch.Tensor:
    """MSE of the network's prediction (the noise, or the clean sample, as ``scheduler`` is
    configured) at a uniformly drawn training step per sample."""
    noise = torch.randn_like(x0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
    noisy = scheduler.add_noise(x0, noise, t)
    target = x0 if scheduler.config.prediction_type == "sample" else noise
    return torch.nn.functional.mse_loss(denoiser(noisy, t), target)


@torch.no_grad()
def ddim_sample(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler: DDIMScheduler,
    shape: tuple[int, ...],
    num_inference_steps: int,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Run ``num_inference_steps`` DDIM steps from Gaussian noise of ``shape``."""
    x = torch.randn(shape, generator=generator, device=device)
    scheduler.set_timesteps(num_inference_steps, device=device)
    for t in scheduler.timesteps:
        x = scheduler.step(denoiser(x, t), t, x, generator=generator).prev_sample
    return x
