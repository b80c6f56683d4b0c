"""Per-step uniform binning (RT-2 / OpenVLA style): one token per step and dimension."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tactkit.policies.tokenizers.base import (
    ActionTokenizer,
    DecodeResult,
    MinMaxNormalizer,
    check_chunks,
)


class BinningTokenizer(ActionTokenizer):
    """Min-max normalise each dimension to [-1, 1], then ``bins`` uniform bins; decode to bin centres.

    The round-trip error is at most half a bin (``1 / bins`` in normalised units) inside the
    fitted range; values outside it are clamped to the end bins.
    """

    name = "binning"

    def __init__(self, action_dim: int, chunk_len: int, bins: int = 256) -> None:
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        self.action_dim, self.chunk_len, self.bins = int(action_dim), int(chunk_len), int(bins)
        self.normalizer: MinMaxNormalizer | None = None

    @property
    def vocab_size(self) -> int:
        return self.bins

    def fit(self, actions: np.ndarray) -> BinningTokenizer:
        self.normalizer = MinMaxNormalizer.fit(check_chunks(actions, self.action_dim, self.chunk_len))
        return self

    def _norm(self) -> MinMaxNormalizer:
        if self.normalizer is None:
            raise RuntimeError("BinningTokenizer is not fitted: call fit(actions) first")
        return self.normalizer

    def encode(self, actions: np.ndarray) -> np.ndarray:
        """Tokens ``[B, T * D]`` (step-major)."""
        u = np.clip(self._norm().normalize(check_chunks(actions, self.action_dim, self.chunk_len)), -1.0, 1.0)
        k = np.clip(np.floor((u + 1.0) * 0.5 * self.bins), 0, self.bins - 1).astype(np.int64)
        return k.reshape(k.shape[0], -1)

    def decode(self, tokens: np.ndarray) -> np.ndarray:
        """Actions ``[B, T, D]`` from tokens ``[B, T * D]``; raises ``ValueError`` on bad tokens."""
        t = np.asarray(tokens)
        n = self.chunk_len * self.action_dim
        if t.ndim != 2 or t.shape[1] != n or not np.issubdtype(t.dtype, np.integer):
            raise ValueError(f"tokens must be integers of shape [B, {n}], got {t.dtype} {t.shape}")
        if t.size and (t.min() < 0 or t.max() >= self.bins):
            raise ValueError(f"tokens outside the vocabulary [0, {self.bins}): range [{t.min()}, {t.max()}]")
        centres = -1.0 + (t.astype(np.float64) + 0.5) * (2.0 / self.bins)
        return self._norm().unnormalize(centres.reshape(t.shape[0], self.chunk_len, self.action_dim))

    def encode_batch(self, actions: np.ndarray) -> list[np.ndarray]:
        return list(self.encode(actions))

    def decode_batch(self, tokens: Sequence[np.ndarray]) -> DecodeResult:
        out = np.full((len(tokens), self.chunk_len, self.action_dim), np.nan)
        valid = np.zeros(len(tokens), dtype=bool)
        errors: list[str | None] = [None] * len(tokens)
        for i, row in enumerate(tokens):
            try:
                out[i] = self.decode(np.asarray(row)[None, :])[0]
                valid[i] = True
            except ValueError as exc:
                errors[i] = str(exc)
        return DecodeResult(out, valid, errors)
