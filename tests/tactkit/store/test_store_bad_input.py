"""Every bad input gets a clear error naming the key and the problem."""

from __future__ import annotations

import json

import numpy as np
import pytest
import zarr

from tactkit.store import (
    EpisodeStore,
    FormatVersionError,
    NotAStoreError,
    SampleError,
    StoreError,
    StreamSpec,
)

SPEC = {
    "observation.wrench": StreamSpec("float32", (6,), 500.0),
    "observation.images.wrist": StreamSpec("uint8", (8, 8, 3), 30.0),
}


@pytest.fixture
def rec(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", SPEC)
    r = store.begin_episode()
    yield r
    r.discard()


def test_path_that_is_not_a_store(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such episode store"):
        EpisodeStore.open(tmp_path / "missing.zarr")
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("hi")
    with pytest.raises(NotAStoreError, match="not a tactkit episode store"):
        EpisodeStore.open(tmp_path / "plain")
    zarr.open_group(tmp_path / "other.zarr", mode="w").attrs["x"] = 1
    with pytest.raises(NotAStoreError, match="not a tactkit episode store"):
        EpisodeStore.open(tmp_path / "other.zarr")


def test_newer_format_version(tmp_path):
    EpisodeStore.create(tmp_path / "s.zarr", SPEC)
    meta_path = tmp_path / "s.zarr" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["tactkit"]["format_version"] = 99
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(FormatVersionError, match="format version 99 is newer"):
        EpisodeStore.open(tmp_path / "s.zarr")


def test_wrong_shape(rec):
    with pytest.raises(SampleError, match=r"'observation.wrench'.*shape \(7,\)"):
        rec.append("observation.wrench", 0.0, np.zeros(7, np.float32))
    with pytest.raises(SampleError, match=r"'observation.images.wrist'.*shape"):
        rec.append_many("observation.images.wrist", [0.0], np.zeros((1, 8, 8, 4), np.uint8))


def test_wrong_dtype(rec):
    with pytest.raises(SampleError, match=r"'observation.images.wrist'.*float64 cannot be stored as uint8"):
        rec.append("observation.images.wrist", 0.0, np.zeros((8, 8, 3)))
    with pytest.raises(SampleError, match=r"'observation.wrench'.*complex128"):
        rec.append("observation.wrench", 0.0, np.zeros(6, complex))


def test_nan_timestamp(rec):
    with pytest.raises(SampleError, match=r"'observation.wrench'.*timestamp nan is not finite"):
        rec.append("observation.wrench", float("nan"), np.zeros(6, np.float32))
    with pytest.raises(SampleError, match=r"'observation.wrench'.*timestamp\[1\] = nan"):
        rec.append_many("observation.wrench", [0.0, np.nan], np.zeros((2, 6), np.float32))


def test_timestamps_going_backwards(rec):
    rec.append("observation.wrench", 1.0, np.zeros(6, np.float32))
    with pytest.raises(SampleError, match=r"'observation.wrench'.*0.5 goes backwards \(previous sample at 1.0\)"):
        rec.append("observation.wrench", 0.5, np.zeros(6, np.float32))
    with pytest.raises(SampleError, match=r"'observation.wrench'.*timestamp\[2\] = 1.5 goes backwards"):
        rec.append_many("observation.wrench", [2.0, 3.0, 1.5], np.zeros((3, 6), np.float32))
    # the failed calls appended nothing
    assert rec.lengths["observation.wrench"] == 1


def test_inconsistent_length_on_append(rec):
    with pytest.raises(SampleError, match=r"'observation.wrench'.*inconsistent length: 3 timestamps but 2 values"):
        rec.append_many("observation.wrench", [0.0, 1.0, 2.0], np.zeros((2, 6), np.float32))


def test_unknown_key(rec):
    with pytest.raises(SampleError, match="unknown stream key 'observation.wrenchh'"):
        rec.append("observation.wrenchh", 0.0, np.zeros(6, np.float32))


def test_inconsistent_length_on_disk(tmp_path):
    store = EpisodeStore.create(tmp_path / "s.zarr", SPEC)
    with store.begin_episode() as rec:
        rec.append_many("observation.wrench", np.arange(10.0), np.zeros((10, 6), np.float32))
    # corrupt: shrink the values array behind the commit record's back
    store.episode(0).group["observation.wrench/values"].resize((4, 6))
    store = EpisodeStore.open(tmp_path / "s.zarr")
    with pytest.raises(StoreError, match=r"'observation.wrench' has inconsistent length: values holds 4 .* says 10"):
        store.episode(0).values("observation.wrench")
    problems = store.verify()
    assert len(problems) == 1 and "observation.wrench" in problems[0] and "inconsistent length" in problems[0]


def test_read_only_and_closed_recorder(tmp_path):
    EpisodeStore.create(tmp_path / "s.zarr", SPEC)
    with pytest.raises(StoreError, match="read-only"):
        EpisodeStore.open(tmp_path / "s.zarr").begin_episode()
    store = EpisodeStore.open(tmp_path / "s.zarr", mode="a")
    rec = store.begin_episode()
    rec.commit()
    with pytest.raises(StoreError, match="already committed"):
        rec.append("observation.wrench", 0.0, np.zeros(6, np.float32))


def test_bad_create_arguments(tmp_path):
    with pytest.raises(ValueError, match="invalid stream key 'a/b'"):
        EpisodeStore.create(tmp_path / "x.zarr", {"a/b": StreamSpec("float32", (), 1.0)})
    with pytest.raises(ValueError, match="flush_interval_s"):
        EpisodeStore.create(tmp_path / "y.zarr", SPEC, flush_interval_s=2.0)
    EpisodeStore.create(tmp_path / "s.zarr", SPEC)
    with pytest.raises(StoreError, match="already exists"):
        EpisodeStore.create(tmp_path / "s.zarr", SPEC)
    store = EpisodeStore.open(tmp_path / "s.zarr", mode="a")
    with pytest.raises(ValueError, match=r"metadata keys \['task'\] are standard fields"):
        store.begin_episode(metadata={"task": "x"})
    with pytest.raises(ValueError, match="metadata must be JSON-serialisable"):
        store.begin_episode(metadata={"x": object()})
    with pytest.raises(ValueError, match="flush_interval_s must be in"):
        store.begin_episode(flush_interval_s=5.0)
    assert store.interrupted() == []  # nothing was written by the refused calls
