"""diffusion_policy's replay-buffer layout: ``data/<key>`` concatenated on time and
``meta/episode_ends`` (int64, cumulative: episode i spans ``[ends[i-1], ends[i])``).

:class:`ReplayBuffer` opens such a buffer in Zarr format 2 (what diffusion_policy and RDP
write: a directory store with Blosc compressors) or 3 without conversion, holds one in
memory, and saves one in either format (format 2 with Blosc only, so diffusion_policy's
``ReplayBuffer.copy_from_path`` opens it unchanged). Buffers whose images diffusion_policy,
UMI or RDP compressed with Jpeg2k or JpegXL open too (:mod:`tactkit.store.codecs` registers
those codecs).

A *key map* renames the keys of such buffers to tactkit's dataset keys (``{"img":
"observation.images.wrist"}``, the ``keys.img=observation.images.wrist`` override of
``tactkit train``): a value may name several targets (``"observation.state.tcp_pose,action.tcp_pose"``:
UMI has no action key, its actions are the future poses) and a source may join 1-D keys on
their last axis (``"robot0_eef_pos+robot0_eef_rot_axis_angle"``: UMI's 6-D pose).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import Crc32cCodec

from tactkit.store import _paths, chunks
from tactkit.store.codecs import JpegCodec, lossless_compressor
from tactkit.store.errors import NotAStoreError, StoreError

log = logging.getLogger(__name__)

TIMESTAMP_KEY = "timestamp"


def is_image_array(arr: Any) -> bool:
    """uint8 ``[n, H, W, C]`` with C in (1, 3): a camera key of a replay buffer."""
    return arr.dtype == np.uint8 and arr.ndim == 4 and arr.shape[-1] in (1, 3)


def _check_layout(data: Mapping[str, Any], episode_ends: np.ndarray, where: str) -> None:
    if episode_ends.ndim != 1:
        raise StoreError(f"{where}: meta/episode_ends must be 1-D, got shape {episode_ends.shape}")
    if len(episode_ends) and (episode_ends[0] < 0 or (np.diff(episode_ends) < 0).any()):
        raise StoreError(f"{where}: meta/episode_ends must be non-decreasing and >= 0")
    n = int(episode_ends[-1]) if len(episode_ends) else 0
    for key, arr in data.items():
        if arr.shape[0] != n:
            raise StoreError(
                f"{where}: data/{key} has inconsistent length: {arr.shape[0]} steps but "
                f"meta/episode_ends[-1] = {n}"
            )


_SLICE = re.compile(r"^(?P<key>[^\[\]]+)\[(?P<a>\d*):(?P<b>\d*)\]$")


@dataclass(frozen=True)
class KeyMapEntry:
    """One ``SOURCE[+SOURCE...]=TARGET[,TARGET...]`` entry; a target ``name[a:b]`` takes the
    columns ``a:b`` of the (1-D) source, as RDP's 10-D ``action`` holds pose and gripper."""

    sources: tuple[str, ...]
    targets: tuple[tuple[str, slice | None], ...]

    @property
    def label(self) -> str:
        return "keys." + "+".join(self.sources)


def parse_key_map(key_map: Mapping[str, Any] | None) -> list[KeyMapEntry]:
    """``{source: target(s)}`` -> entries: a source ``a+b`` joins 1-D keys on their last axis;
    a target is a key, ``key[a:b]``, a comma-separated string of them or a list."""
    out = []
    for src, dst in (key_map or {}).items():
        sources = tuple(s.strip() for s in str(src).split("+"))
        raw = [t.strip() for t in (dst.split(",") if isinstance(dst, str) else dst)] if dst else []
        targets = []
        for t in raw:
            m = _SLICE.match(t) if isinstance(t, str) else None
            if m:
                a, b = m["a"], m["b"]
                targets.append((m["key"], slice(int(a) if a else None, int(b) if b else None)))
            elif isinstance(t, str) and t and "[" not in t:
                targets.append((t, None))
            else:
                raise ValueError(f"key map entry {src!r}: target {t!r} is not KEY or KEY[a:b]")
        if not all(sources) or not targets:
            raise ValueError(f"key map entry {src!r}: {dst!r} is not SOURCE[+SOURCE...]=TARGET[,TARGET...]")
        out.append(KeyMapEntry(sources, tuple(targets)))
    names = [t for e in out for t, _ in e.targets]
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise ValueError(f"key map names {dup} as the target of several sources")
    return out


def mapped_keys(keys: Sequence[str], key_map: Mapping[str, Any] | None, where: str = "") -> list[str]:
    """The key names after :func:`apply_key_map` (checks that every source exists)."""
    entries = parse_key_map(key_map)
    present = set(keys)
    sources = {s for e in entries for s in e.sources}
    for e in entries:
        missing = [s for s in e.sources if s not in present]
        if missing:
            raise KeyError(f"{where}: {e.label}: no key {missing[0]!r}; keys: {', '.join(sorted(present))}")
        clash = [t for t, _ in e.targets if t in present and t not in sources]
        if clash:
            raise ValueError(f"{where}: {e.label}: target {clash[0]!r} is already a key of the data")
    out: list[str] = []
    for k in keys:  # each entry's targets take the place of its first source
        for e in entries:
            if k == e.sources[0]:
                out += [t for t, _ in e.targets if t not in out]
        if k not in sources and k not in out:
            out.append(k)
    return out


def select_key_map(key_map: Mapping[str, Any] | None, needed: Sequence[str]) -> tuple[dict[str, Any], list[str]]:
    """The entries of ``key_map`` that produce one of the ``needed`` keys, and the source keys
    ``needed`` reads (mapped keys' sources, the others as they are)."""
    sub: dict[str, Any] = {}
    by_target = {}
    for (src, dst), e in zip((key_map or {}).items(), parse_key_map(key_map)):
        if any(t in needed for t, _ in e.targets):
            sub[src] = dst
            by_target.update({t: e for t, _ in e.targets})
    sources: list[str] = []
    for k in needed:
        for s in (by_target[k].sources if k in by_target else (k,)):
            if s not in sources:
                sources.append(s)
    return sub, sources


def apply_key_map(data: Mapping[str, Any], key_map: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
    """``data`` with keys renamed, joined, copied or sliced by ``key_map`` (see the module doc).
    Sources that are not also targets disappear; joined and sliced keys are read into memory."""
    entries = parse_key_map(key_map)
    if not entries:
        return dict(data)
    names = mapped_keys(list(data), key_map, where)
    new: dict[str, Any] = {}
    for e in entries:
        if len(e.sources) == 1:
            value = data[e.sources[0]]
        else:
            parts = [np.asarray(data[s][:]) for s in e.sources]
            if any(p.ndim != 2 for p in parts) or len({p.dtype for p in parts}) != 1:
                raise ValueError(f"{where}: {e.label}: only 1-D keys of one dtype join, got "
                                 + ", ".join(f"{s} {p.dtype}{list(p.shape[1:])}" for s, p in zip(e.sources, parts)))
            value = np.concatenate(parts, axis=1)
        for t, sl in e.targets:
            if sl is None:
                new[t] = value
                continue
            if len(value.shape) != 2 or not 0 < len(range(value.shape[1])[sl]):
                raise ValueError(f"{where}: {e.label}: {t}[{sl.start}:{sl.stop}] selects no column of a "
                                 f"{list(value.shape[1:])} key")
            new[t] = np.ascontiguousarray(np.asarray(value[:])[:, sl])
    return {k: new[k] if k in new else data[k] for k in names}


class ReplayBuffer:
    """Episodes concatenated on time: ``data[key]`` is ``[n_steps, ...]``; ``episode_ends`` int64.

    Arrays are numpy (in memory) or zarr arrays (opened from disk; read lazily).
    """

    def __init__(self, data: Mapping[str, Any], episode_ends: Any,
                 attrs: dict[str, Any] | None = None, root: zarr.Group | None = None,
                 where: str = "<memory>") -> None:
        self.data: dict[str, Any] = dict(data)
        self.episode_ends = np.asarray(episode_ends, dtype=np.int64)
        self.attrs = dict(attrs or {})
        self.root = root
        self.where = where
        _check_layout(self.data, self.episode_ends, where)

    # ------------------------------------------------------------------ open / save
    @classmethod
    def open(cls, path: str | os.PathLike, key_map: Mapping[str, Any] | None = None) -> ReplayBuffer:
        """Open a replay buffer (Zarr v2 or v3, local path or fsspec URL) read-only, its keys
        renamed by ``key_map`` (see :func:`apply_key_map`)."""
        lp = _paths.local_path(path)
        if lp is not None and not lp.exists():
            raise FileNotFoundError(f"{path}: no such replay buffer")
        try:
            root = zarr.open_group(_paths.make_store(path, read_only=True), mode="r")
        except (FileNotFoundError, zarr.errors.GroupNotFoundError, zarr.errors.NodeTypeValidationError) as exc:
            raise NotAStoreError(f"{path}: not a zarr group ({exc})") from None
        if "data" not in root or "meta" not in root or "episode_ends" not in root["meta"]:
            raise NotAStoreError(f"{path}: not a replay buffer (needs data/ and meta/episode_ends)")
        arrays = dict(root["data"].arrays())
        ends = np.asarray(root["meta/episode_ends"][:])
        if ends.dtype.kind not in "iu":
            raise StoreError(f"{path}: meta/episode_ends must be integer, got {ends.dtype}")
        attrs = dict(root.attrs.get("tactkit", {}))
        # listing order is arbitrary: the view's own key order first, then the rest sorted
        order = [k for k in [*attrs.get("keys", []), TIMESTAMP_KEY] if k in arrays]
        order += sorted(k for k in arrays if k not in order)
        data = apply_key_map({k: arrays[k] for k in order}, key_map, str(path))
        return cls(data, ends, attrs=attrs, root=root, where=str(path))

    @classmethod
    def from_episodes(cls, episodes: list[dict[str, np.ndarray]],
                      attrs: dict[str, Any] | None = None) -> ReplayBuffer:
        """In-memory buffer from a list of per-episode ``{key: array[T, ...]}`` dicts."""
        if not episodes:
            raise ValueError("from_episodes needs at least one episode")
        keys = list(episodes[0])
        lengths = []
        for i, ep in enumerate(episodes):
            if list(ep) != keys:
                raise ValueError(f"episode {i} has keys {list(ep)}, expected {keys}")
            ns = {k: len(v) for k, v in ep.items()}
            if len(set(ns.values())) != 1:
                raise ValueError(f"episode {i}: keys have inconsistent length: {ns}")
            lengths.append(next(iter(ns.values())))
        data = {k: np.concatenate([ep[k] for ep in episodes]) for k in keys}
        return cls(data, np.cumsum(lengths, dtype=np.int64), attrs=attrs)

    def save(self, path: str | os.PathLike, zarr_format: int = 3, image_quality: int | None = 90,
             overwrite: bool = False) -> ReplayBuffer:
        """Write this buffer to ``path`` and return it opened from there.

        ``zarr_format=2`` writes Blosc(zstd) everywhere, the layout diffusion_policy writes;
        ``zarr_format=3`` stores uint8 image keys as JPEG (``image_quality``; ``None`` keeps
        them lossless) and the rest with Blosc(zstd).
        """
        writer = ReplayBufferWriter(path, zarr_format=zarr_format, image_quality=image_quality,
                                    overwrite=overwrite, attrs=self.attrs)
        for i in range(self.n_episodes):
            writer.add_episode(self.get_episode(i))
        return writer.close()

    # ------------------------------------------------------------------ access
    @property
    def n_episodes(self) -> int:
        return len(self.episode_ends)

    @property
    def n_steps(self) -> int:
        return int(self.episode_ends[-1]) if len(self.episode_ends) else 0

    @property
    def episode_lengths(self) -> np.ndarray:
        return np.diff(self.episode_ends, prepend=0)

    def keys(self) -> list[str]:
        return list(self.data)

    def __getitem__(self, key: str) -> Any:
        try:
            return self.data[key]
        except KeyError:
            raise KeyError(f"replay buffer has no key '{key}'; keys: {self.keys()}") from None

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def episode_slice(self, i: int) -> slice:
        if not -self.n_episodes <= i < self.n_episodes:
            raise IndexError(f"episode {i} out of range ({self.n_episodes} episodes)")
        i %= self.n_episodes
        start = int(self.episode_ends[i - 1]) if i > 0 else 0
        return slice(start, int(self.episode_ends[i]))

    def get_episode(self, i: int, keys: list[str] | None = None) -> dict[str, np.ndarray]:
        sl = self.episode_slice(i)
        return {k: np.asarray(self[k][sl]) for k in (keys or self.keys())}

    def renamed(self, key_map: Mapping[str, Any] | None) -> ReplayBuffer:
        """This buffer with its keys renamed by ``key_map`` (see :func:`apply_key_map`)."""
        return ReplayBuffer(apply_key_map(self.data, key_map, self.where), self.episode_ends,
                            attrs=self.attrs, root=self.root, where=self.where)

    def on_disk(self, cache_bytes: int = 256 << 20) -> ReplayBuffer:
        """This (opened) buffer with every array read by rows through one bounded cache of
        decoded chunks (:class:`~tactkit.store.chunks.CachedArray`), so that sampling windows
        keeps memory at ``cache_bytes`` whatever the buffer's size. Local paths or URLs."""
        if self.root is None:
            raise ValueError("on_disk() needs a buffer opened from a path (ReplayBuffer.open)")
        io = _paths.KeyIO(self.where)
        cache = chunks.ChunkCache(cache_bytes)
        data: dict[str, Any] = {}
        for key, arr in self.data.items():
            if isinstance(arr, np.ndarray):  # joined or sliced by a key map: already in memory
                data[key] = arr
                continue
            # a key map may have renamed the key: the array's own path says where it is stored
            array_key = str(getattr(arr, "path", "") or f"data/{key}").strip("/")
            _, lay = chunks.read_layout(io, array_key)
            data[key] = arr if lay is None else chunks.CachedArray(io, lay, cache, f"{self.where} {array_key}")
        return ReplayBuffer(data, self.episode_ends, attrs=self.attrs, root=self.root, where=self.where)

    def load(self, keys: list[str] | None = None) -> ReplayBuffer:
        """A copy with ``keys`` (default all) decoded into numpy arrays in memory."""
        keys = keys or self.keys()
        return ReplayBuffer({k: np.asarray(self[k][:]) for k in keys}, self.episode_ends.copy(),
                            attrs=self.attrs, where=self.where)

    def __repr__(self) -> str:
        shapes = {k: (tuple(v.shape), str(v.dtype)) for k, v in self.data.items()}
        return f"ReplayBuffer({self.where}, episodes={self.n_episodes}, steps={self.n_steps}, {shapes})"


#: Rows per chunk of lossless image arrays in a view: about this many bytes per chunk.
IMAGE_CHUNK_BYTES = 256 * 1024
#: Rows per chunk of other arrays: about this many bytes per chunk (at most 65536 rows).
LOWDIM_CHUNK_BYTES = 1 << 20


class ReplayBufferWriter:
    """Writes a replay buffer episode by episode; memory stays about one chunk per key.

    Chunks are written whole, straight to the store (:mod:`tactkit.store.chunks`), once they
    fill; the arrays' shapes are set at :meth:`close`. Format 3 arrays carry a CRC-32C per
    chunk; JPEG images keep one frame per chunk, and frames handed over as
    :class:`~tactkit.store.chunks.JpegFrames` are copied without re-encoding.
    """

    def __init__(self, path: str | os.PathLike, zarr_format: int = 3, image_quality: int | None = 90,
                 overwrite: bool = False, attrs: dict[str, Any] | None = None) -> None:
        if zarr_format not in (2, 3):
            raise ValueError(f"zarr_format must be 2 or 3, got {zarr_format}")
        if _paths.exists(path) and not overwrite:
            raise StoreError(f"{path} already exists (pass overwrite=True to replace it)")
        self.path = path
        self.zarr_format = zarr_format
        self.image_quality = image_quality
        self.root = zarr.open_group(_paths.make_store(path, read_only=False), mode="w",
                                    zarr_format=zarr_format)
        if attrs:
            self.root.attrs["tactkit"] = attrs
        self.data = self.root.create_group("data")
        self.meta = self.root.create_group("meta")
        # chunks are written in place: a view is complete once close() returns (the training
        # cache builds under a temporary name and renames it)
        self.io = _paths.KeyIO(path, read_only=False, atomic=False)
        self.ends: list[int] = []
        self.arrays: dict[str, Any] = {}
        self.layouts: dict[str, chunks.ArrayLayout | None] = {}
        self.pending: dict[str, list[np.ndarray]] = {}
        self.written: dict[str, int] = {}  # rows written so far (a chunk boundary)

    def _create(self, key: str, row_shape: tuple[int, ...], dtype: np.dtype) -> None:
        shape = (0, *row_shape)
        row = max(1, int(np.prod(row_shape, dtype=np.int64)) * dtype.itemsize)
        image = dtype == np.uint8 and len(row_shape) == 3 and row_shape[-1] in (1, 3)
        jpeg = image and self.zarr_format == 3 and self.image_quality is not None
        if jpeg:
            rows = 1
        elif image:
            rows = max(1, IMAGE_CHUNK_BYTES // row)
        else:
            rows = max(1, min(65536, LOWDIM_CHUNK_BYTES // row))
        chunk_shape = (rows, *row_shape)
        if self.zarr_format == 2:
            comp = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
            arr = self.data.create_array(key, shape=shape, chunks=chunk_shape, dtype=dtype,
                                         compressors=comp, fill_value=0)
        elif jpeg:
            arr = self.data.create_array(key, shape=shape, chunks=chunk_shape, dtype="uint8",
                                         serializer=JpegCodec(quality=self.image_quality),
                                         compressors=[Crc32cCodec()], fill_value=0,
                                         chunk_key_encoding={"name": "default", "separator": "."})
        else:
            arr = self.data.create_array(key, shape=shape, chunks=chunk_shape, dtype=dtype,
                                         compressors=[lossless_compressor(dtype.itemsize), Crc32cCodec()],
                                         fill_value=0,
                                         chunk_key_encoding={"name": "default", "separator": "."})
        self.arrays[key] = arr
        _, self.layouts[key] = chunks.read_layout(self.io, f"data/{key}")
        self.pending[key] = []
        self.written[key] = 0

    def add_episode(self, episode: Mapping[str, Any]) -> None:
        """Append one episode ``{key: array[T, ...]}`` (same keys and T for every call); image
        keys may be :class:`~tactkit.store.chunks.JpegFrames`."""
        lengths = {k: len(v) for k, v in episode.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"episode keys have inconsistent length: {lengths}")
        if self.arrays and set(episode) != set(self.arrays):
            raise ValueError(f"episode keys {sorted(episode)} != buffer keys {sorted(self.arrays)}")
        n = next(iter(lengths.values()), 0)
        start = self.ends[-1] if self.ends else 0
        for key, vals in episode.items():
            jpeg_frames = isinstance(vals, chunks.JpegFrames)
            row_shape = tuple(vals.frame_shape) if jpeg_frames else np.asarray(vals).shape[1:]
            dtype = np.dtype(np.uint8) if jpeg_frames else np.asarray(vals).dtype
            if key not in self.arrays:
                self._create(key, row_shape, dtype)
            arr, lay = self.arrays[key], self.layouts[key]
            if row_shape != arr.shape[1:] or dtype != arr.dtype:
                raise ValueError(f"data/{key}: episode gives {dtype}{row_shape}, "
                                 f"buffer holds {arr.dtype}{arr.shape[1:]}")
            if not n:
                continue
            if jpeg_frames and chunks.is_jpeg_per_frame(lay):
                for i, payload in enumerate(vals.payloads):  # copied, never re-encoded
                    self.io.set(lay.chunk_key(start + i), chunks.store_payload(lay, payload))
                self.written[key] = start + n
                continue
            vals = vals.decode() if jpeg_frames else np.asarray(vals)
            if lay is None:  # a layout this module cannot write directly: through zarr
                arr.resize((start + n, *arr.shape[1:]))
                arr[start:start + n] = vals
                continue
            self.pending[key].append(vals)
            self._write_full_chunks(key)
        self.ends.append(start + n)

    def _write_full_chunks(self, key: str, final: bool = False) -> None:
        lay = self.layouts[key]
        parts = self.pending[key]
        total = sum(len(p) for p in parts)
        full = total if final else total - total % lay.chunk_rows
        if not full:
            return
        block = parts[0] if len(parts) == 1 else np.concatenate(parts)
        start = self.written[key]
        for off in range(0, full, lay.chunk_rows):
            part = block[off:off + lay.chunk_rows]
            if len(part) < lay.chunk_rows:  # the array's last chunk
                padded = lay.fill_chunk()
                padded[:len(part)] = part
                part = padded
            self.io.set(lay.chunk_key((start + off) // lay.chunk_rows), lay.encode(part))
        self.written[key] = start + full
        self.pending[key] = [block[full:]] if full < total else []

    def close(self) -> ReplayBuffer:
        n = self.ends[-1] if self.ends else 0
        for key, arr in self.arrays.items():
            if self.layouts[key] is not None:
                self._write_full_chunks(key, final=True)
            if arr.shape[0] != n:
                arr.resize((n, *arr.shape[1:]))
        ends = np.asarray(self.ends, dtype=np.int64)
        self.meta.create_array("episode_ends", data=ends, chunks=(max(1, len(ends)),), compressors=None)
        return ReplayBuffer.open(self.path)
