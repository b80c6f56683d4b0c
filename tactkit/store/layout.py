"""The episode store's on-disk layout: the one module that knows where things live.

Layout (Zarr format 3)::

    /                       attrs["tactkit"] = {format, format_version, streams: {key: StreamSpec}, attrs}
    /episodes/ep_000000/    attrs = {task, calibration, metadata, start_wall_time, start_time}
        <key>/values        [n, *shape]  images: JPEG, one frame per chunk; others: Blosc-zstd
        <key>/timestamps    float64 [n]  capture time, one monotonic clock domain; fill NaN
        commit/             attrs = commit record {success, note, metadata, lengths, ...}

An episode is committed iff its ``commit`` group exists; that group is written last and
nothing of a committed episode is written again. Root attributes are written once, at
creation.

This module creates, lists, commits and deletes those nodes and checks names and JSON;
:class:`tactkit.store.EpisodeStore` (the facade), the recorder and recovery all go through it.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import time
import warnings
from typing import Any

import numpy as np
import zarr

from tactkit.store import _paths
from tactkit.store.codecs import JpegCodec, lossless_compressor
from tactkit.store.errors import NotAStoreError, StoreError
from tactkit.store.schema import StreamSpec

FORMAT_NAME = "tactkit.episode_store"
FORMAT_VERSION = 1
EPISODE_RE = re.compile(r"^ep_(\d{6,})$")
#: Standard per-episode metadata fields (user metadata may not reuse these names).
STANDARD_FIELDS = ("task", "success", "note", "calibration", "start_wall_time", "start_time",
                   "end_wall_time", "recovered")
TIMESTAMP_CHUNK = 4096
_LOWDIM_CHUNK_BYTES = 128 * 1024
_LIST_LOCK = threading.Lock()


# ---------------------------------------------------------------------- checks
def check_key(key: str) -> None:
    """Raise ``ValueError`` unless ``key`` can name a stream (a zarr group name)."""
    if not key or "/" in key or key.startswith("__") or key in (".", ".."):
        raise ValueError(f"invalid stream key '{key}' (no '/', not empty, no leading '__')")


def check_json(field: str, obj: Any) -> None:
    """Raise ``ValueError`` naming ``field`` unless ``obj`` is JSON-serialisable (no NaN)."""
    try:
        json.dumps(obj, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{field} must be JSON-serialisable: {exc}") from None


def episode_name(number: int) -> str:
    return f"ep_{number:06d}"


def episode_number(name: str) -> int:
    m = EPISODE_RE.match(name)
    if m is None:
        raise ValueError(f"not an episode name: {name!r}")
    return int(m.group(1))


# ---------------------------------------------------------------------- root
def create_root(path: str | os.PathLike, info: dict[str, Any]) -> zarr.Group:
    """Write an empty store: root attributes ``{"tactkit": info}`` and the ``episodes`` group."""
    root = zarr.open_group(_paths.make_store(path, read_only=False), mode="w",
                           zarr_format=3, attributes={"tactkit": info})
    root.create_group("episodes")
    return root


def open_root(path: str | os.PathLike, mode: str) -> zarr.Group:
    """The root group of an existing store (``mode`` ``"r"`` or ``"a"``)."""
    lp = _paths.local_path(path)
    if lp is not None and not lp.exists():
        raise FileNotFoundError(f"{path}: no such episode store")
    if lp is not None and not (lp / "zarr.json").exists():
        raise NotAStoreError(f"{path}: not a tactkit episode store (no zarr.json)")
    try:
        return zarr.open_group(_paths.make_store(path, read_only=(mode == "r")),
                               mode="r" if mode == "r" else "r+")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError,
            zarr.errors.NodeTypeValidationError) as exc:
        raise NotAStoreError(f"{path}: not a tactkit episode store ({exc})") from None


def ensure_episodes_group(root: zarr.Group) -> None:
    """Create ``episodes`` when creation was interrupted right after the root."""
    if "episodes" not in root:
        root.create_group("episodes")


def episodes_group(root: zarr.Group, path: str) -> zarr.Group:
    try:
        return root["episodes"]
    except KeyError:
        raise StoreError(f"{path}: store has no 'episodes' group") from None


# ---------------------------------------------------------------------- listing
def list_episodes(root: zarr.Group, path: str) -> list[str]:
    """Names of the episode groups, sorted (committed or not)."""
    with _LIST_LOCK, warnings.catch_warnings():  # catch_warnings is process-global state
        # temp files of an interrupted atomic write are not zarr nodes; recover() removes them
        warnings.filterwarnings("ignore", message=".*not recognized as a component")
        names = list(episodes_group(root, path).group_keys())
    return sorted(n for n in names if EPISODE_RE.match(n))


def read_commit(root: zarr.Group, path: str, name: str) -> dict[str, Any] | None:
    """The commit record of episode ``name``, ``None`` if it is not committed."""
    try:
        return dict(episodes_group(root, path)[f"{name}/commit"].attrs)
    except KeyError:
        return None


def list_committed(root: zarr.Group, path: str) -> list[tuple[str, dict[str, Any]]]:
    """``(name, commit record)`` of every committed episode, in name order."""
    out = []
    for name in list_episodes(root, path):
        record = read_commit(root, path, name)
        if record is not None:
            out.append((name, record))
    return out


def next_episode_name(root: zarr.Group, path: str) -> str:
    """The name after every existing episode, including half-deleted episode directories."""
    names = list_episodes(root, path)
    lp = _paths.local_path(path)
    if lp is not None and (lp / "episodes").is_dir():
        # also skip names of half-deleted episode directories (no zarr.json left)
        names += [p.name for p in (lp / "episodes").iterdir() if EPISODE_RE.match(p.name)]
    return episode_name(max((episode_number(n) for n in names), default=-1) + 1)


# ---------------------------------------------------------------------- episodes
def lowdim_chunk(spec: StreamSpec) -> int:
    """Rows per chunk of a non-image stream (~128 KiB, 64..4096 rows)."""
    row = max(1, int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize)
    return int(max(64, min(TIMESTAMP_CHUNK, _LOWDIM_CHUNK_BYTES // row)))


def is_jpeg_stream(spec: StreamSpec) -> bool:
    return spec.is_image and spec.shape[-1] in (1, 3)


def create_episode(root: zarr.Group, path: str, name: str, task: str, metadata: dict[str, Any],
                   calibration: dict[str, Any] | None, start_time: float | None) -> zarr.Group:
    """Create the group of a new episode with its begin-time attributes."""
    attrs = {
        "task": str(task),
        "metadata": metadata,
        "calibration": calibration or {},
        "start_wall_time": time.time(),
        "start_time": float(time.monotonic() if start_time is None else start_time),
    }
    return episodes_group(root, path).create_group(name, attributes=attrs)


def create_stream(group: zarr.Group, key: str, spec: StreamSpec,
                  image_quality: int) -> tuple[zarr.Array, zarr.Array]:
    """Create ``<key>/values`` and ``<key>/timestamps`` of an episode being recorded, with
    room for about ten seconds (they grow as needed)."""
    sg = group.create_group(key)
    if is_jpeg_stream(spec):
        cap = max(8, int(math.ceil(spec.rate_hz * 10)))
        values = sg.create_array(
            "values", shape=(cap, *spec.shape), chunks=(1, *spec.shape), dtype="uint8",
            serializer=JpegCodec(quality=image_quality), compressors=None, fill_value=0,
        )
    else:
        chunk = lowdim_chunk(spec)
        cap = chunk * max(1, int(math.ceil(spec.rate_hz * 10 / chunk)))
        values = sg.create_array(
            "values", shape=(cap, *spec.shape), chunks=(chunk, *spec.shape), dtype=spec.dtype,
            compressors=lossless_compressor(np.dtype(spec.dtype).itemsize), fill_value=0,
        )
    timestamps = sg.create_array(
        "timestamps", shape=(values.shape[0],), chunks=(TIMESTAMP_CHUNK,), dtype="float64",
        compressors=lossless_compressor(8), fill_value=np.nan,
    )
    return values, timestamps


def create_empty_stream(group: zarr.Group, key: str, spec: StreamSpec) -> None:
    """Zero-length arrays for a stream that was never created (recovery)."""
    sg = group.require_group(key)
    sg.create_array("values", shape=(0, *spec.shape), dtype=spec.dtype, overwrite=True)
    sg.create_array("timestamps", shape=(0,), dtype="float64", overwrite=True)


def write_commit(root: zarr.Group, path: str, name: str, record: dict[str, Any]) -> None:
    """Commit episode ``name``: its ``commit`` group, whose attributes are ``record``,
    is the last thing written to it."""
    episodes_group(root, path)[name].create_group("commit", attributes=record)


def delete_episode(root: zarr.Group, path: str, name: str) -> None:
    del episodes_group(root, path)[name]


def remove_temp_files(path: str) -> None:
    """Delete temp files that a killed atomic write left behind (local stores)."""
    lp = _paths.local_path(path)
    if lp is not None:
        for p in lp.rglob("*.partial"):
            p.unlink(missing_ok=True)
