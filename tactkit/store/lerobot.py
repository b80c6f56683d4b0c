"""LeRobot's dataset format v3.0, written with pyarrow and PyAV (LeRobot itself is not needed).

Layout of a v3.0 dataset (``LeRobotDataset(repo_id, root=DST)`` opens it)::

    meta/info.json                        codebase_version "v3.0", fps, totals, path templates, features
    meta/stats.json                       per feature: min max mean std count q01 q10 q50 q90 q99
    meta/tasks.parquet                    task strings (pandas index) -> task_index
    meta/episodes/chunk-000/file-000.parquet   one row per episode: tasks, length, data and video
                                          file indices, dataset_from/to_index, video from/to_timestamp,
                                          per-episode stats/<feature>/<stat>
    data/chunk-000/file-000.parquet       one row per frame: every non-video feature, timestamp,
                                          frame_index, episode_index, index, task_index
    videos/<camera key>/chunk-000/file-000.mp4   the episodes' frames back to back, frame k of
                                          an episode at from_timestamp + k / fps

Episodes fill a data file (and, per camera, a video file) until it holds ``data_file_mb`` (or
``video_file_mb``) megabytes, then the next file starts; ``chunks_size`` files make a chunk.

:func:`export_lerobot` aligns each episode of an episode store to ``fps`` by the rule of
``tactkit dataset align`` (latest sample at or before each tick; ``observation.state.*``
interpolated) and writes it. Cameras become AV1 (LeRobot's default) or H.264 videos, every
other stream a float/int feature with its shape (tactile marker offsets ``[M, 2]`` become
``Array2D`` features). ``meta/tactkit.json``, which LeRobot ignores, keeps what the format has no
place for (the source tick times, units, success flags, free-form episode metadata), so
:func:`tactkit.store.lerobot_import.import_lerobot` restores it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tactkit.store.align import DEFAULT_INTERPOLATE, align_episode
from tactkit.store.errors import StoreError
from tactkit.store.replay_buffer import TIMESTAMP_KEY

if TYPE_CHECKING:
    from tactkit.store.episode_store import EpisodeStore
    from tactkit.store.schema import StreamSpec

log = logging.getLogger(__name__)

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNKS_SIZE = 1000
DEFAULT_DATA_FILE_MB = 100
DEFAULT_VIDEO_FILE_MB = 200
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
SIDECAR_PATH = "meta/tactkit.json"
#: the per-frame bookkeeping columns every v3.0 dataset has
DEFAULT_FEATURES: dict[str, dict[str, Any]] = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
QUANTILES = (0.01, 0.10, 0.50, 0.90, 0.99)
STAT_NAMES = ("min", "max", "mean", "std", "count", *(f"q{int(round(q * 100)):02d}" for q in QUANTILES))
#: tactkit video codec name -> the name info.json gives it (what LeRobot's get_video_info reports)
INFO_CODEC = {"av1": "av1", "h264": "h264", "hevc": "hevc"}
_IMAGE_STAT_PIXELS = 150  # images are subsampled to about this many pixels a side for stats


def pyarrow_module() -> Any:
    """``pyarrow`` (with ``pyarrow.parquet`` loaded), or an ImportError naming the extra."""
    try:
        import pyarrow as pa
        import pyarrow.parquet  # noqa: F401
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("the LeRobot format needs pyarrow: pip install 'tactkit[interop]'") from None
    return pa


# ---------------------------------------------------------------------------------- schema
def arrow_type(dtype: str, shape: Sequence[int]) -> Any:
    """The parquet column type of a feature, as ``datasets`` (and so LeRobot) writes it: shape
    ``(1,)`` a scalar, ``(n,)`` a fixed-size list, 2-D and up nested lists (``ArrayND``)."""
    pa = pyarrow_module()
    t = pa.from_numpy_dtype(np.dtype(dtype))
    shape = tuple(int(s) for s in shape)
    if shape == (1,):
        return t
    if len(shape) == 1:
        return pa.list_(t, shape[0])
    for _ in shape:
        t = pa.list_(t)
    return t


def hf_feature(dtype: str, shape: Sequence[int]) -> dict[str, Any]:
    """The ``datasets`` feature JSON of a column (the parquet schema's ``huggingface`` metadata)."""
    shape = [int(s) for s in shape]
    if shape == [1]:
        return {"dtype": dtype, "_type": "Value"}
    if len(shape) == 1:
        return {"feature": {"dtype": dtype, "_type": "Value"}, "length": shape[0], "_type": "List"}
    if len(shape) > 5:
        raise ValueError(f"features of {len(shape)} dimensions have no LeRobot/datasets type")
    return {"shape": shape, "dtype": dtype, "_type": f"Array{len(shape)}D"}


def arrow_field(name: str, dtype: str, shape: Sequence[int]) -> Any:
    pa = pyarrow_module()
    meta = None
    if len(shape) >= 2:  # datasets' ArrayND extension, stored as nested lists plus these tags
        meta = {b"ARROW:extension:name": f"datasets.features.features.Array{len(shape)}DExtensionType".encode(),
                b"ARROW:extension:metadata": json.dumps([list(map(int, shape)), dtype]).encode()}
    return pa.field(name, arrow_type(dtype, shape), metadata=meta)


def to_arrow(values: np.ndarray, dtype: str, shape: Sequence[int]) -> Any:
    """``values[n, *shape]`` -> an arrow array of :func:`arrow_type` (no Python objects)."""
    pa = pyarrow_module()
    x = np.ascontiguousarray(np.asarray(values, dtype=dtype))
    shape = tuple(int(s) for s in shape)
    n = x.shape[0]
    if shape == (1,):
        return pa.array(x.reshape(n))
    flat = pa.array(x.reshape(-1))
    if len(shape) == 1:
        return pa.FixedSizeListArray.from_arrays(flat, shape[0])
    arr = flat
    count = x.size
    for d in reversed(shape):
        count //= d
        arr = pa.ListArray.from_arrays(pa.array(np.arange(0, count * d + 1, d, dtype=np.int32)), arr)
    return arr


def from_arrow(column: Any, dtype: str, shape: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`to_arrow` for a (chunked) column: ``array[n, *shape]`` of ``dtype``."""
    pa = pyarrow_module()
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    n = len(arr)
    shape = tuple(int(s) for s in shape)
    if isinstance(arr.type, pa.ExtensionType):
        arr = arr.storage
    while pa.types.is_list(arr.type) or pa.types.is_fixed_size_list(arr.type) or pa.types.is_large_list(arr.type):
        arr = arr.flatten()
    out = arr.to_numpy(zero_copy_only=False).astype(dtype, copy=False)
    if out.size != n * int(np.prod(shape)):
        raise ValueError(f"column holds {out.size} values for {n} rows, expected shape {shape} per row")
    return out.reshape(n, *shape)


def image_spec_ok(spec: StreamSpec) -> bool:
    return spec.is_image and spec.shape[-1] in (1, 3)


def lerobot_feature(key: str, spec: StreamSpec, fps: int, codec: str, pix_fmt: str) -> dict[str, Any]:
    """The info.json entry of one store stream."""
    if image_spec_ok(spec):
        h, w = spec.shape[:2]
        return {"dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
                "info": {"video.height": h, "video.width": w, "video.codec": INFO_CODEC[codec],
                         "video.pix_fmt": pix_fmt, "video.is_depth_map": False, "video.fps": fps,
                         "video.channels": 3, "has_audio": False}}
    if spec.is_image:
        raise ValueError(f"{key}: {spec.shape[-1]}-channel images have no LeRobot video form (1 or 3 channels)")
    names = list(spec.names) if len(spec.shape) == 1 and len(spec.names) == spec.shape[0] else None
    return {"dtype": spec.dtype, "shape": list(spec.shape), "names": names}


# ---------------------------------------------------------------------------------- stats
def feature_stats(x: np.ndarray, image: bool = False) -> dict[str, np.ndarray]:
    """LeRobot's per-feature statistics of ``x[n, *shape]``: over frames for vectors, over
    frames and pixels per channel for images (values scaled to [0, 1], stats shaped (3, 1, 1))."""
    if image:
        step = max(1, max(x.shape[1:3]) // _IMAGE_STAT_PIXELS)
        frames = np.linspace(0, len(x) - 1, min(len(x), 100)).round().astype(int)
        v = x[frames][:, ::step, ::step, :].reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
        if v.shape[-1] == 1:
            v = np.repeat(v, 3, axis=-1)
        shape: tuple[int, ...] = (3, 1, 1)
    else:
        v = x.reshape(len(x), -1).astype(np.float64)
        shape = tuple(x.shape[1:]) or (1,)
    out = {"min": v.min(axis=0), "max": v.max(axis=0), "mean": v.mean(axis=0), "std": v.std(axis=0)}
    for q, name in zip(QUANTILES, STAT_NAMES[5:]):
        out[name] = np.quantile(v, q, axis=0)
    stats = {k: np.asarray(s).reshape(shape) for k, s in out.items()}
    if not image and np.dtype(x.dtype).kind in "iu":
        stats["min"], stats["max"] = stats["min"].astype(np.int64), stats["max"].astype(np.int64)
    stats["count"] = np.array([len(x)], dtype=np.int64)
    return stats


def aggregate_stats(per_episode: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset statistics from per-episode ones: exact min/max/mean/std (pooled variance),
    quantiles as the frame-weighted mean of the episodes' (what LeRobot does)."""
    w = np.array([float(s["count"][0]) for s in per_episode])
    n = w.sum()
    wn = w.reshape(-1, *([1] * per_episode[0]["mean"].ndim)) / n
    means = np.stack([s["mean"] for s in per_episode])
    mean = (wn * means).sum(axis=0)
    var = (wn * (np.stack([s["std"] for s in per_episode]) ** 2 + (means - mean) ** 2)).sum(axis=0)
    out = {"min": np.min(np.stack([s["min"] for s in per_episode]), axis=0),
           "max": np.max(np.stack([s["max"] for s in per_episode]), axis=0),
           "mean": mean, "std": np.sqrt(np.maximum(var, 0.0)), "count": np.array([int(n)], dtype=np.int64)}
    for name in STAT_NAMES[5:]:
        out[name] = (wn * np.stack([s[name] for s in per_episode])).sum(axis=0)
    return out


def _stats_json(stats: Mapping[str, Mapping[str, np.ndarray]]) -> dict[str, Any]:
    return {k: {n: np.asarray(v).tolist() for n, v in s.items()} for k, s in stats.items()}


# ---------------------------------------------------------------------------------- writers
@dataclass
class _FileSlot:
    """Current (chunk, file) of one kind of file and how full it is."""

    chunks_size: int
    chunk: int = 0
    file: int = 0
    used: bool = False

    def advance(self) -> None:
        self.file += 1
        if self.file >= self.chunks_size:
            self.chunk, self.file = self.chunk + 1, 0
        self.used = False


class _DataFiles:
    """Per-frame tables into ``data/chunk-*/file-*.parquet``, one row group per episode."""

    def __init__(self, root: Path, schema: Any, chunks_size: int, limit_mb: float) -> None:
        self.root, self.schema, self.limit = root, schema, limit_mb * 1024 * 1024
        self.slot = _FileSlot(chunks_size)
        self.writer: Any = None
        self.bytes = 0
        self.rows = 0

    def write(self, table: Any) -> tuple[int, int]:
        import pyarrow.parquet as pq

        if self.writer is not None and self.bytes + table.nbytes > self.limit:
            self.close()
            self.slot.advance()
        if self.writer is None:
            path = self.root / DATA_PATH.format(chunk_index=self.slot.chunk, file_index=self.slot.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(path, self.schema, compression="snappy")
            self.bytes = 0
        self.writer.write_table(table, row_group_size=max(1, table.num_rows))
        self.bytes += table.nbytes
        return self.slot.chunk, self.slot.file

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class _VideoFiles:
    """One camera's episodes back to back in ``videos/<key>/chunk-*/file-*.mp4``."""

    def __init__(self, root: Path, key: str, fps: int, chunks_size: int, limit_mb: float, codec: str,
                 crf: int | None, gop: int | None, pix_fmt: str) -> None:
        self.root, self.key, self.fps, self.limit = root, key, fps, limit_mb * 1024 * 1024
        self.codec, self.crf, self.gop, self.pix_fmt = codec, crf, gop, pix_fmt
        self.slot = _FileSlot(chunks_size)
        self.writer: Any = None

    def write_episode(self, frames: np.ndarray) -> dict[str, Any]:
        from tactkit.video import VideoWriter

        if self.writer is not None and self.writer.size_bytes() >= self.limit:
            self.close()
            self.slot.advance()
        if self.writer is None:
            path = self.root / VIDEO_PATH.format(video_key=self.key, chunk_index=self.slot.chunk,
                                                 file_index=self.slot.file)
            self.writer = VideoWriter(path, self.fps, self.codec, crf=self.crf, gop=self.gop,
                                      pix_fmt=self.pix_fmt, pad=False)
        start = self.writer.frames
        for f in frames:
            self.writer.write(f if f.shape[-1] == 3 else np.repeat(f, 3, axis=-1))
        return {f"videos/{self.key}/chunk_index": self.slot.chunk, f"videos/{self.key}/file_index": self.slot.file,
                f"videos/{self.key}/from_timestamp": start / self.fps,
                f"videos/{self.key}/to_timestamp": self.writer.frames / self.fps}

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tasks_table(tasks: list[str]) -> Any:
    """meta/tasks.parquet: what ``pandas.DataFrame({"task_index": ...}, index=tasks).to_parquet``
    writes (LeRobot reads it with pandas and looks tasks up by the index)."""
    pa = pyarrow_module()
    pandas_meta = {
        "index_columns": ["__index_level_0__"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode",
                            "numpy_type": "object", "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64",
             "numpy_type": "int64", "metadata": None},
            {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode",
             "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.0",
    }
    schema = pa.schema([("task_index", pa.int64()), ("__index_level_0__", pa.string())],
                       metadata={b"pandas": json.dumps(pandas_meta).encode()})
    return pa.table({"task_index": pa.array(np.arange(len(tasks), dtype=np.int64)),
                     "__index_level_0__": pa.array(tasks, pa.string())}, schema=schema)


def _episodes_table(rows: list[dict[str, Any]]) -> Any:
    pa = pyarrow_module()
    columns: dict[str, list[Any]] = {}
    for r in rows:
        for k, v in r.items():
            columns.setdefault(k, []).append(v.tolist() if isinstance(v, np.ndarray) else v)
    return pa.table({k: pa.array(v) for k, v in columns.items()})


# ---------------------------------------------------------------------------------- export
@dataclass
class ExportReport:
    """What :func:`export_lerobot` wrote."""

    path: str
    fps: int
    episodes: int
    frames: int
    video_keys: list[str]
    features: list[str]
    skipped: list[str] = field(default_factory=list)
    bytes: int = 0


def parse_fps(fps: float | None, store: EpisodeStore) -> int:
    """The export rate: ``fps`` or the store's ``control_hz`` attribute; LeRobot needs an integer."""
    if fps is None:
        fps = store.attrs.get("control_hz")
        if fps is None:
            raise ValueError(f"{store.path}: no control rate in the store attributes; pass fps (--fps HZ)")
    if not fps > 0 or abs(fps - round(fps)) > 1e-9:
        raise ValueError(f"LeRobot datasets have an integer frame rate; got fps={fps}")
    return int(round(fps))


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def export_lerobot(
    store: EpisodeStore,
    dst: str | os.PathLike,
    fps: float | None = None,
    *,
    episodes: Sequence[int] | None = None,
    keys: Sequence[str] | None = None,
    interpolate: Sequence[str] = DEFAULT_INTERPOLATE,
    video_codec: str = "av1",
    crf: int | None = None,
    gop: int | None = 2,
    robot_type: str | None = None,
    chunks_size: int = DEFAULT_CHUNKS_SIZE,
    data_file_mb: float = DEFAULT_DATA_FILE_MB,
    video_file_mb: float = DEFAULT_VIDEO_FILE_MB,
    overwrite: bool = False,
    progress: bool = False,
) -> ExportReport:
    """Write ``store`` (committed ``episodes``, default all; streams ``keys``, default all) as a
    LeRobot v3.0 dataset at ``dst``, every stream aligned to ``fps`` (default: the store's
    ``control_hz``). Cameras are encoded with ``video_codec`` (``av1``, LeRobot's default, or
    ``h264``), keyframe every ``gop`` frames (LeRobot's 2: cheap random access)."""
    import fnmatch

    pa = pyarrow_module()
    import pyarrow.parquet as pq

    from tactkit.video import ENCODERS

    fps_i = parse_fps(fps, store)
    if video_codec not in ENCODERS:
        raise ValueError(f"unknown video codec {video_codec!r}; known: {', '.join(ENCODERS)}")
    root = Path(dst)
    if root.exists() and any(root.iterdir()):
        if not overwrite:
            raise StoreError(f"{dst} already exists (pass overwrite=True / --overwrite to replace it)")
        shutil.rmtree(root)
    keys = list(store.streams) if keys is None else list(keys)
    unknown = [k for k in keys if k not in store.streams]
    if unknown:
        raise KeyError(f"unknown stream keys {unknown}; the store has {list(store.streams)}")
    clash = [k for k in keys if k in DEFAULT_FEATURES or k == "task"]
    if clash:
        raise ValueError(f"stream keys {clash} clash with LeRobot's own columns")
    specs = {k: store.streams[k] for k in keys}
    video_keys = [k for k in keys if image_spec_ok(specs[k])]
    pix_fmt = {k: "yuv420p" if not (specs[k].shape[0] % 2 or specs[k].shape[1] % 2) else "yuv444p" for k in video_keys}
    odd = [k for k, p in pix_fmt.items() if p == "yuv444p"]
    if odd and video_codec != "h264":
        raise ValueError(f"cameras {odd} have odd frame sizes: {video_codec} needs yuv420p (even sizes); "
                         "export with video_codec='h264' (yuv444p)")
    features = {k: lerobot_feature(k, specs[k], fps_i, video_codec, pix_fmt.get(k, "")) for k in keys}
    features.update(DEFAULT_FEATURES)
    data_cols = [k for k in features if features[k]["dtype"] != "video"]
    fields = [arrow_field(k, features[k]["dtype"], features[k]["shape"]) for k in data_cols]
    hf_meta = {"info": {"features": {k: hf_feature(features[k]["dtype"], features[k]["shape"]) for k in data_cols}}}
    schema = pa.schema(fields, metadata={b"huggingface": json.dumps(hf_meta).encode()})
    interp = {k for k in keys for p in interpolate if fnmatch.fnmatchcase(k, p)
              and np.dtype(specs[k].dtype).kind == "f"}

    root.mkdir(parents=True, exist_ok=True)
    data = _DataFiles(root, schema, chunks_size, data_file_mb)
    videos = {k: _VideoFiles(root, k, fps_i, chunks_size, video_file_mb, video_codec, crf, gop, pix_fmt[k])
              for k in video_keys}
    tasks: list[str] = []
    ep_rows: list[dict[str, Any]] = []
    ep_stats: list[dict[str, dict[str, np.ndarray]]] = []
    sidecar_eps: list[dict[str, Any]] = []
    skipped: list[str] = []
    indices = list(range(store.num_episodes)) if episodes is None else list(episodes)
    iterator: Any = indices
    if progress:
        from tqdm import tqdm

        iterator = tqdm(indices, desc="export lerobot", unit="episode")
    total = 0
    try:
        for i in iterator:
            ep = store.episode(i)
            aligned = align_episode(ep, fps_i, keys, interp)
            if aligned is None:
                skipped.append(ep.name)
                continue
            n = len(aligned[TIMESTAMP_KEY])
            e = len(ep_rows)
            task = ep.task or str(store.attrs.get("task", ""))
            if task not in tasks:
                tasks.append(task)
            frame_cols = {
                "timestamp": (np.arange(n) / fps_i).astype(np.float32),
                "frame_index": np.arange(n, dtype=np.int64),
                "episode_index": np.full(n, e, dtype=np.int64),
                "index": np.arange(total, total + n, dtype=np.int64),
                "task_index": np.full(n, tasks.index(task), dtype=np.int64),
            }
            columns = [to_arrow(frame_cols[k] if k in frame_cols else aligned[k], features[k]["dtype"],
                                features[k]["shape"]) for k in data_cols]
            chunk, file = data.write(pa.Table.from_arrays(columns, schema=schema))
            row: dict[str, Any] = {"episode_index": e, "tasks": [task], "length": n,
                                   "data/chunk_index": chunk, "data/file_index": file,
                                   "dataset_from_index": total, "dataset_to_index": total + n}
            for k in video_keys:
                row.update(videos[k].write_episode(aligned[k]))
            stats = {k: feature_stats(frame_cols[k] if k in frame_cols else aligned[k], image=k in videos)
                     for k in features}
            for k, s in stats.items():
                for name in STAT_NAMES:
                    row[f"stats/{k}/{name}"] = s[name]
            row["meta/episodes/chunk_index"], row["meta/episodes/file_index"] = 0, 0
            ep_rows.append(row)
            ep_stats.append(stats)
            md = ep.metadata
            sidecar_eps.append({"episode_index": e, "source_episode": ep.name, "t0": float(aligned[TIMESTAMP_KEY][0]),
                                "success": md.get("success"), "note": md.get("note", ""),
                                "metadata": {k: v for k, v in md.items() if k not in ("success", "note", "task")}})
            total += n
    finally:
        data.close()
        for v in videos.values():
            v.close()
    if not ep_rows:
        raise ValueError(f"{store.path}: no episode could be aligned (skipped: {skipped})")
    _write_episode_meta(root, ep_rows, chunks_size, data_file_mb)
    pq.write_table(_tasks_table(tasks), root / TASKS_PATH, compression="snappy")
    stats = {k: aggregate_stats([s[k] for s in ep_stats]) for k in features}
    (root / "meta/stats.json").write_text(json.dumps(_stats_json(stats), indent=4))
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type or store.attrs.get("robot_type"),
        "total_episodes": len(ep_rows), "total_frames": total, "total_tasks": len(tasks),
        "chunks_size": chunks_size, "data_files_size_in_mb": data_file_mb, "video_files_size_in_mb": video_file_mb,
        "fps": fps_i, "splits": {"train": f"0:{len(ep_rows)}"},
        "data_path": DATA_PATH, "video_path": VIDEO_PATH if video_keys else None, "features": features,
    }
    (root / "meta/info.json").write_text(json.dumps(info, indent=4))
    sidecar = {
        "format": "tactkit.lerobot_export", "version": 1, "source": store.path, "fps": fps_i,
        "alignment": "latest sample at or before each tick; interpolated keys: linear/nlerp",
        "interpolated": sorted(interp), "streams": {k: specs[k].to_json() for k in keys},
        "store_attrs": store.attrs, "episodes": sidecar_eps, "skipped_episodes": skipped,
    }
    (root / SIDECAR_PATH).write_text(json.dumps(sidecar, indent=2, default=str))
    log.info("exported %d episodes (%d frames at %d Hz) of %s to %s", len(ep_rows), total, fps_i, store.path, root)
    return ExportReport(str(root), fps_i, len(ep_rows), total, video_keys,
                        [k for k in keys if k not in video_keys], skipped, _dir_bytes(root))


def _write_episode_meta(root: Path, rows: list[dict[str, Any]], chunks_size: int, limit_mb: float) -> None:
    """meta/episodes/: episode rows in files of at most ``limit_mb`` (by arrow size)."""
    import pyarrow.parquet as pq

    table = _episodes_table(rows)
    per_row = max(1, table.nbytes // max(1, len(rows)))
    per_file = max(1, int(limit_mb * 1024 * 1024 // per_row))
    slot = _FileSlot(chunks_size)
    for start in range(0, len(rows), per_file):
        for r in rows[start:start + per_file]:
            r["meta/episodes/chunk_index"], r["meta/episodes/file_index"] = slot.chunk, slot.file
        part = _episodes_table(rows[start:start + per_file])
        path = root / EPISODES_PATH.format(chunk_index=slot.chunk, file_index=slot.file)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, path, compression="snappy")
        slot.advance()
