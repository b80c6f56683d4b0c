"""The episode store's on-disk layout: the one module that knows where things live.

Layout (Zarr format 3)::

    /                       attrs["tactkit"] = {format, format_version, streams: {key: StreamSpec}, attrs}
    /episodes/ep_000000/    attrs = {task, calibration, metadata, start_wall_time, start_time}
        <key>/values        [n, *shape]  images: JPEG, one frame per chunk; others: Blosc-zstd
        <key>/timestamps    float64 [n]  capture time, one monotonic clock domain; fill NaN
        commit/             attrs = commit record {success, note, metadata, lengths, t_first,
                            t_last, digests, stored_bytes, end_wall_time, recovered}
    /discards/ep_000007.json   an episode being discarded (written before any deletion)
    /index/                 the committed-episode index (:mod:`tactkit.store.index`): derived
                            data, rebuilt from the commit records whenever missing or stale

An episode is committed iff its ``commit`` group exists; that group is written last and
nothing of a committed episode is written again. Root attributes are written once, at
creation.

Format 2 (this version) adds integrity: every chunk of every array ends in a CRC-32C
(Zarr 3's ``crc32c`` codec), every chunk is written even when it equals the fill value (so a
missing chunk is damage, not zeros), chunk keys use ``.`` (``c.12.0.0.0``: one file per
chunk), and the commit record holds per-stream sample counts and content digests (SHA-256 of
the stored chunks, :func:`tactkit.store.integrity.content_digests`). Format 1 stores (no
checksums, no digests, all-fill chunks never written) are read as before.

This module creates, lists, commits and deletes those nodes and checks names and JSON;
:class:`tactkit.store.EpisodeStore` (the facade), the recorder, recovery, the index and the
integrity checks all go through it.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from typing import Any

import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from tactkit.store import _paths
from tactkit.store._paths import KeyIO
from tactkit.store.codecs import JpegCodec, lossless_compressor
from tactkit.store.errors import NotAStoreError, StoreError
from tactkit.store.schema import StreamSpec

FORMAT_NAME = "tactkit.episode_store"
FORMAT_VERSION = 2
#: Format versions this tactkit reads (and records into).
READABLE_VERSIONS = (1, 2)
EPISODE_RE = re.compile(r"^ep_(\d{6,})$")
#: Standard per-episode metadata fields (user metadata may not reuse these names).
STANDARD_FIELDS = ("task", "success", "note", "calibration", "start_wall_time", "start_time",
                   "end_wall_time", "recovered")
TIMESTAMP_CHUNK = 4096
_LOWDIM_CHUNK_BYTES = 128 * 1024


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


#: Chunk keys ``c.<i>.0...``: one file per chunk instead of a directory per dimension.
CHUNK_KEY_ENCODING = {"name": "default", "separator": "."}
#: Write chunks that equal the fill value too, so that every chunk of ``[0, n)`` exists.
ARRAY_CONFIG = {"write_empty_chunks": True}


def _array_kwargs(spec_dtype: str, itemsize: int) -> dict[str, Any]:
    return dict(dtype=spec_dtype, compressors=[lossless_compressor(itemsize), Crc32cCodec()],
                chunk_key_encoding=CHUNK_KEY_ENCODING, config=ARRAY_CONFIG)


def create_stream(group: zarr.Group, key: str, spec: StreamSpec,
                  image_quality: int) -> tuple[zarr.Array, zarr.Array]:
    """Create ``<key>/values`` and ``<key>/timestamps`` of an episode being recorded, with
    room for about ten seconds (they grow as needed)."""
    sg = group.create_group(key)
    if is_jpeg_stream(spec):
        cap = max(8, int(math.ceil(spec.rate_hz * 10)))
        values = sg.create_array(
            "values", shape=(cap, *spec.shape), chunks=(1, *spec.shape), dtype="uint8",
            serializer=JpegCodec(quality=image_quality), compressors=[Crc32cCodec()], fill_value=0,
            chunk_key_encoding=CHUNK_KEY_ENCODING, config=ARRAY_CONFIG,
        )
    else:
        chunk = lowdim_chunk(spec)
        cap = chunk * max(1, int(math.ceil(spec.rate_hz * 10 / chunk)))
        values = sg.create_array("values", shape=(cap, *spec.shape), chunks=(chunk, *spec.shape),
                                 fill_value=0, **_array_kwargs(spec.dtype, np.dtype(spec.dtype).itemsize))
    timestamps = sg.create_array("timestamps", shape=(values.shape[0],), chunks=(TIMESTAMP_CHUNK,),
                                 fill_value=np.nan, **_array_kwargs("float64", 8))
    return values, timestamps


def create_empty_stream(group: zarr.Group, key: str, spec: StreamSpec) -> None:
    """Zero-length arrays for a stream that was never created (recovery)."""
    sg = group.require_group(key)
    sg.create_array("values", shape=(0, *spec.shape), chunks=(1, *spec.shape), fill_value=0,
                    overwrite=True, **_array_kwargs(spec.dtype, np.dtype(spec.dtype).itemsize))
    sg.create_array("timestamps", shape=(0,), chunks=(TIMESTAMP_CHUNK,), fill_value=np.nan,
                    overwrite=True, **_array_kwargs("float64", 8))


def write_commit(root: zarr.Group, path: str, name: str, record: dict[str, Any]) -> None:
    """Commit episode ``name``: its ``commit`` group, whose attributes are ``record``,
    is the last thing written to it."""
    episodes_group(root, path)[name].create_group("commit", attributes=record)


# ---------------------------------------------------------------------- object keys
def episode_key(name: str) -> str:
    return f"episodes/{name}"


def commit_key(name: str) -> str:
    return f"episodes/{name}/commit/zarr.json"


def array_key(name: str, key: str, which: str) -> str:
    """``which``: ``"values"`` or ``"timestamps"``."""
    return f"episodes/{name}/{key}/{which}"


def discard_key(name: str) -> str:
    return f"discards/{name}.json"


def _read_json_attrs(io: KeyIO, key: str, what: str) -> dict[str, Any] | None:
    raw = io.get(key)
    if raw is None:
        return None
    try:
        doc = json.loads(raw)
        attrs = doc["attributes"]
        if not isinstance(attrs, dict):
            raise TypeError(f"attributes are a {type(attrs).__name__}, not an object")
        return attrs
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise StoreError(f"{io.path}/{key}: {what} is unreadable ({type(exc).__name__}: {exc})") from None


def read_commit_record(io: KeyIO, name: str) -> dict[str, Any] | None:
    """The commit record of episode ``name`` (``None``: not committed). Garbage in the file is
    a :class:`StoreError` naming it."""
    record = _read_json_attrs(io, commit_key(name), "commit record")
    if record is not None and not isinstance(record.get("lengths"), dict):
        raise StoreError(f"{io.path}/{commit_key(name)}: commit record has no 'lengths' table")
    return record


def read_episode_attrs(io: KeyIO, name: str) -> dict[str, Any]:
    """Begin-time attributes of episode ``name`` (task, calibration, ...)."""
    attrs = _read_json_attrs(io, f"{episode_key(name)}/zarr.json", "episode metadata")
    if attrs is None:
        raise StoreError(f"{io.path}/{episode_key(name)}/zarr.json: episode metadata is missing")
    return attrs


def list_episode_dirs(io: KeyIO) -> list[str]:
    """Names under ``episodes/`` that look like episodes (whole, half-written or half-deleted)."""
    return sorted(n for n in io.list_dir("episodes") if EPISODE_RE.match(n))


def episode_exists(io: KeyIO, name: str) -> bool:
    """Anything left of episode ``name`` (its directory, or for URLs its group metadata)."""
    if io.local is not None:
        return io.exists(episode_key(name))
    return io.exists(f"{episode_key(name)}/zarr.json") or bool(io.list_dir(episode_key(name)))


# ---------------------------------------------------------------------- discarding
def discarding(io: KeyIO) -> list[str]:
    """Episodes whose discard was recorded (and maybe not finished)."""
    return sorted(n[:-len(".json")] for n in io.list_dir("discards")
                  if n.endswith(".json") and EPISODE_RE.match(n[:-len(".json")]))


def is_discarding(io: KeyIO, name: str) -> bool:
    return io.exists(discard_key(name))


def delete_episode(io: KeyIO, name: str) -> None:
    """Discard episode ``name``: the discard is recorded first, then the episode's objects
    are deleted, then the record. A kill at any point leaves either the whole episode or a
    recorded discard that :func:`finish_discards` completes; never a torn episode that looks
    interrupted."""
    io.set(discard_key(name), json.dumps({"episode": name, "wall_time": time.time()}).encode())
    io.delete_prefix(episode_key(name))
    io.delete(discard_key(name))


def finish_discards(io: KeyIO) -> list[str]:
    """Complete every recorded discard (recovery); returns the episode names."""
    names = discarding(io)
    for name in names:
        io.delete_prefix(episode_key(name))
        io.delete(discard_key(name))
    return names


def remove_temp_files(io: KeyIO, names: list[str]) -> None:
    """Delete temp files that a killed atomic write left behind (local stores) in the given
    episodes and the store's own directories (nothing else is written after a commit)."""
    if io.local is None:
        return
    for d in [io.local / episode_key(n) for n in names] + [io.local / "index", io.local / "discards"]:
        if d.is_dir():
            for p in d.rglob("*.partial"):
                p.unlink(missing_ok=True)
    for d in (io.local, io.local / "episodes"):
        for p in d.glob("*.partial"):
            p.unlink(missing_ok=True)
