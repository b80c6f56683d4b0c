"""Errors raised by the episode store. All are ``ValueError``s so the CLI prints them cleanly."""

from __future__ import annotations


class StoreError(ValueError):
    """Bad or unreadable store content; the message names the path/key and the problem."""


class NotAStoreError(StoreError):
    """The path exists but holds no tactkit episode store."""


class FormatVersionError(StoreError):
    """The store was written by a newer tactkit (format version above what we read)."""


class SampleError(ValueError):
    """A sample handed to a recorder is invalid (wrong shape/dtype, NaN or backwards time)."""
