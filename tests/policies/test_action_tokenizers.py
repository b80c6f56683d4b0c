"""Baseline action tokenizers: per-step binning and FAST (DCT + byte-level BPE)."""

from __future__ import annotations

import numpy as np
import pytest

from tactkit.policies.tokenizers import BinningTokenizer, FastDecodeError, FastTokenizer


def chunks(seed: int, n: int, t: int, d: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    s = np.linspace(0, 1, t)[None, :, None]
    x = rng.uniform(0.1, 0.6, (n, 1, d)) * np.sin(2 * np.pi * rng.uniform(0.2, 1.0, (n, 1, d)) * s + rng.uniform(0, 6.3, (n, 1, d)))
    return x * rng.uniform(0.5, 3.0, d) + rng.normal(0, 0.1, d)


def test_binning_roundtrip_within_half_bin() -> None:
    data = chunks(0, 200, 10, 7)
    tok = BinningTokenizer(7, 10).fit(data)
    tokens = tok.encode(data)
    assert tokens.shape == (200, 70) and tokens.min() >= 0 and tokens.max() <= 255
    err = tok.normalizer.normalize(tok.decode(tokens)) - tok.normalizer.normalize(data)
    assert np.abs(err).max() <= 1.0 / 256 + 1e-12
    assert np.abs(err).max() > 0.5 / 256  # it really quantises
    res = tok.decode_batch([tokens[0], tokens[1][:-1], np.full(70, 256)])
    assert list(res.valid) == [True, False, False]
    assert "outside the vocabulary" in res.errors[2]
    assert np.isnan(res.actions[1]).all() and np.isnan(res.actions[2]).all()


def test_fast_roundtrip_compresses_and_matches_dct_quantisation() -> None:
    data = chunks(1, 600, 16, 7)
    tok = FastTokenizer(7, 16, scale=10.0, vocab_size=1024).fit(data[:500])
    assert 257 < tok.vocab_size <= 1024
    test = data[500:]
    tokens = tok.encode_batch(test)
    lengths = np.array([len(t) for t in tokens])
    assert lengths.mean() < 16 * 7 / 2  # BPE compresses the sparse coefficient strings
    res = tok.decode_batch(tokens)
    assert res.valid.all()
    # lossless apart from the rounding of scaled DCT coefficients (orthonormal: same error norm)
    norm = tok.normalizer
    err = norm.normalize(res.actions) - norm.normalize(test)
    per_chunk = np.sqrt(np.sum(err**2, axis=(1, 2)))
    bound = 0.5 / tok.scale * np.sqrt(16 * 7)
    assert per_chunk.max() <= bound + 1e-9
    np.testing.assert_allclose(tok.decode(tokens), res.actions)


def test_fast_invalid_sequences_are_reported_not_zeroed() -> None:
    data = chunks(2, 300, 10, 7)
    tok = FastTokenizer(7, 10).fit(data)
    tokens = tok.encode_batch(data[:50])
    rng = np.random.default_rng(3)
    broken = [t[:-1] for t in tokens[:10]]  # too few coefficients
    broken += [np.concatenate([t, t[:3]]) for t in tokens[10:20]]  # too many
    subst = []
    for t in tokens[20:50]:
        s = t.copy()
        s[rng.integers(0, len(s), 2)] = rng.integers(0, tok.vocab_size, 2)
        subst.append(s)
    res = tok.decode_batch(broken + subst)
    assert not res.valid[:20].any()
    assert all("expected T*D" in e or "invalid UTF-8" in e for e in res.errors[:20])
    assert np.isnan(res.actions[~res.valid]).all() and np.isfinite(res.actions[res.valid]).all()
    # substitutions mostly change the decoded length: FAST loses chunks BEAST would not
    assert res.valid[20:].mean() < 1.0
    with pytest.raises(FastDecodeError, match="chunk 0"):
        tok.decode(broken[:1])
    with pytest.raises(FastDecodeError, match="outside the vocabulary"):
        tok.decode([np.array([tok.vocab_size + 5])])


def test_baselines_reject_bad_input() -> None:
    with pytest.raises(ValueError, match=r"shape \[B, 10, 7\]"):
        BinningTokenizer(7, 10).fit(np.zeros((3, 9, 7)))
    bad = chunks(4, 20, 10, 7)
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        FastTokenizer(7, 10).fit(bad)
    with pytest.raises(RuntimeError, match="not fitted"):
        FastTokenizer(7, 10).encode_batch(chunks(4, 2, 10, 7))


def test_constant_dimension_is_centred_not_blown_up() -> None:
    from tactkit.policies.tokenizers import MinMaxNormalizer

    data = chunks(5, 50, 10, 3)
    data[..., 1] = 1.0  # e.g. the w of a constant quaternion
    norm = MinMaxNormalizer.fit(data)
    np.testing.assert_allclose(norm.normalize(data)[..., 1], 0.0)
    nudged = data.copy()
    nudged[..., 1] += 1e-9  # round-off stays round-off (scale 1), not a full-range error
    np.testing.assert_allclose(norm.normalize(nudged)[..., 1], 1e-9, atol=1e-12)
    np.testing.assert_allclose(norm.unnormalize(norm.normalize(data)), data, atol=1e-12)
    tok = FastTokenizer(3, 10).fit(data)
    res = tok.decode_batch(tok.encode_batch(data))
    assert res.valid.all() and np.abs(res.actions[..., 1] - 1.0).max() < 0.05
