"""The small interface every action tokenizer offers to the benchmark and to policies.

Token sequences may differ in length between chunks (FAST), so the batch API works on lists
of 1-D integer arrays. Decoding never invents actions: a sequence that cannot be decoded
gives a row of NaN and ``valid = False`` with a reason, never zeros.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class DecodeResult:
    """Decoded chunks ``actions [B, T, D]`` (NaN rows where invalid), ``valid [B]``, ``errors``."""

    actions: np.ndarray
    valid: np.ndarray
    errors: list[str | None]

    @property
    def valid_fraction(self) -> float:
        return float(np.mean(self.valid)) if self.valid.size else 1.0


class ActionTokenizer(abc.ABC):
    """Turns action chunks ``[B, T, D]`` into integer token sequences and back."""

    name: str = "tokenizer"
    action_dim: int
    chunk_len: int

    @property
    @abc.abstractmethod
    def vocab_size(self) -> int:
        """Number of distinct token ids; valid ids are ``0 .. vocab_size - 1``."""

    @abc.abstractmethod
    def fit(self, actions: np.ndarray) -> ActionTokenizer:
        """Fit normalisation / vocabulary on training chunks ``[num_chunks, T, D]``; returns self."""

    @abc.abstractmethod
    def encode_batch(self, actions: np.ndarray) -> list[np.ndarray]:
        """One 1-D int64 token array per chunk."""

    @abc.abstractmethod
    def decode_batch(self, tokens: Sequence[np.ndarray]) -> DecodeResult:
        """Decode token arrays; invalid sequences are reported in the result, not raised."""


def check_chunks(actions: np.ndarray, action_dim: int, chunk_len: int, name: str = "actions") -> np.ndarray:
    """Validate ``[B, T, D]`` finite float chunks; returns a float64 array."""
    x = np.asarray(actions)
    if x.ndim != 3 or x.shape[1] != chunk_len or x.shape[2] != action_dim:
        raise ValueError(
            f"{name} must have shape [B, {chunk_len}, {action_dim}] (chunk_len, action_dim), got {x.shape}"
        )
    if not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}")
    x = x.astype(np.float64, copy=False)
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contain NaN or inf")
    return x


class MinMaxNormalizer:
    """Per-dimension affine map of the training range ``[min, max]`` onto ``[-1, 1]``.

    A (near-)constant dimension, range below ``range_eps``, is only centred (scale 1), as
    diffusion_policy's normaliser does, so round-off is not blown up into large errors.
    """

    def __init__(self, low: np.ndarray, high: np.ndarray, range_eps: float = 1e-4) -> None:
        low = np.asarray(low, dtype=np.float64)
        high = np.asarray(high, dtype=np.float64)
        mid = 0.5 * (low + high)
        narrow = (high - low) < range_eps
        self.low = np.where(narrow, mid - 1.0, low)
        self.high = np.where(narrow, mid + 1.0, high)

    @classmethod
    def fit(cls, actions: np.ndarray) -> MinMaxNormalizer:
        flat = np.asarray(actions, dtype=np.float64).reshape(-1, np.shape(actions)[-1])
        return cls(flat.min(axis=0), flat.max(axis=0))

    def normalize(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * (x - self.low) / (self.high - self.low) - 1.0

    def unnormalize(self, y: np.ndarray) -> np.ndarray:
        return (y + 1.0) * 0.5 * (self.high - self.low) + self.low
