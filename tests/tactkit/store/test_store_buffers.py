"""diffusion_policy / UMI / RDP replay buffers: their image codecs, the key map, the dp importer."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from buffer_helpers import DP_JPEG2K, UMI_JPEGXL, camera, write_buffer

from tactkit.cli.main import main
from tactkit.store import EpisodeStore, ReplayBuffer
from tactkit.store.buffer_import import import_replay_buffer
from tactkit.store.replay_buffer import apply_key_map, mapped_keys, parse_key_map, select_key_map

DP_FIXTURE = Path(__file__).parent / "fixtures" / "dp_replay_zarr2"  # written by zarr 2.18 as diffusion_policy does


@pytest.fixture
def umi_rdp_buffer(tmp_path):
    n = 30
    t = np.arange(n) / 10.0
    arrays = {
        "camera0_rgb": camera(n),  # UMI: JpegXL
        "left_wrist_img": camera(n, seed=5),  # RDP / diffusion_policy real data: Jpeg2k
        "robot0_eef_pos": np.stack([t, 0 * t, 0.2 + t], 1).astype(np.float32),
        "robot0_eef_rot_axis_angle": np.stack([0 * t, 0.1 * t, 0 * t], 1).astype(np.float32),
        "action": np.arange(n * 10, dtype=np.float32).reshape(n, 10),
        "timestamp": 1.7e9 + t,
    }
    path = tmp_path / "buffer.zarr"
    write_buffer(path, arrays, [12, 30], {"camera0_rgb": UMI_JPEGXL, "left_wrist_img": DP_JPEG2K})
    return path, arrays


def test_jpeg2k_and_jpegxl_buffers_open(umi_rdp_buffer):
    path, arrays = umi_rdp_buffer
    assert json.loads((path / "data/left_wrist_img/.zarray").read_text())["compressor"] == DP_JPEG2K
    rb = ReplayBuffer.open(path)
    assert rb.n_episodes == 2 and rb.n_steps == 30
    assert np.array_equal(rb["camera0_rgb"][:], arrays["camera0_rgb"])  # JpegXL lossless: exact
    j2k = np.asarray(rb["left_wrist_img"][:]).astype(float)
    assert np.abs(j2k - arrays["left_wrist_img"]).mean() < 3.0  # Jpeg2k level 50: close


def test_key_map_renames_joins_slices_and_copies(umi_rdp_buffer):
    path, arrays = umi_rdp_buffer
    key_map = {"camera0_rgb": "observation.images.wrist",
               "robot0_eef_pos+robot0_eef_rot_axis_angle": "observation.state.tcp_pose,action.tcp_pose",
               "action": ["action.x[0:9]", "action.gripper_width[9:10]"]}
    rb = ReplayBuffer.open(path, key_map=key_map)
    assert rb.keys() == ["timestamp", "action.x", "action.gripper_width", "observation.images.wrist",
                         "left_wrist_img", "observation.state.tcp_pose", "action.tcp_pose"]
    pose = np.concatenate([arrays["robot0_eef_pos"], arrays["robot0_eef_rot_axis_angle"]], 1)
    assert np.array_equal(rb["observation.state.tcp_pose"], pose) and np.array_equal(rb["action.tcp_pose"], pose)
    assert np.array_equal(rb["action.gripper_width"], arrays["action"][:, 9:10])
    assert rb["action.x"].shape == (30, 9)
    assert mapped_keys(["a", "b"], {"a": "x"}) == ["x", "b"]
    assert select_key_map(key_map, ["observation.images.wrist", "timestamp"]) == (
        {"camera0_rgb": "observation.images.wrist"}, ["camera0_rgb", "timestamp"])


@pytest.mark.parametrize("key_map, error", [
    ({"img": "observation.images.wrist"}, "keys.img: no key 'img'"),
    ({"camera0_rgb": "timestamp"}, "'timestamp' is already a key"),
    ({"camera0_rgb+robot0_eef_pos": "x"}, "only 1-D keys of one dtype join"),
    ({"action": "a[20:30]"}, "selects no column"),
    ({"action": "a[0:2"}, "is not KEY or KEY"),
    ({"action": "a", "timestamp": "a"}, "target of several sources"),
])
def test_key_map_errors_name_the_problem(umi_rdp_buffer, key_map, error):
    path, _ = umi_rdp_buffer
    with pytest.raises((KeyError, ValueError), match=error):
        ReplayBuffer.open(path, key_map=key_map)


def test_key_map_on_in_memory_data():
    data = {"img": np.zeros((4, 8, 8, 3), np.uint8), "s": np.ones((4, 2))}
    out = apply_key_map(data, {"img": "observation.images.wrist"})
    assert list(out) == ["observation.images.wrist", "s"] and out["observation.images.wrist"] is data["img"]
    assert parse_key_map(None) == [] and apply_key_map(data, {}) == data


def test_import_dp_buffer_into_a_store(umi_rdp_buffer, tmp_path):
    path, arrays = umi_rdp_buffer
    store = import_replay_buffer(path, tmp_path / "s.zarr", key_map={"camera0_rgb": "observation.images.wrist"},
                                 task="wipe")
    assert store.num_episodes == 2 and store.episode(1).task == "wipe"
    assert store.streams["observation.images.wrist"].shape == (24, 32, 3)
    assert store.streams["action"].dtype == "float32" and store.streams["action"].shape == (10,)
    assert store.streams["action"].rate_hz == pytest.approx(10.0)  # from data/timestamp
    ep = store.episode(1)
    assert np.array_equal(ep.timestamps("action"), arrays["timestamp"][12:])
    assert np.array_equal(ep.values("robot0_eef_pos"), arrays["robot0_eef_pos"][12:])
    img = ep.values("observation.images.wrist").astype(float)
    mse = np.mean((img - arrays["camera0_rgb"][12:]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 25  # re-encoded as the store's JPEG (q90 alone: 27 dB on these frames)
    assert "timestamp" not in store.streams


def test_import_dp_fixture_through_the_cli(tmp_path, capsys):
    out = tmp_path / "dp.zarr"
    assert main(["dataset", "import", str(DP_FIXTURE), str(out), "--format", "dp"]) == 1
    assert "no data/timestamp: pass the control rate" in capsys.readouterr().err
    assert main(["dataset", "import", str(DP_FIXTURE), str(out), "--format", "dp", "--fps", "10",
                 "--keys", "img=observation.images.wrist", "state=observation.state.joints"]) == 0
    store = EpisodeStore.open(out)
    assert [e.length("action") for e in store.episodes()] == [10, 15]
    assert np.allclose(store.episode(1).timestamps("action"), np.arange(15) / 10)
    src = ReplayBuffer.open(DP_FIXTURE)
    assert np.array_equal(store.episode(0).values("observation.state.joints"), src["state"][:10])
    assert store.streams["observation.state.joints"].dtype == "float64"
    capsys.readouterr()
    assert main(["dataset", "verify", str(out)]) == 0  # written through the store's API: checksummed
    out = capsys.readouterr().out
    assert "2 committed episodes, full check: OK" in out and "without chunk checksums" not in out
