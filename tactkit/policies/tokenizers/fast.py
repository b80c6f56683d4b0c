"""FAST (frequency-space action sequence tokenization) baseline.

Per chunk: min-max normalise each dimension to [-1, 1], orthonormal DCT-II along time,
scale and round (``scale`` 10 by default), flatten low-frequency first (all dimensions of
frequency 0, then frequency 1, ...), map each integer to one character and compress the
string with a byte-level BPE (``tokenizers``, vocabulary 1024 by default) trained on the
training chunks. The token count therefore varies from chunk to chunk.

Decoding a token sequence that does not give exactly ``T * D`` coefficients (or gives bytes
that are not valid characters) is an error: :meth:`FastTokenizer.decode` raises
:class:`FastDecodeError` and :meth:`FastTokenizer.decode_batch` reports ``valid = False`` with
a NaN row. It never pads or truncates to zeros.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.fft import dct, idct

from tactkit.policies.tokenizers.base import (
    ActionTokenizer,
    DecodeResult,
    MinMaxNormalizer,
    check_chunks,
)

_MAX_CODE = 0xD7FF  # stay below the UTF-16 surrogate range


class FastDecodeError(ValueError):
    """A FAST token sequence does not decode to a ``[T, D]`` chunk."""


class FastTokenizer(ActionTokenizer):
    """DCT + scale-and-round + byte-level BPE action tokenizer."""

    name = "fast"

    def __init__(self, action_dim: int, chunk_len: int, scale: float = 10.0, vocab_size: int = 1024, min_frequency: int = 2) -> None:
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        if vocab_size < 257:
            raise ValueError(f"vocab_size must exceed the 256 byte tokens, got {vocab_size}")
        self.action_dim, self.chunk_len = int(action_dim), int(chunk_len)
        self.scale, self._vocab_target, self.min_frequency = float(scale), int(vocab_size), int(min_frequency)
        self.normalizer: MinMaxNormalizer | None = None
        self.min_token = 0
        self._bpe = None

    @property
    def vocab_size(self) -> int:
        if self._bpe is None:
            return self._vocab_target
        return int(self._bpe.get_vocab_size())

    # ------------------------------------------------------------------ coefficients <-> text
    def coefficients(self, actions: np.ndarray) -> np.ndarray:
        """Rounded scaled DCT coefficients ``[B, T * D]`` (int64), low frequency first."""
        if self.normalizer is None:
            raise RuntimeError("FastTokenizer is not fitted: call fit(actions) first")
        x = self.normalizer.normalize(check_chunks(actions, self.action_dim, self.chunk_len))
        coeff = dct(x, type=2, axis=1, norm="ortho")
        return np.rint(coeff * self.scale).astype(np.int64).reshape(x.shape[0], -1)

    def _to_text(self, ints: np.ndarray) -> list[str]:
        codes = np.clip(ints - self.min_token, 0, _MAX_CODE)
        return ["".join(map(chr, row)) for row in codes.tolist()]

    def fit(self, actions: np.ndarray) -> FastTokenizer:
        """Fit normalisation and train the BPE on the training chunks ``[num_chunks, T, D]``."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        x = check_chunks(actions, self.action_dim, self.chunk_len)
        self.normalizer = MinMaxNormalizer.fit(x)
        ints = self.coefficients(x)
        self.min_token = int(ints.min())
        bpe = Tokenizer(models.BPE())
        bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
        bpe.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self._vocab_target,
            min_frequency=self.min_frequency,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            special_tokens=[],
            show_progress=False,
        )
        bpe.train_from_iterator(self._to_text(ints), trainer=trainer)
        self._bpe = bpe
        return self

    def encode_batch(self, actions: np.ndarray) -> list[np.ndarray]:
        if self._bpe is None:
            raise RuntimeError("FastTokenizer is not fitted: call fit(actions) first")
        texts = self._to_text(self.coefficients(actions))
        return [np.asarray(e.ids, dtype=np.int64) for e in self._bpe.encode_batch(texts)]

    # ------------------------------------------------------------------ decoding
    def _decode_ints(self, ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise FastDecodeError(f"tokens must be a 1-D integer array, got {ids.dtype} {ids.shape}")
        vocab = self.vocab_size
        if ids.size and (ids.min() < 0 or ids.max() >= vocab):
            raise FastDecodeError(f"tokens outside the vocabulary [0, {vocab}): range [{ids.min()}, {ids.max()}]")
        text = self._bpe.decode(ids.tolist(), skip_special_tokens=False)
        if "\ufffd" in text:
            raise FastDecodeError("tokens decode to invalid UTF-8 bytes (not a coefficient string)")
        n = self.chunk_len * self.action_dim
        if len(text) != n:
            raise FastDecodeError(f"tokens decode to {len(text)} coefficients, expected T*D = {self.chunk_len}*{self.action_dim} = {n}")
        return np.fromiter((ord(c) for c in text), dtype=np.int64, count=n) + self.min_token

    def _ints_to_actions(self, ints: np.ndarray) -> np.ndarray:
        coeff = ints.reshape(-1, self.chunk_len, self.action_dim).astype(np.float64) / self.scale
        return self.normalizer.unnormalize(idct(coeff, type=2, axis=1, norm="ortho"))

    def decode(self, tokens: Sequence[np.ndarray]) -> np.ndarray:
        """Actions ``[B, T, D]``; raises :class:`FastDecodeError` naming the first bad chunk."""
        if self._bpe is None:
            raise RuntimeError("FastTokenizer is not fitted: call fit(actions) first")
        ints = []
        for i, row in enumerate(tokens):
            try:
                ints.append(self._decode_ints(row))
            except FastDecodeError as exc:
                raise FastDecodeError(f"chunk {i}: {exc}") from None
        if not ints:
            return np.zeros((0, self.chunk_len, self.action_dim))
        return self._ints_to_actions(np.stack(ints))

    def decode_batch(self, tokens: Sequence[np.ndarray]) -> DecodeResult:
        if self._bpe is None:
            raise RuntimeError("FastTokenizer is not fitted: call fit(actions) first")
        n = self.chunk_len * self.action_dim
        ints = np.zeros((len(tokens), n), dtype=np.int64)
        valid = np.zeros(len(tokens), dtype=bool)
        errors: list[str | None] = [None] * len(tokens)
        for i, row in enumerate(tokens):
            try:
                ints[i] = self._decode_ints(row)
                valid[i] = True
            except FastDecodeError as exc:
                errors[i] = str(exc)
        out = self._ints_to_actions(ints)
        out[~valid] = np.nan
        return DecodeResult(out, valid, errors)
