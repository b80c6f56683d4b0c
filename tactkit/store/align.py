"""The training view: every stream resampled onto one fixed control grid.

Per episode the grid is ``t0 + k / fps`` for ``t0 = max(first timestamp of each key)`` up to
``min(last timestamp of each key)``, so every key has a sample at or before every tick.
Each key takes the **latest sample at or before the tick** (zero-order hold, never a sample
from the future). Keys matching ``interpolate`` (float streams only) are instead linearly
interpolated between the samples around the tick; quaternion blocks (elements named
``qw qx qy qz``, or 7-D ``*pose`` keys laid out x y z qw qx qy qz) use normalised lerp with
the sign of the second quaternion aligned to the first (shortest arc).

The result is written in diffusion_policy's replay-buffer layout, plus ``data/timestamp``
(the tick times, the store's monotonic clock).
"""

from __future__ import annotations

import collections
import fnmatch
import itertools
import logging
import os
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tactkit.store.replay_buffer import TIMESTAMP_KEY, ReplayBuffer, ReplayBufferWriter

if TYPE_CHECKING:
    from tactkit.store.episode_store import Episode, EpisodeStore
    from tactkit.store.schema import StreamSpec

log = logging.getLogger(__name__)

DEFAULT_INTERPOLATE = ("observation.state.*",)


def quaternion_blocks(key: str, spec: StreamSpec) -> list[int]:
    """Start indices of (w, x, y, z) quaternion blocks in a 1-D stream."""
    if len(spec.shape) != 1:
        return []
    names = list(spec.names)
    if names:
        return [i for i in range(len(names) - 3) if names[i:i + 4] == ["qw", "qx", "qy", "qz"]]
    if spec.shape == (7,) and key.endswith("pose"):
        return [3]
    return []


def grid(timestamps: Sequence[np.ndarray], fps: float) -> np.ndarray:
    """Tick times covered by every stream: from the latest first sample to the earliest last."""
    t0 = max(float(ts[0]) for ts in timestamps)
    t1 = min(float(ts[-1]) for ts in timestamps)
    if t1 < t0:
        return np.zeros(0)
    n = int(np.floor((t1 - t0) * fps + 1e-9)) + 1
    return t0 + np.arange(n) / fps


def hold_indices(ts: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """Index of the latest sample at or before each tick (ticks must be >= ts[0])."""
    return np.searchsorted(ts, ticks, side="right") - 1


def interpolate(ts: np.ndarray, vals: np.ndarray, ticks: np.ndarray, quat_starts: Sequence[int] = ()) -> np.ndarray:
    """Linear interpolation of ``vals[n, ...]`` at ``ticks`` (nlerp for quaternion blocks)."""
    j0 = hold_indices(ts, ticks)
    j1 = np.minimum(j0 + 1, len(ts) - 1)
    dt = ts[j1] - ts[j0]
    a = np.where(dt > 0, (ticks - ts[j0]) / np.where(dt > 0, dt, 1.0), 0.0)
    a = a.reshape(-1, *([1] * (vals.ndim - 1)))
    v0, v1 = vals[j0].astype(np.float64), vals[j1].astype(np.float64)
    for s in quat_starts:  # shortest arc: flip q1 where it points away from q0
        dot = np.sum(v0[:, s:s + 4] * v1[:, s:s + 4], axis=1, keepdims=True)
        v1[:, s:s + 4] *= np.where(dot < 0, -1.0, 1.0)
    out = v0 + a * (v1 - v0)
    for s in quat_starts:
        q = out[:, s:s + 4]
        out[:, s:s + 4] = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    return out.astype(vals.dtype)


def align_episode(ep: Episode, fps: float, keys: Sequence[str], interp_keys: set[str],
                  copy_jpeg: Collection[str] = (), check: bool = False) -> dict[str, Any] | None:
    """One episode on the grid, or ``None`` when a key has no samples / streams don't overlap.

    Every stream is read once and checked against its content digest (:meth:`Episode.load`);
    image streams decode only the frames the grid uses, and those in ``copy_jpeg`` are not
    decoded at all (:class:`~tactkit.store.chunks.JpegFrames`) when the store allows it.
    ``check`` also checks the episode's metadata and commit record
    (:meth:`Episode.check_committed`)."""
    if check:
        ep.check_committed()
    loaded = {k: ep.load(k) for k in keys}
    stamps = {k: s.timestamps for k, s in loaded.items()}
    empty = [k for k, ts in stamps.items() if len(ts) == 0]
    if empty:
        log.info("episode %s: skipped, streams without samples: %s", ep.name, empty)
        return None
    ticks = grid(list(stamps.values()), fps)
    if len(ticks) == 0:
        log.info("episode %s: skipped, streams do not overlap in time", ep.name)
        return None
    out: dict[str, np.ndarray] = {}
    for k in keys:
        ts = stamps[k]
        if k in interp_keys:
            out[k] = interpolate(ts, loaded[k].values(), ticks, quaternion_blocks(k, ep.store.streams[k]))
            continue
        idx = hold_indices(ts, ticks)
        if k in copy_jpeg and loaded[k].jpeg_copyable:
            out[k] = loaded[k].jpeg_frames(idx)
            continue
        uniq, inverse = np.unique(idx, return_inverse=True)
        out[k] = loaded[k].values(uniq)[inverse.reshape(-1)]
    out[TIMESTAMP_KEY] = ticks
    return out


# ---------------------------------------------------------------------- parallel alignment
_WORKER: dict[str, Any] = {}
#: Fewer episodes than this per worker are aligned in this process: starting the workers costs
#: a second or more, a tiny episode a few milliseconds.
PARALLEL_MIN_EPISODES_PER_WORKER = 256


def _init_worker(path: str) -> None:
    from tactkit.store.episode_store import EpisodeStore

    _WORKER["store"] = EpisodeStore.open(path)


def _align_batch(indices: list[int], fps: float, keys: list[str], interp_keys: set[str],
                 copy_jpeg: set[str], check: bool) -> list[tuple[str, dict[str, Any] | None]]:
    store = _WORKER["store"]
    out = []
    for i in indices:
        ep = store.episode(i)
        out.append((ep.name, align_episode(ep, fps, keys, interp_keys, copy_jpeg, check)))
    return out


def _pool(workers: int, path: str) -> Any:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    # workers must not inherit zarr's event-loop thread (fork after it started would deadlock)
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["tactkit.store"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                               initargs=(path,))


def _aligned_episodes(store: EpisodeStore, indices: list[int], fps: float, keys: list[str],
                      interp_keys: set[str], copy_jpeg: set[str], workers: int, progress: bool,
                      check: bool) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """``(name, aligned episode or None)`` in episode order, from ``workers`` processes."""
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(indices), desc="align", unit="episode")
    shared = store.path.startswith("memory://")  # in-process only: other processes can't see it
    done = 0
    if workers > 1 and not shared and len(indices) >= PARALLEL_MIN_EPISODES_PER_WORKER * workers:
        from concurrent.futures.process import BrokenProcessPool

        size = max(1, min(64, len(indices) // (8 * workers)))
        batches = [indices[a:a + size] for a in range(0, len(indices), size)]
        try:
            with _pool(workers, store.path) as pool:
                window: collections.deque = collections.deque()
                todo = iter(batches)
                for batch in itertools.islice(todo, 3 * workers):  # bounded: memory stays flat
                    window.append(pool.submit(_align_batch, batch, fps, keys, interp_keys, copy_jpeg, check))
                while window:
                    results = window.popleft().result()
                    nxt = next(todo, None)
                    if nxt is not None:
                        window.append(pool.submit(_align_batch, nxt, fps, keys, interp_keys, copy_jpeg, check))
                    yield from results
                    done += len(results)
                    if bar is not None:
                        bar.update(len(results))
        except BrokenProcessPool as exc:  # e.g. a __main__ that worker processes cannot import
            log.warning("alignment workers failed (%s); aligning the remaining %d episodes in this "
                        "process", exc, len(indices) - done)
    for i in indices[done:]:
        ep = store.episode(i)
        yield ep.name, align_episode(ep, fps, keys, interp_keys, copy_jpeg, check)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()


def expand_keys(patterns: Sequence[str], available: Sequence[str]) -> list[str]:
    """Keys matching ``patterns`` (exact names or globs as in the policy configs,
    ``observation.tactile.*.marker_offset``), in pattern order; a pattern matching no key is
    an error that names it."""
    out: list[str] = []
    for pattern in patterns:
        if not any(c in pattern for c in "*?["):
            hits = [pattern] if pattern in available else []
        else:
            hits = sorted(k for k in available if fnmatch.fnmatchcase(k, pattern))
        if not hits:
            raise KeyError(f"unknown stream keys [{pattern!r}]: no stream matches; the store has "
                           f"{', '.join(available)}")
        out += [h for h in hits if h not in out]
    return out


def _empty_streams(store: EpisodeStore, indices: Sequence[int], keys: Sequence[str]) -> dict[str, list[str]]:
    """``{key: names of the episodes where it has no samples}`` for keys empty somewhere."""
    empty: dict[str, list[str]] = {}
    for i in indices:
        ep = store.episode(i)
        lengths = ep.lengths
        for k in keys:
            if lengths.get(k, 0) == 0:
                empty.setdefault(k, []).append(ep.name)
    return empty


def align(
    store: EpisodeStore,
    fps: float,
    keys: Sequence[str] | None = None,
    interpolate: Sequence[str] = DEFAULT_INTERPOLATE,
    out: str | os.PathLike | None = None,
    zarr_format: int = 3,
    image_quality: int | None = None,
    overwrite: bool = False,
    episodes: Sequence[int] | None = None,
    progress: bool = False,
    workers: int = 1,
    attrs: dict[str, Any] | None = None,
    check: bool = False,
) -> ReplayBuffer:
    """Build the training view of ``store`` at ``fps`` (see module doc for the semantics).

    ``keys``: streams to include, names or glob patterns (default all); ``interpolate``: glob
    patterns of float streams to interpolate linearly; ``out``: write to this path (Zarr
    ``zarr_format`` 2 or 3) instead of returning an in-memory buffer; ``image_quality``: JPEG
    quality of images in a format-3 output (default: the store's); ``episodes``: committed
    episode indices (default all); ``workers``: processes aligning episodes in parallel
    (reading, checking digests and decoding images), the writing stays in this process;
    ``attrs``: extra entries for the view's ``tactkit`` attributes; ``check``: also check each
    episode's metadata and commit record against the index (training does).

    Empty streams: with the default keys, a stream without samples in every selected episode
    (a headset hand that was not used) is left out, listed in ``attrs["dropped_keys"]``.
    Episodes where a kept key has no samples, or whose streams do not overlap in time, are
    skipped and listed in ``attrs["skipped_episodes"]`` (why in ``attrs["skip_reasons"]``).
    No aligned episode at all is an error that says why, and nothing is written.

    Written views with JPEG images at the store's quality get the recorded frames copied
    byte for byte (no decode, no second JPEG generation).
    """
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    explicit = keys is not None
    keys = list(store.streams) if keys is None else expand_keys(list(keys), list(store.streams))
    if TIMESTAMP_KEY in keys:
        raise ValueError(f"'{TIMESTAMP_KEY}' is reserved for the tick times")
    indices = list(range(store.num_episodes)) if episodes is None else list(episodes)
    if not indices:
        raise ValueError(f"{store.path}: no committed episodes to align")
    if out is not None and not overwrite:
        from tactkit.store import _paths
        from tactkit.store.errors import StoreError

        if _paths.exists(out):
            raise StoreError(f"{out} already exists (pass overwrite=True to replace it)")
    empty = _empty_streams(store, indices, keys)
    dropped = {} if explicit else {k: "no samples in any episode" for k, eps in empty.items()
                                   if len(eps) == len(indices)}
    if dropped:
        log.warning("left out of the view, without samples in every episode: %s", ", ".join(sorted(dropped)))
        keys = [k for k in keys if k not in dropped]
    if not keys:
        raise ValueError(f"{store.path}: every stream is empty in every selected episode")
    interp_keys: set[str] = set()
    for pattern in interpolate:
        matched = [k for k in keys if fnmatch.fnmatchcase(k, pattern)]
        for k in matched:
            if np.dtype(store.streams[k].dtype).kind == "f":
                interp_keys.add(k)
            elif pattern == k:
                raise ValueError(f"stream '{k}' is {store.streams[k].dtype}; only float streams interpolate")
    attrs = {
        "fps": float(fps), "source": store.path, "keys": keys, "interpolated": sorted(interp_keys),
        "alignment": "latest sample at or before each tick; interpolated keys: linear/nlerp",
        "source_episodes": [], "skipped_episodes": [], "skip_reasons": {}, "dropped_keys": dropped,
        **(attrs or {}),
    }
    aligned: list[dict[str, np.ndarray]] = []
    writer = None
    copy_jpeg: set[str] = set()
    quality = store.image_quality if image_quality is None else image_quality
    if out is not None and zarr_format == 3 and quality == store.image_quality:
        copy_jpeg = {k for k in keys if store.streams[k].is_image}
    for name, result in _aligned_episodes(store, indices, fps, keys, interp_keys, copy_jpeg,
                                          workers, progress, check):
        if result is None:
            missing = [k for k in keys if name in empty.get(k, ())]
            attrs["skipped_episodes"].append(name)
            attrs["skip_reasons"][name] = (f"no samples of {', '.join(missing)}" if missing
                                           else "streams do not overlap in time")
            continue
        attrs["source_episodes"].append(name)
        if out is None:
            aligned.append(result)
            continue
        if writer is None:  # created with the first aligned episode: nothing is written for no data
            writer = ReplayBufferWriter(out, zarr_format=zarr_format, image_quality=quality,
                                        overwrite=overwrite, attrs=attrs)
        writer.add_episode(result)
    if not attrs["source_episodes"]:
        reasons = "; ".join(f"{name}: {why}" for name, why in attrs["skip_reasons"].items())
        raise ValueError(f"{store.path}: no episode could be aligned ({reasons})"
                         + ("" if explicit else "; choose the streams to align with keys / --keys"))
    if attrs["skipped_episodes"]:
        log.warning("%d of %d episodes skipped: %s", len(attrs["skipped_episodes"]), len(indices),
                    "; ".join(f"{n}: {why}" for n, why in attrs["skip_reasons"].items()))
    if writer is not None:
        writer.root.attrs["tactkit"] = attrs
        return writer.close()
    return ReplayBuffer.from_episodes(aligned, attrs=attrs)
