import time

import numpy as np
import pytest

from tactkit.sensors.base import SensorSample
from tactkit.sensors.config import build_sensor, sensor_config_from_dict
from tactkit.sensors.transport import (
    SamplePublisher,
    SampleSubscriber,
    decode_sample,
    encode_sample,
    publish_sensor,
)


def _sample(key, seq, value):
    return SensorSample(key, value, capture_time=1.0 + seq / 1000, receive_time=1.5 + seq / 1000, seq=seq)


def test_wire_round_trip_keeps_dtype_shape_and_times():
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    s, t_pub = decode_sample(encode_sample(_sample("observation.images.wrist", 7, img), 99.0))
    assert s.key == "observation.images.wrist" and s.seq == 7 and t_pub == 99.0
    assert (s.capture_time, s.receive_time) == (1.007, 1.507)
    np.testing.assert_array_equal(s.value, img)
    w = np.arange(6, dtype=np.float32)
    s, _ = decode_sample(encode_sample(_sample("observation.wrench", 1, w), 0.0))
    assert s.value.dtype == np.float32 and s.value.shape == (6,)


def _connect(pub, sub, key):
    # PUB/SUB joins asynchronously: publish until the subscriber sees something
    for i in range(200):
        pub.publish(_sample(key, i, np.zeros(3, np.float32)))
        if sub.poll(0.01):
            return
    raise AssertionError("subscriber never connected")


@pytest.mark.parametrize("conflate", [False, True])
def test_latest_wins_no_backlog(conflate):
    key = "observation.wrench"
    pub = SamplePublisher("tcp://127.0.0.1:*", conflate=conflate)
    sub = SampleSubscriber(pub.endpoint, [key], conflate=conflate)
    try:
        _connect(pub, sub, key)
        for i in range(1000, 1500):
            pub.publish(_sample(key, i, np.full(6, i, np.float32)))
            if not conflate:
                time.sleep(0.0005)  # a 2 kHz sensor; conflating sockets take any burst
        s = sub.wait_for(key, 1498, timeout=2.0)
        assert s is not None and s.seq == 1499 and s.value[0] == 1499.0  # the newest arrived
        time.sleep(0.1)
        assert sub.read_latest(key).seq == 1499  # and nothing older came after it
        assert sub.read_latest(key, max_age=0.1) is None  # captured at t=2.5 s: long ago
    finally:
        sub.close()
        pub.close()


def test_subscribe_to_one_key_only_and_conflate_needs_one_key():
    pub = SamplePublisher("tcp://127.0.0.1:*")
    sub = SampleSubscriber(pub.endpoint, ["observation.a"])
    try:
        _connect(pub, sub, "observation.a")
        pub.publish(_sample("observation.ab", 5000, np.zeros(1)))  # prefix of a different key
        pub.publish(_sample("observation.a", 5001, np.zeros(1)))
        assert sub.wait_for("observation.a", 5000, timeout=2.0) is not None
        time.sleep(0.05)
        assert set(sub.latest) == {"observation.a"} and sub.latest["observation.a"].seq == 5001
    finally:
        sub.close()
        pub.close()
    with pytest.raises(ValueError, match="exactly one key"):
        SampleSubscriber("tcp://127.0.0.1:1", None, conflate=True)


def test_remote_sensor_through_transport_has_same_interface_and_health():
    cam_cfg = sensor_config_from_dict({"type": "synthetic_camera", "name": "wrist", "fps": 40,
                                       "width": 64, "height": 48, "stop_after_frames": 30})
    cam = build_sensor(cam_cfg)
    pub = publish_sensor(cam)
    remote = build_sensor(sensor_config_from_dict({
        "type": "zmq_subscriber", "endpoint": pub.endpoint, "key": "observation.images.wrist",
        "shape": [48, 64, 3], "dtype": "uint8", "rate_hz": 40, "stale_after_s": 0.15}))
    try:
        with remote, cam:
            s = remote.wait_for_sample(timeout=3.0)
            assert s is not None and s.value.shape == (48, 64, 3)
            s2 = remote.wait_for_sample(s.seq, timeout=1.0)
            assert s2.seq > s.seq
            local = cam.read_latest()
            assert abs(s2.capture_time - local.capture_time) < 1.0  # same clock domain
            h = remote.health()
            assert h.healthy and h.rate_hz > 10
            time.sleep(1.0)  # the camera stalls after 30 frames (0.75 s)
            h = remote.health()
            assert not h.healthy and remote.read_latest(max_age=0.1) is None
    finally:
        pub.close()
