"""Salvaging interrupted episodes and verifying committed ones."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from tactkit.store import _paths, layout

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


def _decodable_prefix(values: Any, n: int, atomic: bool) -> int:
    """Largest m <= n such that ``values[:m]`` decodes (chunk by chunk on failure).

    With ``atomic`` writes (local stores) a chunk is either absent or whole, so only the
    last chunk, the one being written at the crash, is decoded to check."""
    step = int(values.chunks[0])
    try:
        values[max(0, n - step) if atomic else 0:n]
        return n
    except Exception:
        pass
    m = 0
    while m < n:
        try:
            values[m:min(n, m + step)]
        except Exception:
            break
        m = min(n, m + step)
    return m


def recover_episode(store: EpisodeStore, name: str, discard: bool = False) -> dict[str, Any]:
    """Commit the flushed prefix of interrupted episode ``name`` (or delete it)."""
    report: dict[str, Any] = {"episode": name, "action": "discarded", "lengths": {}}
    if discard:
        layout.delete_episode(store.root, store.path, name)
        log.info("discarded interrupted episode %s", name)
        return report
    try:
        group = layout.episodes_group(store.root, store.path)[name]
    except Exception as exc:  # group metadata unreadable: nothing to salvage
        report["reason"] = f"unreadable episode group: {exc!r}"
        layout.delete_episode(store.root, store.path, name)
        return report
    atomic = _paths.local_path(store.path) is not None
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
            n = _decodable_prefix(values, n, atomic)
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
        layout.delete_episode(store.root, store.path, name)
        return report
    record = {
        "success": False,
        "note": "recovered after an interrupted recording",
        "metadata": {},
        "lengths": lengths,
        "t_first": t_first,
        "t_last": t_last,
        "end_wall_time": time.time(),
        "recovered": True,
    }
    layout.write_commit(store.root, store.path, name, record)
    report["action"] = "recovered"
    log.info("recovered interrupted episode %s: %s", name, lengths)
    return report


def verify_store(store: EpisodeStore, progress: bool = False) -> list[str]:
    """Read every committed episode fully and check it against schema and commit record."""
    problems: list[str] = []
    eps = range(store.num_episodes)
    if progress:
        from tqdm import tqdm

        eps = tqdm(eps, desc="verify", unit="episode")
    for i in eps:
        ep = store.episode(i)
        for key, spec in store.streams.items():
            where = f"episode {ep.name} stream '{key}'"
            if key not in ep.record.get("lengths", {}):
                problems.append(f"{where}: missing from the commit record")
                continue
            try:
                ts = ep.timestamps(key)
                vals = ep.values(key)
            except Exception as exc:
                problems.append(f"{where}: unreadable: {exc}")
                continue
            n = ep.length(key)
            if len(ts) != n or len(vals) != n:
                problems.append(f"{where}: inconsistent length: {len(ts)} timestamps, "
                                f"{len(vals)} values, commit record {n}")
            if vals.shape[1:] != spec.shape or vals.dtype != np.dtype(spec.dtype):
                problems.append(f"{where}: stored {vals.dtype}{vals.shape[1:]} != schema "
                                f"{spec.dtype}{spec.shape}")
            if n and not np.isfinite(ts).all():
                problems.append(f"{where}: non-finite timestamp at index {int(np.argmin(np.isfinite(ts)))}")
            elif n > 1 and (np.diff(ts) < 0).any():
                problems.append(f"{where}: timestamps go backwards at index {int(np.argmax(np.diff(ts) < 0)) + 1}")
    for name in store.interrupted():
        problems.append(f"episode {name}: interrupted (not committed); run `tactkit dataset recover`")
    return problems
