"""`tactkit dataset ...` and `tactkit demo` end to end (in-process)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tactkit.cli.main import main
from tactkit.store import EpisodeStore, ReplayBuffer, align, cached_view
from tactkit.store.synthetic import rig_streams


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "store.zarr"
    assert main(["demo", "--out", str(path), "--seconds", "1.0"]) == 0
    return path


def test_demo_records_rig_episode(demo_store, capsys):
    store = EpisodeStore.open(demo_store)
    assert store.num_episodes == 1 and store.streams == rig_streams()
    ep = store.episode(0)
    assert ep.length("observation.images.wrist") == 30 and ep.length("observation.wrench") == 500
    assert ep.length("observation.tactile.left.marker_offset") == 60


def test_info_text_and_json(demo_store, capsys):
    assert main(["dataset", "info", str(demo_store)]) == 0
    out = capsys.readouterr().out
    assert "tactkit.episode_store v2" in out and "observation.images.wrist" in out and "jpeg q90" in out
    assert main(["dataset", "info", str(demo_store), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["episodes"] == 1 and info["streams"]["observation.wrench"]["frames"] == 500
    assert info["streams"]["observation.wrench"]["rate_hz"] == 500.0 and info["size_bytes"] > 0


def test_align_v2_then_info_stats(demo_store, tmp_path, capsys):
    dst = tmp_path / "view.zarr"
    assert main(["dataset", "align", str(demo_store), str(dst), "--fps", "10", "--zarr-format", "2",
                 "--keys", "observation.wrench", "observation.state.tcp_pose", "action.tcp_pose"]) == 0
    assert (dst / ".zgroup").exists()
    rb = ReplayBuffer.open(dst)
    assert rb.keys() == ["observation.wrench", "observation.state.tcp_pose", "action.tcp_pose", "timestamp"]
    assert rb.n_steps == 10 and rb.episode_ends.tolist() == [10]
    capsys.readouterr()
    assert main(["dataset", "info", str(dst), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "replay_buffer" and info["zarr_format"] == 2 and info["steps"] == 10
    assert main(["dataset", "stats", str(dst), "--json", "--keys", "observation.wrench"]) == 0
    stats = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(stats["observation.wrench"]["mean"], rb["observation.wrench"][:].mean(0), rtol=1e-6)
    # existing destination is refused without --overwrite
    assert main(["dataset", "align", str(demo_store), str(dst), "--fps", "10"]) == 1
    assert "already exists" in capsys.readouterr().err


def test_verify_and_recover(tmp_path, capsys):
    path = tmp_path / "s.zarr"
    store = EpisodeStore.create(path, {"a": rig_streams()["observation.wrench"]})
    rec = store.begin_episode()
    rec.append_many("a", np.arange(5) * 0.002, np.zeros((5, 6), np.float32))
    rec.abandon()  # as if the recorder died
    assert main(["dataset", "verify", str(path)]) == 1
    assert "interrupted" in capsys.readouterr().out
    assert main(["dataset", "recover", str(path)]) == 0
    assert "ep_000000: recovered [a: 5]" in capsys.readouterr().out
    assert main(["dataset", "verify", str(path)]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["dataset", "recover", str(path), "--discard"]) == 0
    assert "no interrupted episodes" in capsys.readouterr().out


def test_bad_paths_give_clean_errors(tmp_path, capsys):
    assert main(["dataset", "info", str(tmp_path / "missing")]) == 1
    assert "error:" in capsys.readouterr().err
    (tmp_path / "junk").mkdir()
    assert main(["dataset", "verify", str(tmp_path / "junk")]) == 1
    assert "not a tactkit episode store" in capsys.readouterr().err


def test_align_with_workers_and_the_view_cache_commands(demo_store, tmp_path, capsys, monkeypatch):
    dst = tmp_path / "view.zarr"
    keys = ["observation.wrench", "observation.images.wrist"]
    assert main(["dataset", "align", str(demo_store), str(dst), "--fps", "10", "--workers", "2",
                 "--keys", *keys]) == 0
    np.testing.assert_array_equal(ReplayBuffer.open(dst)["observation.images.wrist"][:],
                                  align(EpisodeStore.open(demo_store), 10.0, keys=keys)["observation.images.wrist"])
    assert main(["dataset", "align", str(demo_store), str(tmp_path / "x"), "--fps", "10", "--workers", "0"]) == 1
    assert "--workers must be >= 1" in capsys.readouterr().err
    monkeypatch.setenv("TACTKIT_CACHE_DIR", str(tmp_path / "cache"))
    cached_view(EpisodeStore.open(demo_store), 10.0, keys)
    capsys.readouterr()
    assert main(["dataset", "cache"]) == 0
    out = capsys.readouterr().out
    assert f"cached training views in {tmp_path / 'cache' / 'views'}: 1" in out
    assert "1 episodes, 10 steps at 10 Hz" in out and str(demo_store) in out
    assert main(["dataset", "cache", "--clear"]) == 0
    assert "freed" in capsys.readouterr().out
    assert main(["dataset", "cache", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["views"] == []
