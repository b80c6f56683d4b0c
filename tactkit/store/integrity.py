"""Integrity of committed episodes: content digests at commit, and the checks behind
``tactkit dataset verify`` (full), ``verify --quick`` and opening a store for training.

* **quick**: every commit record readable and equal to its index entry; the episode's group
  metadata present; for every stream, both arrays' metadata present, sample counts equal to
  the commit record's, dtype and shape as the schema says, and every chunk of ``[0, n)``
  present (a directory listing per array; no chunk is read).
* **full**: the quick checks, then every chunk read and decoded (its CRC-32C checked), the
  stored bytes hashed and compared with the commit record's content digest, and the
  timestamps checked finite and non-decreasing.

Each problem names the episode, the stream and, where it is one, the chunk. Episodes of a
format-1 store have no checksums or digests: for them the checks say so in a note, and a
missing value chunk is a note too (format 1 did not write all-fill chunks).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tactkit.store import chunks, layout
from tactkit.store._paths import KeyIO
from tactkit.store.errors import StoreError
from tactkit.store.schema import StreamSpec

if TYPE_CHECKING:
    from tactkit.store.index import EpisodeIndex

ARRAYS = ("values", "timestamps")
#: Chunks named per array before the rest are counted.
_MAX_NAMED = 5


def content_digests(io: KeyIO, name: str, lengths: dict[str, int]) -> tuple[dict[str, str], int]:
    """Per stream, SHA-256 over the stored chunks of ``values`` then ``timestamps`` that hold
    the stream's ``n`` samples; and the total stored bytes. Called at commit."""
    digests, total = {}, 0
    for key, n in lengths.items():
        h = hashlib.sha256()
        for which in ARRAYS:
            akey = layout.array_key(name, key, which)
            _, lay = chunks.read_layout(io, akey)
            if lay is None:
                raise StoreError(f"{io.path}/{akey}: cannot digest an array of this layout")
            for i, data in enumerate(chunks.chunk_bytes(io, lay, n)):
                if data is None:
                    raise StoreError(f"{io.path}/{lay.chunk_key(i)}: chunk missing at commit")
                h.update(f"{which}:{i}:{len(data)}:".encode())
                h.update(data)
                total += len(data)
        digests[key] = "sha256:" + h.hexdigest()
    return digests, total


@dataclass
class CheckReport:
    """What :func:`check_store` found. ``problems`` make ``verify`` fail; ``notes`` do not."""

    quick: bool
    episodes: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _present_chunks(io: KeyIO, lay: chunks.ArrayLayout) -> set[str]:
    if lay.separator == "/":
        return set(io.list_prefix(lay.key))
    return set(io.list_dir(lay.key))


def _chunk_list(names: list[str]) -> str:
    shown = ", ".join(names[:_MAX_NAMED])
    return shown + (f" and {len(names) - _MAX_NAMED} more" if len(names) > _MAX_NAMED else "")


def check_episode(io: KeyIO, streams: dict[str, StreamSpec], name: str, record: dict[str, Any],
                  quick: bool) -> tuple[list[str], list[str]]:
    """``(problems, notes)`` of one committed episode (see the module doc)."""
    problems: list[str] = []
    notes: list[str] = []
    ep = f"episode {name}"
    try:
        layout.read_episode_attrs(io, name)
    except StoreError as exc:
        problems.append(f"{ep}: {exc}")
    lengths = record.get("lengths", {})
    digests = record.get("digests") or {}
    for key, spec in streams.items():
        where = f"{ep} stream '{key}'"
        if key not in lengths:
            problems.append(f"{where}: missing from the commit record")
            continue
        n = int(lengths[key])
        h = hashlib.sha256()
        complete = True
        ts = None
        for which in ARRAYS:
            akey = layout.array_key(name, key, which)
            try:
                meta, lay = chunks.read_layout(io, akey)
            except StoreError as exc:
                problems.append(f"{where}: {exc}")
                complete = False
                continue
            if meta is None:
                problems.append(f"{where}: {which} array is missing ({akey}/zarr.json)")
                complete = False
                continue
            stored = int(meta["shape"][0])
            if stored != n:
                problems.append(f"{where}: inconsistent length: the commit record says {n} samples "
                                f"but {which} holds {stored}")
                complete = False
            if which == "values":
                dtype = np.dtype(meta.get("data_type", meta.get("dtype", "V")))
                if tuple(meta["shape"][1:]) != spec.shape or dtype != np.dtype(spec.dtype):
                    problems.append(f"{where}: stored {dtype}{tuple(meta['shape'][1:])} != schema "
                                    f"{spec.dtype}{spec.shape}")
            if lay is None:
                notes.append(f"{where}: {which} uses codecs this check does not read chunk by chunk")
                complete = False
                continue
            want = [lay.chunk_name(i) for i in range(lay.n_chunks(min(n, stored)))]
            present = _present_chunks(io, lay)
            missing = [c for c in want if c not in present]
            if missing:
                msg = f"{where}: {len(missing)} of {len(want)} {which} chunks missing: " \
                      f"{_chunk_list([f'{akey}/{c}' for c in missing])}"
                if lay.checksummed or which == "timestamps":
                    problems.append(msg)
                    complete = False
                else:
                    notes.append(msg + " (format 1 does not write all-zero chunks: they read as zeros)")
            if quick:
                continue
            for i, data in enumerate(chunks.chunk_bytes(io, lay, min(n, stored))):
                if data is None:
                    continue  # reported above
                h.update(f"{which}:{i}:{len(data)}:".encode())
                h.update(data)
                try:
                    block = lay.decode(data)
                except Exception as exc:  # noqa: BLE001 - any decode failure is damage
                    lo = i * lay.chunk_rows
                    problems.append(f"{where}: chunk {lay.chunk_key(i)} (samples {lo}.."
                                    f"{lo + lay.chunk_rows - 1}) is damaged: {exc}")
                    complete = False
                    continue
                if which == "timestamps":
                    ts = block if ts is None else np.concatenate([ts, block])
        if quick:
            continue
        if ts is not None and complete:
            ts = ts[:n]
            if n and not np.isfinite(ts).all():
                problems.append(f"{where}: non-finite timestamp at index {int(np.argmin(np.isfinite(ts)))}")
            elif n > 1 and (np.diff(ts) < 0).any():
                problems.append(f"{where}: timestamps go backwards at index "
                                f"{int(np.argmax(np.diff(ts) < 0)) + 1}")
        if key in digests and complete and "sha256:" + h.hexdigest() != digests[key]:
            problems.append(f"{where}: content digest mismatch: the stored chunks are not the ones "
                            "committed (a chunk replaced, swapped or rewritten)")
    return problems, notes


def check_store(io: KeyIO, streams: dict[str, StreamSpec], index: EpisodeIndex, format_version: int,
                quick: bool, include_uncommitted: bool = True, progress: bool = False) -> CheckReport:
    """Check every committed episode (and, with ``include_uncommitted``, report interrupted
    episodes and unfinished discards). Compares the index with the commit records."""
    report = CheckReport(quick=quick, episodes=index.count)
    for name, msg in sorted(index.damaged.items()):
        report.problems.append(f"episode {name}: {msg}")
    iterator: Any = range(index.count)
    if progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc="verify --quick" if quick else "verify", unit="episode")
    legacy = 0
    for i in iterator:
        name, indexed = index.entry(i)
        try:
            record = layout.read_commit_record(io, name)
        except StoreError as exc:
            report.problems.append(f"episode {name}: {exc}")
            record = indexed
        else:
            if record is None:
                report.problems.append(f"episode {name}: indexed as committed but its commit "
                                       f"record {layout.commit_key(name)} is missing")
                record = indexed
            elif record != indexed:
                diff = sorted(k for k in set(record) | set(indexed) if record.get(k) != indexed.get(k))
                report.problems.append(f"episode {name}: commit record differs from its copy in the "
                                       f"index (fields {', '.join(diff)}): edited or damaged")
        legacy += not record.get("digests")
        problems, notes = check_episode(io, streams, name, record, quick)
        report.problems += problems
        report.notes += notes
    if legacy:
        report.notes.append(f"{legacy} of {index.count} episodes were written without chunk checksums "
                            f"and content digests (store format {format_version} or older tactkit): "
                            "counts, decoding and timestamps checked only")
    if include_uncommitted:
        for name in index.pending:
            if layout.is_discarding(io, name):
                report.problems.append(f"episode {name}: discard was interrupted; run "
                                       "`tactkit dataset recover` to finish it")
            elif name not in index.damaged:
                report.problems.append(f"episode {name}: interrupted (not committed); run "
                                       "`tactkit dataset recover`")
    return report
