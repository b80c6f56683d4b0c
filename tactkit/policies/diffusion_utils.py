"""Noise schedule and DDIM sampling shared by Diffusion Policy and the latent diffusion policy."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler


def make_scheduler(num_train_timesteps: int = 100) -> DDIMScheduler:
    """DDIM with the squared-cosine schedule and epsilon prediction (Diffusion Policy's choice)."""
    return DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        clip_sample=True,
        set_alpha_to_one=True,
        steps_offset=0,
        prediction_type="epsilon",
    )


def diffusion_loss(
    denoiser: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    scheduler: DDIMScheduler,
    x0: torch.Tensor,
) -> torch.Tensor:
    """Epsilon-prediction MSE at a uniformly drawn training step per sample."""
    noise = torch.randn_like(x0)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (x0.shape[0],), device=x0.device)
    noisy = scheduler.add_noise(x0, noise, t)
    return torch.nn.functional.mse_loss(denoiser(noisy, t), noise)


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
