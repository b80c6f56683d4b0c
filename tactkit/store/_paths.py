"""Turning a local path or an fsspec URL into a zarr store."""

from __future__ import annotations

import os
import uuid
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


class KeyIO:
    """Plain object access (get, set, delete, list) to a store at a local path or fsspec URL.

    Local stores use the filesystem directly and write each object to a temporary file that is
    renamed into place (as zarr's LocalStore does), so a kill leaves an object old or new, never
    torn; other URLs go through the zarr store's async API. ``atomic=False`` writes in place
    (for outputs built under a temporary name, where the rename costs time for nothing).
    """

    def __init__(self, path: str | os.PathLike, read_only: bool = True, atomic: bool = True) -> None:
        self.path = str(path)
        self.read_only = read_only
        self.atomic = atomic
        self.local = local_path(path)
        self._root = None if self.local is None else str(self.local)
        self._zstore: Any = None if self.local is not None else make_store(path, read_only=read_only)

    def _sync(self, coro: Any) -> Any:
        from zarr.core.sync import sync

        return sync(coro)

    def _file(self, key: str) -> str:
        return f"{self._root}/{key}"

    def get(self, key: str) -> bytes | None:
        """The bytes of object ``key``, ``None`` when it does not exist."""
        if self._root is not None:
            try:
                with open(f"{self._root}/{key}", "rb") as f:
                    return f.read()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                return None
        return self.get_many([key])[0]

    def get_many(self, keys: list[str]) -> list[bytes | None]:
        if self._root is not None:
            return [self.get(k) for k in keys]
        import asyncio

        from zarr.core.buffer import default_buffer_prototype

        proto = default_buffer_prototype()

        async def fetch() -> list[Any]:
            return await asyncio.gather(*(self._zstore.get(k, proto) for k in keys))

        return [None if b is None else b.to_bytes() for b in self._sync(fetch())]

    def set(self, key: str, data: bytes) -> None:
        if self.read_only:
            raise PermissionError(f"{self.path} is opened read-only; cannot write {key}")
        if self._root is not None:
            target = f"{self._root}/{key}"
            tmp = f"{target}.{uuid.uuid4().hex}.partial" if self.atomic else target
            try:
                f = open(tmp, "wb")
            except FileNotFoundError:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                f = open(tmp, "wb")
            with f:
                f.write(data)
            if self.atomic:
                os.replace(tmp, target)
            return
        from zarr.core.buffer import default_buffer_prototype

        self._sync(self._zstore.set(key, default_buffer_prototype().buffer.from_bytes(data)))

    def exists(self, key: str) -> bool:
        """Whether object ``key`` exists (local: also a directory of that name)."""
        if self._root is not None:
            return os.path.exists(f"{self._root}/{key}")
        return bool(self._sync(self._zstore.exists(key)))

    def delete(self, key: str) -> None:
        if self._root is not None:
            try:
                os.unlink(f"{self._root}/{key}")
            except FileNotFoundError:
                pass
            return
        self._sync(self._zstore.delete(key))

    def delete_prefix(self, prefix: str) -> None:
        """Delete every object under ``prefix/`` (a local directory: the whole tree)."""
        if self._root is not None:
            import shutil

            shutil.rmtree(f"{self._root}/{prefix}", ignore_errors=True)
            return
        self._sync(self._zstore.delete_dir(prefix))

    def list_dir(self, prefix: str) -> list[str]:
        """Names directly under ``prefix`` (objects and sub-prefixes), without temp files."""
        if self._root is not None:
            try:
                names = os.listdir(f"{self._root}/{prefix}")
            except (FileNotFoundError, NotADirectoryError):
                return []
            return [n for n in names if not n.endswith(".partial")]

        async def collect() -> list[str]:
            return [n async for n in self._zstore.list_dir(prefix)]

        return [n for n in self._sync(collect()) if not n.endswith(".partial")]

    def list_prefix(self, prefix: str) -> list[str]:
        """Keys of every object under ``prefix/``, relative to it."""
        if self._root is not None:
            base = f"{self._root}/{prefix}"
            out = []
            for dirpath, _, files in os.walk(base):
                rel = os.path.relpath(dirpath, base)
                out += [f if rel == "." else f"{rel}/{f}" for f in files if not f.endswith(".partial")]
            return out

        async def collect() -> list[str]:
            return [k async for k in self._zstore.list_prefix(prefix.rstrip("/") + "/")]

        n = len(prefix.rstrip("/")) + 1
        return [k[n:] for k in self._sync(collect()) if not k.endswith(".partial")]
