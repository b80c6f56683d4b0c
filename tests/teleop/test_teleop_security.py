"""CURVE: allow-listed clients get through; unknown keys and plaintext clients are refused."""

import time

import pytest
import zmq
import zmq.auth
from teleop_fakes import FakeArmRobot

from tactkit.real.safety import SafetyFilter
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.security import check_bind_policy, generate_keys, is_loopback


@pytest.fixture(scope="module")
def keydir(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    generate_keys(d, clients=("headset",))
    # a key pair that is NOT on the allow-list
    (d / "stranger").mkdir()
    zmq.auth.create_certificates(d / "stranger", "stranger")
    return d


@pytest.fixture
def secure_bridge(keydir):
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*",
                                                       keys=str(keydir)), safety=SafetyFilter())
    bridge.start()
    yield bridge
    bridge.stop()


def _hammer(client_send, bridge, seconds=0.6):
    """Send heartbeats for a while; return how many the bridge accepted."""
    deadline = time.monotonic() + seconds
    t = 0.0
    while time.monotonic() < deadline:
        t += 0.01
        client_send(t)
        time.sleep(0.01)
    return bridge.stats.heartbeats


def test_generate_keys_layout_and_no_overwrite(tmp_path):
    files = generate_keys(tmp_path, clients=("quest", "desk"))
    assert set(files) == {"bridge", "quest", "desk"}
    assert sorted(p.name for p in (tmp_path / "allowed").iterdir()) == ["desk.key", "quest.key"]
    assert (files["bridge"].stat().st_mode & 0o777) == 0o600
    with pytest.raises(FileExistsError):
        generate_keys(tmp_path, clients=("quest",))


def test_allowed_client_talks_and_gets_feedback(secure_bridge, keydir):
    c = HeadsetClient(secure_bridge.endpoints["upstream"], secure_bridge.endpoints["feedback"], keys=keydir)
    try:
        assert wait_until(lambda: (c.send_heartbeat(time.monotonic()), secure_bridge.stats.heartbeats > 0)[1], 3.0)
        assert wait_until(lambda: c.poll_feedback(50) is not None, 3.0)
        ack = c.control("status", t=time.monotonic())
        assert ack.ok
    finally:
        c.close()


def test_unknown_key_is_refused(secure_bridge, keydir):
    stranger_dir = keydir / "stranger"
    # give the stranger the bridge's public key (it is public) but its own, unlisted key pair
    (stranger_dir / "bridge.key").write_bytes((keydir / "bridge.key").read_bytes())
    c = HeadsetClient(secure_bridge.endpoints["upstream"], secure_bridge.endpoints["feedback"],
                      keys=stranger_dir, client_name="stranger")
    try:
        assert _hammer(c.send_heartbeat, secure_bridge) == 0
        assert c.poll_feedback(200) is None
        with pytest.raises(TimeoutError):
            c.control("start_episode", t=1.0, timeout=0.3)
        assert secure_bridge.rejects.total == 0  # never even reached the message loop
    finally:
        c.close()


def test_plaintext_client_is_refused(secure_bridge):
    c = HeadsetClient(secure_bridge.endpoints["upstream"], secure_bridge.endpoints["feedback"])
    try:
        assert _hammer(c.send_heartbeat, secure_bridge) == 0
        assert c.poll_feedback(200) is None
        assert secure_bridge.stats.commands_sent == 0
    finally:
        c.close()


def test_bind_policy():
    assert is_loopback("tcp://127.0.0.1:5555") and is_loopback("tcp://localhost:1") and is_loopback("tcp://[::1]:1")
    assert not is_loopback("tcp://*:5555") and not is_loopback("tcp://0.0.0.0:5555")
    assert not is_loopback("tcp://192.168.1.20:5555")
    check_bind_policy(["tcp://127.0.0.1:5555"], curve=False, insecure=False)
    check_bind_policy(["tcp://*:5555"], curve=True, insecure=False)
    with pytest.raises(ValueError, match="refusing to bind tcp://\\*:5555 without CURVE.*--insecure"):
        check_bind_policy(["tcp://127.0.0.1:1", "tcp://*:5555"], curve=False, insecure=False)
    check_bind_policy(["tcp://*:5555"], curve=False, insecure=True)  # allowed, with a warning


def test_bridge_refuses_public_bind_before_binding():
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(upstream="tcp://0.0.0.0:*"), safety=SafetyFilter())
    with pytest.raises(ValueError, match="without CURVE"):
        bridge.bind()
    assert not bridge._bound.is_set()


def test_missing_key_files_are_named(tmp_path):
    (tmp_path / "allowed").mkdir()
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*",
                                                       keys=str(tmp_path)), safety=SafetyFilter())
    with pytest.raises(FileNotFoundError, match="bridge.key_secret"):
        bridge.bind()


def test_protocol_version_constant_in_ack():
    assert P.Ack(v=P.PROTOCOL_VERSION, request_id=1, ok=True).v == 1
