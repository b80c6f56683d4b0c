"""The episode store facade: :class:`EpisodeStore` (create, open, record, list, recover,
verify, summary) and :class:`Episode` (one committed episode, read-only).

Where things live on disk is :mod:`tactkit.store.layout`'s business; recording is
:mod:`tactkit.store.recorder`'s; salvaging and verifying is :mod:`tactkit.store.recovery`'s.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import zarr

from tactkit.store import _paths, layout
from tactkit.store.codecs import JpegCodec
from tactkit.store.errors import FormatVersionError, NotAStoreError, StoreError
from tactkit.store.layout import FORMAT_NAME, FORMAT_VERSION, STANDARD_FIELDS
from tactkit.store.recorder import EpisodeRecorder
from tactkit.store.recovery import recover_episode, verify_store
from tactkit.store.schema import StreamSpec

log = logging.getLogger(__name__)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "STANDARD_FIELDS", "Episode", "EpisodeStore"]


class Episode:
    """A committed episode (read-only). Obtain with :meth:`EpisodeStore.episode`."""

    def __init__(self, store: EpisodeStore, index: int, name: str, group: zarr.Group,
                 record: dict[str, Any]) -> None:
        self.store = store
        self.index = index
        self.name = name
        self.group = group
        self.record = record
        self.attrs = dict(group.attrs)

    def __repr__(self) -> str:
        return f"Episode({self.index}, {self.name!r}, task={self.task!r}, lengths={self.lengths})"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.record["lengths"])

    @property
    def lengths(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.record["lengths"].items()}

    def length(self, key: str) -> int:
        self._check(key)
        return int(self.record["lengths"][key])

    def _check(self, key: str) -> None:
        if key not in self.record["lengths"]:
            raise KeyError(f"episode {self.name} has no stream '{key}'; streams: {list(self.keys)}")

    def _array(self, key: str, which: str) -> zarr.Array:
        self._check(key)
        try:
            arr = self.group[f"{key}/{which}"]
        except KeyError:
            raise StoreError(f"episode {self.name}: stream '{key}' has no {which} array") from None
        n = self.length(key)
        if arr.shape[0] < n:
            raise StoreError(
                f"episode {self.name}: stream '{key}' has inconsistent length: {which} holds "
                f"{arr.shape[0]} samples but the commit record says {n}"
            )
        return arr

    def timestamps(self, key: str) -> np.ndarray:
        """Capture times (float64 seconds, monotonic domain) of stream ``key``."""
        return np.asarray(self._array(key, "timestamps")[: self.length(key)], dtype=np.float64)

    def values(self, key: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Samples ``[start:stop]`` of stream ``key`` as ``array[n, *shape]``."""
        n = self.length(key)
        sl = slice(*slice(start, stop).indices(n)[:2])
        return np.asarray(self._array(key, "values")[sl])

    @property
    def metadata(self) -> dict[str, Any]:
        """Standard fields (task, success, note, calibration, start/end times, recovered)
        merged with the free-form metadata given at begin and at commit."""
        md: dict[str, Any] = dict(self.attrs.get("metadata", {}))
        md.update(self.record.get("metadata", {}))
        md.update({
            "task": self.attrs.get("task", ""),
            "calibration": self.attrs.get("calibration", {}),
            "start_wall_time": self.attrs.get("start_wall_time"),
            "start_time": self.attrs.get("start_time"),
            "success": self.record.get("success"),
            "note": self.record.get("note", ""),
            "end_wall_time": self.record.get("end_wall_time"),
            "recovered": self.record.get("recovered", False),
        })
        return md

    task = property(lambda self: self.attrs.get("task", ""))
    success = property(lambda self: self.record.get("success"))
    note = property(lambda self: self.record.get("note", ""))
    calibration = property(lambda self: self.attrs.get("calibration", {}))
    recovered = property(lambda self: bool(self.record.get("recovered", False)))

    @property
    def duration(self) -> float:
        """Span from the earliest to the latest sample over all streams (seconds)."""
        firsts = [v for v in self.record.get("t_first", {}).values() if v is not None]
        lasts = [v for v in self.record.get("t_last", {}).values() if v is not None]
        return float(max(lasts) - min(firsts)) if firsts and lasts else 0.0


class EpisodeStore:
    """A Zarr store of recorded episodes. Create with :meth:`create`, open with :meth:`open`."""

    def __init__(self, path: str, root: zarr.Group, mode: str) -> None:
        self.path = str(path)
        self.root = root
        self.mode = mode
        info = root.attrs.get("tactkit")
        if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
            raise NotAStoreError(f"{path}: not a tactkit episode store (no '{FORMAT_NAME}' attributes)")
        version = info.get("format_version")
        if not isinstance(version, int):
            raise NotAStoreError(f"{path}: format_version missing or not an integer: {version!r}")
        if version > FORMAT_VERSION:
            raise FormatVersionError(
                f"{path}: store format version {version} is newer than this tactkit reads "
                f"({FORMAT_VERSION}); upgrade tactkit"
            )
        self.format_version = version
        try:
            self.streams: dict[str, StreamSpec] = {
                k: StreamSpec.from_json(v) for k, v in info["streams"].items()
            }
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(f"{path}: bad stream schema in store attributes: {exc!r}") from None
        self.attrs: dict[str, Any] = dict(info.get("attrs", {}))
        self.image_quality = int(info.get("image_quality", 90))
        self.flush_interval_s = float(info.get("flush_interval_s", 0.25))
        self._committed: list[tuple[str, dict[str, Any]]] | None = None
        self._begin_lock = threading.Lock()
        if mode == "a":
            layout.ensure_episodes_group(root)

    def __repr__(self) -> str:
        return (f"EpisodeStore({self.path!r}, mode={self.mode!r}, episodes={self.num_episodes}, "
                f"streams={list(self.streams)})")

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        path: str | os.PathLike,
        streams: Mapping[str, StreamSpec | dict],
        attrs: dict[str, Any] | None = None,
        *,
        image_quality: int = 90,
        flush_interval_s: float = 0.25,
        overwrite: bool = False,
    ) -> EpisodeStore:
        """Create an empty store at ``path`` (directory or fsspec URL) with the given schema.

        ``image_quality`` is the JPEG quality of image streams (uint8 HxWx{1,3});
        ``flush_interval_s`` (<= 1) bounds how much a crash can lose while recording.
        """
        if not streams:
            raise ValueError("a store needs at least one stream")
        specs: dict[str, StreamSpec] = {}
        for key, spec in streams.items():
            layout.check_key(key)
            specs[key] = spec if isinstance(spec, StreamSpec) else StreamSpec.from_json(spec)
        JpegCodec(quality=image_quality)  # validates
        if not 0 < flush_interval_s <= 1.0:
            raise ValueError(f"flush_interval_s must be in (0, 1], got {flush_interval_s}")
        layout.check_json("attrs", attrs or {})
        if _paths.exists(path) and not overwrite:
            lp = _paths.local_path(path)
            if lp is None or lp.is_file() or any(lp.iterdir()):
                raise StoreError(f"{path} already exists (pass overwrite=True to replace it)")
        info = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "streams": {k: s.to_json() for k, s in specs.items()},
            "attrs": attrs or {},
            "image_quality": int(image_quality),
            "flush_interval_s": float(flush_interval_s),
            "created_wall_time": time.time(),
        }
        return cls(str(path), layout.create_root(path, info), "a")

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> EpisodeStore:
        """Open an existing store; ``mode`` is ``"r"`` (read-only) or ``"a"`` (record/recover)."""
        if mode not in ("r", "a"):
            raise ValueError(f"mode must be 'r' or 'a', got {mode!r}")
        root = layout.open_root(path, mode)
        return cls(str(path), root, mode)

    # ------------------------------------------------------------------ listing
    def refresh(self) -> None:
        """Forget cached listings (see episodes committed by another process)."""
        self._committed = None

    def _committed_list(self) -> list[tuple[str, dict[str, Any]]]:
        if self._committed is None:
            self._committed = layout.list_committed(self.root, self.path)
        return self._committed

    def interrupted(self) -> list[str]:
        """Names of episode groups without a commit record (recording or crashed)."""
        done = {n for n, _ in self._committed_list()}
        return [n for n in layout.list_episodes(self.root, self.path) if n not in done]

    @property
    def num_episodes(self) -> int:
        """Number of committed episodes."""
        return len(self._committed_list())

    def __len__(self) -> int:
        return self.num_episodes

    def episode(self, i: int) -> Episode:
        """The ``i``-th committed episode (negative indices count from the end)."""
        eps = self._committed_list()
        n = len(eps)
        if not -n <= i < n:
            raise IndexError(f"episode index {i} out of range: the store has {n} committed episodes")
        i %= n
        name, record = eps[i]
        return Episode(self, i, name, layout.episodes_group(self.root, self.path)[name], record)

    def episode_named(self, name: str) -> Episode:
        """The committed episode called ``name`` (e.g. ``"ep_000003"``)."""
        names = [n for n, _ in self._committed_list()]
        if name not in names:
            raise KeyError(f"{self.path}: no committed episode named {name!r}")
        return self.episode(names.index(name))

    def episodes(self) -> Iterator[Episode]:
        for i in range(self.num_episodes):
            yield self.episode(i)

    # ------------------------------------------------------------------ recording
    def begin_episode(
        self,
        task: str = "",
        metadata: dict[str, Any] | None = None,
        calibration: dict[str, Any] | None = None,
        start_time: float | None = None,
        flush_interval_s: float | None = None,
    ) -> EpisodeRecorder:
        """Start recording a new episode. ``metadata`` is free-form JSON; ``calibration`` holds
        sensor calibration; ``start_time`` is the episode start in the samples' monotonic clock
        (default ``time.monotonic()``); the wall-clock start is stored alongside it."""
        if self.mode == "r":
            raise StoreError(f"{self.path}: store opened read-only; open with mode='a' to record")
        metadata = dict(metadata or {})
        clash = sorted(set(metadata) & set(STANDARD_FIELDS))
        if clash:
            raise ValueError(f"metadata keys {clash} are standard fields; pass them as arguments")
        layout.check_json("metadata", metadata)
        layout.check_json("calibration", calibration or {})
        interval = self.flush_interval_s if flush_interval_s is None else float(flush_interval_s)
        if not 0 < interval <= 1.0:  # checked before anything is written
            raise ValueError(f"flush_interval_s must be in (0, 1], got {interval}")
        if self.interrupted():
            log.warning("%s: uncommitted episodes %s are waiting for `tactkit dataset recover`",
                        self.path, self.interrupted())
        with self._begin_lock:
            name = layout.next_episode_name(self.root, self.path)
            group = layout.create_episode(self.root, self.path, name, task, metadata, calibration,
                                          start_time)
        arrays = {key: layout.create_stream(group, key, spec, self.image_quality)
                  for key, spec in self.streams.items()}
        return EpisodeRecorder(self, name, group, arrays, interval)

    # ------------------------------------------------------------------ maintenance
    def recover(self, discard: bool = False) -> list[dict[str, Any]]:
        """Commit (or with ``discard=True`` delete) every interrupted episode.

        Per stream, the samples kept are the prefix with finite, non-decreasing timestamps
        whose values decode; the commit record gets ``recovered: true``. Episodes with no
        sample at all are deleted. Returns one report dict per episode handled.
        """
        if self.mode == "r":
            raise StoreError(f"{self.path}: store opened read-only; open with mode='a' to recover")
        reports = []
        for name in self.interrupted():
            reports.append(recover_episode(self, name, discard=discard))
        layout.remove_temp_files(self.path)
        self._committed = None
        return reports

    def verify(self, progress: bool = False) -> list[str]:
        """Read every committed episode fully; return the problems found (empty: all good)."""
        return verify_store(self, progress=progress)

    def summary(self) -> dict[str, Any]:
        """Counts, durations, streams and size, as shown by ``tactkit dataset info``."""
        eps = self._committed_list()
        frames = {k: 0 for k in self.streams}
        duration = 0.0
        n_success = 0
        for _, rec in eps:
            for k, n in rec.get("lengths", {}).items():
                frames[k] = frames.get(k, 0) + int(n)
            firsts = [v for v in rec.get("t_first", {}).values() if v is not None]
            lasts = [v for v in rec.get("t_last", {}).values() if v is not None]
            if firsts and lasts:
                duration += max(lasts) - min(firsts)
            n_success += bool(rec.get("success"))
        return {
            "path": self.path,
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "episodes": len(eps),
            "successful_episodes": n_success,
            "interrupted_episodes": self.interrupted(),
            "total_duration_s": round(duration, 3),
            "size_bytes": _paths.size_on_disk(self.path),
            "streams": {
                k: {**s.to_json(), "frames": frames.get(k, 0),
                    "codec": f"jpeg q{self.image_quality}" if s.is_image and s.shape[-1] in (1, 3)
                    else "blosc-zstd"}
                for k, s in self.streams.items()
            },
            "attrs": self.attrs,
        }


def delete_local(path: str | os.PathLike) -> None:
    """Remove a local store directory (helper for tests and ``--overwrite``)."""
    lp = _paths.local_path(path)
    if lp is not None and lp.exists():
        shutil.rmtree(lp)
