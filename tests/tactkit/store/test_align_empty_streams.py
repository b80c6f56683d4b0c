"""Collect -> align never yields an empty dataset in silence (issue 19, item 1).

A one-handed teleop recording leaves the other hand's headset streams empty in every episode;
`tactkit dataset align` used to skip every episode, write a view of 0 episodes and exit 0."""

from __future__ import annotations

import numpy as np
import pytest

from tactkit.cli.main import main
from tactkit.store import EpisodeStore, ReplayBuffer, ReplayBufferWriter, StreamSpec, align

STREAMS = {
    "observation.state.tcp_pose": StreamSpec("float32", (7,), 50.0, "m,quat"),
    "observation.state.gripper_width": StreamSpec("float32", (1,), 50.0, "m"),
    "observation.tactile.pad.marker_offset": StreamSpec("float32", (4, 2), 30.0, "normalised"),
    "action.tcp_pose": StreamSpec("float32", (7,), 20.0, "m,quat"),
    "teleop.headset.right.wrist_pose": StreamSpec("float32", (7,), 60.0, "m,quat"),
    "teleop.headset.left.wrist_pose": StreamSpec("float32", (7,), 60.0, "m,quat"),  # never used
}


def one_handed_store(path, episodes=3, gap_in=None):
    """Episodes with every stream but the left hand's; ``gap_in``: an episode whose tactile
    stream is empty too."""
    rng = np.random.default_rng(0)
    store = EpisodeStore.create(path, STREAMS)
    for e in range(episodes):
        with store.begin_episode(task="wipe", metadata={"sim_score": 0.5 + 0.1 * e}) as rec:
            for key, spec in STREAMS.items():
                if "left" in key or (e == gap_in and "tactile" in key):
                    continue
                n = int(2.0 * spec.rate_hz)
                ts = 10.0 * e + np.linspace(0.0, 2.0, n)
                vals = rng.normal(size=(n, *spec.shape)).astype(np.float32)
                if key.endswith("pose"):
                    vals[:, 3:] = [1.0, 0.0, 0.0, 0.0]
                rec.append_many(key, ts, vals)
    return store


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    """A one-handed store (read only by the tests)."""
    path = tmp_path_factory.mktemp("one_handed") / "s.zarr"
    one_handed_store(path)
    return path


def test_stream_empty_in_every_episode_is_left_out_with_a_note(src):
    rb = align(EpisodeStore.open(src), fps=24.0)
    assert rb.n_episodes == 3 and rb.n_steps >= 3 * 45
    assert "teleop.headset.left.wrist_pose" not in rb.keys()
    assert "teleop.headset.right.wrist_pose" in rb.keys()
    assert rb.attrs["dropped_keys"] == {"teleop.headset.left.wrist_pose": "no samples in any episode"}


def test_stream_empty_in_some_episodes_skips_them_and_says_why(tmp_path):
    store = one_handed_store(tmp_path / "s.zarr", gap_in=1)
    rb = align(store, fps=24.0)
    assert rb.n_episodes == 2
    assert rb.attrs["skipped_episodes"] == ["ep_000001"]
    assert "observation.tactile.pad.marker_offset" in rb.attrs["skip_reasons"]["ep_000001"]


def test_cli_align_one_handed_recording(src, tmp_path, capsys):
    assert main(["dataset", "align", str(src), str(tmp_path / "v.zarr"), "--fps", "24"]) == 0
    out = capsys.readouterr().out
    assert "3 episodes" in out and "left out 1 streams" in out and "teleop.headset.left.wrist_pose" in out
    assert ReplayBuffer.open(tmp_path / "v.zarr").n_episodes == 3
    assert main(["dataset", "stats", str(tmp_path / "v.zarr")]) == 0
    assert "observation.state.tcp_pose" in capsys.readouterr().out


def test_keys_accept_the_policy_configs_glob_patterns(src, tmp_path, capsys):
    rb = align(EpisodeStore.open(src), fps=24.0,
               keys=["observation.tactile.*.marker_offset", "observation.state.*", "action.tcp_pose"])
    assert rb.keys() == ["observation.tactile.pad.marker_offset", "observation.state.gripper_width",
                         "observation.state.tcp_pose", "action.tcp_pose", "timestamp"]
    assert main(["dataset", "align", str(src), str(tmp_path / "v.zarr"), "--fps", "24",
                 "--keys", "observation.tactile.*.marker_offset", "action.*"]) == 0
    assert ReplayBuffer.open(tmp_path / "v.zarr").keys() == [
        "observation.tactile.pad.marker_offset", "action.tcp_pose", "timestamp"]
    assert main(["dataset", "align", str(src), str(tmp_path / "w.zarr"), "--fps", "24",
                 "--keys", "observation.images.*"]) == 1
    assert "no stream matches" in capsys.readouterr().err


def test_no_data_exits_non_zero_says_why_and_writes_nothing(src, tmp_path, capsys):
    dst = tmp_path / "v.zarr"
    rc = main(["dataset", "align", str(src), str(dst), "--fps", "24",
               "--keys", "teleop.headset.left.*", "action.tcp_pose"])
    err = capsys.readouterr().err
    assert rc == 1
    assert "no episode could be aligned" in err and "no samples of teleop.headset.left.wrist_pose" in err
    assert not dst.exists()
    with pytest.raises(ValueError, match="no episode could be aligned"):
        align(EpisodeStore.open(src), fps=24.0, keys=["teleop.headset.left.wrist_pose"])


def test_stats_of_an_empty_view_or_an_episode_store_exit_non_zero(src, tmp_path, capsys):
    w = ReplayBufferWriter(tmp_path / "empty.zarr")
    w.close()
    assert main(["dataset", "stats", str(tmp_path / "empty.zarr")]) == 1
    assert "holds no steps" in capsys.readouterr().err
    assert main(["dataset", "stats", str(src)]) == 1
    assert "dataset align" in capsys.readouterr().err


def test_existing_output_names_the_flag(src, tmp_path, capsys):
    args = ["dataset", "align", str(src), str(tmp_path / "v.zarr"), "--fps", "24"]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "--overwrite" in err and "overwrite=True" not in err
    assert main([*args, "--overwrite"]) == 0
