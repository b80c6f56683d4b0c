"""Training view: alignment, replay-buffer formats (incl. diffusion_policy's v2), stats."""

from __future__ import annotations

import json
from pathlib import Path

import numcodecs
import numpy as np
import pytest

from tactkit.store import (
    POSE_NAMES,
    EpisodeStore,
    ReplayBuffer,
    SequenceSampler,
    StoreError,
    StreamSpec,
    align,
    compute_stats,
)


def make_store(path, n_episodes=2, seed=0):
    rng = np.random.default_rng(seed)
    streams = {
        "observation.images.wrist": StreamSpec("uint8", (12, 16, 3), 30.0, "rgb"),
        "observation.wrench": StreamSpec("float32", (6,), 100.0, "N"),
        "observation.state.tcp_pose": StreamSpec("float64", (7,), 50.0, "m", POSE_NAMES),
        "action.gripper_width": StreamSpec("float32", (1,), 10.0, "m"),
    }
    store = EpisodeStore.create(path, streams)
    raw = []
    for e in range(n_episodes):
        data = {}
        with store.begin_episode(task="t") as rec:
            for key, spec in streams.items():
                n = int(2.0 * spec.rate_hz) + int(rng.integers(0, 5))
                ts = 100.0 * e + np.sort(rng.uniform(0, 2.0, n))
                if spec.is_image:
                    vals = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None] * 4, 12, 1)
                    vals = np.repeat(np.repeat(vals, 16, 2), 3, 3)
                elif key.endswith("tcp_pose"):
                    pos = rng.normal(size=(n, 3))
                    q = rng.normal(size=(n, 4))
                    q /= np.linalg.norm(q, axis=1, keepdims=True)
                    vals = np.concatenate([pos, q], 1)
                else:
                    vals = rng.normal(size=(n, *spec.shape)).astype(spec.dtype)
                rec.append_many(key, ts, vals)
                data[key] = (ts, vals)
        raw.append(data)
    return store, raw


def test_align_latest_at_or_before(tmp_path):
    store, raw = make_store(tmp_path / "s.zarr")
    rb = align(store, fps=24.0, interpolate=())
    assert rb.n_episodes == 2
    ends = rb.episode_ends
    assert ends.dtype == np.int64 and (np.diff(np.concatenate([[0], ends])) > 0).all()
    for e in range(2):
        sl = rb.episode_slice(e)
        ticks = rb["timestamp"][sl]
        t0 = max(ts[0] for ts, _ in raw[e].values())
        t1 = min(ts[-1] for ts, _ in raw[e].values())
        assert ticks[0] == t0 and ticks[-1] <= t1 and ticks[-1] + 1 / 24 > t1
        np.testing.assert_allclose(np.diff(ticks), 1 / 24)
        for key, (ts, vals) in raw[e].items():
            got = rb[key][sl]
            for j, t in enumerate(ticks):  # brute force: last sample with ts <= t
                i = max(i for i in range(len(ts)) if ts[i] <= t)
                if key.startswith("observation.images"):
                    assert abs(int(got[j].mean()) - int(vals[i].mean())) <= 2
                else:
                    np.testing.assert_array_equal(got[j], vals[i].astype(got.dtype))


def test_align_interpolates_state_with_nlerp(tmp_path):
    store, raw = make_store(tmp_path / "s.zarr", n_episodes=1)
    rb = align(store, fps=24.0)  # default: observation.state.* interpolated
    ts, vals = raw[0]["observation.state.tcp_pose"]
    got = rb["observation.state.tcp_pose"][:]
    for j, t in enumerate(rb["timestamp"][:]):
        i = np.searchsorted(ts, t, side="right") - 1
        i1 = min(i + 1, len(ts) - 1)
        a = 0.0 if i1 == i else (t - ts[i]) / (ts[i1] - ts[i])
        np.testing.assert_allclose(got[j, :3], vals[i, :3] + a * (vals[i1, :3] - vals[i, :3]))
        q0, q1 = vals[i, 3:], vals[i1, 3:]
        q1 = -q1 if q0 @ q1 < 0 else q1
        q = q0 + a * (q1 - q0)
        np.testing.assert_allclose(got[j, 3:], q / np.linalg.norm(q), atol=1e-12)
    assert "observation.state.tcp_pose" in rb.attrs["interpolated"]
    with pytest.raises(ValueError, match="'observation.images.wrist' is uint8; only float"):
        align(store, fps=24.0, interpolate=("observation.images.wrist",))
    with pytest.raises(KeyError, match="unknown stream keys"):
        align(store, fps=24.0, keys=["nope"])


def test_align_writes_diffusion_policy_v2_layout(tmp_path):
    store, _ = make_store(tmp_path / "s.zarr")
    mem = align(store, fps=10.0)
    out = tmp_path / "view_v2.zarr"
    rb = align(store, fps=10.0, out=out, zarr_format=2)
    assert (out / ".zgroup").exists() and (out / "meta" / "episode_ends" / ".zarray").exists()
    for key in mem.keys():
        meta = json.loads((out / "data" / key / ".zarray").read_text())
        assert meta["zarr_format"] == 2 and meta["compressor"]["id"] == "blosc", key
        np.testing.assert_array_equal(rb[key][:], mem[key])
    ends_meta = json.loads((out / "meta" / "episode_ends" / ".zarray").read_text())
    assert ends_meta["dtype"] == "<i8"
    np.testing.assert_array_equal(rb.episode_ends, mem.episode_ends)
    # format 3 with JPEG images round-trips too
    rb3 = align(store, fps=10.0, out=tmp_path / "view_v3.zarr")
    np.testing.assert_array_equal(rb3["observation.wrench"][:], mem["observation.wrench"])
    assert np.abs(rb3["observation.images.wrist"][:].astype(int) - mem["observation.images.wrist"]).mean() < 3


def write_dp_v2_fixture(path, arrays: dict[str, np.ndarray], episode_ends: np.ndarray, chunk_rows=7):
    """Write a replay buffer byte-for-byte the way zarr-python 2 DirectoryStore does for
    diffusion_policy: .zgroup/.zarray JSON, Blosc compressor, '.'-separated chunk files."""
    blosc = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.NOSHUFFLE)
    path.mkdir()
    for group in ("", "data", "meta"):
        (path / group).mkdir(exist_ok=True)
        (path / group / ".zgroup").write_text(json.dumps({"zarr_format": 2}))

    def write_array(rel, arr, rows, compressor):
        d = path / rel
        d.mkdir(parents=True)
        chunks = [rows, *arr.shape[1:]]
        meta = {"chunks": chunks, "compressor": compressor.get_config() if compressor else None,
                "dtype": arr.dtype.str, "fill_value": 0, "filters": None, "order": "C",
                "shape": list(arr.shape), "zarr_format": 2}
        (d / ".zarray").write_text(json.dumps(meta, indent=4, sort_keys=True))
        for c in range(0, max(1, -(-arr.shape[0] // rows))):
            block = np.zeros(chunks, arr.dtype)
            part = arr[c * rows:(c + 1) * rows]
            block[: len(part)] = part
            name = ".".join([str(c)] + ["0"] * (arr.ndim - 1))
            raw = block.tobytes()
            (d / name).write_bytes(compressor.encode(raw) if compressor else raw)

    for key, arr in arrays.items():
        write_array(f"data/{key}", arr, chunk_rows, blosc)
    write_array("meta/episode_ends", episode_ends.astype(np.int64), len(episode_ends), None)


def test_reads_diffusion_policy_v2_blosc_replay_buffer(tmp_path):
    rng = np.random.default_rng(3)
    ends = np.array([9, 20, 33], dtype=np.int64)
    arrays = {
        "action": rng.normal(size=(33, 2)).astype(np.float32),
        "state": rng.normal(size=(33, 5)).astype(np.float32),
        "img": rng.integers(0, 255, size=(33, 8, 8, 3), dtype=np.uint8),
    }
    write_dp_v2_fixture(tmp_path / "pusht.zarr", arrays, ends)
    rb = ReplayBuffer.open(tmp_path / "pusht.zarr")
    assert rb.n_episodes == 3 and rb.n_steps == 33 and sorted(rb.keys()) == ["action", "img", "state"]
    np.testing.assert_array_equal(rb.episode_ends, ends)
    for key, arr in arrays.items():
        np.testing.assert_array_equal(rb[key][:], arr)
    np.testing.assert_array_equal(rb.get_episode(1)["action"], arrays["action"][9:20])
    stats = compute_stats(rb, keys=["action"])
    np.testing.assert_allclose(stats["action"]["mean"], arrays["action"].mean(0), rtol=1e-6)


def test_replay_buffer_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError):
        ReplayBuffer.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError):
        ReplayBuffer.open(tmp_path / "empty")
    write_dp_v2_fixture(tmp_path / "bad.zarr", {"action": np.zeros((5, 2), np.float32)},
                        np.array([3, 6]))
    with pytest.raises(StoreError, match="data/action has inconsistent length: 5 steps but meta/episode_ends"):
        ReplayBuffer.open(tmp_path / "bad.zarr")
    with pytest.raises(ValueError, match="inconsistent length"):
        ReplayBuffer.from_episodes([{"a": np.zeros(3), "b": np.zeros(4)}])


def test_compute_stats_streaming_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.normal(3, 2, size=(5000, 3)).astype(np.float32)
    img = rng.integers(0, 256, size=(40, 6, 5, 3), dtype=np.uint8)
    rb = ReplayBuffer({"a": a}, np.array([2000, 5000]))
    s = compute_stats(rb, block_rows=333)
    s.update(compute_stats(ReplayBuffer({"img": img}, np.array([40])), block_rows=333))
    a64 = a.astype(np.float64)
    np.testing.assert_allclose(s["a"]["mean"], a64.mean(0), rtol=1e-10)
    np.testing.assert_allclose(s["a"]["std"], a64.std(0), rtol=1e-10)
    np.testing.assert_array_equal(s["a"]["min"], a64.min(0))
    np.testing.assert_array_equal(s["a"]["max"], a64.max(0))
    np.testing.assert_allclose(s["a"]["q01"], np.quantile(a64, 0.01, axis=0))  # exact below reservoir
    np.testing.assert_allclose(s["a"]["q99"], np.quantile(a64, 0.99, axis=0))
    px = img.reshape(-1, 3)
    assert s["img"]["mean"].shape == (3,)
    np.testing.assert_array_equal(s["img"]["q01"], np.quantile(px, 0.01, axis=0, method="inverted_cdf"))
    np.testing.assert_array_equal(s["img"]["q99"], np.quantile(px, 0.99, axis=0, method="inverted_cdf"))
    np.testing.assert_allclose(s["img"]["std"], px.std(0))
    # bounded reservoir: approximate quantiles, still close
    s_small = compute_stats(rb, keys=["a"], reservoir=2000, block_rows=500)
    lo, hi = np.quantile(a64, [0.002, 0.03], axis=0)
    assert (s_small["a"]["q01"] > lo).all() and (s_small["a"]["q01"] < hi).all()


FIXTURES = Path(__file__).parent / "fixtures"


def test_reads_buffer_written_by_zarr2(tmp_path):
    """A replay buffer written by zarr-python 2.18.7 exactly as diffusion_policy writes one
    (DirectoryStore, Blosc lz4/zstd; see fixtures/make_dp_replay_zarr2.py)."""
    rb = ReplayBuffer.open(FIXTURES / "dp_replay_zarr2")
    assert rb.root.metadata.zarr_format == 2
    np.testing.assert_array_equal(rb.episode_ends, [10, 25])
    np.testing.assert_array_equal(rb["action"][:], (np.arange(50) * 0.5).astype(np.float32).reshape(25, 2))
    np.testing.assert_array_equal(rb["state"][:], (np.arange(75) * 0.25 - 3).reshape(25, 3))
    np.testing.assert_array_equal(
        rb["img"][:], (np.arange(25 * 8 * 8 * 3) % 251).astype(np.uint8).reshape(25, 8, 8, 3))
    assert len(SequenceSampler(rb, 4, pad_before=1, pad_after=3)) == 10 + 1 + 15 + 1
