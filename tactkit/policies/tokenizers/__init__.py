"""Action tokenizers behind one small interface: BEAST (in :mod:`tactkit.policies.beast`),
FAST (DCT + byte-level BPE) and per-step uniform binning."""

from tactkit.policies.tokenizers.base import ActionTokenizer, DecodeResult, MinMaxNormalizer
from tactkit.policies.tokenizers.binning import BinningTokenizer
from tactkit.policies.tokenizers.fast import FastDecodeError, FastTokenizer

__all__ = [
    "ActionTokenizer",
    "BinningTokenizer",
    "DecodeResult",
    "FastDecodeError",
    "FastTokenizer",
    "MinMaxNormalizer",
]
