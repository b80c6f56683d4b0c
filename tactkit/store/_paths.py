"""Turning a local path or an fsspec URL into a zarr store."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import zarr
from zarr.storage import FsspecStore, LocalStore


def is_url(path: str | os.PathLike) -> bool:
    return "://" in str(path) and not str(path).startswith("file://")


def local_path(path: str | os.PathLike) -> Path | None:
    """The filesystem path for local stores, ``None`` for remote/in-memory URLs."""
    s = str(path)
    if s.startswith("file://"):
        return Path(s[len("file://"):])
    return None if is_url(s) else Path(s)


def make_store(path: str | os.PathLike, read_only: bool) -> Any:
    """A zarr store object for ``path`` (a directory or an fsspec URL such as ``memory://x``)."""
    lp = local_path(path)
    if lp is not None:
        return LocalStore(lp, read_only=read_only)
    return FsspecStore.from_url(str(path), read_only=read_only)


def exists(path: str | os.PathLike) -> bool:
    lp = local_path(path)
    if lp is not None:
        return lp.exists()
    try:
        zarr.open_group(make_store(path, read_only=True), mode="r")
        return True
    except Exception:
        return False


def size_on_disk(path: str | os.PathLike) -> int | None:
    """Total bytes of a local store's files (``None`` for URLs)."""
    lp = local_path(path)
    if lp is None or not lp.exists():
        return None
    total = 0
    for dirpath, _, files in os.walk(lp):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(dirpath, f))
            except OSError:
                pass
    return total
