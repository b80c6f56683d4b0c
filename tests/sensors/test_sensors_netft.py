import time

import numpy as np
import pytest
from sensors_fake_rdt import FakeNetFT

from tactkit.sensors.netft import NetFTConfig, NetFTSensor, parse_records, rdt_request

CPF, CPT = 1_000_000.0, 1_000_000.0


def counts_for(seq):
    # Fx encodes the sequence number; constant offset on the others (what a tare removes)
    return (seq * 1000, 2_000_000, -3_000_000, 10_000, 20_000, 30_000)


def _wait_for(cond, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.005)


def _cfg(port, **kw):
    return NetFTConfig(host="127.0.0.1", port=port, counts_per_force=CPF, counts_per_torque=CPT, **kw)


def test_wire_format_matches_rdt():
    assert rdt_request(2, 0) == bytes.fromhex("1234000200000000")
    assert rdt_request(0x42) == bytes.fromhex("1234004200000000")
    rec = parse_records(bytes.fromhex("00000007" "00000009" "00000000") + (-5).to_bytes(4, "big", signed=True) * 6)
    assert rec == [(7, 9, 0, (-5,) * 6)]
    with pytest.raises(ValueError, match="multiple of 36"):
        parse_records(b"\x00" * 35)


def test_streams_scaled_wrench_and_host_tare():
    with FakeNetFT(counts_for, rate_hz=500) as fake:
        sensor = NetFTSensor(_cfg(fake.port, bias="none"))
        with sensor:
            s = sensor.wait_for_sample(timeout=2.0)
            assert s is not None and s.key == "observation.wrench" and s.value.dtype == np.float32
            seq = sensor.last_rdt_sequence
            np.testing.assert_allclose(s.value[1:], [2.0, -3.0, 0.01, 0.02, 0.03], rtol=1e-6)
            assert abs(s.value[0] - seq * 1e-3) < 0.05
            sensor.tare(20)
            s = sensor.wait_for_sample(sensor.read_latest().seq + 1, timeout=2.0)
            np.testing.assert_allclose(s.value[1:], 0.0, atol=1e-6)
            time.sleep(0.2)
            h = sensor.health()
            assert h.healthy and 300 < h.rate_hz < 700 and h.drops == 0
        _wait_for(lambda: fake.commands[-1] == 0x0000)
        assert fake.commands[0] == 0x0002 and fake.commands[-1] == 0x0000


def test_device_bias_command_is_sent():
    with FakeNetFT(counts_for, rate_hz=500) as fake:
        with NetFTSensor(_cfg(fake.port, bias="device")) as sensor:
            s = sensor.wait_for_sample(timeout=2.0)
            s = sensor.wait_for_sample(s.seq + 3, timeout=2.0)
            np.testing.assert_allclose(s.value[1:], 0.0, atol=1e-6)  # the fake biased itself
        assert fake.commands[:2] == [0x0042, 0x0002]


def test_lost_and_reordered_packets():
    # 1..5 in order, 7 before 6 (6 arrives late: stale), 8, 11 (9 and 10 lost), 12
    order = [1, 2, 3, 4, 5, 7, 6, 8, 11, 12]
    with FakeNetFT(counts_for, rate_hz=200, order=order) as fake:
        sensor = NetFTSensor(_cfg(fake.port, bias="none"))
        seen = []
        sensor.add_listener(lambda samples: seen.append(round(float(samples["observation.wrench"].value[0]) * 1000)))
        with sensor:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline and (not seen or seen[-1] != 12):
                time.sleep(0.01)
            h = sensor.health()
        assert seen == [1, 2, 3, 4, 5, 7, 8, 11, 12]  # monotonic: stale 6 discarded
        assert sensor.stale_packets == 1
        assert h.drops == 3  # 6 (missing when 7 came), 9, 10
        assert fake.sent == len(order)


def test_silent_sensor_is_unhealthy_quickly_and_never_blocks():
    with FakeNetFT(counts_for, rate_hz=500) as fake:
        with NetFTSensor(_cfg(fake.port, bias="none", stale_after_s=0.1)) as sensor:
            assert sensor.wait_for_sample(timeout=2.0) is not None
            assert sensor.health().healthy
            fake.pause()
            t0 = time.monotonic()
            while sensor.health().healthy and time.monotonic() - t0 < 2:
                time.sleep(0.005)
            became_unhealthy = time.monotonic() - t0
            assert not sensor.health().healthy
            assert became_unhealthy < 0.1 + 0.2  # stale bound + generous scheduling slack
            t1 = time.perf_counter()
            assert sensor.read_latest(max_age=0.05) is None  # too old: None, immediately
            assert sensor.read_latest() is not None  # still the last value when no bound
            assert time.perf_counter() - t1 < 0.05
            assert "no sample for" in sensor.health().last_error
            fake.pause(False)
            s = sensor.wait_for_sample(sensor.read_latest().seq, timeout=2.0)
            assert s is not None and sensor.health().healthy


def test_host_tare_times_out_without_sensor():
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))  # a port that never answers
        port = s.getsockname()[1]
        sensor = NetFTSensor(_cfg(port, bias="host", tare_samples=5))
        with pytest.raises(TimeoutError, match="0 of 5 samples"):
            sensor.connect()
        assert not sensor.health().healthy


def test_sequence_wraparound_is_not_a_drop():
    top = (1 << 32) - 2
    order = [top, top + 1, 0, 1, 3]  # wraps at 2**32; 2 lost
    with FakeNetFT(lambda s: (s % 1000, 0, 0, 0, 0, 0), rate_hz=200, order=[s % (1 << 32) for s in order]) as fake:
        sensor = NetFTSensor(_cfg(fake.port, bias="none"))
        seen = []
        sensor.add_listener(lambda samples: seen.append(sensor.last_rdt_sequence))
        with sensor:
            _wait_for(lambda: len(seen) == 5)
            h = sensor.health()
    assert seen == [top, top + 1, 0, 1, 3]
    assert h.drops == 1 and sensor.stale_packets == 0


@pytest.mark.slow
def test_control_cli_builds_an_ati_netft_sensor_from_its_config(tmp_path, capsys):
    """``tactkit control --sensor <ati_netft yaml>`` builds the Net F/T driver through the sensor
    registry (the CLI once imported a module that does not exist and never the Net F/T one)."""
    import torch
    import yaml

    from tactkit.cli.main import main
    from tactkit.policies.pipeline import train
    from tactkit.policies.synthetic import make_synthetic_store

    torch.set_num_threads(1)
    store = tmp_path / "store.zarr"
    make_synthetic_store(store, episodes=2, seconds=1.0, image_hw=(24, 24))
    train("dp", store, ["size=tiny", "num_steps=2", "obs_keys=[observation.state.tcp_pose]", "down_dims=[16,32]",
                        "diffusion_step_embed_dim=16", "batch_size=4"], tmp_path / "dp", progress=False)
    with FakeNetFT(lambda seq: (1000000, 0, 0, 0, 0, 0), rate_hz=500.0) as ft:
        cfg = tmp_path / "ft.yaml"
        cfg.write_text(yaml.safe_dump({"type": "ati_netft", "name": "ft", "key": "observation.wrench.ft",
                                       "host": "127.0.0.1", "port": ft.port, "bias": "none",
                                       "counts_per_force": 1000000, "counts_per_torque": 1000000, "rate_hz": 500}))
        rc = main(["control", "--policy", str(tmp_path / "dp"), "--robot", "fake", "--sensor", str(cfg),
                   "--duration", "1.0"])
        sent = ft.sent
    assert rc == 0, capsys.readouterr()
    assert 0x0002 in ft.commands and sent > 50  # the driver asked for the stream and received it
