import cv2

from tactkit.cli.main import main


def test_list_shows_types_and_bundled_configs(capsys):
    assert main(["sensors", "list"]) == 0
    out = capsys.readouterr().out
    assert "ati_netft" in out and "synthetic_tactile" in out and "synthetic_rig" in out


def test_check_synthetic_rig_passes(capsys):
    assert main(["sensors", "check", "synthetic_rig", "--seconds", "1.5", "--min-rate", "0.2"]) == 0
    out = capsys.readouterr().out
    assert "all 3 sensors ok" in out
    assert "observation.tactile.left.marker_offset" in out and "63 markers" in out


def test_check_fails_for_stalled_sensor_and_wrong_grid(capsys, tmp_path):
    cfg = tmp_path / "rig.yaml"
    cfg.write_text(
        "sensors:\n"
        "  cam: {type: synthetic_camera, fps: 30, stop_after_frames: 5, stale_after_s: 0.2}\n"
        "  pad: {type: synthetic_tactile, markers: [7, 9], tracker: {grid: [5, 5]}}\n"
        "  ok: {type: synthetic_camera, fps: 30}\n"
    )
    assert main(["sensors", "check", str(cfg), "--seconds", "1"]) == 1
    captured = capsys.readouterr()
    assert "2 of 3 sensors failed: cam, pad" in captured.err
    assert "5x5 expects 25" in captured.out and "no sample for" in captured.out


def test_bad_config_is_an_error_not_a_traceback(capsys, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("sensors:\n  pad: {type: gelsite}\n")
    assert main(["sensors", "check", str(cfg)]) == 1
    assert "sensors.pad.type: unknown sensor type 'gelsite'" in capsys.readouterr().err


def test_view_writes_png_with_arrows(tmp_path, capsys):
    out = tmp_path / "view.png"
    assert main(["sensors", "view", "synthetic_tactile", "magnitude_px=10", "--seconds", "1.2",
                 "--out", str(out)]) == 0
    img = cv2.imread(str(out))
    assert img.shape == (240, 320, 3)
    green = (img[..., 1] > 180) & (img[..., 0] < 80) & (img[..., 2] < 80)
    assert green.sum() > 200  # arrows drawn


def test_record_then_fit_pca(tmp_path, capsys):
    from tactkit.sensors.embedding import TactilePCA
    from tactkit.store import EpisodeStore

    store = tmp_path / "pads.zarr"
    assert main(["sensors", "record", "synthetic_tactile", "period_s=1.0", "--out", str(store),
                 "--seconds", "1.5"]) == 0
    assert "episode 0 committed" in capsys.readouterr().out
    ep = EpisodeStore.open(store).episode(0)
    key = "observation.tactile.left.marker_offset"
    ts, vals = ep.timestamps(key), ep.values(key)
    assert len(ts) >= 15 and vals.shape[1:] == (63, 2) and (vals.std(axis=0) > 0).any()
    assert (abs((ts[1:] - ts[:-1]) - 1 / 30) < 0.02).mean() > 0.5  # capture times at the frame rate
    out = tmp_path / "pca.safetensors"
    assert main(["tactile", "fit-pca", str(store), "--components", "3", "--out", str(out)]) == 0
    pca = TactilePCA.load(out)
    # the synthetic pad moves one fixed field up and down: one component carries it
    assert pca.explained_variance_ratio[0] > 0.95
