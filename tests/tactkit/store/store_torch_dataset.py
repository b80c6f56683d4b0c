"""Test helper: a PyTorch ``Dataset`` of observation/action windows over a replay buffer.

It shows that :class:`tactkit.store.SequenceSampler` serves diffusion_policy's dataset
convention; training itself uses :class:`tactkit.policies.data.WindowDataset`.

Follows diffusion_policy's dataset convention: windows of ``horizon`` steps with
``pad_before = n_obs_steps - 1`` and ``pad_after = n_action_steps - 1``; observation keys
load only their first ``n_obs_steps`` frames (``key_first_k``) and are returned cut to those
frames; the action is the concatenation of ``action_keys`` along the last axis. Episodes
are split into train/validation with :func:`get_val_mask`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from tactkit.store import ReplayBuffer, SequenceSampler, get_val_mask


class SequenceDataset(torch.utils.data.Dataset):
    """``dataset[i] -> {"obs": {key: float32 tensor[To, ...]}, "action": float32 tensor[H, Da]}``.

    Image keys (uint8 ``[.., H, W, C]``) come out as float32 ``[To, C, H, W]`` in [0, 1].
    ``split`` is ``"train"`` or ``"val"``; :meth:`get_validation_dataset` gives the other half.
    """

    def __init__(
        self,
        replay_buffer: ReplayBuffer,
        horizon: int,
        obs_keys: Sequence[str],
        action_keys: Sequence[str],
        n_obs_steps: int = 2,
        n_action_steps: int | None = None,
        pad_before: int | None = None,
        pad_after: int | None = None,
        key_downsample: Mapping[str, int] | None = None,
        val_ratio: float = 0.0,
        seed: int = 0,
        split: str = "train",
        lazy_keys: Sequence[str] = (),
    ) -> None:
        if split not in ("train", "val"):
            raise ValueError(f"split must be 'train' or 'val', got {split!r}")
        if not 1 <= n_obs_steps <= horizon:
            raise ValueError(f"n_obs_steps must be in 1..horizon={horizon}, got {n_obs_steps}")
        overlap = set(obs_keys) & set(action_keys)
        if overlap:
            raise ValueError(f"keys {sorted(overlap)} are both observation and action keys")
        self.replay_buffer = replay_buffer
        self.horizon = horizon
        self.obs_keys, self.action_keys = list(obs_keys), list(action_keys)
        self.n_obs_steps = n_obs_steps
        n_action_steps = horizon - n_obs_steps + 1 if n_action_steps is None else n_action_steps
        self.pad_before = n_obs_steps - 1 if pad_before is None else pad_before
        self.pad_after = n_action_steps - 1 if pad_after is None else pad_after
        self.key_downsample = dict(key_downsample or {})
        self.val_ratio, self.seed, self.split = val_ratio, seed, split
        val_mask = get_val_mask(replay_buffer.n_episodes, val_ratio, seed)
        mask = val_mask if split == "val" else ~val_mask
        self.sampler = SequenceSampler(
            replay_buffer, horizon, self.pad_before, self.pad_after,
            keys=self.obs_keys + self.action_keys,
            key_first_k={k: n_obs_steps for k in self.obs_keys},
            episode_mask=mask, key_downsample=self.key_downsample, lazy_keys=lazy_keys,
        )
        self.lazy_keys = tuple(lazy_keys)

    def get_validation_dataset(self) -> SequenceDataset:
        return SequenceDataset(
            self.replay_buffer, self.horizon, self.obs_keys, self.action_keys,
            n_obs_steps=self.n_obs_steps, pad_before=self.pad_before, pad_after=self.pad_after,
            key_downsample=self.key_downsample, val_ratio=self.val_ratio, seed=self.seed,
            split="val" if self.split == "train" else "train", lazy_keys=self.lazy_keys,
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def _convert(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        obs = {}
        for k in self.obs_keys:
            x = batch[k][:, : self.n_obs_steps]
            if x.dtype == np.uint8 and x.ndim == 5:  # [B, T, H, W, C] -> [B, T, C, H, W] in [0, 1]
                t = torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, 2))).float().div_(255.0)
            else:
                t = torch.from_numpy(x.astype(np.float32, copy=False))
            obs[k] = t
        action = np.concatenate(
            [batch[k].reshape(*batch[k].shape[:2], -1).astype(np.float32, copy=False)
             for k in self.action_keys], axis=-1)
        return {"obs": obs, "action": torch.from_numpy(action)}

    def get_batch(self, indices: Sequence[int] | np.ndarray) -> dict[str, Any]:
        """A collated batch in one vectorised gather (faster than ``DataLoader`` collation)."""
        return self._convert(self.sampler.sample_batch(indices, first_k_only=True))

    def __getitem__(self, idx: int) -> dict[str, Any]:
        batch = self._convert(self.sampler.sample_batch([idx], first_k_only=True))
        return {"obs": {k: v[0] for k, v in batch["obs"].items()}, "action": batch["action"][0]}
