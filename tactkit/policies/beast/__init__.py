"""BEAST: B-spline encoded action sequences (tokenizer; the policy builds on it)."""

from tactkit.policies.beast.tokenizer import BeastTokenizer

__all__ = ["BeastTokenizer"]
