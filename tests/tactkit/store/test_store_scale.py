"""The store at scale: the episode index (constant cost per episode), the training-view
cache, parallel alignment and the on-disk sampler (larger-than-memory training)."""

from __future__ import annotations

import importlib
import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np
import pytest
from buffer_helpers import random_values

from tactkit.store import (
    POSE_NAMES,
    EpisodeStore,
    ReplayBuffer,
    SequenceSampler,
    StreamSpec,
    _paths,
    align,
    index,
    view_cache,
)
from tactkit.store.chunks import CachedArray

STREAMS = {
    "observation.images.wrist": StreamSpec("uint8", (12, 16, 3), 10.0, "rgb"),
    "observation.tactile.left.marker_offset": StreamSpec("float32", (63, 2), 60.0),
    "observation.state.tcp_pose": StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
    "action.tcp_pose": StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
}


def record(store: EpisodeStore, e: int, seconds: float = 2.0, seed: int = 0) -> None:
    rng = np.random.default_rng(seed + e)
    with store.begin_episode(task="scale") as rec:
        for key, spec in STREAMS.items():
            n = int(seconds * spec.rate_hz) + int(rng.integers(0, 3))
            ts = 10.0 * e + np.sort(rng.uniform(0, seconds, n))
            rec.append_many(key, ts, random_values(rng, spec, n))


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("scale") / "s.zarr"
    store = EpisodeStore.create(path, STREAMS)
    for e in range(8):
        record(store, e, seconds=1.5)
    return path


def count_commit_reads(monkeypatch) -> list[str]:
    reads: list[str] = []
    real = _paths.KeyIO.get

    def get(self, key):
        if key.endswith("commit/zarr.json"):
            reads.append(key)
        return real(self, key)

    monkeypatch.setattr(_paths.KeyIO, "get", get)
    return reads


def clone_episodes(path: Path, template: str, count: int) -> None:
    """Fill a store with ``count`` copies of a recorded episode (hard links: committed
    episodes are never written again), then let the index be rebuilt on open."""
    eps = path / "episodes"
    for i in range(1, count):
        dst = eps / f"ep_{i:06d}"
        shutil.copytree(eps / template, dst, copy_function=os.link)
    shutil.rmtree(path / "index")


@pytest.mark.slow
def test_thousands_of_episodes_open_without_reading_every_commit_record(tmp_path, monkeypatch):
    costs = {}
    spec = {"observation.wrench": StreamSpec("float32", (6,), 100.0, "N")}
    for n in (10, 2500):
        path = tmp_path / f"s{n}.zarr"
        store = EpisodeStore.create(path, spec)
        with store.begin_episode() as rec:
            rec.append_many("observation.wrench", np.arange(3) * 0.01, np.ones((3, 6)))
        clone_episodes(path, "ep_000000", n)
        assert EpisodeStore.open(path, mode="a").index.rebuilt_reason == "no index"
        reads = count_commit_reads(monkeypatch)
        store = EpisodeStore.open(path, mode="a")
        summary = store.summary()
        mid = store.episode(n // 2)
        with store.begin_episode() as rec:  # begin, append, commit
            rec.append("observation.wrench", 0.0, np.zeros(6))
        costs[n] = len(reads)
        monkeypatch.undo()
        assert store.num_episodes == n + 1 and summary["episodes"] == n
        assert summary["streams"]["observation.wrench"]["frames"] == 3 * n
        assert mid.name == f"ep_{n // 2:06d}" and store.episode(-1).name == f"ep_{n:06d}"
        np.testing.assert_array_equal(mid.values("observation.wrench"), np.ones((3, 6)))
    # the same (small) number of commit-record reads at 10 and at 2500 episodes
    assert costs[10] == costs[2500] <= 2, costs


def test_index_rebuilt_when_missing_or_stale(small_store, tmp_path):
    path = tmp_path / "s.zarr"
    shutil.copytree(small_store, path)
    kept = EpisodeStore.open(path).index.entries()
    shutil.rmtree(path / "index")
    store = EpisodeStore.open(path)  # read-only: rebuilt in memory
    assert store.index.rebuilt_reason == "no index" and store.index.entries() == kept
    assert not (path / "index").exists()
    store = EpisodeStore.open(path, mode="a")  # and written when the store is writable
    assert (path / "index" / "head.json").exists()
    assert EpisodeStore.open(path).index.rebuilt_reason is None
    # an episode written without the index (an older tactkit) is noticed on open
    shutil.copytree(path / "episodes" / "ep_000003", path / "episodes" / "ep_000008")
    store = EpisodeStore.open(path)
    assert "ep_000008 exists but was never indexed" in store.index.rebuilt_reason
    assert store.num_episodes == 9
    # a damaged segment is noticed and rebuilt from the commit records
    store = EpisodeStore.open(path, mode="a")
    seg = path / "index" / json.loads((path / "index" / "head.json").read_text())["segments"][0]
    seg.write_text("{garbage")
    store = EpisodeStore.open(path)
    assert "damaged" in store.index.rebuilt_reason and store.index.entries()[:8] == kept


def test_index_segments_and_out_of_order_commits(tmp_path, monkeypatch):
    monkeypatch.setattr(index, "SEGMENT_SIZE", 3)
    store = EpisodeStore.create(tmp_path / "s.zarr", {"a": StreamSpec("float32", (), 10.0)})
    recs = [store.begin_episode() for _ in range(8)]
    for i in (0, 1, 2, 3, 5, 6, 7, 4):  # ep_000004 committed last, as a late recovery would be
        recs[i].append("a", 0.0, float(i))
        recs[i].commit()
    names = [e.name for e in store.episodes()]
    assert names == [f"ep_{i:06d}" for i in range(8)]
    head = json.loads((tmp_path / "s.zarr" / "index" / "head.json").read_text())
    assert head["count"] == 8 and len(head["segments"]) == 3 and head["pending"] == []
    assert len(list((tmp_path / "s.zarr" / "index").glob("seg-*.json"))) == 3  # old generation gone
    again = EpisodeStore.open(tmp_path / "s.zarr")
    assert [e.name for e in again.episodes()] == names
    assert [float(e.values("a")[0]) for e in again.episodes()] == list(range(8))
    assert again.episode_named("ep_000006").index == 6


def test_parallel_alignment_equals_serial(small_store, tmp_path, monkeypatch):
    align_module = importlib.import_module("tactkit.store.align")  # the package exports the function
    monkeypatch.setattr(align_module, "PARALLEL_MIN_EPISODES_PER_WORKER", 1)
    store = EpisodeStore.open(small_store)
    mem = align(store, fps=10.0)
    par = align(store, fps=10.0, workers=2, out=tmp_path / "par.zarr")
    ser = align(store, fps=10.0, workers=1, out=tmp_path / "ser.zarr", zarr_format=2)
    assert par.attrs["source_episodes"] == mem.attrs["source_episodes"]
    for key in mem.keys():
        np.testing.assert_array_equal(par[key][:], mem[key])  # camera frames copied, not re-encoded
        np.testing.assert_array_equal(ser[key][:], mem[key])
    np.testing.assert_array_equal(par.episode_ends, mem.episode_ends)


def test_view_cache_reused_then_invalidated_by_a_new_episode(small_store, tmp_path):
    path = tmp_path / "s.zarr"
    shutil.copytree(small_store, path)
    cache = tmp_path / "cache"
    keys = ["observation.state.tcp_pose", "observation.images.wrist", "action.tcp_pose"]
    store = EpisodeStore.open(path)
    v1 = view_cache.cached_view(store, 10.0, keys, directory=cache)
    made = (Path(v1.where) / "zarr.json").stat().st_mtime_ns
    again = view_cache.cached_view(EpisodeStore.open(path), 10.0, keys, directory=cache)
    assert again.where == v1.where and (Path(v1.where) / "zarr.json").stat().st_mtime_ns == made
    mem = align(store, fps=10.0, keys=keys)
    for k in keys:
        np.testing.assert_array_equal(again[k][:], mem[k])
    # other fps or keys: another view
    assert view_cache.cached_view(store, 5.0, keys, directory=cache).where != v1.where
    # a new episode changes the store's content: a new view that holds it
    record(EpisodeStore.open(path, mode="a"), 8, seconds=1.5)
    v2 = view_cache.cached_view(EpisodeStore.open(path), 10.0, keys, directory=cache)
    assert v2.where != v1.where and v2.n_episodes == v1.n_episodes + 1
    listed = view_cache.list_views(cache)
    assert {e["path"] for e in listed} >= {v1.where, v2.where} and all(e["bytes"] > 0 for e in listed)
    assert view_cache.clear_views(cache) > 0 and view_cache.list_views(cache) == []


def make_view(lengths, seed=0) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    n = int(sum(lengths))
    data = {
        "obs": rng.normal(size=(n, 3)).astype(np.float32),
        "img": rng.integers(0, 255, size=(n, 24, 32, 3), dtype=np.uint8),
        "action": np.arange(n, dtype=np.float64)[:, None] * [1.0, -1.0],
    }
    return ReplayBuffer(data, np.cumsum(lengths).astype(np.int64))


@pytest.mark.parametrize("where", ["local", "memory"])
def test_on_disk_sampler_yields_the_in_memory_windows(tmp_path, where):
    mem = make_view([40, 3, 77, 150, 9, 61])
    url = str(tmp_path / "view.zarr") if where == "local" else f"memory://view-{uuid.uuid4().hex}"
    disk = mem.save(url, image_quality=None).on_disk(cache_bytes=600_000)  # two image chunks
    assert isinstance(disk["img"], CachedArray) and disk["img"].layout.chunk_rows > 1
    kw = dict(sequence_length=8, pad_before=1, pad_after=7, key_first_k={"obs": 2, "img": 2},
              episode_mask=np.array([True, True, False, True, True, True]))
    a = SequenceSampler(mem, **kw)
    b = SequenceSampler(disk, **kw, lazy_keys=list(mem.keys()))
    assert len(a) == len(b) > 200
    order = np.random.default_rng(0).permutation(len(a))  # random access, as training does
    for i in order[:: 1 if where == "local" else 6]:
        wa, wb = a.sample_sequence(int(i)), b.sample_sequence(int(i))
        for key in mem.keys():
            np.testing.assert_array_equal(wa[key], wb[key], err_msg=f"window {i} {key}")
    for first_k_only in (False, True):
        ba, bb = a.sample_batch(order[:64], first_k_only), b.sample_batch(order[:64], first_k_only)
        for key in mem.keys():
            np.testing.assert_array_equal(ba[key], bb[key])
    cache = disk["img"].cache
    assert 0 < cache.nbytes <= 600_000 and cache.misses > 10 and cache.hits > 0


@pytest.mark.slow
@pytest.mark.parametrize("key_map", [False, True], ids=["store_keys", "key_map"])
def test_training_windows_from_disk_equal_the_in_memory_ones(small_store, key_map):
    import dataclasses

    import torch

    from tactkit.policies.config import load_policy_config
    from tactkit.policies.data import WindowDataset, load_training_data

    cam, pose = "observation.images.wrist", "observation.state.tcp_pose"
    if key_map:  # the config's key map renames a camera and copies a pose (the view keeps the store's names)
        cam, pose = "observation.images.front", "observation.state.copied_pose"
    cfg = load_policy_config("dp", [
        "fps=10", "image_shape=[8,12]", "crop_shape=[8,12]", "horizon=8", "relative_actions=true",
        "pca_components=4", "action_keys=[action.tcp_pose]",
        f"obs_keys=[{cam},{pose},observation.tactile.left.marker_offset]",
    ])
    if key_map:
        cfg = dataclasses.replace(cfg, keys={"observation.images.wrist": cam,
                                             "observation.state.tcp_pose": f"observation.state.tcp_pose,{pose}"})
    mem = load_training_data(small_store, cfg, in_memory=True)
    disk = load_training_data(small_store, cfg, in_memory=False)
    img = disk.buffer[cam]
    assert not isinstance(img, np.ndarray)
    assert all(isinstance(disk.buffer[k].raw, CachedArray) for k in (cam, pose, "action.tcp_pose"))  # bounded reads
    assert img.raw.shape[1:3] == (8, 12)  # read from the cached copy resized to image_shape
    assert mem.normalizer.params.keys() == disk.normalizer.params.keys()
    for k, (scale, offset) in mem.normalizer.params.items():
        torch.testing.assert_close(disk.normalizer.params[k][0], scale, rtol=1e-6, atol=1e-6)
        torch.testing.assert_close(disk.normalizer.params[k][1], offset, rtol=1e-6, atol=1e-6)
    a, b = (WindowDataset(d, cfg, d.train_mask) for d in (mem, disk))
    assert len(a) == len(b) > 60
    for i in range(0, len(a), 7):
        wa, wb = a[i], b[i]
        assert wa.keys() == wb.keys()
        for key in wa:
            torch.testing.assert_close(wa[key], wb[key], rtol=1e-6, atol=1e-6, msg=f"window {i} {key}")
