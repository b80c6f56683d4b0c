"""ResNet-18 layout with GroupNorm (trained from scratch, no torchvision) and image cropping.

BatchNorm statistics drift under EMA and small robot batches, so, as in Diffusion Policy,
every norm layer is a GroupNorm. ``width`` is the channel count of the first stage (64 in
ResNet-18); smaller widths keep CPU training and inference cheap with the same layout.
"""

from __future__ import annotations

import torch
from torch import nn


def _gn(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(max(1, c // 16), c)


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.norm1 = _gn(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.norm2 = _gn(cout)
        self.act = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), _gn(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act(self.norm1(self.conv1(x)))
        out = self.norm2(self.conv2(out))
        return self.act(out + self.shortcut(x))


class ResNet18GN(nn.Module):
    """Stem (7x7/2 conv, 3x3/2 max-pool), 4 stages x 2 basic blocks (strides 1, 2, 2, 2),
    global average pooling, linear projection to ``out_dim``. Input float ``[B, 3, H, W]``."""

    def __init__(self, width: int = 64, out_dim: int = 512) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, 2, 3, bias=False), _gn(width), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)
        )
        layers = []
        cin = width
        for i, mult in enumerate((1, 2, 4, 8)):
            cout = width * mult
            stride = 1 if i == 0 else 2
            layers += [BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)]
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.proj = nn.Linear(cin, out_dim)
        self.out_dim = out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pool(self.layers(self.stem(x))).flatten(1))


def crop_images(x: torch.Tensor, crop: tuple[int, int], random: bool, generator: torch.Generator | None = None) -> torch.Tensor:
    """Crop ``[B, C, H, W]`` to ``crop``: an independent random window per image (training)
    or the centre window (evaluation)."""
    b, _, h, w = x.shape
    ch, cw = crop
    if (ch, cw) == (h, w):
        return x
    if ch > h or cw > w:
        raise ValueError(f"crop {crop} larger than image {(h, w)}")
    if not random:
        y0, x0 = (h - ch) // 2, (w - cw) // 2
        return x[:, :, y0 : y0 + ch, x0 : x0 + cw]
    y0 = torch.randint(0, h - ch + 1, (b,), generator=generator).to(x.device)
    x0 = torch.randint(0, w - cw + 1, (b,), generator=generator).to(x.device)
    iy = (y0[:, None] + torch.arange(ch, device=x.device))[:, None, :, None]  # [B,1,ch,1]
    ix = (x0[:, None] + torch.arange(cw, device=x.device))[:, None, None, :]  # [B,1,1,cw]
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return x[bi, ci, iy, ix]
