"""Test oracle: a straightforward implementation of diffusion_policy's SequenceSampler semantics.

Python loops over episodes and window starts, one slice per key read straight from the
replay buffer's arrays (zarr or numpy), padding by explicit copies, exactly as
``diffusion_policy.common.sampler`` does it. It is the oracle for
:class:`tactkit.store.SequenceSampler` in the tests and its baseline in
``benchmarks/store_sampler.py``; use the fast sampler for training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from tactkit.store import ReplayBuffer


def reference_indices(episode_ends: np.ndarray, sequence_length: int, episode_mask: np.ndarray,
                      pad_before: int = 0, pad_after: int = 0) -> np.ndarray:
    pad_before = min(max(pad_before, 0), sequence_length - 1)
    pad_after = min(max(pad_after, 0), sequence_length - 1)
    indices = []
    for i in range(len(episode_ends)):
        if not episode_mask[i]:
            continue
        start_idx = 0 if i == 0 else int(episode_ends[i - 1])
        end_idx = int(episode_ends[i])
        episode_length = end_idx - start_idx
        min_start = -pad_before
        max_start = episode_length - sequence_length + pad_after
        for idx in range(min_start, max_start + 1):
            buffer_start_idx = max(idx, 0) + start_idx
            buffer_end_idx = min(idx + sequence_length, episode_length) + start_idx
            start_offset = buffer_start_idx - (idx + start_idx)
            end_offset = (idx + sequence_length + start_idx) - buffer_end_idx
            indices.append([buffer_start_idx, buffer_end_idx, start_offset,
                            sequence_length - end_offset])
    return np.array(indices, dtype=np.int64).reshape(-1, 4)


class ReferenceSequenceSampler:
    """Loop-and-slice sampler with diffusion_policy's semantics (see module doc)."""

    def __init__(self, replay_buffer: ReplayBuffer, sequence_length: int, pad_before: int = 0,
                 pad_after: int = 0, keys: Sequence[str] | None = None,
                 key_first_k: Mapping[str, int] | None = None,
                 episode_mask: np.ndarray | None = None,
                 key_downsample: Mapping[str, int] | None = None) -> None:
        ends = replay_buffer.episode_ends
        if episode_mask is None:
            episode_mask = np.ones(len(ends), dtype=bool)
        self.indices = reference_indices(ends, sequence_length, episode_mask, pad_before, pad_after)
        self.keys = list(replay_buffer.keys()) if keys is None else list(keys)
        self.sequence_length = sequence_length
        self.replay_buffer = replay_buffer
        self.key_first_k = dict(key_first_k or {})
        self.key_downsample = dict(key_downsample or {})

    def __len__(self) -> int:
        return len(self.indices)

    def sample_sequence(self, idx: int) -> dict[str, np.ndarray]:
        buffer_start_idx, buffer_end_idx, sample_start_idx, sample_end_idx = self.indices[idx]
        result = {}
        for key in self.keys:
            input_arr = self.replay_buffer[key]
            if key not in self.key_first_k:
                sample = np.asarray(input_arr[buffer_start_idx:buffer_end_idx])
            else:
                n_data = buffer_end_idx - buffer_start_idx
                k_data = min(self.key_first_k[key], n_data)
                fill = np.nan if np.dtype(input_arr.dtype).kind in "fc" else 0
                sample = np.full((n_data, *input_arr.shape[1:]), fill_value=fill, dtype=input_arr.dtype)
                sample[:k_data] = input_arr[buffer_start_idx:buffer_start_idx + k_data]
            data = sample
            if sample_start_idx > 0 or sample_end_idx < self.sequence_length:
                data = np.zeros((self.sequence_length, *input_arr.shape[1:]), dtype=input_arr.dtype)
                if sample_start_idx > 0:
                    data[:sample_start_idx] = sample[0]
                if sample_end_idx < self.sequence_length:
                    data[sample_end_idx:] = sample[-1]
                data[sample_start_idx:sample_end_idx] = sample
            d = self.key_downsample.get(key, 1)
            result[key] = data[::d] if d > 1 else data
        return result
