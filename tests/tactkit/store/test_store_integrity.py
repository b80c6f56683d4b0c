"""Store integrity: every corruption is found by `verify` and stops training, naming
episode, stream and chunk; old stores still open; garbage commit records name their file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from buffer_helpers import random_values

from tactkit.cli.main import main
from tactkit.policies.config import load_policy_config
from tactkit.policies.data import open_view
from tactkit.store import POSE_NAMES, EpisodeStore, StoreError, StreamSpec

POSE = "observation.state.tcp_pose"
IMG = "observation.images.wrist"
WRENCH = "observation.wrench"
STREAMS = {
    POSE: StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
    IMG: StreamSpec("uint8", (16, 24, 3), 10.0, "rgb"),
    WRENCH: StreamSpec("float32", (6,), 100.0, "N"),
    "action.tcp_pose": StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
}
FIXTURES = Path(__file__).parent / "fixtures"


def make_store(path: Path, episodes: int = 2, seconds: float = 50.0) -> EpisodeStore:
    """Episodes long enough (50 s) that the 100 Hz pose stream spans two chunks."""
    store = EpisodeStore.create(path, STREAMS)
    rng = np.random.default_rng(0)
    for e in range(episodes):
        with store.begin_episode(task="integrity") as rec:
            for key, spec in STREAMS.items():
                n = int(seconds * spec.rate_hz) if not spec.is_image else 20
                ts = 1000.0 * e + np.arange(n) / spec.rate_hz
                rec.append_many(key, ts, random_values(rng, spec, n))
    return store


def chunk_file(path: Path, ep: str, key: str, i: int) -> Path:
    arr = path / "episodes" / ep / key / "values"
    name = "c." + ".".join([str(i)] + ["0"] * (len(STREAMS[key].shape)))
    assert (arr / name).exists(), sorted(p.name for p in arr.iterdir())
    return arr / name


def corrupt(path: Path, case: str) -> tuple[str, str]:
    """Apply one corruption to episode ep_000001; returns (what verify must name, stream)."""
    ep = path / "episodes" / "ep_000001"
    if case == "deleted lowdim chunk":  # reads back as zeros: quaternion [0, 0, 0, 0]
        f = chunk_file(path, "ep_000001", POSE, 1)
        f.unlink()
        return f"{POSE}/values/c.1.0", POSE
    if case == "flipped bytes in a blosc chunk":  # two rows would change silently
        f = chunk_file(path, "ep_000001", WRENCH, 0)
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        b[len(b) // 2 + 7] ^= 0x10
        f.write_bytes(bytes(b))
        return f"{WRENCH}/values/c.0.0", WRENCH
    if case == "deleted jpeg chunk":  # a black frame
        f = chunk_file(path, "ep_000001", IMG, 7)
        f.unlink()
        return f"{IMG}/values/c.7.0.0.0", IMG
    if case == "swapped valid chunks":  # each chunk passes its checksum: only the digest sees it
        a, b = chunk_file(path, "ep_000001", IMG, 3), chunk_file(path, "ep_000001", IMG, 4)
        da, db = a.read_bytes(), b.read_bytes()
        a.write_bytes(db)
        b.write_bytes(da)
        return "content digest mismatch", IMG
    if case == "commit record count edited":  # training would use the first 500 samples
        f = ep / "commit" / "zarr.json"
        doc = json.loads(f.read_text())
        doc["attributes"]["lengths"][POSE] = 500
        f.write_text(json.dumps(doc))
        return "says 500", POSE
    if case == "episode zarr.json deleted":  # the episode vanished from listings
        (ep / "zarr.json").unlink()
        return "ep_000001/zarr.json", ""
    if case == "garbage commit record":
        (ep / "commit" / "zarr.json").write_bytes(b"\xff\xfe\x00garbage\x9c")
        return "ep_000001/commit/zarr.json", ""
    raise AssertionError(case)


CASES = ["deleted lowdim chunk", "flipped bytes in a blosc chunk", "deleted jpeg chunk",
         "swapped valid chunks", "commit record count edited", "episode zarr.json deleted",
         "garbage commit record"]
#: found without reading any chunk
QUICK = {"deleted lowdim chunk", "deleted jpeg chunk", "commit record count edited",
         "episode zarr.json deleted", "garbage commit record"}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = tmp_path_factory.mktemp("integrity") / "s.zarr"
    make_store(path)
    return path


@pytest.fixture
def damaged(pristine, tmp_path, request):
    path = tmp_path / "s.zarr"
    shutil.copytree(pristine, path)
    return path, *corrupt(path, request.param)


def _cfg():
    return load_policy_config("dp", ["fps=10", "image_shape=[16,24]", "crop_shape=[16,24]"])


def test_pristine_store_verifies_and_trains(pristine, capsys):
    assert main(["dataset", "verify", str(pristine)]) == 0
    out = capsys.readouterr().out
    assert "full check: OK" in out and "problem" not in out
    assert main(["dataset", "verify", "--quick", str(pristine)]) == 0
    rb = open_view(pristine, _cfg(), [POSE, IMG, WRENCH])
    assert rb.n_episodes == 2


@pytest.mark.parametrize("damaged", CASES, indirect=True)
def test_verify_names_each_corruption(damaged, capsys):
    path, needle, stream = damaged
    assert main(["dataset", "verify", str(path)]) == 1
    out = capsys.readouterr().out
    problems = [ln for ln in out.splitlines() if ln.startswith("problem:")]
    assert problems, out
    hit = [p for p in problems if needle in p and "ep_000001" in p and f"'{stream}'" * bool(stream) in p]
    assert hit, problems
    assert not any("ep_000000" in p for p in problems), problems  # the other episode is fine


@pytest.mark.parametrize("damaged", CASES, indirect=True)
def test_quick_verify_finds_what_needs_no_chunk_reads(damaged, request, capsys):
    path, _, _ = damaged
    case = request.node.callspec.params["damaged"]
    assert main(["dataset", "verify", "--quick", str(path)]) == (1 if case in QUICK else 0)
    assert "quick check" in capsys.readouterr().out


@pytest.mark.parametrize("damaged", CASES, indirect=True)
def test_opening_for_training_stops_on_each_corruption(damaged, tmp_path, monkeypatch, request):
    """Training builds its view from the store (no cached view yet for this content)."""
    monkeypatch.setenv("TACTKIT_CACHE_DIR", str(tmp_path / "cache"))
    path, needle, stream = damaged
    with pytest.raises(StoreError) as err:
        open_view(path, _cfg(), [POSE, IMG, WRENCH])
    msg = str(err.value)
    needle = {"commit record count edited": "commit record differs from its copy in the index"}.get(
        request.node.callspec.params["damaged"], needle)
    assert "ep_000001" in msg and needle in msg, msg
    if stream:
        assert f"'{stream}'" in msg, msg


def test_decode_error_while_training_names_the_chunk(pristine, tmp_path, monkeypatch):
    monkeypatch.setenv("TACTKIT_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "s.zarr"
    shutil.copytree(pristine, path)
    corrupt(path, "flipped bytes in a blosc chunk")
    with pytest.raises(StoreError, match=r"ep_000001 stream 'observation.wrench'.*chunk "
                       r"episodes/ep_000001/observation.wrench/values/c.0.0 \(samples 0\.\.\d+\) "
                       r"is damaged: CRC-32C mismatch"):
        open_view(path, _cfg(), [POSE, IMG, WRENCH])


def test_garbage_commit_record_names_the_file_and_others_stay_readable(pristine, tmp_path):
    path = tmp_path / "s.zarr"
    shutil.copytree(pristine, path)
    corrupt(path, "garbage commit record")
    shutil.rmtree(path / "index")  # listing from the commit records themselves
    store = EpisodeStore.open(path)
    assert "ep_000001" in store.damaged
    assert "ep_000001/commit/zarr.json" in store.damaged["ep_000001"]
    assert "commit record is unreadable (UnicodeDecodeError" in store.damaged["ep_000001"]
    assert store.num_episodes == 1 and store.episode(0).name == "ep_000000"
    assert len(store.episode(0).values(POSE)) == 5000
    problems = store.verify()
    assert any("ep_000001/commit/zarr.json" in p for p in problems)


def test_format1_store_opens_and_verify_says_it_has_no_checksums(tmp_path, capsys):
    path = tmp_path / "v1.zarr"
    shutil.copytree(FIXTURES / "v1_store", path)
    store = EpisodeStore.open(path)
    assert store.format_version == 1 and store.num_episodes == 2
    ep = store.episode(1)
    np.testing.assert_array_equal(ep.values("observation.wrench")[:2],
                                  np.arange(2)[:, None] + np.arange(6) + 100.0)
    np.testing.assert_array_equal(ep.values("action.gripper_width"), np.zeros((11, 1), np.float32))
    assert main(["dataset", "verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "without chunk checksums and content digests (store format 1" in out
    assert "full check: OK" in out
    # recording into it works, and the new episode has checksums and digests
    store = EpisodeStore.open(path, mode="a")
    with store.begin_episode() as rec:
        rec.append("observation.wrench", 50.0, np.ones(6, np.float32))
    assert set(store.episode(2).record["digests"]) == set(store.streams)
    assert store.verify() == []


def test_committed_chunk_checksums_and_digests(pristine):
    store = EpisodeStore.open(pristine)
    ep = store.episode(0)
    for key in STREAMS:
        assert ep.record["digests"][key].startswith("sha256:")
        meta = json.loads((pristine / "episodes" / ep.name / key / "values" / "zarr.json").read_text())
        assert {"name": "crc32c"} in meta["codecs"], key
    assert ep.record["stored_bytes"] > 0
