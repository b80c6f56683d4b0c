"""1-D temporal U-Net with FiLM conditioning (Diffusion Policy's ConditionalUnet1D design).

Input ``[B, T, C]`` (a noisy action or latent sequence), the diffusion step and a global
condition vector (flattened observation features). Each residual block applies a per-channel
scale and bias predicted from ``[step embedding, global condition]`` (FiLM).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class SinusoidalPosEmb(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        half = self.dim // 2
        freqs = torch.exp(torch.arange(half, device=t.device) * (-math.log(10000.0) / (half - 1)))
        arg = t.float()[:, None] * freqs[None, :]
        return torch.cat([arg.sin(), arg.cos()], dim=-1)


class Conv1dBlock(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel_size: int, n_groups: int) -> None:
        super().__init__(
            nn.Conv1d(cin, cout, kernel_size, padding=kernel_size // 2),
            nn.GroupNorm(_groups(cout, n_groups), cout),
            nn.Mish(),
        )


def _groups(channels: int, n_groups: int) -> int:
    g = min(n_groups, channels)
    while channels % g:
        g -= 1
    return g


class ConditionalResidualBlock1D(nn.Module):
    def __init__(self, cin: int, cout: int, cond_dim: int, kernel_size: int, n_groups: int) -> None:
        super().__init__()
        self.block1 = Conv1dBlock(cin, cout, kernel_size, n_groups)
        self.block2 = Conv1dBlock(cout, cout, kernel_size, n_groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * cout))
        self.residual = nn.Conv1d(cin, cout, 1) if cin != cout else nn.Identity()
        self.cout = cout

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        out = self.block1(x)
        scale, bias = self.film(cond).unsqueeze(-1).chunk(2, dim=1)
        out = scale * out + bias
        out = self.block2(out)
        return out + self.residual(x)


class ConditionalUnet1D(nn.Module):
    """Noise-prediction U-Net over ``[B, T, input_dim]`` sequences; ``T`` must be divisible by
    ``2 ** (len(down_dims) - 1)``."""

    def __init__(
        self,
        input_dim: int,
        global_cond_dim: int,
        down_dims: tuple[int, ...] | list[int] = (64, 128, 256),
        step_embed_dim: int = 64,
        kernel_size: int = 5,
        n_groups: int = 8,
    ) -> None:
        super().__init__()
        self.input_dim = input_dim
        self.global_cond_dim = global_cond_dim
        self.n_levels = len(down_dims)
        self.step_encoder = nn.Sequential(
            SinusoidalPosEmb(step_embed_dim),
            nn.Linear(step_embed_dim, 4 * step_embed_dim),
            nn.Mish(),
            nn.Linear(4 * step_embed_dim, step_embed_dim),
        )
        cond_dim = step_embed_dim + global_cond_dim
        dims = [input_dim, *down_dims]
        pairs = list(zip(dims[:-1], dims[1:]))

        def block(a: int, b: int) -> ConditionalResidualBlock1D:
            return ConditionalResidualBlock1D(a, b, cond_dim, kernel_size, n_groups)

        self.down = nn.ModuleList()
        for i, (a, b) in enumerate(pairs):
            last = i == len(pairs) - 1
            self.down.append(
                nn.ModuleList([block(a, b), block(b, b), nn.Identity() if last else nn.Conv1d(b, b, 3, 2, 1)])
            )
        mid = down_dims[-1]
        self.mid = nn.ModuleList([block(mid, mid), block(mid, mid)])
        self.up = nn.ModuleList()
        for a, b in reversed(pairs[1:]):  # every up level undoes one down-sampling
            self.up.append(nn.ModuleList([block(2 * b, a), block(a, a), nn.ConvTranspose1d(a, a, 4, 2, 1)]))
        start = down_dims[0]
        self.final = nn.Sequential(Conv1dBlock(start, start, kernel_size, n_groups), nn.Conv1d(start, input_dim, 1))

    def forward(self, x: torch.Tensor, timestep: torch.Tensor | int, global_cond: torch.Tensor) -> torch.Tensor:
        """``x``: ``[B, T, input_dim]``; ``timestep``: ``[B]`` or scalar; ``global_cond``: ``[B, D]``."""
        if x.shape[1] % (2 ** (self.n_levels - 1)):
            raise ValueError(f"sequence length {x.shape[1]} not divisible by {2 ** (self.n_levels - 1)}")
        b = x.shape[0]
        t = torch.as_tensor(timestep, device=x.device)
        if t.ndim == 0:
            t = t.expand(b)
        cond = torch.cat([self.step_encoder(t), global_cond], dim=-1)
        h = x.transpose(1, 2)
        skips = []
        for res1, res2, down in self.down:
            h = res2(res1(h, cond), cond)
            skips.append(h)
            h = down(h)
        for res in self.mid:
            h = res(h, cond)
        for res1, res2, up in self.up:
            h = torch.cat([h, skips.pop()], dim=1)
            h = res2(res1(h, cond), cond)
            h = up(h)
        return self.final(h).transpose(1, 2)
