"""Small fixtures shared by the policy tests: feature codecs and synthetic batches."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from tactkit.policies.features import FeatureCodec, Normalizer, make_spec

SHAPES = {
    "observation.images.wrist": (32, 32, 3),
    "observation.state.tcp_pose": (7,),
    "observation.state.gripper_width": (1,),
    "observation.tactile.left.marker_offset": (63, 2),
    "observation.wrench": (6,),
    "action.tcp_pose": (7,),
    "action.gripper_width": (1,),
}


def metrics_rows(run: Path) -> list[dict]:
    """Every row of a run's ``metrics.jsonl`` (training and validation rows)."""
    return [json.loads(line) for line in (Path(run) / "metrics.jsonl").read_text().splitlines()]


def training_rows(run: Path) -> list[dict]:
    """The training rows of a run's ``metrics.jsonl`` (``tactkit train`` also writes validation
    rows: {"step", "val_loss"})."""
    return [r for r in metrics_rows(run) if "loss" in r]


def make_codec(pca_dim: int = 15) -> FeatureCodec:
    specs = {k: make_spec(k, s, pca_dim) for k, s in SHAPES.items()}
    stats = {}
    for k, s in specs.items():
        if s.kind == "image":
            continue
        n = 7 if s.kind == "pose" else s.dim
        stats[k] = {"min": -2 * np.ones(n), "max": 2 * np.ones(n)}
    return FeatureCodec(specs, Normalizer.from_stats(list(specs.values()), stats))


def unit_quats(*shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
    q = torch.randn(*shape, 4, generator=generator)
    q = q / q.norm(dim=-1, keepdim=True)
    return torch.where(q[..., :1] < 0, -q, q)


def make_batch(b: int, horizon: int, n_obs: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "observation.images.wrist": torch.randint(0, 256, (b, n_obs, 32, 32, 3), generator=g, dtype=torch.uint8),
        "observation.state.tcp_pose": torch.cat([torch.randn(b, n_obs, 3, generator=g), unit_quats(b, n_obs, generator=g)], -1),
        "observation.state.gripper_width": torch.rand(b, n_obs, 1, generator=g),
        "observation.tactile.left.marker_offset": torch.randn(b, horizon, 15, generator=g),
        "observation.wrench": torch.randn(b, horizon, 6, generator=g),
        "action.tcp_pose": torch.cat([torch.randn(b, horizon, 3, generator=g), unit_quats(b, horizon, generator=g)], -1),
        "action.gripper_width": torch.rand(b, horizon, 1, generator=g),
    }
