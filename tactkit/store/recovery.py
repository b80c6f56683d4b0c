"""Salvaging interrupted episodes: commit the flushed prefix of each stream, or delete."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from tactkit.store import _paths, chunks, integrity, layout

if TYPE_CHECKING:
    from tactkit.store.episode_store import EpisodeStore

log = logging.getLogger(__name__)


def _valid_prefix(ts: np.ndarray) -> int:
    """Length of the leading run of finite, non-decreasing timestamps."""
    if len(ts) == 0:
        return 0
    bad = ~np.isfinite(ts)
    bad[1:] |= np.diff(ts) < 0
    return int(np.argmax(bad)) if bad.any() else len(ts)


def _decodable_prefix(store: EpisodeStore, name: str, key: str, values: Any, n: int) -> int:
    """Largest m <= n such that ``values[:m]`` is there and decodes (chunk by chunk on failure).

    With atomic writes (local stores) a chunk is either absent or whole, so only the last
    chunk, the one being written at the crash, is checked first."""
    _, lay = chunks.read_layout(store.io, layout.array_key(name, key, "values"))
    step = int(values.chunks[0])

    def readable(lo: int, hi: int) -> bool:
        try:
            if lay is not None:  # checksummed arrays: a missing chunk is not zeros
                chunks.read_rows(store.io, lay, lo, hi, name)
            else:
                values[lo:hi]
            return True
        except Exception:
            return False

    atomic = _paths.local_path(store.path) is not None
    if readable(max(0, n - step) if atomic else 0, n):
        return n
    m = 0
    while m < n and readable(m, min(n, m + step)):
        m = min(n, m + step)
    return m


def recover_episode(store: EpisodeStore, name: str, discard: bool = False) -> dict[str, Any]:
    """Commit the flushed prefix of interrupted episode ``name`` (or delete it)."""
    report: dict[str, Any] = {"episode": name, "action": "discarded", "lengths": {}}
    if discard:
        _delete(store, name)
        log.info("discarded interrupted episode %s", name)
        return report
    try:
        group = layout.episodes_group(store.root, store.path)[name]
    except Exception as exc:  # group metadata unreadable: nothing to salvage
        report["reason"] = f"unreadable episode group: {exc!r}"
        _delete(store, name)
        return report
    lengths: dict[str, int] = {}
    t_first: dict[str, float | None] = {}
    t_last: dict[str, float | None] = {}
    for key, spec in store.streams.items():
        try:
            values, tsa = group[f"{key}/values"], group[f"{key}/timestamps"]
            ts = np.asarray(tsa[:], dtype=np.float64)
        except Exception as exc:  # stream never created (killed during begin_episode)
            log.info("%s: stream '%s' unreadable (%r); recovered as empty", name, key, exc)
            values = tsa = None
            ts = np.zeros(0)
        n = _valid_prefix(ts)
        if values is not None and n:
            n = _decodable_prefix(store, name, key, values, n)
        if values is not None:
            values.resize((n, *spec.shape))
            tsa.resize((n,))
        else:
            layout.create_empty_stream(group, key, spec)
        lengths[key] = n
        t_first[key] = float(ts[0]) if n else None
        t_last[key] = float(ts[n - 1]) if n else None
    report["lengths"] = lengths
    if sum(lengths.values()) == 0:
        report["reason"] = "no flushed samples"
        _delete(store, name)
        return report
    digests, stored_bytes = integrity.content_digests(store.io, name, lengths)
    record = {
        "success": False,
        "note": "recovered after an interrupted recording",
        "metadata": {},
        "lengths": lengths,
        "t_first": t_first,
        "t_last": t_last,
        "digests": digests,
        "stored_bytes": stored_bytes,
        "end_wall_time": time.time(),
        "recovered": True,
    }
    store.index.commit(store.root, store.path, name, record)
    report["action"] = "recovered"
    log.info("recovered interrupted episode %s: %s", name, lengths)
    return report


def _delete(store: EpisodeStore, name: str) -> None:
    layout.delete_episode(store.io, name)
    store.index.forget(name)
