"""End to end in simulation: `tactkit headset sim` -> bridge -> simulated wipe task -> episode store,
accepted by `tactkit dataset verify`. Two processes, real sockets on 127.0.0.1."""

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from tactkit.cli.main import main as tactkit_main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_headset_sim_records_verified_episodes(tmp_path):
    store = tmp_path / "teleop.zarr"
    up, fb = f"tcp://127.0.0.1:{_free_port()}", f"tcp://127.0.0.1:{_free_port()}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    bridge = subprocess.Popen(
        [sys.executable, "-m", "tactkit.cli.main", "teleop", "--robot", "sim:wipe", "--record", str(store),
         "--upstream", up, "--feedback", fb, "--exit-after-episodes", "2", "--no-keyboard", "--duration", "150"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        op = subprocess.run(
            [sys.executable, "-m", "tactkit.cli.main", "headset", "sim", "--episodes", "2", "--wipe-s", "2.0",
             "--upstream", up, "--feedback", fb],
            capture_output=True, text=True, timeout=150, env=env)
        if op.returncode != 0:
            bridge.kill()
        out, _ = bridge.communicate(timeout=60)
        assert op.returncode == 0, op.stdout + op.stderr + "\n--- bridge ---\n" + out[-3000:]
    finally:
        if bridge.poll() is None:
            bridge.kill()
    assert bridge.returncode == 0, out
    assert "2 episodes in" in out and "rejected 0" in out
    assert op.stdout.count("contact True") == 2, op.stdout

    assert tactkit_main(["dataset", "verify", str(store)]) == 0
    from tactkit.store import EpisodeStore

    s = EpisodeStore.open(store)
    assert s.num_episodes == 2
    for i in range(2):
        ep = s.episode(i)
        md = ep.metadata
        assert md["task"] == "wipe" and md["robot"] == "sim:wipe" and "sim_score" in md
        assert md["operator_note"].startswith("sim operator") and "felt force" in md["note"]
        for key in ("action.tcp_pose", "teleop.headset.right.wrist_pose", "observation.state.tcp_pose",
                    "observation.tactile.pad.marker_offset", "observation.wrench", "observation.images.wrist"):
            ts = ep.timestamps(key)
            assert len(ts) > 5, key
            assert np.all(np.diff(ts) >= 0), key
        # the operator pressed on the board: contact force and a deformed marker field were recorded
        assert np.abs(ep.values("observation.wrench")[:, 2]).max() > 2.0
        assert np.abs(ep.values("observation.tactile.pad.marker_offset")).max() > 1e-3
        # the commanded targets went down to the board and along +x
        act = ep.values("action.tcp_pose")
        assert act[:, 0].max() - act[:, 0].min() > 0.05
