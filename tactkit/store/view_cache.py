"""Cached training views: a store aligned once per (content, fps, keys), then reused.

Training needs the store on a fixed control grid (:func:`tactkit.store.align`). Aligning a
large store on every run costs minutes, so :func:`cached_view` writes the aligned view once,
under a key that hashes the store's committed episodes and their content digests, the fps,
the keys and the interpolation, and reuses it while all of those stay the same: a new,
recovered or changed episode gives a new key and a new view.

Where: ``$TACTKIT_CACHE_DIR/views/`` if set, else ``$XDG_CACHE_HOME/tactkit/views/``, else
``~/.cache/tactkit/views/`` (on the machine that trains, also when the store is an fsspec
URL). Each view is a Zarr 3 replay buffer ``<key>.zarr`` (camera frames copied from the store
as recorded, everything else lossless, a CRC-32C per chunk). ``tactkit dataset cache`` lists
them; ``tactkit dataset cache --clear`` (or deleting the directory) clears them. A view is
built under a temporary name and renamed into place, and concurrent builders (processes of
one ``accelerate launch``) wait on a lock file, so a view on disk is always complete.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.store import _paths
from tactkit.store.align import DEFAULT_INTERPOLATE, align
from tactkit.store.episode_store import EpisodeStore
from tactkit.store.errors import StoreError
from tactkit.store.replay_buffer import ReplayBuffer, ReplayBufferWriter

log = logging.getLogger(__name__)

#: Bump when the view's content for the same inputs changes (alignment semantics, layout).
VIEW_VERSION = 1


def cache_dir() -> Path:
    """The cache directory (see the module doc)."""
    if os.environ.get("TACTKIT_CACHE_DIR"):
        return Path(os.environ["TACTKIT_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "tactkit"


def view_key(store: EpisodeStore, fps: float, keys: Sequence[str],
             interpolate: Sequence[str] = DEFAULT_INTERPOLATE, episodes: Sequence[int] | None = None) -> str:
    """The hash a cached view is filed under (store content, fps, keys, interpolation, and the
    selected episodes when not all)."""
    doc: dict[str, Any] = {
        "view_version": VIEW_VERSION,
        "episodes": store.content_key(),
        "streams": {k: store.streams[k].to_json() for k in keys},
        "fps": float(fps),
        "keys": list(keys),
        "interpolate": list(interpolate),
    }
    if episodes is not None:
        doc["selected"] = [int(i) for i in episodes]
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def cached_view(store: EpisodeStore, fps: float, keys: Sequence[str],
                interpolate: Sequence[str] = DEFAULT_INTERPOLATE, workers: int = 1,
                directory: Path | None = None, progress: bool = False,
                episodes: Sequence[int] | None = None) -> ReplayBuffer:
    """The aligned view of ``store`` (opened from the cache, built there first if needed);
    ``episodes``: committed episode indices to align (default all).

    Building checks the store as it reads it, in one pass: every episode's metadata and commit
    record (equal to the index's copy), every stream's sample count and every chunk (present,
    CRC-32C, content digest), so a view never holds data that differs from what was committed;
    a problem is a :class:`StoreError` naming episode, stream and chunk."""
    keys = list(keys)
    key = view_key(store, fps, keys, interpolate, episodes)
    views = (directory or cache_dir()) / "views"
    views.mkdir(parents=True, exist_ok=True)
    target = views / f"{key}.zarr"
    with open(views / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait and then reuse
        if target.exists():
            try:
                rb = ReplayBuffer.open(target)
                if rb.attrs.get("cache_key") == key:
                    log.info("training view of %s: cached %s", store.path, target)
                    return rb
            except (StoreError, OSError, KeyError, ValueError) as exc:
                log.warning("cached view %s unreadable (%s); rebuilding it", target, exc)
            shutil.rmtree(target, ignore_errors=True)
        if store.damaged:
            raise StoreError(f"store {store.path}: unreadable commit records: "
                             + "; ".join(store.damaged.values()))
        tmp = views / f"{key}.zarr.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        t0 = time.perf_counter()
        try:
            align(store, fps=fps, keys=keys, interpolate=interpolate, out=str(tmp), workers=workers,
                  progress=progress, attrs={"cache_key": key, "created_wall_time": time.time()},
                  check=True, episodes=episodes)
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        log.info("training view of %s: built %s in %.1f s", store.path, target, time.perf_counter() - t0)
        return ReplayBuffer.open(target)


def derived_view(view: ReplayBuffer, name: str, keys: Sequence[str],
                 transform: Callable[[dict[str, np.ndarray]], dict[str, np.ndarray]],
                 directory: Path | None = None) -> ReplayBuffer | None:
    """A cached view of ``transform`` applied, episode by episode, to ``keys`` of a cached
    ``view`` (e.g. camera frames resized to a policy's input size, kept lossless), filed under
    the view's key and ``name``; ``None`` when ``view`` is not a cached view. Memory stays one
    episode."""
    base = view.attrs.get("cache_key")
    if not base:
        return None
    views = (directory or cache_dir()) / "views"
    key = hashlib.sha256(f"{base}/{name}/{','.join(keys)}".encode()).hexdigest()[:32]
    target = views / f"{key}.zarr"
    with open(views / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            try:
                rb = ReplayBuffer.open(target)
                if rb.attrs.get("cache_key") == key:
                    return rb
            except (StoreError, OSError, KeyError, ValueError) as exc:
                log.warning("cached view %s unreadable (%s); rebuilding it", target, exc)
            shutil.rmtree(target, ignore_errors=True)
        tmp = views / f"{key}.zarr.tmp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        src = view.on_disk(cache_bytes=0)
        try:
            writer = ReplayBufferWriter(tmp, image_quality=None, attrs={
                **view.attrs, "cache_key": key, "derived_from": base, "derivation": name,
                "keys": list(keys), "created_wall_time": time.time()})
            for i in range(view.n_episodes):
                sl = view.episode_slice(i)
                writer.add_episode(transform({k: np.asarray(src[k][sl]) for k in keys}))
            writer.close()
            os.rename(tmp, target)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return ReplayBuffer.open(target)


def list_views(directory: Path | None = None) -> list[dict[str, Any]]:
    """Cached views: path, source store, fps, keys, episodes, steps, bytes, created."""
    views = (directory or cache_dir()) / "views"
    out = []
    for p in sorted(views.glob("*.zarr")) if views.is_dir() else []:
        entry: dict[str, Any] = {"path": str(p), "bytes": _paths.size_on_disk(p)}
        try:
            rb = ReplayBuffer.open(p)
            entry.update(source=rb.attrs.get("source"), fps=rb.attrs.get("fps"), keys=rb.attrs.get("keys"),
                         episodes=rb.n_episodes, steps=rb.n_steps,
                         created_wall_time=rb.attrs.get("created_wall_time"))
        except (StoreError, OSError, KeyError, ValueError) as exc:
            entry["error"] = str(exc)
        out.append(entry)
    return out


def clear_views(directory: Path | None = None) -> int:
    """Delete every cached view (and leftovers of interrupted builds); returns bytes freed."""
    views = (directory or cache_dir()) / "views"
    freed = _paths.size_on_disk(views) or 0
    shutil.rmtree(views, ignore_errors=True)
    return freed
