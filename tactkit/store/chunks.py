"""Chunk objects of zarr arrays read and written directly, for the codec chains tactkit writes.

zarr-python spends 0.3-1.2 ms of Python per chunk in its async codec pipeline; decoding one
small JPEG or Blosc chunk takes ~50 us. The store keeps one camera frame per chunk, so
reading (alignment, verification) and writing (training views) go through this module
instead: zarr still writes every array's metadata, and this module reads that metadata,
computes chunk keys, and runs the codecs itself: ``bytes``, ``tactkit.jpeg``, ``blosc`` and
``crc32c`` for Zarr 3, numcodecs compressors and filters for Zarr 2. Any other array
(:func:`array_layout` returns ``None``) is read through zarr as usual.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import google_crc32c
import imagecodecs
import numcodecs
import numpy as np

from tactkit.store._paths import KeyIO
from tactkit.store.codecs import JPEG_CODEC_NAME
from tactkit.store.errors import StoreError

_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}


class ChunkError(StoreError):
    """A chunk is missing, fails its checksum or does not decode; the message names it."""

    def __init__(self, message: str, chunk_key: str) -> None:
        super().__init__(message)
        self.chunk_key = chunk_key


@dataclass(frozen=True)
class ArrayLayout:
    """Where an array's chunks live and how they are encoded (chunked along axis 0 only)."""

    key: str  # the array's key in the store, e.g. "episodes/ep_000001/observation.wrench/values"
    shape: tuple[int, ...]
    chunk_rows: int
    dtype: np.dtype
    fill_value: Any
    zarr_format: int
    separator: str
    prefix: str  # "c" + separator for Zarr 3 default keys, "" for Zarr 2
    bytes_codecs: tuple[dict[str, Any], ...]  # bytes -> bytes, in encoding order
    serializer: dict[str, Any]  # array -> bytes ("bytes" or "tactkit.jpeg"); Zarr 2: {}
    v2_filters: tuple[dict[str, Any], ...] = ()

    @property
    def checksummed(self) -> bool:
        """Every chunk carries a CRC-32C (and, written that way, every chunk exists)."""
        return any(c["name"] == "crc32c" for c in self.bytes_codecs)

    @property
    def row_shape(self) -> tuple[int, ...]:
        return self.shape[1:]

    def n_chunks(self, rows: int | None = None) -> int:
        rows = self.shape[0] if rows is None else rows
        return -(-rows // self.chunk_rows)

    def chunk_key(self, i: int) -> str:
        coords = [str(i)] + ["0"] * (len(self.shape) - 1)
        return f"{self.key}/{self.prefix}{self.separator.join(coords)}"

    def chunk_name(self, i: int) -> str:
        """The chunk's object name inside the array's directory (its key without the array's)."""
        return self.chunk_key(i)[len(self.key) + 1:]

    # ------------------------------------------------------------------ codecs
    def decode(self, data: bytes) -> np.ndarray:
        """Chunk bytes -> ``array[chunk_rows, *row_shape]`` (raises ``ValueError`` on damage)."""
        buf: Any = data
        for codec in reversed(self.bytes_codecs):
            name = codec["name"]
            if name == "crc32c":
                raw = bytes(buf)
                if len(raw) < 4:
                    raise ValueError("too short to hold its CRC-32C")
                stored, body = raw[-4:], raw[:-4]
                computed = np.uint32(google_crc32c.value(body)).tobytes()
                if computed != stored:
                    raise ValueError(f"CRC-32C mismatch (stored {stored.hex()}, computed {computed.hex()})")
                buf = body
            else:
                buf = numcodecs.get_codec(_numcodecs_config(codec)).decode(buf)
        shape = (self.chunk_rows, *self.row_shape)
        if self.serializer.get("name") == JPEG_CODEC_NAME:
            return np.asarray(imagecodecs.jpeg8_decode(bytes(buf))).reshape(shape)
        for f in reversed(self.v2_filters):
            buf = numcodecs.get_codec(f).decode(buf)
        arr = np.frombuffer(buf, dtype=self._stored_dtype())
        if arr.size != int(np.prod(shape)):
            raise ValueError(f"decodes to {arr.size} elements, expected {int(np.prod(shape))}")
        return arr.reshape(shape).astype(self.dtype, copy=False)

    def encode(self, chunk: np.ndarray) -> bytes:
        """``array[chunk_rows, *row_shape]`` (the last chunk padded by the caller) -> bytes."""
        chunk = np.ascontiguousarray(chunk, dtype=self.dtype)
        if self.serializer.get("name") == JPEG_CODEC_NAME:
            f, h, w, c = chunk.shape
            img = chunk.reshape(f * h, w, c)
            q = int(self.serializer.get("configuration", {}).get("quality", 90))
            buf: Any = bytes(imagecodecs.jpeg8_encode(img[..., 0] if c == 1 else img, level=q))
        else:
            buf = chunk.astype(self._stored_dtype(), copy=False)
            for f in self.v2_filters:
                buf = numcodecs.get_codec(f).encode(buf)
        for codec in self.bytes_codecs:
            if codec["name"] == "crc32c":
                raw = bytes(buf)
                buf = raw + np.uint32(google_crc32c.value(raw)).tobytes()
            else:
                buf = numcodecs.get_codec(_numcodecs_config(codec)).encode(buf)
        return bytes(buf)

    def _stored_dtype(self) -> np.dtype:
        endian = self.serializer.get("configuration", {}).get("endian", "little")
        return self.dtype.newbyteorder("<" if endian == "little" else ">") if self.zarr_format == 3 \
            else self.dtype

    def fill_chunk(self) -> np.ndarray:
        return np.full((self.chunk_rows, *self.row_shape), self.fill_value, dtype=self.dtype)


def _numcodecs_config(codec: dict[str, Any]) -> dict[str, Any]:
    cfg = dict(codec.get("configuration", {}))
    if codec["name"] == "blosc":
        cfg["shuffle"] = _SHUFFLE.get(cfg.get("shuffle"), cfg.get("shuffle", 1))
        cfg.setdefault("blocksize", 0)
    return {"id": codec["name"], **cfg}


_V3_BYTES = {"crc32c", "blosc", "zstd", "gzip"}


def array_layout(key: str, meta: dict[str, Any]) -> ArrayLayout | None:
    """The layout described by an array's metadata document (``zarr.json`` or ``.zarray``),
    or ``None`` when this module cannot read it directly."""
    try:
        fmt = int(meta.get("zarr_format", 0))
        shape = tuple(int(s) for s in meta["shape"])
        if fmt == 3:
            if meta.get("node_type") != "array" or meta.get("storage_transformers"):
                return None
            chunks = tuple(meta["chunk_grid"]["configuration"]["chunk_shape"])
            enc = meta["chunk_key_encoding"]
            if enc["name"] != "default":
                return None
            sep = enc.get("configuration", {}).get("separator", "/")
            codecs = meta["codecs"]
            serializer, rest = codecs[0], codecs[1:]
            if serializer["name"] not in ("bytes", JPEG_CODEC_NAME) or any(c["name"] not in _V3_BYTES for c in rest):
                return None
            dtype = np.dtype(meta["data_type"]) if isinstance(meta["data_type"], str) else None
            if dtype is None:
                return None
            fill = meta.get("fill_value", 0)
            fill = np.nan if fill == "NaN" else fill
            layout = ArrayLayout(key, shape, int(chunks[0]), dtype, fill, 3, sep, "c" + sep,
                                 tuple(rest), serializer)
        elif fmt == 2:
            chunks = tuple(meta["chunks"])
            if meta.get("order", "C") != "C":
                return None
            dtype = np.dtype(meta["dtype"])
            if dtype.hasobject:
                return None
            comp = meta.get("compressor")
            fill = meta.get("fill_value")
            fill = 0 if fill is None else (np.nan if fill == "NaN" else fill)
            layout = ArrayLayout(key, shape, int(chunks[0]), dtype, fill, 2,
                                 meta.get("dimension_separator", "."), "",
                                 (({"name": comp["id"], "configuration":
                                    {k: v for k, v in comp.items() if k != "id"}},) if comp else ()),
                                 {}, tuple(meta.get("filters") or ()))
        else:
            return None
    except (KeyError, TypeError, ValueError, IndexError):
        return None
    if len(shape) == 0 or tuple(chunks[1:]) != shape[1:] or layout.chunk_rows < 1:
        return None  # chunked along more than the first axis
    return layout


def metadata_key(array_key: str, zarr_format: int = 3) -> str:
    return f"{array_key}/zarr.json" if zarr_format == 3 else f"{array_key}/.zarray"


def read_layout(io: KeyIO, array_key: str) -> tuple[dict[str, Any] | None, ArrayLayout | None]:
    """``(metadata document, layout)`` of the array at ``array_key`` (Zarr 3 or 2);
    ``(None, None)`` when there is no array there. Raises :class:`StoreError` on garbage."""
    for fmt in (3, 2):
        mkey = metadata_key(array_key, fmt)
        raw = io.get(mkey)
        if raw is None:
            continue
        try:
            meta = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(f"{io.path}/{mkey}: array metadata is not valid JSON ({exc})") from None
        if fmt == 2 and "zarr_format" not in meta:
            meta["zarr_format"] = 2
        return meta, array_layout(array_key, meta)
    return None, None


def read_chunks(io: KeyIO, layout: ArrayLayout, indices: Sequence[int], strict: bool,
                where: str) -> dict[int, np.ndarray]:
    """Decoded chunks ``indices`` of an array. A missing chunk is an error when ``strict``
    (checksummed arrays write every chunk) and the fill value otherwise."""
    keys = [layout.chunk_key(i) for i in indices]
    out = {}
    for i, key, data in zip(indices, keys, io.get_many(keys)):
        lo = i * layout.chunk_rows
        span = f"samples {lo}..{lo + layout.chunk_rows - 1}"
        if data is None:
            if strict:
                raise ChunkError(f"{where}: chunk {key} ({span}) is missing", key)
            out[i] = layout.fill_chunk()
            continue
        try:
            out[i] = layout.decode(data)
        except Exception as exc:  # noqa: BLE001 - any codec failure is damage to report
            raise ChunkError(f"{where}: chunk {key} ({span}) is damaged: {exc}", key) from None
    return out


def read_rows(io: KeyIO, layout: ArrayLayout, start: int, stop: int, where: str,
              strict: bool | None = None) -> np.ndarray:
    """Rows ``[start, stop)`` of the array."""
    strict = layout.checksummed if strict is None else strict
    if stop <= start:
        return np.empty((0, *layout.row_shape), layout.dtype)
    c0, c1 = start // layout.chunk_rows, (stop - 1) // layout.chunk_rows
    chunks = read_chunks(io, layout, range(c0, c1 + 1), strict, where)
    block = chunks[c0] if c0 == c1 else np.concatenate([chunks[i] for i in range(c0, c1 + 1)])
    lo = c0 * layout.chunk_rows
    return block[start - lo:stop - lo]


def read_row_set(io: KeyIO, layout: ArrayLayout, rows: np.ndarray, where: str,
                 strict: bool | None = None) -> np.ndarray:
    """``array[rows]`` for any integer ``rows``, decoding each needed chunk once."""
    strict = layout.checksummed if strict is None else strict
    rows = np.asarray(rows, dtype=np.int64)
    out = np.empty((len(rows), *layout.row_shape), layout.dtype)
    if len(rows) == 0:
        return out
    cidx = rows // layout.chunk_rows
    needed = np.unique(cidx)
    chunks = read_chunks(io, layout, needed.tolist(), strict, where)
    for c in needed:
        sel = cidx == c
        out[sel] = chunks[int(c)][rows[sel] - int(c) * layout.chunk_rows]
    return out


def write_rows(io: KeyIO, layout: ArrayLayout, start: int, values: np.ndarray) -> None:
    """Write whole chunks: ``start`` is a chunk boundary and ``values`` fills whole chunks,
    except at the array's end (the last chunk is padded with the fill value)."""
    if start % layout.chunk_rows:
        raise ValueError(f"write_rows: start {start} is not a chunk boundary of {layout.key}")
    n = len(values)
    for off in range(0, n, layout.chunk_rows):
        part = values[off:off + layout.chunk_rows]
        if len(part) < layout.chunk_rows:
            if start + off + len(part) < layout.shape[0]:
                raise ValueError(f"write_rows: partial chunk inside {layout.key}")
            full = layout.fill_chunk()
            full[:len(part)] = part
            part = full
        io.set(layout.chunk_key((start + off) // layout.chunk_rows), layout.encode(part))


def chunk_bytes(io: KeyIO, layout: ArrayLayout, rows: int) -> list[bytes | None]:
    """Stored bytes of the chunks that hold rows ``[0, rows)`` (``None`` where missing)."""
    return io.get_many([layout.chunk_key(i) for i in range(layout.n_chunks(rows))])


@dataclass
class JpegFrames:
    """Camera frames kept as their JPEG payloads (a chunk's bytes without its CRC-32C).

    Alignment hands these to a :class:`~tactkit.store.ReplayBufferWriter` whose image array is
    JPEG with one frame per chunk: the frames are copied, not decoded and re-encoded, so the
    view holds exactly the recorded frames and costs a file copy per frame."""

    payloads: list[bytes]
    frame_shape: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.payloads)

    def decode(self) -> np.ndarray:
        out = np.empty((len(self.payloads), *self.frame_shape), np.uint8)
        for i, p in enumerate(self.payloads):
            out[i] = np.asarray(imagecodecs.jpeg8_decode(p)).reshape(self.frame_shape)
        return out


def is_jpeg_per_frame(layout: ArrayLayout | None) -> bool:
    return layout is not None and layout.chunk_rows == 1 and \
        layout.serializer.get("name") == JPEG_CODEC_NAME


def jpeg_payload(layout: ArrayLayout, data: bytes) -> bytes:
    """The JPEG inside one stored chunk of a JPEG array, its CRC-32C checked."""
    if not is_jpeg_per_frame(layout):
        raise ValueError(f"{layout.key} is not a JPEG array with one frame per chunk")
    buf = bytes(data)
    for codec in reversed(layout.bytes_codecs):
        if codec["name"] != "crc32c":
            raise ValueError(f"{layout.key}: unexpected codec {codec['name']} after JPEG")
        stored, buf = buf[-4:], buf[:-4]
        if np.uint32(google_crc32c.value(buf)).tobytes() != stored:
            raise ValueError("CRC-32C mismatch")
    return buf


def store_payload(layout: ArrayLayout, payload: bytes) -> bytes:
    """The stored chunk for a JPEG payload (its CRC-32C appended where the array has one)."""
    out = payload
    for codec in layout.bytes_codecs:
        if codec["name"] == "crc32c":
            out = out + np.uint32(google_crc32c.value(out)).tobytes()
    return out


class ChunkCache:
    """Least-recently-used decoded chunks, at most ``max_bytes`` in all (thread-safe)."""

    def __init__(self, max_bytes: int = 256 << 20) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = int(max_bytes)
        self.nbytes = 0
        self.hits = self.misses = 0
        self._chunks: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int]) -> np.ndarray | None:
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is not None:
                self._chunks.move_to_end(key)
                self.hits += 1
            else:
                self.misses += 1
            return chunk

    def put(self, key: tuple[str, int], chunk: np.ndarray) -> None:
        with self._lock:
            if key in self._chunks or chunk.nbytes > self.max_bytes:
                return
            self._chunks[key] = chunk
            self.nbytes += chunk.nbytes
            while self.nbytes > self.max_bytes:
                _, old = self._chunks.popitem(last=False)
                self.nbytes -= old.nbytes


class CachedArray:
    """A stored array read by rows through a shared :class:`ChunkCache`: what the sampler
    reads windows from when a view stays on disk (memory stays the cache's bound)."""

    #: ``arr[rows]`` takes integer arrays of any shape (the sampler gathers windows with it)
    fancy_rows = True

    def __init__(self, io: KeyIO, layout: ArrayLayout, cache: ChunkCache, where: str = "") -> None:
        self.io, self.layout, self.cache = io, layout, cache
        self.where = where or f"{io.path}/{layout.key}"
        self.shape = layout.shape
        self.dtype = layout.dtype
        self.ndim = len(layout.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _chunk(self, i: int) -> np.ndarray:
        key = (f"{self.io.path}/{self.layout.key}", i)
        chunk = self.cache.get(key)
        if chunk is None:
            chunk = read_chunks(self.io, self.layout, [i], self.layout.checksummed, self.where)[i]
            chunk.setflags(write=False)
            self.cache.put(key, chunk)
        return chunk

    def rows(self, start: int, stop: int) -> np.ndarray:
        start, stop = max(0, start), min(stop, self.shape[0])
        if stop <= start:
            return np.empty((0, *self.shape[1:]), self.dtype)
        r = self.layout.chunk_rows
        c0, c1 = start // r, (stop - 1) // r
        if c0 == c1:
            return self._chunk(c0)[start - c0 * r:stop - c0 * r].copy()
        block = np.concatenate([self._chunk(c) for c in range(c0, c1 + 1)])
        return block[start - c0 * r:stop - c0 * r]

    def __getitem__(self, sel: Any) -> np.ndarray:
        if isinstance(sel, slice):
            start, stop, step = sel.indices(self.shape[0])
            out = self.rows(start, stop)
            return out[::step] if step != 1 else out
        if isinstance(sel, tuple):  # e.g. arr[a:b, :3]
            return self[sel[0]][(slice(None), *sel[1:])]
        rows = np.asarray(sel, dtype=np.int64)
        flat = rows.reshape(-1)
        if flat.size == 0:
            return np.empty((*rows.shape, *self.shape[1:]), self.dtype)
        out = np.empty((flat.size, *self.shape[1:]), self.dtype)
        cidx = flat // self.layout.chunk_rows
        for c in np.unique(cidx).tolist():
            sel_c = cidx == c
            out[sel_c] = self._chunk(c)[flat[sel_c] - c * self.layout.chunk_rows]
        return out.reshape(*rows.shape, *self.shape[1:])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        out = self.rows(0, self.shape[0])
        return out if dtype is None else out.astype(dtype)
