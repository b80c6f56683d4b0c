"""The episode store facade: :class:`EpisodeStore` (create, open, record, list, recover,
check, summary) and :class:`Episode` (one committed episode, read-only).

Where things live on disk is :mod:`tactkit.store.layout`'s business; the committed-episode
index is :mod:`tactkit.store.index`'s; recording is :mod:`tactkit.store.recorder`'s;
salvaging is :mod:`tactkit.store.recovery`'s; integrity checks are
:mod:`tactkit.store.integrity`'s. Opening a store reads its root metadata and the index head,
whatever the number of episodes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import zarr

from tactkit.store import _paths, chunks, layout
from tactkit.store.codecs import JpegCodec
from tactkit.store.errors import FormatVersionError, NotAStoreError, StoreError
from tactkit.store.index import EpisodeIndex, record_duration
from tactkit.store.integrity import CheckReport, check_store
from tactkit.store.layout import FORMAT_NAME, FORMAT_VERSION, STANDARD_FIELDS
from tactkit.store.recorder import EpisodeRecorder
from tactkit.store.recovery import recover_episode
from tactkit.store.schema import StreamSpec

log = logging.getLogger(__name__)

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "STANDARD_FIELDS", "Episode", "EpisodeStore"]


class Episode:
    """A committed episode (read-only). Obtain with :meth:`EpisodeStore.episode`.

    Samples are read chunk by chunk (:mod:`tactkit.store.chunks`); a missing or damaged
    chunk is a :class:`StoreError` naming the episode, the stream and the chunk.
    """

    def __init__(self, store: EpisodeStore, index: int, name: str, record: dict[str, Any]) -> None:
        self.store = store
        self.index = index
        self.name = name
        self.record = record
        self._attrs: dict[str, Any] | None = None
        self._group: zarr.Group | None = None
        self._layouts: dict[str, chunks.ArrayLayout | None] = {}

    def __repr__(self) -> str:
        return f"Episode({self.index}, {self.name!r}, task={self.task!r}, lengths={self.lengths})"

    @property
    def attrs(self) -> dict[str, Any]:
        """Begin-time attributes (task, metadata, calibration, start times)."""
        if self._attrs is None:
            self._attrs = layout.read_episode_attrs(self.store.io, self.name)
        return self._attrs

    @property
    def group(self) -> zarr.Group:
        """The episode's zarr group (for direct array access)."""
        if self._group is None:
            self._group = layout.episodes_group(self.store.root, self.store.path)[self.name]
        return self._group

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

    def _where(self, key: str) -> str:
        return f"{self.store.path}: episode {self.name} stream '{key}'"

    def _layout(self, key: str, which: str) -> chunks.ArrayLayout | None:
        """The array's chunk layout (``None``: read it through zarr), checked against the
        commit record's sample count."""
        slot = f"{key}/{which}"
        if slot not in self._layouts:
            self._check(key)
            meta, lay = chunks.read_layout(self.store.io, layout.array_key(self.name, key, which))
            if meta is None:
                raise StoreError(f"{self._where(key)}: has no {which} array")
            n, stored = self.length(key), int(meta["shape"][0])
            if stored != n:
                raise StoreError(
                    f"{self._where(key)} has inconsistent length: {which} holds {stored} samples but "
                    f"the commit record says {n}"
                )
            self._layouts[slot] = lay
        return self._layouts[slot]

    def _read(self, key: str, which: str, start: int, stop: int) -> np.ndarray:
        lay = self._layout(key, which)
        if lay is not None:
            return chunks.read_rows(self.store.io, lay, start, stop, f"{self._where(key)} {which}")
        return np.asarray(self.group[f"{key}/{which}"][start:stop])

    def timestamps(self, key: str) -> np.ndarray:
        """Capture times (float64 seconds, monotonic domain) of stream ``key``."""
        return np.asarray(self._read(key, "timestamps", 0, self.length(key)), dtype=np.float64)

    def values(self, key: str, start: int | None = None, stop: int | None = None) -> np.ndarray:
        """Samples ``[start:stop]`` of stream ``key`` as ``array[n, *shape]``."""
        n = self.length(key)
        lo, hi = slice(start, stop).indices(n)[:2]
        return self._read(key, "values", lo, max(lo, hi))

    def rows(self, key: str, rows: np.ndarray) -> np.ndarray:
        """Samples ``values[rows]`` of stream ``key``, decoding only the chunks they lie in."""
        rows = np.asarray(rows, dtype=np.int64)
        n = self.length(key)
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"{self._where(key)}: rows outside 0..{n - 1}")
        lay = self._layout(key, "values")
        if lay is not None:
            return chunks.read_row_set(self.store.io, lay, rows, f"{self._where(key)} values")
        return np.asarray(self.group[f"{key}/values"].get_orthogonal_selection(rows))

    def check_committed(self) -> None:
        """The episode's group metadata is readable and its commit record equals the copy in
        the index (:class:`StoreError` naming the file or the fields otherwise): with
        :meth:`load`'s digest checks, what training checks before using an episode."""
        self.attrs  # noqa: B018 - raises a StoreError naming the file when missing or garbage
        record = layout.read_commit_record(self.store.io, self.name)
        if record is None:
            raise StoreError(f"{self.store.path}: episode {self.name} is indexed as committed but "
                             f"its commit record {layout.commit_key(self.name)} is missing")
        if record != self.record:
            fields = sorted(k for k in set(record) | set(self.record) if record.get(k) != self.record.get(k))
            detail = "; ".join(f"{f}: {record.get(f)!r} in the record, {self.record.get(f)!r} in the index"
                               for f in fields if f in ("lengths", "digests"))
            raise StoreError(f"{self.store.path}: episode {self.name}: commit record differs from its copy "
                             f"in the index (fields {', '.join(fields)}): edited or damaged; {detail}")

    def load(self, key: str) -> LoadedStream:
        """Stream ``key`` read whole and checked against the commit record's content digest
        (every stored chunk read once and hashed; a mismatch is a :class:`StoreError`);
        chunks are decoded on demand. Episodes without a digest (older stores) are read
        unchecked."""
        return LoadedStream(self, key)

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
        return record_duration(self.record)


class LoadedStream:
    """One stream of an episode, its stored chunks in memory and digest-checked
    (:meth:`Episode.load`): ``timestamps`` decoded, ``values(rows)`` decoded on demand."""

    def __init__(self, ep: Episode, key: str) -> None:
        self.ep, self.key = ep, key
        self.n = n = ep.length(key)
        self.where = ep._where(key)
        digest = (ep.record.get("digests") or {}).get(key)
        lays = {w: ep._layout(key, w) for w in ("values", "timestamps")}
        self.checked = digest is not None and None not in lays.values()
        if not self.checked:
            self.timestamps = ep.timestamps(key)
            self._layouts: dict[str, chunks.ArrayLayout] = {}
            return
        io, h = ep.store.io, hashlib.sha256()
        self._blobs: dict[str, list[bytes]] = {}
        for which, lay in lays.items():
            data = chunks.chunk_bytes(io, lay, n)
            for i, b in enumerate(data):
                if b is None:
                    raise chunks.ChunkError(f"{self.where}: chunk {lay.chunk_key(i)} is missing",
                                            lay.chunk_key(i))
                h.update(f"{which}:{i}:{len(b)}:".encode())
                h.update(b)
            self._blobs[which] = data  # type: ignore[assignment]
        self._layouts = lays  # type: ignore[assignment]
        if "sha256:" + h.hexdigest() != digest:
            for which, lay in lays.items():  # name the chunk when one fails its checksum
                for i in range(lay.n_chunks(n)):
                    self._decode(which, i)
            raise StoreError(f"{self.where}: content digest mismatch: the stored chunks are not the "
                             "ones committed (a chunk replaced, swapped or rewritten); run "
                             f"`tactkit dataset verify {ep.store.path}`")
        ts = self._decode_all("timestamps")
        self.timestamps = np.asarray(ts, dtype=np.float64)

    def _decode(self, which: str, i: int) -> np.ndarray:
        lay = self._layouts[which]
        try:
            return lay.decode(self._blobs[which][i])
        except Exception as exc:  # noqa: BLE001 - any codec failure is damage to report
            lo = i * lay.chunk_rows
            raise chunks.ChunkError(f"{self.where}: chunk {lay.chunk_key(i)} (samples {lo}.."
                                    f"{lo + lay.chunk_rows - 1}) is damaged: {exc}",
                                    lay.chunk_key(i)) from None

    def _decode_all(self, which: str) -> np.ndarray:
        lay = self._layouts[which]
        if self.n == 0:
            return np.empty((0, *lay.row_shape), lay.dtype)
        parts = [self._decode(which, i) for i in range(lay.n_chunks(self.n))]
        return (parts[0] if len(parts) == 1 else np.concatenate(parts))[:self.n]

    @property
    def jpeg_copyable(self) -> bool:
        """Whether :meth:`jpeg_frames` can hand out the stored frames without decoding."""
        return self.checked and chunks.is_jpeg_per_frame(self._layouts.get("values"))

    def jpeg_frames(self, rows: np.ndarray) -> chunks.JpegFrames:
        """Frames ``rows`` as their stored JPEG payloads (CRC-checked, not decoded)."""
        lay = self._layouts["values"]
        payloads = {}
        for c in np.unique(rows).tolist():
            try:
                payloads[c] = chunks.jpeg_payload(lay, self._blobs["values"][c])
            except ValueError as exc:
                raise chunks.ChunkError(f"{self.where}: chunk {lay.chunk_key(c)} is damaged: {exc}",
                                        lay.chunk_key(c)) from None
        return chunks.JpegFrames([payloads[int(r)] for r in rows], lay.row_shape)

    def values(self, rows: np.ndarray | None = None) -> np.ndarray:
        """All samples, or ``values[rows]`` decoding only the chunks that hold them."""
        if not self.checked:
            return self.ep.values(self.key) if rows is None else self.ep.rows(self.key, rows)
        if rows is None:
            return self._decode_all("values")
        lay = self._layouts["values"]
        rows = np.asarray(rows, dtype=np.int64)
        out = np.empty((len(rows), *lay.row_shape), lay.dtype)
        cidx = rows // lay.chunk_rows
        for c in np.unique(cidx).tolist():
            sel = cidx == c
            out[sel] = self._decode("values", c)[rows[sel] - c * lay.chunk_rows]
        return out


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
        self._begin_lock = threading.Lock()
        if mode == "a":
            layout.ensure_episodes_group(root)
        #: plain object access to the store's files (index, records, chunks)
        self.io = _paths.KeyIO(self.path, read_only=(mode == "r"))
        #: the committed-episode index (repaired or rebuilt here when needed)
        self.index = EpisodeIndex(self.io, writable=(mode == "a"))

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
        """Re-read the index (see episodes committed by another process)."""
        self.index = EpisodeIndex(self.io, writable=(self.mode == "a"))

    def interrupted(self) -> list[str]:
        """Names of episodes begun and neither committed nor discarded (recording or crashed),
        and of discards a crash interrupted."""
        return [n for n in self.index.pending
                if layout.is_discarding(self.io, n) or layout.episode_exists(self.io, n)]

    @property
    def damaged(self) -> dict[str, str]:
        """Episodes whose commit record could not be read (name -> message naming the file)."""
        return dict(self.index.damaged)

    @property
    def num_episodes(self) -> int:
        """Number of committed episodes."""
        return self.index.count

    def __len__(self) -> int:
        return self.num_episodes

    def episode(self, i: int) -> Episode:
        """The ``i``-th committed episode in name order (negative indices count from the end)."""
        n = self.num_episodes
        if not -n <= i < n:
            raise IndexError(f"episode index {i} out of range: the store has {n} committed episodes")
        i %= n
        name, record = self.index.entry(i)
        return Episode(self, i, name, record)

    def episode_named(self, name: str) -> Episode:
        """The committed episode called ``name`` (e.g. ``"ep_000003"``)."""
        i = self.index.position(name)
        if i is None:
            raise KeyError(f"{self.path}: no committed episode named {name!r}")
        return self.episode(i)

    def episodes(self) -> Iterator[Episode]:
        for i in range(self.num_episodes):
            yield self.episode(i)

    def content_key(self) -> list[list[Any]]:
        """``[[name, digests or a stand-in], ...]`` of every committed episode: what a derived
        artefact (a cached training view) depends on. Episodes without digests (older
        stores) stand in with their sample counts, time span and commit time."""
        out = []
        for name, rec in self.index.entries():
            ident = rec.get("digests") or {"lengths": rec.get("lengths"), "t_first": rec.get("t_first"),
                                           "t_last": rec.get("t_last"), "end": rec.get("end_wall_time")}
            out.append([name, ident])
        return out

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
        waiting = self.interrupted()
        if waiting:
            log.warning("%s: uncommitted episodes %s are waiting for `tactkit dataset recover`",
                        self.path, waiting)
        with self._begin_lock:
            name = self.index.reserve()
            group = layout.create_episode(self.root, self.path, name, task, metadata, calibration,
                                          start_time)
        arrays = {key: layout.create_stream(group, key, spec, self.image_quality)
                  for key, spec in self.streams.items()}
        return EpisodeRecorder(self, name, group, arrays, interval)

    # ------------------------------------------------------------------ maintenance
    def recover(self, discard: bool = False) -> list[dict[str, Any]]:
        """Commit (or with ``discard=True`` delete) every interrupted episode, finish every
        discard a crash interrupted, and bring the index up to date.

        Per stream, the samples kept are the prefix with finite, non-decreasing timestamps
        whose values decode; the commit record gets ``recovered: true``. Episodes with no
        sample at all are deleted. A discarded episode is never brought back. Returns one
        report dict per episode handled.
        """
        if self.mode == "r":
            raise StoreError(f"{self.path}: store opened read-only; open with mode='a' to recover")
        reports = []
        for name in layout.finish_discards(self.io):
            self.index.forget(name)
            reports.append({"episode": name, "action": "discarded",
                            "reason": "finished an interrupted discard", "lengths": {}})
        handled = self.interrupted()
        layout.remove_temp_files(self.io, handled)
        for name in handled:
            reports.append(recover_episode(self, name, discard=discard))
        for name in self.index.pending:  # begun but no group was ever created
            if not layout.episode_exists(self.io, name):
                self.index.forget(name)
        stale = self.index.stale_reason()
        if stale is not None:
            self.index.rebuild(stale)
        return reports

    def check(self, quick: bool = False, include_uncommitted: bool = True,
              progress: bool = False) -> CheckReport:
        """Integrity checks (:mod:`tactkit.store.integrity`); the full check also compares the
        index with the episode directories and rebuilds it when it is stale."""
        notes = []
        if not quick:
            stale = self.index.stale_reason()
            if stale is not None:
                self.index.rebuild(stale)
                notes.append(f"the episode index was stale ({stale}); rebuilt "
                             + ("" if self.mode == "a" else "in memory (open for writing to save it)"))
        if self.index.rebuilt_reason and self.index.rebuilt_reason not in " ".join(notes):
            notes.append(f"the episode index was rebuilt on open ({self.index.rebuilt_reason})")
        report = check_store(self.io, self.streams, self.index, self.format_version, quick,
                             include_uncommitted, progress)
        report.notes = notes + report.notes
        return report

    def verify(self, progress: bool = False) -> list[str]:
        """Read every committed episode fully; return the problems found (empty: all good)."""
        return self.check(quick=False, progress=progress).problems

    def summary(self) -> dict[str, Any]:
        """Counts, durations, streams and size, as shown by ``tactkit dataset info``
        (from the index: the same cost at 10 and at 10,000 episodes)."""
        totals = self.index.totals
        frames = totals.get("frames", {})
        size = totals.get("stored_bytes", 0)
        if totals.get("episodes_without_size"):  # older episodes: measure the files
            size = _paths.size_on_disk(self.path)
        return {
            "path": self.path,
            "format": FORMAT_NAME,
            "format_version": self.format_version,
            "episodes": self.index.count,
            "successful_episodes": int(totals.get("successful", 0)),
            "interrupted_episodes": self.interrupted(),
            "damaged_episodes": sorted(self.index.damaged),
            "total_duration_s": round(float(totals.get("duration_s", 0.0)), 3),
            "size_bytes": size,
            "streams": {
                k: {**s.to_json(), "frames": int(frames.get(k, 0)),
                    "codec": f"jpeg q{self.image_quality}" if layout.is_jpeg_stream(s) else "blosc-zstd"}
                for k, s in self.streams.items()
            },
            "attrs": self.attrs,
        }


def delete_local(path: str | os.PathLike) -> None:
    """Remove a local store directory (helper for tests and ``--overwrite``)."""
    lp = _paths.local_path(path)
    if lp is not None and lp.exists():
        shutil.rmtree(lp)
