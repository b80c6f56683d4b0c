"""Recording one episode: thread-safe appends, a background flusher, commit record last.

Write ordering (why a SIGKILL at any moment loses at most the last flush interval):

* Each stream of an episode has two arrays, ``<key>/values`` and ``<key>/timestamps``.
  Timestamps are created with fill value NaN, and a real timestamp is never NaN (appends
  reject it), so "finite timestamp at i" means "sample i was flushed".
* A flush writes the new values first and their timestamps second. The arrays are grown
  ahead of need (capacity doubles) with ``resize``, a metadata-only rewrite of that
  array's ``zarr.json``; the written region always lies inside the capacity.
* :meth:`EpisodeRecorder.commit` flushes, trims every array to its sample count, digests
  the stored chunks (:func:`tactkit.store.integrity.content_digests`) and then creates the
  ``commit`` child group whose attributes are the commit record. Readers treat an episode
  as committed if and only if that group exists, so the record is the last thing written to
  the episode and nothing of a committed episode is ever written again. The index is
  updated after the record (:mod:`tactkit.store.index`).
* :meth:`EpisodeRecorder.discard` records the discard before deleting anything
  (:func:`tactkit.store.layout.delete_episode`), so a kill never leaves a torn episode.
* Local stores write every object to a temporary file and rename it into place, so a kill
  leaves each object either old or new, never torn.

Recovery (:meth:`tactkit.store.EpisodeStore.recover`) keeps, per stream, the prefix of
samples with finite timestamps and commits it with ``recovered: true``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
from zarr.core.sync import sync as zarr_sync

from tactkit.store import integrity, layout
from tactkit.store.errors import SampleError, StoreError
from tactkit.store.schema import StreamSpec

if TYPE_CHECKING:
    import zarr

    from tactkit.store.episode_store import Episode, EpisodeStore

log = logging.getLogger(__name__)

#: Longest allowed interval between background flushes (the crash-loss bound).
MAX_FLUSH_INTERVAL_S = 1.0


def check_dtype(key: str, spec: StreamSpec, value: np.ndarray) -> None:
    """Raise :class:`SampleError` unless ``value``'s dtype can be stored in ``spec`` losslessly
    enough: the same dtype, a safe cast, or any real number into a float stream."""
    src, dst = value.dtype, np.dtype(spec.dtype)
    if src == dst or np.can_cast(src, dst, casting="safe"):
        return
    if dst.kind == "f" and src.kind in "fiub":
        return
    raise SampleError(f"stream '{key}': sample dtype {src} cannot be stored as {dst}")


class _StreamWriter:
    """Pending samples and flushed state of one stream."""

    def __init__(self, key: str, spec: StreamSpec, values: zarr.Array, timestamps: zarr.Array):
        self.key = key
        self.spec = spec
        self.values = values
        self.timestamps = timestamps
        self.lock = threading.Lock()
        self.pending_t: list[float] = []
        self.pending_v: list[np.ndarray] = []
        self.last_t = -math.inf
        self.first_t: float | None = None
        self.n_appended = 0
        self.n_flushed = 0
        self.capacity = int(values.shape[0])

    def take_pending(self) -> tuple[np.ndarray, np.ndarray] | None:
        with self.lock:
            if not self.pending_t:
                return None
            ts, vs = self.pending_t, self.pending_v
            self.pending_t, self.pending_v = [], []
        return np.asarray(ts, dtype=np.float64), np.stack(vs).astype(self.spec.dtype, copy=False)

    def reserve(self, n_new: int) -> None:
        """Grow both arrays (metadata-only rewrite) so ``n_new`` more samples fit."""
        n1 = self.n_flushed + n_new
        if n1 > self.capacity:
            cap = max(n1, 2 * self.capacity)
            self.values.resize((cap, *self.spec.shape))
            self.timestamps.resize((cap,))
            self.capacity = cap


def _write_batches(batches: list[tuple[_StreamWriter, np.ndarray, np.ndarray]]) -> None:
    """Write every stream's new samples: all values first (concurrently), then all timestamps,
    so a finite timestamp on disk always means its value is on disk too."""
    for w, ts, _ in batches:
        w.reserve(len(ts))

    async def values() -> None:
        await asyncio.gather(*(w.values.async_array.setitem(slice(w.n_flushed, w.n_flushed + len(ts)), vs)
                               for w, ts, vs in batches))

    async def stamps() -> None:
        await asyncio.gather(*(w.timestamps.async_array.setitem(slice(w.n_flushed, w.n_flushed + len(ts)), ts)
                               for w, ts, _ in batches))

    zarr_sync(values())
    zarr_sync(stamps())
    for w, ts, _ in batches:
        w.n_flushed += len(ts)


class EpisodeRecorder:
    """Records one episode. Create with :meth:`EpisodeStore.begin_episode`.

    ``arrays`` holds each stream's ``(values, timestamps)`` arrays as
    :func:`tactkit.store.layout.create_stream` made them.
    ``append``/``append_many`` may be called from any number of threads; samples of one
    stream must arrive in non-decreasing timestamp order. A daemon thread flushes pending
    samples every ``flush_interval_s`` (<= 1 s). End with :meth:`commit` or :meth:`discard`.
    As a context manager it commits on a clean exit; on an exception it flushes and leaves the
    episode uncommitted, to be salvaged by ``EpisodeStore.recover`` / ``tactkit dataset recover``.
    """

    def __init__(
        self,
        store: EpisodeStore,
        name: str,
        group: zarr.Group,
        arrays: dict[str, tuple[zarr.Array, zarr.Array]],
        flush_interval_s: float,
    ) -> None:
        if not 0 < flush_interval_s <= MAX_FLUSH_INTERVAL_S:
            raise ValueError(
                f"flush_interval_s must be in (0, {MAX_FLUSH_INTERVAL_S}], got {flush_interval_s}"
            )
        self.store = store
        self.name = name
        self.group = group
        self._writers = {key: _StreamWriter(key, store.streams[key], values, timestamps)
                         for key, (values, timestamps) in arrays.items()}
        self._flush_interval = flush_interval_s
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._closed = False
        self.flush_count = 0
        self.flush_seconds = 0.0  # wall time spent inside flushes (diagnostics)
        self._thread = threading.Thread(target=self._flush_loop, name=f"flush-{name}", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ appending
    def _writer(self, key: str) -> _StreamWriter:
        if self._closed:
            raise StoreError(f"episode {self.name} is already committed or discarded")
        if self._error is not None:
            raise StoreError(f"episode {self.name}: background flush failed: {self._error!r}")
        try:
            return self._writers[key]
        except KeyError:
            raise SampleError(
                f"unknown stream key '{key}'; the store's streams are {sorted(self._writers)}"
            ) from None

    def append(self, key: str, timestamp_s: float, value: Any) -> None:
        """Append one sample of stream ``key`` captured at ``timestamp_s`` (monotonic seconds)."""
        w = self._writer(key)
        t = float(timestamp_s)
        if not math.isfinite(t):
            raise SampleError(f"stream '{key}': timestamp {t} is not finite")
        arr = np.asarray(value)
        if arr.shape != w.spec.shape:
            raise SampleError(f"stream '{key}': sample shape {arr.shape} != schema shape {w.spec.shape}")
        check_dtype(key, w.spec, arr)
        arr = np.array(arr, dtype=w.spec.dtype, copy=True)  # the caller may reuse its buffer
        with w.lock:
            if t < w.last_t:
                raise SampleError(
                    f"stream '{key}': timestamp {t!r} goes backwards (previous sample at {w.last_t!r})"
                )
            w.pending_t.append(t)
            w.pending_v.append(arr)
            w.last_t = t
            if w.first_t is None:
                w.first_t = t
            w.n_appended += 1

    def append_many(self, key: str, timestamps: Any, values: Any) -> None:
        """Append ``n`` samples: ``timestamps`` float[n] (non-decreasing), ``values`` [n, *shape]."""
        w = self._writer(key)
        ts = np.asarray(timestamps, dtype=np.float64)
        vs = np.asarray(values)
        if ts.ndim != 1:
            raise SampleError(f"stream '{key}': timestamps must be 1-D, got shape {ts.shape}")
        if vs.shape[:1] != ts.shape:
            raise SampleError(
                f"stream '{key}': inconsistent length: {len(ts)} timestamps but "
                f"{vs.shape[0] if vs.ndim else 'scalar'} values"
            )
        if vs.shape[1:] != w.spec.shape:
            raise SampleError(f"stream '{key}': sample shape {vs.shape[1:]} != schema shape {w.spec.shape}")
        check_dtype(key, w.spec, vs)
        if len(ts) == 0:
            return
        bad = ~np.isfinite(ts)
        if bad.any():
            i = int(np.argmax(bad))
            raise SampleError(f"stream '{key}': timestamp[{i}] = {float(ts[i])} is not finite")
        back = np.diff(ts) < 0
        if back.any():
            i = int(np.argmax(back)) + 1
            raise SampleError(
                f"stream '{key}': timestamp[{i}] = {float(ts[i])!r} goes backwards "
                f"(previous {float(ts[i - 1])!r})"
            )
        vs = np.array(vs, dtype=w.spec.dtype, copy=True)
        with w.lock:
            if ts[0] < w.last_t:
                raise SampleError(
                    f"stream '{key}': timestamp {float(ts[0])!r} goes backwards (previous sample at {w.last_t!r})"
                )
            w.pending_t.extend(ts.tolist())
            w.pending_v.extend(vs)
            w.last_t = float(ts[-1])
            if w.first_t is None:
                w.first_t = float(ts[0])
            w.n_appended += len(ts)

    # ------------------------------------------------------------------ flushing
    def flush(self) -> None:
        """Write every pending sample to the store now (the flusher calls this periodically)."""
        with self._flush_lock:
            t0 = time.perf_counter()
            batches = []
            for w in self._writers.values():
                taken = w.take_pending()
                if taken is not None:
                    batches.append((w, *taken))
            if batches:
                _write_batches(batches)
            self.flush_count += 1
            self.flush_seconds += time.perf_counter() - t0

    def _flush_loop(self) -> None:
        # flushes start on a fixed cadence, however long each one takes
        next_flush = time.monotonic() + self._flush_interval
        while not self._stop.wait(max(0.0, next_flush - time.monotonic())):
            next_flush = max(next_flush + self._flush_interval, time.monotonic())
            try:
                self.flush()
            except BaseException as exc:  # surfaced on the next append/commit
                log.exception("episode %s: background flush failed", self.name)
                self._error = exc
                return

    def _stop_flusher(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join()

    # ------------------------------------------------------------------ ending
    @property
    def lengths(self) -> dict[str, int]:
        """Samples appended so far per stream."""
        return {k: w.n_appended for k, w in self._writers.items()}

    def commit(self, success: bool = True, note: str = "", metadata: dict | None = None) -> Episode:
        """Flush, trim and write the commit record (last). Returns the committed episode."""
        if self._closed:
            raise StoreError(f"episode {self.name} is already committed or discarded")
        if metadata is not None:
            layout.check_json("metadata", metadata)
        self._stop_flusher()
        if self._error is not None:
            raise StoreError(f"episode {self.name}: background flush failed: {self._error!r}")
        self.flush()
        self._closed = True
        lengths = {k: w.n_flushed for k, w in self._writers.items()}
        for w in self._writers.values():
            n = w.n_flushed
            if w.capacity != n:
                # nothing was written beyond n: skip zarr's delete of every chunk key outside
                # the new shape (thousands of no-op deletes for image streams)
                zarr_sync(w.values.async_array.resize((n, *w.spec.shape), delete_outside_chunks=False))
                zarr_sync(w.timestamps.async_array.resize((n,), delete_outside_chunks=False))
                w.capacity = n
        digests, stored_bytes = integrity.content_digests(self.store.io, self.name, lengths)
        record = {
            "success": bool(success),
            "note": str(note),
            "metadata": metadata or {},
            "lengths": lengths,
            "t_first": {k: w.first_t for k, w in self._writers.items()},
            "t_last": {k: (w.last_t if w.n_flushed else None) for k, w in self._writers.items()},
            "digests": digests,
            "stored_bytes": stored_bytes,
            "end_wall_time": time.time(),
            "recovered": False,
        }
        self.store.index.commit(self.store.root, self.store.path, self.name, record)
        return self.store.episode_named(self.name)

    def discard(self) -> None:
        """Stop recording and delete this episode's data."""
        if self._closed:
            return
        self._stop_flusher()
        self._closed = True
        layout.delete_episode(self.store.io, self.name)
        self.store.index.forget(self.name)

    def abandon(self) -> None:
        """Flush and stop without committing: the episode stays recoverable."""
        if self._closed:
            return
        self._stop_flusher()
        try:
            self.flush()
        finally:
            self._closed = True

    def __enter__(self) -> EpisodeRecorder:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            if not self._closed:
                self.commit()
        else:
            log.warning("episode %s left uncommitted after %s; recover it with "
                        "`tactkit dataset recover`", self.name, exc_type.__name__)
            self.abandon()

