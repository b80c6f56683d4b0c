import sys
import time

import numpy as np
import pytest

from tactkit.config import ConfigError
from tactkit.sensors.base import SENSORS
from tactkit.sensors.config import build_sensor, load_sensor_configs, sensor_config_from_dict


def _wait(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)
    return cond()


def test_synthetic_tactile_offsets_match_known_field():
    cfg = sensor_config_from_dict({"type": "synthetic_tactile", "name": "left", "fps": 30,
                                   "magnitude_px": 8.0, "period_s": 1.0, "rest_s": 0.2})
    sensor = build_sensor(cfg)
    assert list(sensor.streams()) == ["observation.tactile.left.marker_offset"]
    with sensor:
        assert sensor.wait_ready(5.0)
        size = np.array([cfg.width, cfg.height])
        errs, moving, seen = [], 0, 0
        s = sensor.wait_for_sample(timeout=2.0)
        while seen < 20:
            s = sensor.wait_for_sample(s.seq, timeout=2.0)
            assert s is not None
            seen += 1
            truth = sensor.source.displacement(s.capture_time) / size  # the field at capture time
            errs.append(np.abs(s.value - truth).max() * cfg.width)
            moving += np.abs(truth).max() * cfg.width > 1.0
            assert s.receive_time >= s.capture_time
        assert moving >= 5
        assert max(errs) < 0.3  # px, at 320x240 with noise and blur
        np.testing.assert_allclose(sensor.rest_positions() * size, sensor.source.rest, atol=0.1)
        h = sensor.health()
        assert h.healthy and 10 < h.rate_hz < 45 and h.last_error is None


def test_tactile_rezero_through_sensor():
    cfg = sensor_config_from_dict({"type": "synthetic_tactile", "fps": 30, "motion": "shear",
                                   "magnitude_px": 8.0, "period_s": 4.0, "rest_s": 0.1})
    with build_sensor(cfg) as sensor:
        assert sensor.wait_ready(5.0)
        assert _wait(lambda: np.abs(sensor.read_latest().value).max() * 320 > 3.0)
        sensor.rezero()
        s = sensor.wait_for_sample(sensor.read_latest().seq + 1, timeout=2.0)
        s = sensor.wait_for_sample(s.seq, timeout=2.0)  # one frame after the new rest
        assert np.abs(s.value).max() * 320 < 1.0  # motion over one frame, not the whole field


def test_stalled_device_is_unhealthy_within_bound_and_never_blocks():
    cfg = sensor_config_from_dict({"type": "synthetic_camera", "fps": 50, "stop_after_frames": 10,
                                   "stale_after_s": 0.1})
    with build_sensor(cfg) as cam:
        assert _wait(lambda: (s := cam.read_latest()) is not None and s.seq == 9)
        last = cam.read_latest()
        t_last = last.receive_time
        assert _wait(lambda: not cam.health().healthy, timeout=1.0)
        detected = time.monotonic() - t_last
        assert detected < 0.1 + 0.25  # the bound plus scheduling slack on a loaded machine
        t0 = time.perf_counter()
        for _ in range(100):
            assert cam.read_latest(max_age=0.05) is None
        assert time.perf_counter() - t0 < 0.1  # 100 reads, no waiting on the device
        assert cam.read_latest().seq == 9  # last value still there without an age bound
        h = cam.health()
        assert "no sample for" in h.last_error and h.rate_hz < 50


def test_driver_errors_are_reported_and_device_reopened():
    from tactkit.sensors.threaded import HealthPolicy, Reading, ThreadedSensor

    class Flaky(ThreadedSensor):  # a device that fails after 3 frames until re-opened
        opens = 0

        def streams(self):
            return {"observation.x": None}

        def _open(self):
            self.opens += 1
            self.n = 0

        def _read(self):
            time.sleep(0.005)
            self.n += 1
            if self.n > 3:
                raise OSError("usb disconnect")
            return Reading(self.clock.now(), {"observation.x": np.array([self.n])})

        def _close(self):
            pass

    s = Flaky(object(), policy=HealthPolicy(stale_after_s=0.05, retry_backoff_s=0.01, reopen_after_errors=2))
    with s:
        assert _wait(lambda: s.opens >= 3)
        h = s.health()
        assert "OSError: usb disconnect" in h.last_error
    assert s._stats.errors >= 4


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ConfigError, match=r"sensors.x.type: unknown sensor type 'gelsite'; known: .*gelsight"):
        load_sensor_configs({"sensors": {"x": {"type": "gelsite"}}})
    with pytest.raises(ConfigError, match=r"sensors.left.tracker.grid: expected 2 items, got 1"):
        load_sensor_configs({"sensors": {"left": {"type": "gelsight", "tracker": {"grid": [7]}}}})
    with pytest.raises(ConfigError, match=r"grid must be \[rows, cols\] with both >= 2"):
        load_sensor_configs({"sensors": {"left": {"type": "gelsight", "tracker": {"grid": [1, 9]}}}})
    with pytest.raises(ConfigError, match="unknown config key sensors.ft.hots"):
        load_sensor_configs({"sensors": {"ft": {"type": "ati_netft", "hots": "1.2.3.4"}}})
    with pytest.raises(ConfigError, match="missing 'type'"):
        load_sensor_configs({"sensors": {"ft": {"host": "1.2.3.4"}}})
    p = tmp_path / "s.yaml"
    p.write_text("type: synthetic_camera\nname: cam\nfps: 15\n")
    cfgs = load_sensor_configs(p, ["fps=20"])
    assert cfgs["cam"].fps == 20.0
    assert {"gelsight", "synthetic_tactile", "opencv_camera", "realsense", "ati_netft",
            "synthetic_camera", "zmq_subscriber"} <= set(SENSORS.names())


def test_wrong_grid_for_the_gel_is_reported_by_health():
    cfg = sensor_config_from_dict({"type": "synthetic_tactile", "fps": 30, "markers": [7, 9],
                                   "tracker": {"grid": [5, 5]}})
    with build_sensor(cfg) as sensor:
        assert _wait(lambda: "found" in (sensor.health().last_error or ""))
        h = sensor.health()
        assert not h.healthy and "found 63 markers" in h.last_error and "5x5 expects 25" in h.last_error
        assert sensor.read_latest() is None


def test_opencv_camera_missing_device_is_a_clear_error():
    cfg = sensor_config_from_dict({"type": "opencv_camera", "device": "GelSight Mini"})
    with pytest.raises((FileNotFoundError, ConnectionError), match="GelSight Mini"):
        build_sensor(cfg).connect()


def test_realsense_driver_against_fake_sdk(monkeypatch):
    import sensors_fake_realsense as fake

    monkeypatch.setitem(sys.modules, "pyrealsense2", fake)
    fake.STATE.skip_every = 4
    cfg = sensor_config_from_dict({"type": "realsense", "name": "ext", "serial": "123", "width": 64,
                                   "height": 48, "fps": 60, "depth": True, "exposure": 300})
    with build_sensor(cfg) as cam:
        assert set(cam.streams()) == {"observation.images.ext", "observation.images.ext_depth"}
        s = cam.wait_for_sample(timeout=2.0)
        s = cam.wait_for_sample(s.seq + 8, timeout=2.0)
        both = cam.read_latest_all()
        assert both["observation.images.ext"].value.shape == (48, 64, 3)
        assert both["observation.images.ext_depth"].value.dtype == np.uint16
        # global_time ms stamps mapped onto the monotonic clock: ~5 ms before receipt
        lag = s.receive_time - s.capture_time
        assert 0.003 < lag < 0.05
        assert cam.health().drops >= 2  # every 4th frame number skipped by the device
    assert fake.STATE.started.device == "123"
    assert ("depth", 64, 48, "z16", 60) in fake.STATE.started.streams
    assert fake.STATE.options == {"enable_auto_exposure": 0, "exposure": 300.0}
    assert fake.STATE.stopped == 1


def test_realsense_without_sdk_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pyrealsense2", None)
    cam = build_sensor(sensor_config_from_dict({"type": "realsense"}))
    with pytest.raises(ImportError, match=r"tactkit\[realsense\]"):
        cam.connect()


def test_gelsight_pipeline_on_a_recorded_video(tmp_path):
    """gelsight type end to end (OpenCV capture, crop, resize, tracker) on a video file."""
    import cv2

    from tactkit.sensors.synthetic import MarkerImageSpec, SyntheticMarkerSequence

    spec = MarkerImageSpec(400, 300, 5, 5, margin=0.2, marker_radius=5.0)
    seq = SyntheticMarkerSequence(spec, "shear", 6.0, 40, blur_sigma=1.0, noise_sigma=1.0, gradient=0.2)
    path = tmp_path / "gel.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (400, 300))
    for _ in range(3):
        writer.write(seq.frame(0).image)  # rest frames
    for t in range(40):
        writer.write(seq.frame(t).image)
    writer.release()
    cfg = sensor_config_from_dict({"type": "gelsight", "name": "right", "device": str(path),
                                   "width": 400, "height": 300, "crop_fraction": 0.1,
                                   "output_size": [160, 120], "publish_image": True,
                                   "tracker": {"grid": [5, 5], "rest_frames": 3}})
    sensor = build_sensor(cfg)
    got = []
    sensor.add_listener(lambda s: got.append(s))
    with sensor:
        assert _wait(lambda: len(got) >= 20)
    first = got[0]
    img = first["observation.tactile.right.image"].value
    assert img.shape == (120, 160, 3)
    offsets = np.stack([g["observation.tactile.right.marker_offset"].value for g in got])
    # peak shear 6 px; cropped to 320 px wide, resized to 160: 3 px / 160 = 0.01875 of the width
    peak = np.abs(offsets[..., 0]).max()
    assert 0.015 < peak < 0.022
