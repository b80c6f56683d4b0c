"""`tactkit sim demos` and `tactkit sim view` end to end (short episodes)."""

import numpy as np
import pytest

from tactkit.cli.main import main


@pytest.mark.slow
def test_demos_records_canonical_streams(tmp_path):
    out = tmp_path / "wipe.zarr"
    rc = main(["sim", "demos", "--task", "wipe", "--episodes", "2", "--out", str(out),
               "--set", "episode_s=2.0", "camera_rate_hz=6"])
    assert rc == 0
    from tactkit.store import EpisodeStore

    store = EpisodeStore.open(out)
    assert store.num_episodes == 2
    ep = store.episode(1)
    assert ep.metadata["perturb"] == "before_contact" and ep.metadata["seed"] == 1
    n = {k: ep.length(k) for k in ep.keys}
    assert n["action.tcp_pose"] == 48  # 24 Hz for 2 s
    assert 199 <= n["observation.wrench"] <= 201  # 100 Hz
    assert 59 <= n["observation.tactile.pad.marker_offset"] <= 61  # 30 Hz
    assert 12 <= n["observation.images.external"] <= 13  # 6 Hz
    ts = ep.timestamps("observation.wrench")
    assert ts[0] == 0.0 and np.all(np.diff(ts) > 0)
    assert ep.values("observation.images.wrist").shape[1:] == (96, 96, 3)
    assert ep.values("observation.tactile.pad.marker_offset").shape[1:] == (63, 2)
    # refuses to overwrite, names bad perturbation modes
    assert main(["sim", "demos", "--task", "wipe", "--episodes", "1", "--out", str(out)]) == 1
    assert main(["sim", "demos", "--task", "wipe", "--episodes", "1", "--out", str(tmp_path / "x"),
                 "--perturb", "sideways"]) == 1


def test_view_writes_strip(tmp_path):
    import cv2

    out = tmp_path / "strip.png"
    assert main(["sim", "view", "--task", "wipe", "--out", str(out), "--frames", "3",
                 "--set", "episode_s=2.0", "camera_rate_hz=6"]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (3 * 192, 3 * 192, 3)  # external, wrist, tactile x 3 frames
