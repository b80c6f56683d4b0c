"""LeRobot v3.0 dataset -> episode store (``tactkit dataset import SRC DST --format lerobot``).

One store episode per LeRobot episode; every feature becomes a stream at the dataset's fps with
its dtype and shape (a ``(1,)`` feature stays ``(1,)``); sample times are the dataset's
``timestamp`` column. Video features (AV1, H.264, HEVC: PyAV's FFmpeg decodes them, AV1 through
dav1d) and ``image`` features (PNG bytes in the parquet) become image streams, re-encoded by the
store's JPEG codec. Each frame is taken from the video at ``from_timestamp + timestamp``, as
LeRobot does, within ``tolerance_s``. The episode's task strings become its task; a
``meta/tactkit.json`` written by :func:`tactkit.store.lerobot.export_lerobot` also restores the
original tick times, units, success flags and episode metadata.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.store.lerobot import (
    DEFAULT_FEATURES,
    SIDECAR_PATH,
    TASKS_PATH,
    from_arrow,
    pyarrow_module,
)

log = logging.getLogger(__name__)

#: LeRobot's default ``tolerance_s``: how far a decoded frame may be from the time asked for
DEFAULT_TOLERANCE_S = 1e-4


class _VideoCursor:
    """Frames of one video file, decoded forward once across consecutive episodes."""

    def __init__(self, path: Path) -> None:
        import av

        self.path = path
        self.container = av.open(str(path))
        self.stream = self.container.streams.video[0]
        self.stream.thread_type = "AUTO"
        self._frames = self.container.decode(self.stream)
        self._pending: tuple[float, np.ndarray] | None = None
        self.position = -np.inf  # time of the last frame handed out

    def take(self, start: float, stop: float) -> tuple[np.ndarray, list[np.ndarray]]:
        """Times and RGB frames with ``start - eps <= t < stop - eps`` (start must not go back)."""
        eps = 1e-6
        times: list[float] = []
        frames: list[np.ndarray] = []
        while True:
            if self._pending is None:
                try:
                    f = next(self._frames)
                except StopIteration:
                    break
                self._pending = (float(f.pts * self.stream.time_base), f.to_ndarray(format="rgb24"))
            t, img = self._pending
            if t >= stop - eps:
                break
            self._pending = None
            if t >= start - eps:
                times.append(t)
                frames.append(img)
        if times:
            self.position = times[-1]
        return np.asarray(times), frames

    def close(self) -> None:
        self.container.close()


def _read_parquets(paths: list[Path]) -> Any:
    import pyarrow.parquet as pq

    pa = pyarrow_module()
    tables = [pq.read_table(p) for p in paths]
    return pa.concat_tables(tables, promote_options="default") if len(tables) > 1 else tables[0]


def _tasks(root: Path) -> dict[int, str]:
    import pyarrow.parquet as pq

    t = pq.read_table(root / TASKS_PATH)
    names = t.column_names
    label = "task" if "task" in names else "__index_level_0__" if "__index_level_0__" in names else None
    if label is None or "task_index" not in names:
        raise ValueError(f"{root / TASKS_PATH}: expected task strings and task_index, got columns {names}")
    return dict(zip(t.column("task_index").to_pylist(), t.column(label).to_pylist()))


def _names(names: Any, shape: Sequence[int]) -> tuple[str, ...]:
    if isinstance(names, dict):  # {"motors": [...]}, an older LeRobot form
        names = next(iter(names.values()), None) if len(names) == 1 else None
    if isinstance(names, list) and len(shape) == 1 and len(names) == shape[0] and all(isinstance(n, str) for n in names):
        return tuple(names)
    return ()


def import_lerobot(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    episodes: Sequence[int] | None = None,
    image_quality: int = 90,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
    overwrite: bool = False,
    progress: bool = False,
) -> Any:
    """Import the LeRobot v3.0 dataset at ``src`` (``episodes``: its episode indices, default
    all) into a new episode store at ``dst``; returns the :class:`EpisodeStore`."""
    import pyarrow.parquet as pq

    from tactkit.store.episode_store import EpisodeStore
    from tactkit.store.schema import StreamSpec

    root = Path(src)
    info_path = root / "meta/info.json"
    if not info_path.is_file():
        raise FileNotFoundError(f"{src}: not a LeRobot dataset (no meta/info.json)")
    info = json.loads(info_path.read_text())
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise ValueError(f"{src}: LeRobot dataset format {version or '?'}; this importer reads v3.0 "
                         "(convert older datasets with LeRobot's convert_dataset_v21_to_v30)")
    fps = float(info["fps"])
    feats: dict[str, dict[str, Any]] = info["features"]
    sidecar = json.loads((root / SIDECAR_PATH).read_text()) if (root / SIDECAR_PATH).is_file() else None
    side_specs = (sidecar or {}).get("streams", {})
    streams: dict[str, StreamSpec] = {}
    skipped = []
    for key, ft in feats.items():
        if key in DEFAULT_FEATURES:
            continue
        shape = tuple(int(s) for s in ft["shape"])
        units = side_specs.get(key, {}).get("units", "")
        if ft["dtype"] in ("video", "image"):
            names = ft.get("names") or []
            chw = len(shape) == 3 and (str(names[0]).lower() in ("c", "channel", "channels") if names
                                       else shape[0] == 3 and shape[2] != 3)
            h, w = (shape[1], shape[2]) if chw else shape[:2]
            streams[key] = StreamSpec("uint8", (h, w, 3), fps, units or "rgb")
        elif ft["dtype"] in ("string", "str"):
            skipped.append(key)
        else:
            streams[key] = StreamSpec(ft["dtype"], shape, fps, units, _names(ft.get("names"), shape))
    if skipped:
        log.warning("%s: string features %s have no stream form; they are kept in the episode metadata", src, skipped)
    if not streams:
        raise ValueError(f"{src}: no feature to import (features: {list(feats)})")
    ep_table = _read_parquets(sorted((root / "meta/episodes").glob("*/*.parquet")))
    ep_rows = sorted(ep_table.drop_columns([c for c in ep_table.column_names if c.startswith("stats/")]).to_pylist(),
                     key=lambda r: r["episode_index"])
    wanted = [r["episode_index"] for r in ep_rows] if episodes is None else list(episodes)
    by_index = {r["episode_index"]: r for r in ep_rows}
    missing = [e for e in wanted if e not in by_index]
    if missing:
        raise IndexError(f"{src} has no episodes {missing}; it has {len(ep_rows)} (0..{len(ep_rows) - 1})")
    tasks = _tasks(root)
    side_eps = {e["episode_index"]: e for e in (sidecar or {}).get("episodes", [])}
    attrs = {"source": "lerobot", "lerobot": {"path": str(root), "codebase_version": version, "fps": info["fps"],
                                              "robot_type": info.get("robot_type")}}
    if sidecar is not None:
        attrs.update({k: v for k, v in sidecar.get("store_attrs", {}).items() if k not in attrs})
    store = EpisodeStore.create(dst, streams, attrs=attrs, image_quality=image_quality, overwrite=overwrite)
    cursors: dict[tuple[str, int, int], _VideoCursor] = {}
    data_cache: dict[tuple[int, int], tuple[Any, np.ndarray]] = {}
    iterator: Any = wanted
    if progress:
        from tqdm import tqdm

        iterator = tqdm(wanted, desc="import lerobot", unit="episode")
    try:
        for e in iterator:
            row = by_index[e]
            dkey = (row["data/chunk_index"], row["data/file_index"])
            if dkey not in data_cache:
                data_cache.clear()  # episodes come in file order: keep one file in memory
                table = pq.read_table(root / info["data_path"].format(chunk_index=dkey[0], file_index=dkey[1]))
                data_cache[dkey] = (table, table.column("index").to_numpy())
            table, index = data_cache[dkey]
            lo, hi = np.searchsorted(index, [row["dataset_from_index"], row["dataset_to_index"]])
            part = table.slice(int(lo), int(hi - lo))
            if part.num_rows != row["length"]:
                raise ValueError(f"{src}: episode {e} has {part.num_rows} rows in its data file, "
                                 f"meta/episodes says {row['length']}")
            ts = part.column("timestamp").to_numpy().astype(np.float64)
            side = side_eps.get(e)
            t_abs = ts + (side["t0"] if side else 0.0)
            values: dict[str, np.ndarray] = {}
            for key, spec in streams.items():
                ft = feats[key]
                if ft["dtype"] == "video":
                    values[key] = _episode_frames(root, info, row, key, ts, cursors, tolerance_s)
                elif ft["dtype"] == "image":
                    values[key] = _decode_images(part.column(key), spec.shape, key)
                else:
                    values[key] = from_arrow(part.column(key), spec.dtype, spec.shape)
            task_idx = part.column("task_index").to_numpy()
            ep_tasks = list(row.get("tasks") or []) or [tasks.get(int(i), "") for i in np.unique(task_idx)]
            meta = {"lerobot_episode_index": e, "lerobot_tasks": ep_tasks}
            for key in skipped:
                meta[key] = part.column(key).to_pylist()
            success, note = None, ""
            if side:
                meta.update(side.get("metadata", {}))
                success, note = side.get("success"), side.get("note", "")
            for k in ("start_wall_time", "start_time", "end_wall_time", "recovered", "calibration"):
                meta.pop(k, None)
            rec = store.begin_episode(task=ep_tasks[0] if ep_tasks else "", metadata=meta,
                                      start_time=float(t_abs[0]) if len(t_abs) else 0.0)
            try:
                for key, v in values.items():
                    rec.append_many(key, t_abs, v)
                rec.commit(success=True if success is None else bool(success), note=note)
            except BaseException:
                rec.discard()
                raise
    finally:
        for c in cursors.values():
            c.close()
    return EpisodeStore.open(dst)


def _episode_frames(root: Path, info: dict[str, Any], row: dict[str, Any], key: str, ts: np.ndarray,
                    cursors: dict[tuple[str, int, int], _VideoCursor], tolerance_s: float) -> np.ndarray:
    ck = (key, row[f"videos/{key}/chunk_index"], row[f"videos/{key}/file_index"])
    t0 = float(row[f"videos/{key}/from_timestamp"])
    t1 = float(row[f"videos/{key}/to_timestamp"])
    cursor = cursors.get(ck)
    if cursor is None or cursor.position >= t0 - 1e-6:
        if cursor is not None:
            cursor.close()
        for other in [k for k in cursors if k[0] == key]:
            cursors.pop(other).close()
        path = root / info["video_path"].format(video_key=key, chunk_index=ck[1], file_index=ck[2])
        if not path.is_file():
            raise FileNotFoundError(f"{path}: video of {key} for episode {row['episode_index']} is missing")
        cursor = cursors[ck] = _VideoCursor(path)
    times, frames = cursor.take(t0, max(t1, t0 + float(ts[-1]) + 1e-3) if len(ts) else t1)
    if not frames:
        raise ValueError(f"{cursor.path}: no frames between {t0:.4f} and {t1:.4f} s for episode {row['episode_index']}")
    want = t0 + ts
    j = np.clip(np.searchsorted(times, want), 1, len(times) - 1) if len(times) > 1 else np.zeros(len(want), int)
    if len(times) > 1:
        j = np.where(np.abs(times[j - 1] - want) <= np.abs(times[j] - want), j - 1, j)
    err = np.abs(times[j] - want)
    if err.max(initial=0.0) > tolerance_s:
        k = int(np.argmax(err))
        raise ValueError(f"{cursor.path}: episode {row['episode_index']} frame {k} wants t={want[k]:.6f} s, "
                         f"the nearest frame is at {times[j[k]]:.6f} s (> tolerance {tolerance_s} s)")
    return np.stack([frames[i] for i in j])


def _decode_images(column: Any, shape: tuple[int, ...], key: str) -> np.ndarray:
    import imagecodecs

    out = []
    for v in column.to_pylist():
        data = v.get("bytes") if isinstance(v, dict) else v
        if data is None:
            raise ValueError(f"{key}: an image refers to a file ({v.get('path')}), not embedded bytes")
        img = np.asarray(imagecodecs.imread(data))
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        out.append(img[..., :3].astype(np.uint8))
    arr = np.stack(out)
    if tuple(arr.shape[1:]) != tuple(shape):
        raise ValueError(f"{key}: images are {arr.shape[1:]}, info.json says {shape}")
    return arr
