"""Fixed-length windows over a replay buffer, with diffusion_policy's SequenceSampler semantics.

Semantics (identical to ``diffusion_policy.common.sampler``):

* Windows never cross episodes. For an episode of length ``L`` and window length ``S``
  (``sequence_length``), windows start at ``idx = -pad_before ... L - S + pad_after``
  (episode-relative; ``pad_before`` and ``pad_after`` are first clipped to ``[0, S-1]``),
  in episode order then start order; that enumeration is the sample index ``i``.
  An episode shorter than ``S - pad_after`` yields no window.
* Window position ``p`` shows frame ``idx + p`` of the episode, clamped to ``[0, L-1]``:
  positions before the episode repeat its first frame, positions after it repeat its
  last frame (edge padding).
* ``key_first_k[key] = k``: only the first ``k`` loaded frames of that key are real, i.e.
  positions ``p < sample_start + min(k, n_loaded)`` where ``sample_start`` is the number of
  front-padded positions and ``n_loaded`` the number of in-episode frames in the window;
  when ``k < n_loaded`` all later positions are NaN (0 for non-float dtypes, where
  diffusion_policy itself would fail). Used to skip loading future observations.
* ``episode_mask``: only episodes with ``True`` contribute windows (train/val split).
* ``key_downsample[key] = d`` (tactkit addition): that key returns positions ``0, d, 2d, ...``
  of the window, i.e. ``ceil(S / d)`` frames.

Speed: the needed keys are loaded into memory once (decoded numpy arrays); window bounds are
computed vectorised; a window is one clamped-index fancy gather per key and a batch is one
gather of ``[B, S]`` indices (:meth:`SequenceSampler.sample_batch`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tactkit.store.replay_buffer import ReplayBuffer


def create_indices(episode_ends: np.ndarray, sequence_length: int, episode_mask: np.ndarray,
                   pad_before: int = 0, pad_after: int = 0) -> np.ndarray:
    """diffusion_policy's window table, vectorised: rows of ``[buffer_start, buffer_end,
    sample_start, sample_end]`` (buffer: global rows loaded; sample: where they land)."""
    starts, _, ep_starts, ep_ends = _window_starts(episode_ends, sequence_length, episode_mask,
                                                   pad_before, pad_after)
    s = sequence_length
    buffer_start = np.maximum(starts, ep_starts)
    buffer_end = np.minimum(starts + s, ep_ends)
    sample_start = buffer_start - starts
    sample_end = s - (starts + s - buffer_end)
    return np.stack([buffer_start, buffer_end, sample_start, sample_end], axis=1).astype(np.int64)


def _window_starts(episode_ends: np.ndarray, s: int, episode_mask: np.ndarray,
                   pad_before: int, pad_after: int) -> tuple[np.ndarray, ...]:
    """Global start row of each window (may precede its episode) and its episode bounds."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    mask = np.asarray(episode_mask, dtype=bool)
    if mask.shape != ends.shape:
        raise ValueError(f"episode_mask has shape {mask.shape}, expected {ends.shape}")
    pad_before = min(max(pad_before, 0), s - 1)
    pad_after = min(max(pad_after, 0), s - 1)
    begins = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    lengths = ends - begins
    counts = np.maximum(lengths - s + pad_after + pad_before + 1, 0) * mask
    ep_idx = np.repeat(np.arange(len(ends)), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    starts = begins[ep_idx] + offsets - pad_before
    return starts, ep_idx, begins[ep_idx], ends[ep_idx]


class _LazyRows:
    """Rows of a stored (zarr) array read on demand: one contiguous slice per window, so only
    the frames a window uses are decoded. Stands in for an in-memory array in the sampler."""

    def __init__(self, arr: Any) -> None:
        self.arr = arr
        self.shape = tuple(arr.shape)
        self.dtype = np.dtype(arr.dtype)

    def _window(self, rows: np.ndarray) -> np.ndarray:
        if rows.size == 0:
            return np.empty((0, *self.shape[1:]), self.dtype)
        lo, hi = int(rows.min()), int(rows.max()) + 1
        return np.asarray(self.arr[lo:hi])[rows - lo]

    def __getitem__(self, sel: Any) -> np.ndarray:
        if isinstance(sel, slice):
            return np.asarray(self.arr[sel])
        rows = np.asarray(sel)
        if rows.ndim == 1:
            return self._window(rows)
        out = np.empty((*rows.shape, *self.shape[1:]), self.dtype)
        for b in range(rows.shape[0]):
            out[b] = self._window(rows[b])
        return out


def _array(arr: Any, lazy: bool) -> Any:
    """A key's array as the sampler holds it: decoded in memory, or read per window."""
    if not lazy:
        return arr if isinstance(arr, np.ndarray) else np.asarray(arr[:])
    return arr if getattr(arr, "fancy_rows", False) or isinstance(arr, np.ndarray) else _LazyRows(arr)


class SequenceSampler:
    """Windows of ``sequence_length`` steps over ``replay_buffer`` (semantics in the module doc).

    ``keys`` default to every key of the buffer; they are decoded into memory at construction,
    except ``lazy_keys``, which are read from the buffer per window (decoding only the chunks the
    window uses: for image keys too large to hold decoded, e.g. full-resolution cameras). With
    every key lazy over :meth:`ReplayBuffer.on_disk` arrays, memory stays the chunk cache's
    bound whatever the view's size (larger-than-memory training).
    """

    def __init__(
        self,
        replay_buffer: ReplayBuffer,
        sequence_length: int,
        pad_before: int = 0,
        pad_after: int = 0,
        keys: Sequence[str] | None = None,
        key_first_k: Mapping[str, int] | None = None,
        episode_mask: np.ndarray | None = None,
        key_downsample: Mapping[str, int] | None = None,
        lazy_keys: Sequence[str] = (),
    ) -> None:
        if sequence_length < 1:
            raise ValueError(f"sequence_length must be >= 1, got {sequence_length}")
        keys = list(replay_buffer.keys()) if keys is None else list(keys)
        for k in keys:
            replay_buffer[k]  # raises a KeyError naming the key
        key_first_k = dict(key_first_k or {})
        key_downsample = dict(key_downsample or {})
        for name, table in (("key_first_k", key_first_k), ("key_downsample", key_downsample)):
            for k, v in table.items():
                if k not in keys:
                    raise KeyError(f"{name} names '{k}', which is not among the sampled keys {keys}")
                if int(v) < 1:
                    raise ValueError(f"{name}['{k}'] must be >= 1, got {v}")
        for k in lazy_keys:
            if k not in keys:
                raise KeyError(f"lazy_keys names '{k}', which is not among the sampled keys {keys}")
        ends = replay_buffer.episode_ends
        if episode_mask is None:
            episode_mask = np.ones(len(ends), dtype=bool)
        self.sequence_length = int(sequence_length)
        self.pad_before, self.pad_after = int(pad_before), int(pad_after)
        self.keys = keys
        self.key_first_k = key_first_k
        self.key_downsample = key_downsample
        self.episode_mask = np.asarray(episode_mask, dtype=bool)
        self.starts, self.episode_index, self.ep_starts, self.ep_ends = _window_starts(
            ends, self.sequence_length, self.episode_mask, self.pad_before, self.pad_after)
        self.indices = create_indices(ends, self.sequence_length, self.episode_mask,
                                      self.pad_before, self.pad_after)
        self.arrays: dict[str, Any] = {k: _array(replay_buffer[k], k in lazy_keys) for k in keys}
        self._steps = np.arange(self.sequence_length)

    def __len__(self) -> int:
        return len(self.starts)

    def _rows(self, idx: np.ndarray) -> np.ndarray:
        rows = self.starts[idx][:, None] + self._steps
        return np.clip(rows, self.ep_starts[idx][:, None], self.ep_ends[idx][:, None] - 1)

    def _valid_length(self, idx: np.ndarray, k: int) -> np.ndarray:
        """Per window, how many leading positions key_first_k leaves real (S: all)."""
        bs, be, ss, _ = self.indices[idx].T
        k_data = np.minimum(k, be - bs)
        return np.where(k_data < be - bs, ss + k_data, self.sequence_length)

    @staticmethod
    def _blank(shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """Array for a key_first_k window: NaN for floats, zeros otherwise (np.zeros is
        calloc-backed, so unloaded image frames cost no copying)."""
        if dtype.kind in "fc":
            return np.full(shape, np.nan, dtype=dtype)
        return np.zeros(shape, dtype=dtype)

    def sample_batch(self, indices: Sequence[int] | np.ndarray,
                     first_k_only: bool = False) -> dict[str, np.ndarray]:
        """Windows ``indices`` stacked: ``{key: array[B, S (or ceil(S/d)), ...]}``.

        ``first_k_only=True`` returns key_first_k keys cut to their first ``k`` positions
        (``[B, k, ...]``, what a policy's observation window uses) without materialising
        the unloaded rest of the window, which is most of the cost for image keys.
        """
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"window index out of range: the sampler has {n} windows")
        idx = idx % max(n, 1)
        rows = self._rows(idx)
        out: dict[str, np.ndarray] = {}
        for key in self.keys:
            arr = self.arrays[key]
            d = self.key_downsample.get(key, 1)
            k = self.key_first_k.get(key)
            if k is None:
                out[key] = arr[rows[:, ::d]] if d > 1 else arr[rows]
                continue
            valid = self._valid_length(idx, k)
            width = min(k, self.sequence_length) if first_k_only else self.sequence_length
            top = min(int(valid.max()) if len(valid) else 0, width)
            data = self._blank((len(idx), width, *arr.shape[1:]), arr.dtype)
            data[:, :top] = arr[rows[:, :top]]  # gather only positions that can be real
            unloaded = self._steps[None, :top] >= valid[:, None]
            if unloaded.any():
                data[:, :top][unloaded] = np.nan if arr.dtype.kind in "fc" else 0
            out[key] = data[:, ::d] if d > 1 else data
        return out

    def sample_sequence(self, idx: int) -> dict[str, np.ndarray]:
        """Window ``idx``: ``{key: array[S (or ceil(S/d)), ...]}``."""
        n = len(self)
        if not -n <= idx < n:
            raise IndexError(f"window {idx} out of range: the sampler has {n} windows")
        idx %= n
        s0, lo, hi = int(self.starts[idx]), int(self.ep_starts[idx]), int(self.ep_ends[idx])
        s = self.sequence_length
        padded = s0 < lo or s0 + s > hi
        rows = np.clip(s0 + self._steps, lo, hi - 1) if padded else None
        bs, be = max(s0, lo), min(s0 + s, hi)  # in-episode rows of the window
        out: dict[str, np.ndarray] = {}
        for key in self.keys:
            arr = self.arrays[key]
            k = self.key_first_k.get(key)
            if k is None:
                data = arr[rows] if padded else arr[s0:s0 + s].copy()
            else:
                k_data = min(k, be - bs)
                top = (bs - s0) + k_data if k_data < be - bs else s
                data = self._blank((s, *arr.shape[1:]), arr.dtype)
                data[:top] = arr[rows[:top]] if padded else arr[s0:s0 + top]
            d = self.key_downsample.get(key, 1)
            out[key] = data[::d] if d > 1 else data
        return out

    def output_length(self, key: str) -> int:
        return math.ceil(self.sequence_length / self.key_downsample.get(key, 1))


def get_val_mask(n_episodes: int, val_ratio: float, seed: int = 0) -> np.ndarray:
    """Boolean mask of validation episodes (diffusion_policy's split, seeded).

    ``val_ratio > 0`` always yields at least one validation and one training episode,
    so it needs ``n_episodes >= 2``; ``val_ratio <= 0`` returns all-False.
    """
    mask = np.zeros(n_episodes, dtype=bool)
    if val_ratio <= 0:
        return mask
    if n_episodes < 2:
        raise ValueError(f"a train/val split needs at least 2 episodes, got {n_episodes}")
    n_val = min(max(1, round(n_episodes * val_ratio)), n_episodes - 1)
    rng = np.random.default_rng(seed=seed)
    mask[rng.choice(n_episodes, size=n_val, replace=False)] = True
    return mask


def describe(sampler: SequenceSampler) -> dict[str, Any]:
    return {"windows": len(sampler), "sequence_length": sampler.sequence_length,
            "pad_before": sampler.pad_before, "pad_after": sampler.pad_after,
            "keys": sampler.keys, "episodes": int(sampler.episode_mask.sum())}
