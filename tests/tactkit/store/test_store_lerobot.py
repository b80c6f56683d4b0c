"""LeRobot v3.0 export/import: the layout against the format and against a dataset LeRobot 0.4.4
wrote itself (/work/shared/fixtures/lerobot_v3_small, or beside the checkout), round trips."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tactkit.cli.main import main
from tactkit.policies.synthetic import make_synthetic_store
from tactkit.store import EpisodeStore, align
from tactkit.store.lerobot import STAT_NAMES, export_lerobot
from tactkit.store.lerobot_import import import_lerobot
from tactkit.video import video_info

FPS = 24


def _fixture_dir() -> Path | None:
    here = Path(__file__).resolve()
    for base in [Path(os.environ.get("TACTKIT_SHARED", "/nonexistent")), *(p / "shared" for p in here.parents)]:
        if (base / "fixtures/lerobot_v3_small/meta/info.json").is_file():
            return base / "fixtures/lerobot_v3_small"
    return None


FIXTURE = _fixture_dir()
needs_fixture = pytest.mark.skipif(FIXTURE is None, reason="shared/fixtures/lerobot_v3_small not found")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("lr") / "store.zarr"
    s = make_synthetic_store(path, episodes=3, seconds=1.5, image_hw=(32, 40))
    return EpisodeStore.open(s.path)


@pytest.fixture(scope="module")
def exported(store, tmp_path_factory):
    out = tmp_path_factory.mktemp("lr") / "av1"
    report = export_lerobot(store, out, FPS, video_codec="av1")
    return out, report


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0**2 / max(mse, 1e-12))


def test_layout_matches_the_v3_schema(exported, store):
    root, report = exported
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert files == sorted([
        "meta/info.json", "meta/stats.json", "meta/tasks.parquet", "meta/tactkit.json",
        "meta/episodes/chunk-000/file-000.parquet", "data/chunk-000/file-000.parquet",
        "videos/observation.images.wrist/chunk-000/file-000.mp4",
    ])
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0" and info["fps"] == FPS and info["total_episodes"] == 3
    assert info["splits"] == {"train": "0:3"} and info["total_tasks"] == 1
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    feats = info["features"]
    assert feats["observation.images.wrist"]["dtype"] == "video" and feats["observation.images.wrist"]["shape"] == [32, 40, 3]
    assert feats["observation.images.wrist"]["info"]["video.codec"] == "av1"
    assert feats["observation.tactile.left.marker_offset"] == {"dtype": "float32", "shape": [63, 2], "names": None}
    assert feats["observation.state.tcp_pose"]["dtype"] == "float64"  # dtypes kept
    assert feats["observation.state.tcp_pose"]["names"] == ["x", "y", "z", "qw", "qx", "qy", "qz"]
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert feats[k]["shape"] == [1]

    data = pq.read_table(root / "data/chunk-000/file-000.parquet")
    schema = data.schema
    assert set(schema.names) == {k for k, f in feats.items() if f["dtype"] != "video"}
    assert schema.field("observation.wrench").type == pa.list_(pa.float32(), 6)
    assert schema.field("observation.state.tcp_pose").type == pa.list_(pa.float64(), 7)
    assert schema.field("observation.state.gripper_width").type == pa.float32()  # shape (1,) is a scalar
    assert schema.field("observation.tactile.left.marker_offset").type == pa.list_(pa.list_(pa.float32()))
    assert schema.field("timestamp").type == pa.float32() and schema.field("index").type == pa.int64()
    hf = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert hf["observation.tactile.left.marker_offset"] == {"shape": [63, 2], "dtype": "float32", "_type": "Array2D"}

    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    assert [e["episode_index"] for e in eps] == [0, 1, 2]
    index = data.column("index").to_numpy()
    assert np.array_equal(index, np.arange(len(index)))  # global frame index
    start = 0
    for e in eps:  # contiguous index ranges, frame_index from 0, timestamps k / fps
        assert (e["dataset_from_index"], e["dataset_to_index"]) == (start, start + e["length"])
        rows = data.slice(start, e["length"])
        assert np.array_equal(rows.column("frame_index").to_numpy(), np.arange(e["length"]))
        assert np.array_equal(rows.column("episode_index").to_numpy(), np.full(e["length"], e["episode_index"]))
        assert np.allclose(rows.column("timestamp").to_numpy(), np.arange(e["length"]) / FPS, atol=1e-6)
        v0, v1 = e["videos/observation.images.wrist/from_timestamp"], e["videos/observation.images.wrist/to_timestamp"]
        assert v0 == pytest.approx(start / FPS) and v1 - v0 == pytest.approx(e["length"] / FPS)
        start += e["length"]
    assert start == info["total_frames"] == report.frames
    video = video_info(root / "videos/observation.images.wrist/chunk-000/file-000.mp4")
    assert video["frames"] == info["total_frames"] and (video["height"], video["width"]) == (32, 40)

    stats = json.loads((root / "meta/stats.json").read_text())
    assert set(stats) == set(feats)
    assert set(stats["observation.wrench"]) == set(STAT_NAMES)
    assert np.asarray(stats["observation.images.wrist"]["mean"]).shape == (3, 1, 1)
    assert stats["observation.wrench"]["count"] == [info["total_frames"]]
    assert np.asarray(stats["observation.tactile.left.marker_offset"]["max"]).shape == (63, 2)
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column("task_index").to_pylist() == [0]
    assert json.loads(tasks.schema.metadata[b"pandas"])["index_columns"] == ["__index_level_0__"]


@needs_fixture
def test_layout_matches_what_lerobot_writes(exported):
    """Same info.json fields, same kinds of parquet columns and types, same episode metadata
    columns as LeRobot 0.4.4's own dataset (feature names differ, kinds do not)."""
    root, _ = exported
    ref_info = json.loads((FIXTURE / "meta/info.json").read_text())
    info = json.loads((root / "meta/info.json").read_text())
    assert set(info) == set(ref_info)
    assert set(info["features"]["observation.images.wrist"]) == set(ref_info["features"]["observation.images.wrist"])
    assert set(info["features"]["observation.images.wrist"]["info"]) == set(ref_info["features"]["observation.images.wrist"]["info"])
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert info["features"][k] == ref_info["features"][k]
    ref_data = pq.read_table(FIXTURE / "data/chunk-000/file-000.parquet").schema
    data = pq.read_table(root / "data/chunk-000/file-000.parquet").schema
    for k in ("timestamp", "frame_index", "episode_index", "index", "task_index"):
        assert data.field(k).type == ref_data.field(k).type
    assert data.field("observation.wrench").type.value_type == ref_data.field("observation.state").type.value_type
    assert pa.types.is_fixed_size_list(ref_data.field("observation.state").type)

    def kinds(table: pa.Table, cams: list[str], vec: str) -> dict[str, pa.DataType]:
        """Column -> type, camera keys written CAM and one vector feature VEC."""
        out = {}
        for name in table.column_names:
            generic = name.replace(vec, "VEC")
            for c in cams:
                generic = generic.replace(c, "CAM")
            out.setdefault(generic, table.schema.field(name).type)
        return out

    ref_eps = pq.read_table(FIXTURE / "meta/episodes/chunk-000/file-000.parquet")
    eps = pq.read_table(root / "meta/episodes/chunk-000/file-000.parquet")
    ref_kinds = kinds(ref_eps, ["observation.images.front", "observation.images.wrist"], "observation.state")
    our_kinds = kinds(eps, ["observation.images.wrist"], "observation.wrench")
    defaults = ("VEC", "CAM", "timestamp", "frame_index", "episode_index", "index", "task_index")
    checked = 0
    for col, typ in ref_kinds.items():
        if col.startswith("stats/") and col.split("/")[1] not in defaults:
            continue  # statistics of a feature only the fixture has (action)
        assert col in our_kinds, f"column {col} missing"
        assert our_kinds[col] == typ, f"{col}: {our_kinds[col]} != {typ}"
        checked += 1
    assert checked >= 70
    ref_tasks = pq.read_table(FIXTURE / "meta/tasks.parquet")
    tasks = pq.read_table(root / "meta/tasks.parquet")
    assert tasks.column_names == ref_tasks.column_names


def test_round_trip_keeps_low_dim_bit_exact(exported, store, tmp_path):
    root, _ = exported
    back = import_lerobot(root, tmp_path / "back.zarr")
    view = align(store, fps=FPS)
    assert back.num_episodes == view.n_episodes == 3
    report = back.check(quick=False)  # an imported store is a current one: every chunk checksummed
    assert report.ok and not report.notes, (report.problems, report.notes)
    for i in range(3):
        a, ep = view.get_episode(i), back.episode(i)
        assert set(ep.keys) == set(store.streams)
        for k, spec in store.streams.items():
            assert back.streams[k].dtype == spec.dtype and back.streams[k].shape == spec.shape
            v = ep.values(k)
            if spec.is_image:  # AV1 (crf 30) then the store's JPEG: within the codecs' error
                assert v.shape == a[k].shape and _psnr(v, a[k]) > 30
            else:
                assert v.dtype == a[k].dtype and np.array_equal(v, a[k]), k
            assert np.abs(ep.timestamps(k) - a["timestamp"]).max() < 1e-5  # tick times restored
        src = store.episode(i)
        assert ep.task == src.task and ep.success == src.success and ep.note == src.note


def test_h264_export_round_trip_and_episode_subset(store, tmp_path):
    out = tmp_path / "h264"
    assert main(["dataset", "export", str(store.path), str(out), "--fps", "24", "--episodes", "0,2",
                 "--vcodec", "h264"]) == 0
    info = json.loads((out / "meta/info.json").read_text())
    assert info["total_episodes"] == 2 and info["features"]["observation.images.wrist"]["info"]["video.codec"] == "h264"
    assert video_info(out / "videos/observation.images.wrist/chunk-000/file-000.mp4")["codec"] == "h264"
    assert main(["dataset", "import", str(out), str(tmp_path / "back.zarr"), "--format", "lerobot"]) == 0
    back = EpisodeStore.open(tmp_path / "back.zarr")
    view = align(store, fps=24, episodes=[0, 2])
    for i in range(2):
        a, ep = view.get_episode(i), back.episode(i)
        assert np.array_equal(ep.values("action.tcp_pose"), a["action.tcp_pose"])
        assert _psnr(ep.values("observation.images.wrist"), a["observation.images.wrist"]) > 30


def test_small_file_limits_roll_over_to_new_files_and_chunks(store, tmp_path):
    out = tmp_path / "rolled"
    export_lerobot(store, out, FPS, video_codec="h264", chunks_size=2, data_file_mb=1e-4, video_file_mb=1e-4)
    data_files = sorted(str(p.relative_to(out)) for p in (out / "data").rglob("*.parquet"))
    assert data_files == ["data/chunk-000/file-000.parquet", "data/chunk-000/file-001.parquet",
                          "data/chunk-001/file-000.parquet"]
    assert len(list((out / "videos").rglob("*.mp4"))) == 3
    meta_files = sorted((out / "meta/episodes").rglob("*.parquet"))
    assert len(meta_files) == 3  # the episode metadata rolls over too
    eps = [r for f in meta_files for r in pq.read_table(f).to_pylist()]
    assert [(e["data/chunk_index"], e["data/file_index"]) for e in eps] == [(0, 0), (0, 1), (1, 0)]
    assert [(e["meta/episodes/chunk_index"], e["meta/episodes/file_index"]) for e in eps] == [(0, 0), (0, 1), (1, 0)]
    assert all(e["videos/observation.images.wrist/from_timestamp"] == 0.0 for e in eps)  # each its own file
    back = import_lerobot(out, tmp_path / "back.zarr")
    view = align(store, fps=FPS)
    for i in range(3):
        assert np.array_equal(back.episode(i).values("observation.wrench"), view.get_episode(i)["observation.wrench"])


@needs_fixture
def test_import_of_a_dataset_lerobot_wrote(tmp_path):
    back = import_lerobot(FIXTURE, tmp_path / "fix.zarr")
    assert back.num_episodes == 2
    assert back.streams["observation.state"].shape == (7,) and back.streams["observation.state"].dtype == "float32"
    assert back.streams["observation.images.front"].shape == (32, 40, 3)
    for i, (n, task) in enumerate([(20, "wipe the board"), (15, "peel the cucumber")]):
        ep = back.episode(i)
        assert ep.task == task and ep.length("observation.state") == n
        assert np.allclose(ep.timestamps("action"), np.arange(n) / 15, atol=1e-6)  # the dataset's timestamps
        state, action = ep.values("observation.state"), ep.values("action")
        assert np.allclose(state[:, 0], np.linspace(0, 1, n), atol=1e-6)  # ramps 0 -> 1
        assert np.array_equal(action[:, 0], (state[:, 0] + np.float32(0.01)).astype(np.float32)) or \
            np.allclose(action[:, 0], state[:, 0] + 0.01, atol=1e-6)
        assert np.allclose(state[:, 1:], [0.1, 0.2, 1, 0, 0, 0])
        front, wrist = ep.values("observation.images.front"), ep.values("observation.images.wrist")
        bright = (front[:, 16, :, 0] > 100).mean(axis=1)  # the bar grows left to right
        assert bright[0] < 0.15 and bright[-1] > 0.85 and np.all(np.diff(bright) >= -0.03)
        assert np.allclose((wrist[:, 16, :, 0] > 100).mean(axis=1), 1 - bright, atol=0.1)  # the inverse


def test_bad_input_is_named_and_loses_nothing(store, exported, tmp_path):
    root, _ = exported
    with pytest.raises(ValueError, match="integer frame rate"):
        export_lerobot(store, tmp_path / "x", 12.5)
    keep = tmp_path / "keep"
    keep.mkdir()
    (keep / "precious.txt").write_text("data")
    with pytest.raises(ValueError, match="already exists"):
        export_lerobot(store, keep, FPS)
    assert (keep / "precious.txt").read_text() == "data"
    with pytest.raises(KeyError, match="unknown stream keys"):
        export_lerobot(store, tmp_path / "y", FPS, keys=["observation.nothing"])
    old = tmp_path / "v21"
    shutil.copytree(root, old)
    info = json.loads((old / "meta/info.json").read_text())
    (old / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(ValueError, match="v2.1.*reads v3.0"):
        import_lerobot(old, tmp_path / "z.zarr")
    (old / "meta/info.json").write_text(json.dumps(info))
    shutil.rmtree(old / "videos")
    with pytest.raises(FileNotFoundError, match="video of observation.images.wrist for episode 0 is missing"):
        import_lerobot(old, tmp_path / "w.zarr")
    assert main(["dataset", "import", str(tmp_path / "nothing"), str(tmp_path / "v.zarr"), "--format", "lerobot"]) == 1


def test_lerobot_itself_opens_the_export(exported):
    """Where LeRobot is installed (not a tactkit dependency): every frame decodes there."""
    pytest.importorskip("lerobot.datasets.lerobot_dataset")
    from lerobot.datasets.lerobot_dataset import LeRobotDataset

    root, report = exported
    ds = LeRobotDataset("local/export", root=root, video_backend="pyav")
    assert len(ds) == report.frames and ds.meta.video_keys == ["observation.images.wrist"]
    for i in range(len(ds)):
        assert ds[i]["observation.images.wrist"].shape == (3, 32, 40)
