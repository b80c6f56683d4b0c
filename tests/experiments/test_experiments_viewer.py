"""Seeing the data: `tactkit dataset view` (rerun .rrd, MP4) and evaluation episodes logged to
rerun and to an annotated H.264 video."""

from __future__ import annotations

import collections

import numpy as np
import pytest

from tactkit.cli.main import main
from tactkit.policies.interface import Plan, Policy
from tactkit.policies.synthetic import make_synthetic_store
from tactkit.store import EpisodeStore
from tactkit.video import read_frames, video_info


def rrd_rows(path) -> tuple[dict[str, int], dict[str, list]]:
    """Rows per entity (temporal data) and the chunks by entity, read back with rerun's reader."""
    from rerun.chunk import RrdReader

    rows: dict[str, int] = collections.Counter()
    chunks: dict[str, list] = collections.defaultdict(list)
    for c in RrdReader(str(path)).stream().to_chunks():
        chunks[c.entity_path].append(c)
        if not c.is_static:
            rows[c.entity_path] += c.num_rows
    return rows, chunks


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("view") / "store.zarr"
    make_synthetic_store(path, episodes=2, seconds=1.0, image_hw=(32, 32))
    return EpisodeStore.open(path)


def test_dataset_view_writes_every_stream_of_an_episode(store, tmp_path, capsys):
    out = tmp_path / "ep1.rrd"
    assert main(["dataset", "view", store.path, "--episode", "1", "--save", str(out)]) == 0
    rows, chunks = rrd_rows(out)
    ep = store.episode(1)
    for key in store.streams:
        entity = "/episode_001/" + key.replace(".", "/")
        assert rows[entity] == ep.length(key), key  # every sample of every stream
    assert not any(e.startswith("/episode_000") for e in rows)  # only the episode asked for
    assert rows["/world/episode_001/observation/state/tcp_pose"] == ep.length("observation.state.tcp_pose")
    assert any(c.is_static for c in chunks["/episode_001/info"])  # the metadata document

    def column(entity: str, suffix: str):
        batch = next(c for c in chunks[entity] if not c.is_static).to_record_batch()
        return batch.column(next(n for n in batch.schema.names if n.endswith(suffix)))

    times = column("/episode_001/observation/wrench", "capture_time").to_numpy().astype("int64") / 1e9
    ts = ep.timestamps("observation.wrench")
    t0 = min(ep.timestamps(k)[0] for k in store.streams)
    assert np.allclose(times, ts - t0, atol=1e-6)  # the capture-time timeline, from the episode's start
    wrench = np.stack(column("/episode_001/observation/wrench", "Scalars:scalars").to_pylist())
    assert np.allclose(wrench, ep.values("observation.wrench"), atol=1e-6)
    arrows = column("/episode_001/observation/tactile/left/marker_offset", "vectors").to_pylist()
    assert len(arrows[0]) == 63  # one arrow per marker
    blobs = column("/episode_001/observation/images/wrist", "blob").to_pylist()
    assert blobs[0][0][:2] == [0xFF, 0xD8]  # JPEG frames


def test_dataset_view_mp4_fallback(store, tmp_path):
    out = tmp_path / "ep0.mp4"
    assert main(["dataset", "view", store.path, "--episode", "0", "--mp4", str(out)]) == 0
    info = video_info(out)
    ep = store.episode(0)
    span = max(ep.timestamps(k)[-1] for k in store.streams) - min(ep.timestamps(k)[0] for k in store.streams)
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p" and info["fps"] == 30.0
    assert info["frames"] == int(np.floor(span * 30)) + 1
    assert info["height"] >= 240 and info["width"] >= 480  # camera + tactile panels, plots below
    frames = [f for _, f in read_frames(out)]
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 1  # it moves
    assert main(["dataset", "view", store.path, "--save", str(tmp_path / "a.rrd"), "--mp4", str(out)]) == 1


class PressDown(Policy):
    """Plans a slow descent; reads the tactile pad as its fast signal."""

    obs_keys = ("observation.state.tcp_pose",)
    n_obs_steps = 2
    action_keys = ("action.tcp_pose", "action.gripper_width")
    fast_keys = ("observation.tactile.pad.marker_offset",)
    dt = 1 / 24

    def plan(self, w):
        p = w["observation.state.tcp_pose"][-1].astype(float)
        a = np.tile(np.r_[p, 0.0], (16, 1))
        a[:, 2] -= np.linspace(0, 0.02, 16)
        return Plan(float(w["timestamp"][-1]) + self.dt, self.dt, a)

    def step(self, plan, t, fast=None):
        return plan.actions[plan.index_at(t)].copy()


@pytest.mark.slow
def test_evaluation_episode_logged_to_rerun_and_video(tmp_path):
    from tactkit.experiments.evaluation import EvalSettings, run_sim_episode
    from tactkit.experiments.viewer import RerunEvalLog
    from tactkit.real.setup import load_robot_setup

    controller = load_robot_setup("sim", ["inference_latency=0.1"]).controller
    plain = run_sim_episode("wipe", PressDown(), 3, "after_contact", EvalSettings(controller, {"episode_s": 1.5}))
    log = RerunEvalLog(tmp_path / "eval.rrd", label="press")
    settings = EvalSettings(controller, {"episode_s": 1.5}, video_dir=tmp_path / "videos", observers=[log])
    seen = run_sim_episode("wipe", PressDown(), 3, "after_contact", settings)
    log.close()
    assert (seen.score, seen.plans, seen.fast_steps) == (plain.score, plain.plans, plain.fast_steps)  # looking changes nothing

    rows, chunks = rrd_rows(tmp_path / "eval.rrd")
    root = "/eval/press/wipe_after_contact_seed3"
    ticks = rows[f"{root}/tcp_xyz/measured"]
    assert ticks == rows[f"{root}/tcp_xyz/commanded"] == rows[f"{root}/wrench"] == int(round(1.5 * controller.robot_rate_hz))
    assert len([e for e in rows if e.startswith(f"{root}/plan_z/")]) == seen.plans  # every plan as it arrived
    assert rows[f"/world{root}/plan"] == seen.plans
    assert rows[f"{root}/observation/images/external"] >= 12 and rows[f"{root}/observation/tactile/pad/marker_offset"] >= 30
    assert rows[f"{root}/surface_z"] == ticks
    doc = chunks[f"{root}/result"][0].to_record_batch().to_pylist()[0]
    assert f"{seen.score:.3f}" in str(doc)

    info = video_info(seen.video)
    assert info["codec"] == "h264" and info["height"] >= 288 and info["frames"] >= 12
    _, frame = next(iter(read_frames(seen.video)))
    header = frame[:48].astype(int)
    assert (header > 200).sum() > 500  # overlaid text on the dark header band
