"""Videos that play: H.264 (PyAV) everywhere tactkit writes one, frame i at i / fps exactly."""

from __future__ import annotations

import numpy as np
import pytest

from tactkit.cli.main import main
from tactkit.video import VideoWriter, read_frames, video_info, write_video


def frames(n: int, h: int = 48, w: int = 64) -> list[np.ndarray]:
    y, x = np.mgrid[0:h, 0:w]
    return [np.stack([x * 3 + 2 * i, y * 5, np.full_like(x, 40 + 3 * i)], -1).astype(np.uint8)
            for i in range(n)]


@pytest.mark.parametrize("codec", ["h264", "av1"])
def test_frames_come_back_at_their_times(tmp_path, codec):
    src = frames(30)
    path = write_video(src, tmp_path / f"v_{codec}.mp4", 24, codec)
    info = video_info(path)
    assert info["codec"] in ("h264", "libdav1d", "av1") and info["pix_fmt"] == "yuv420p"
    assert (info["frames"], info["fps"], info["width"], info["height"]) == (30, 24.0, 64, 48)
    got = list(read_frames(path))
    assert np.allclose([t for t, _ in got], np.arange(30) / 24, atol=1e-9)
    for (_, f), s in zip(got, src):
        mse = np.mean((f.astype(float) - s) ** 2)
        assert 10 * np.log10(255**2 / mse) > 28
    part = list(read_frames(path, 0.5, 0.75))  # seeking: frames 12..17
    assert [round(t * 24) for t, _ in part] == list(range(12, 18))


def test_odd_sizes_grey_frames_and_errors(tmp_path):
    path = write_video([f[:31, :41] for f in frames(3)], tmp_path / "odd.mp4", 12.5)
    info = video_info(path)
    assert (info["height"], info["width"], info["fps"]) == (32, 42, 12.5)  # padded to even for yuv420p
    with pytest.raises(ValueError, match="even frame sizes"):
        write_video([np.zeros((31, 41, 3), np.uint8)], tmp_path / "x.mp4", 10, pad=False)
    exact = write_video([np.zeros((31, 41, 3), np.uint8)], tmp_path / "e.mp4", 10, pad=False, pix_fmt="yuv444p")
    assert (video_info(exact)["height"], video_info(exact)["width"]) == (31, 41)
    assert video_info(write_video([np.zeros((16, 16), np.uint8)] * 2, tmp_path / "g.mp4", 10))["frames"] == 2
    with pytest.raises(ValueError, match="uint8"):
        write_video([np.zeros((16, 16, 3))], tmp_path / "f.mp4", 10)
    with VideoWriter(tmp_path / "s.mp4", 10) as w:
        w.write(np.zeros((16, 16, 3), np.uint8))
        with pytest.raises(ValueError, match="earlier frames"):
            w.write(np.zeros((16, 18, 3), np.uint8))
    with pytest.raises(ValueError, match="unknown video codec"):
        VideoWriter(tmp_path / "c.mp4", 10, "mpeg4")


def test_sensors_view_writes_h264(tmp_path):
    out = tmp_path / "tactile.mp4"
    assert main(["sensors", "view", "synthetic_tactile", "magnitude_px=10", "--seconds", "1.2", "--out", str(out)]) == 0
    info = video_info(out)
    assert info["codec"] == "h264" and info["frames"] >= 5 and (info["height"], info["width"]) == (240, 320)
    last = [f for _, f in read_frames(out)][-1].astype(int)
    green = (last[..., 1] - last[..., 0] > 60) & (last[..., 1] - last[..., 2] > 60)  # RGB order: arrows stay green
    assert green.sum() > 300


def test_sim_view_writes_h264(tmp_path):
    out = tmp_path / "wipe.mp4"
    assert main(["sim", "view", "--task", "wipe", "--out", str(out), "--set", "episode_s=1.0", "camera_rate_hz=6"]) == 0
    info = video_info(out)
    assert info["codec"] == "h264" and info["fps"] == 24.0 and info["frames"] == 24
