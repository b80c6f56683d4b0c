"""The committed-episode index: constant-cost begin, commit, listing and ``info``.

Without it, every listing reads every episode's commit record (O(n) per call, O(n^2) to
record a store). The index is **derived data**: a copy of the commit records, rebuilt from
them whenever it is missing, unreadable or stale, never the only copy of anything.

Files (plain JSON objects next to the Zarr hierarchy)::

    index/head.json                  {count, segments, next, pending, totals, generation, last}
    index/seg-000003-g0.json         {"entries": [[name, commit record], ...]}  (<= 128 each)

Entries are sorted by episode name. ``pending`` lists episodes that were begun and are not
committed or discarded yet; ``next`` is the next episode number. Every file is replaced
atomically, and the head is written last, so after a kill the head describes a consistent
index (a segment may hold one entry more than the head counts; it is ignored).

The sequences (the commit record is always the truth):

* begin:  head (``pending`` += name, ``next`` += 1), then the episode group;
* commit: commit record, then the last segment (or a new one), then the head;
* discard: discard marker, delete the episode, marker removed, then the head.

Opening checks the ``pending`` episodes (a commit record written before a kill is indexed
then) and whether an episode ``next`` exists (someone wrote without the index); either
case, or a damaged index, repairs it. A commit out of name order (recovering an old
episode) rewrites the whole index under a new generation, then switches the head.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from bisect import bisect_left
from typing import Any

from tactkit.store import layout
from tactkit.store._paths import KeyIO
from tactkit.store.errors import StoreError

log = logging.getLogger(__name__)

INDEX_VERSION = 1
SEGMENT_SIZE = 128
HEAD_KEY = "index/head.json"


class IndexDamaged(Exception):
    """The index files disagree with each other (the caller rebuilds)."""


def _empty_totals() -> dict[str, Any]:
    return {"successful": 0, "frames": {}, "duration_s": 0.0, "stored_bytes": 0,
            "episodes_without_size": 0}


def record_duration(record: dict[str, Any]) -> float:
    firsts = [v for v in record.get("t_first", {}).values() if v is not None]
    lasts = [v for v in record.get("t_last", {}).values() if v is not None]
    return float(max(lasts) - min(firsts)) if firsts and lasts else 0.0


def _add_totals(totals: dict[str, Any], record: dict[str, Any]) -> None:
    totals["successful"] += bool(record.get("success"))
    for k, n in record.get("lengths", {}).items():
        totals["frames"][k] = totals["frames"].get(k, 0) + int(n)
    totals["duration_s"] += record_duration(record)
    if isinstance(record.get("stored_bytes"), int):
        totals["stored_bytes"] += record["stored_bytes"]
    else:
        totals["episodes_without_size"] += 1


class EpisodeIndex:
    """Committed episodes of one store, in name order (see the module doc).

    ``writable=False`` (a store opened read-only) repairs and rebuilds in memory only.
    """

    def __init__(self, io: KeyIO, writable: bool) -> None:
        """Load the index, repairing or rebuilding it when it is missing, damaged or stale."""
        self.io = io
        self.writable = writable
        self.lock = threading.RLock()
        self.head: dict[str, Any] = {}
        self._segments: dict[str, list[list[Any]]] = {}  # file name -> entries
        #: commit records that could not be read while rebuilding: name -> message
        self.damaged: dict[str, str] = {}
        self.rebuilt_reason: str | None = None
        with self.lock:
            reason = self._load_head()
            if reason is None:
                try:
                    self._check_last_segment()
                    reason = self._reconcile()
                except IndexDamaged as exc:
                    reason = f"index damaged: {exc}"
            if reason is not None:
                self.rebuild(reason)

    # ------------------------------------------------------------------ open

    def _load_head(self) -> str | None:
        raw = self.io.get(HEAD_KEY)
        if raw is None:
            return "no index"
        try:
            head = json.loads(raw)
            if head.get("index_version") != INDEX_VERSION:
                return f"index version {head.get('index_version')!r}"
            for field, kind in (("count", int), ("next", int), ("segments", list), ("pending", list),
                                ("totals", dict)):
                if not isinstance(head.get(field), kind):
                    return f"index head has no valid '{field}'"
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            return f"index head unreadable ({exc})"
        if len(head["segments"]) != -(-head["count"] // SEGMENT_SIZE):
            return "index head: segment count does not match the episode count"
        self.head = head
        return None

    def _segment(self, k: int) -> list[list[Any]]:
        """Entries of segment ``k`` (cached; validated against the head)."""
        fname = self.head["segments"][k]
        entries = self._segments.get(fname)
        if entries is None:
            raw = self.io.get(f"index/{fname}")
            if raw is None:
                raise IndexDamaged(f"segment {fname} is missing")
            try:
                entries = json.loads(raw)["entries"]
            except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
                raise IndexDamaged(f"segment {fname} unreadable ({exc})") from None
            want = min(SEGMENT_SIZE, self.head["count"] - k * SEGMENT_SIZE)
            if not isinstance(entries, list) or len(entries) < want:
                raise IndexDamaged(f"segment {fname} holds fewer entries than the head counts")
            entries = entries[:want]  # an entry past the count was written before a kill
            names = [e[0] for e in entries]
            if names != sorted(names) or len(set(names)) != len(names):
                raise IndexDamaged(f"segment {fname} is not in name order")
            self._segments[fname] = entries
        return entries

    def _check_last_segment(self) -> None:
        if self.head["count"]:
            last = self._segment(len(self.head["segments"]) - 1)[-1][0]
            if last != self.head.get("last"):
                raise IndexDamaged(f"last entry {last} != head's {self.head.get('last')}")

    def _reconcile(self) -> str | None:
        """Index the pending episodes that were committed before a kill, drop those that
        never got a group; returns a reason to rebuild, or ``None``."""
        for name in list(self.head["pending"]):
            if layout.is_discarding(self.io, name):
                continue  # recover() finishes it
            try:
                record = layout.read_commit_record(self.io, name)
            except StoreError as exc:
                self.damaged[name] = str(exc)
                log.error("%s", exc)
                continue
            if record is not None:
                log.info("%s: indexing %s, committed before the index was updated", self.io.path, name)
                self.add(name, record)
            elif not layout.episode_exists(self.io, name):
                self._write_head(pending=[n for n in self.head["pending"] if n != name])
        if layout.episode_exists(self.io, layout.episode_name(self.head["next"])):
            return f"episode {layout.episode_name(self.head['next'])} exists but was never indexed"
        return None

    # ------------------------------------------------------------------ rebuild
    def rebuild(self, reason: str) -> None:
        """Rebuild from the episodes' commit records (reads every one, once)."""
        with self.lock:
            log.info("%s: rebuilding the episode index (%s)", self.io.path, reason)
            self.rebuilt_reason = reason
            self.damaged = {}
            names = layout.list_episode_dirs(self.io)
            discarding = set(layout.discarding(self.io))
            entries, pending = [], []
            for name in sorted(set(names) | discarding):
                if name in discarding:
                    pending.append(name)
                    continue
                try:
                    record = layout.read_commit_record(self.io, name)
                except StoreError as exc:
                    self.damaged[name] = str(exc)
                    log.error("%s; the other episodes stay readable", exc)
                    continue
                if record is not None:
                    entries.append([name, record])
                elif self.io.exists(f"{layout.episode_key(name)}/zarr.json"):
                    pending.append(name)  # interrupted; a directory without it is a leftover
            numbers = [layout.episode_number(n) for n in names] + \
                [layout.episode_number(n) for n in discarding]
            prev_next = self.head.get("next", 0) if isinstance(self.head.get("next"), int) else 0
            self._rewrite(entries, pending, max([prev_next - 1, *numbers], default=-1) + 1)

    def _rewrite(self, entries: list[list[Any]], pending: list[str], next_number: int) -> None:
        """Write every segment under a new generation, switch the head, drop old files."""
        gen = int(self.head.get("generation", -1)) + 1 if self.head else 0
        segments, files = [], {}
        for k in range(0, len(entries), SEGMENT_SIZE):
            fname = f"seg-{k // SEGMENT_SIZE:06d}-g{gen}-{uuid.uuid4().hex[:6]}.json"
            files[fname] = entries[k:k + SEGMENT_SIZE]
            segments.append(fname)
        totals = _empty_totals()
        for _, record in entries:
            _add_totals(totals, record)
        if self.writable:
            for fname, part in files.items():
                self.io.set(f"index/{fname}", json.dumps({"entries": part}).encode())
        self._segments = dict(files)
        self.head = {"index_version": INDEX_VERSION, "generation": gen, "count": len(entries),
                     "segments": segments, "last": entries[-1][0] if entries else None,
                     "next": next_number, "pending": pending, "totals": totals}
        self._write_head()
        if self.writable:
            keep = {"head.json", *segments}
            for fname in self.io.list_dir("index"):
                if fname not in keep:
                    self.io.delete(f"index/{fname}")

    def _write_head(self, **changes: Any) -> None:
        self.head.update(changes)
        if self.writable:
            self.io.set(HEAD_KEY, json.dumps(self.head).encode())

    # ------------------------------------------------------------------ reading
    @property
    def count(self) -> int:
        return int(self.head["count"])

    @property
    def pending(self) -> list[str]:
        return list(self.head["pending"])

    @property
    def totals(self) -> dict[str, Any]:
        return self.head["totals"]

    def entry(self, i: int) -> tuple[str, dict[str, Any]]:
        """``(name, commit record)`` of the ``i``-th committed episode (0 <= i < count)."""
        with self.lock:
            try:
                name, record = self._segment(i // SEGMENT_SIZE)[i % SEGMENT_SIZE]
            except IndexDamaged as exc:
                self.rebuild(f"index damaged: {exc}")
                name, record = self._segment(i // SEGMENT_SIZE)[i % SEGMENT_SIZE]
            return name, record

    def position(self, name: str) -> int | None:
        """Index of the committed episode ``name`` (binary search over segments)."""
        with self.lock:
            try:
                return self._position(name)
            except IndexDamaged as exc:
                self.rebuild(f"index damaged: {exc}")
                return self._position(name)

    def _position(self, name: str) -> int | None:
        with self.lock:
            lo, hi = 0, len(self.head["segments"])
            while lo < hi:  # first segment whose last name >= name
                mid = (lo + hi) // 2
                if self._segment(mid)[-1][0] < name:
                    lo = mid + 1
                else:
                    hi = mid
            if lo == len(self.head["segments"]):
                return None
            names = [e[0] for e in self._segment(lo)]
            j = bisect_left(names, name)
            return lo * SEGMENT_SIZE + j if j < len(names) and names[j] == name else None

    def entries(self) -> list[tuple[str, dict[str, Any]]]:
        return [self.entry(i) for i in range(self.count)]

    # ------------------------------------------------------------------ writing
    def reserve(self) -> str:
        """A fresh episode name, recorded as pending before its group is created."""
        with self.lock:
            number = int(self.head["next"])
            while layout.episode_exists(self.io, layout.episode_name(number)):
                number += 1  # leftovers of a killed delete, or a writer that bypassed the index
            name = layout.episode_name(number)
            self._write_head(next=number + 1, pending=[*self.head["pending"], name])
            return name

    def commit(self, root: Any, path: str, name: str, record: dict[str, Any]) -> None:
        """Write the commit record (the episode is committed from here on), then index it."""
        with self.lock:
            layout.write_commit(root, path, name, record)
            self.add(name, record)

    def add(self, name: str, record: dict[str, Any]) -> None:
        """Index committed episode ``name``."""
        with self.lock:
            pending = [n for n in self.head["pending"] if n != name]
            if self.head["count"] and name <= self.head["last"]:
                if self.position(name) is not None:  # already indexed
                    self._write_head(pending=pending)
                    return
                # out of name order (an old episode recovered): rewrite the whole index
                entries = [list(e) for e in self.entries()]
                entries.insert(bisect_left([e[0] for e in entries], name), [name, record])
                self._rewrite(entries, pending, self.head["next"])
                return
            segments = list(self.head["segments"])
            count = self.head["count"]
            if count % SEGMENT_SIZE == 0:
                fname = f"seg-{count // SEGMENT_SIZE:06d}-g{self.head.get('generation', 0)}-" \
                        f"{uuid.uuid4().hex[:6]}.json"
                segments.append(fname)
                part = []
            else:
                fname = segments[-1]
                part = list(self._segment(len(segments) - 1))
            part.append([name, record])
            if self.writable:
                self.io.set(f"index/{fname}", json.dumps({"entries": part}).encode())
            self._segments[fname] = part
            totals = json.loads(json.dumps(self.head["totals"]))
            _add_totals(totals, record)
            self._write_head(count=count + 1, segments=segments, last=name, pending=pending,
                             totals=totals)

    def forget(self, name: str) -> None:
        """Drop a pending episode that was discarded or deleted."""
        with self.lock:
            if name in self.head["pending"]:
                self._write_head(pending=[n for n in self.head["pending"] if n != name])

    def stale_reason(self) -> str | None:
        """Compare the index with the episode directories (lists them all: O(n))."""
        with self.lock:
            indexed = {name for name, _ in self.entries()}
            known = indexed | set(self.head["pending"]) | set(self.damaged)
            for name in layout.list_episode_dirs(self.io):
                if name in known or not self.io.exists(f"{layout.episode_key(name)}/zarr.json"):
                    continue
                return f"episode {name} is not in the index"
            for name in indexed:
                if not layout.episode_exists(self.io, name):
                    return f"indexed episode {name} has no directory"
            return None
