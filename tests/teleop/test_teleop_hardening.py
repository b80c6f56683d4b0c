"""The bridge's network edges: failed binds exit, replays from new sockets are refused, a flooding
peer is held to its budget, and the Quest HTTP adapter answers every hostile request.

Real sockets on 127.0.0.1. Nothing here asserts speed: the flood's effect on the operator's
rate and latency is measured by ``benchmarks/teleop_flood.py``.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import msgspec
import pytest
import zmq
from teleop_fakes import FakeArmRobot, hand

from tactkit.cli.main import main
from tactkit.real.safety import SafetyFilter
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BindError, BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.quest import MAX_BODY_BYTES, QuestAdapter, QuestConfig
from tactkit.teleop.security import apply_client_curve, generate_keys, load_keypair, load_public_key

EPHEMERAL = dict(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*")
HEAD = P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0))


# ------------------------------------------------------------------------------ bind failures
def _in_thread(fn, timeout: float = 30.0):
    out: dict = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out["error"] = exc

    th = threading.Thread(target=run, daemon=True)
    th.start()
    th.join(timeout)
    assert not th.is_alive(), "hung (Context.term() waiting on a socket left open?)"
    return out


@pytest.fixture
def busy_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def test_bind_failure_raises_naming_the_address_and_closes_everything(busy_port):
    address = f"tcp://127.0.0.1:{busy_port}"
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(upstream=address, feedback="tcp://127.0.0.1:*"),
                          safety=SafetyFilter())
    out = _in_thread(bridge.start)
    assert isinstance(out.get("error"), BindError), out
    assert f"bridge.upstream={address}" in str(out["error"]) and "in use" in str(out["error"])
    assert "error" not in _in_thread(bridge.stop)  # returns: no socket holds the context open
    # the feedback socket failing after the upstream one bound: that one is closed again
    free = TeleopBridge(FakeArmRobot(), BridgeConfig(upstream="tcp://127.0.0.1:*", feedback=address),
                        safety=SafetyFilter())
    out = _in_thread(free.start)
    assert isinstance(out.get("error"), BindError) and f"bridge.feedback={address}" in str(out["error"])


@pytest.mark.parametrize("address", ["BUSY", "tcp://256.0.0.1:5555", "tcp://127.0.0.1:notaport"])
def test_teleop_cli_exits_with_an_error_naming_the_address(address, busy_port, capsys):
    address = f"tcp://127.0.0.1:{busy_port}" if address == "BUSY" else address
    out = _in_thread(lambda: main(["teleop", "--robot", "fake", "--upstream", address, "--no-keyboard",
                                   "--duration", "5"]))
    assert out.get("value") == 1, out
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and address in err and "\n" not in err, err


def test_quest_http_port_in_use_is_an_error_naming_it(busy_port):
    with pytest.raises(ValueError, match=f"cannot listen on 127.0.0.1:{busy_port}"):
        QuestAdapter("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", QuestConfig(http_port=busy_port))


# ------------------------------------------------------------------------------ replays
def _capture(n: int, session: int) -> list[bytes]:
    return [P.encode(P.HeadsetPose(v=P.PROTOCOL_VERSION, session=session, seq=i, t=1.0 + 0.01 * i, head=HEAD,
                                   right=hand(grip=0.0))) for i in range(n)]


def _send_from_new_socket(upstream: str, frames: list[bytes], curve=None) -> None:
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 30_000  # close() waits until all went out (a CURVE handshake on a loaded machine is slow)
    if curve is not None:
        apply_client_curve(sock, *curve)
    sock.connect(upstream)
    for f in frames:
        sock.send(f)
    sock.close()


def test_replays_from_a_new_socket_are_refused():
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(**EPHEMERAL), safety=SafetyFilter()).start()
    try:
        up = bridge.endpoints["upstream"]
        recorded = _capture(20, session=424242)
        _send_from_new_socket(up, recorded)  # the legitimate client
        assert wait_until(lambda: bridge.stats.poses_received == 20, 5.0)
        for _ in range(2):  # an eavesdropper replays them, each time from a fresh connection
            _send_from_new_socket(up, recorded)
        assert wait_until(lambda: bridge.rejects.total == 40, 5.0), bridge.rejects.as_dict()
        assert bridge.rejects.counts["replayed"] == 40 and bridge.stats.poses_received == 20
        # a client with its own session still gets through
        _send_from_new_socket(up, _capture(3, session=777))
        assert wait_until(lambda: bridge.stats.poses_received == 23, 5.0)
    finally:
        bridge.stop()


def test_curve_replays_are_bound_to_the_key_not_the_socket(tmp_path):
    generate_keys(tmp_path, clients=("headset",))
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(**EPHEMERAL, keys=str(tmp_path)), safety=SafetyFilter())
    bridge.start()
    try:
        up = bridge.endpoints["upstream"]
        curve = (load_keypair(tmp_path / "headset.key_secret"), load_public_key(tmp_path / "bridge.key"))
        first, second = _capture(10, session=1), _capture(10, session=2)
        _send_from_new_socket(up, first, curve)
        assert wait_until(lambda: bridge.stats.poses_received == 10, 20.0), bridge.rejects.as_dict()
        _send_from_new_socket(up, second, curve)  # the headset restarted: session 1 is closed
        assert wait_until(lambda: bridge.stats.poses_received == 20, 20.0), bridge.rejects.as_dict()
        _send_from_new_socket(up, first + second, curve)  # replayed with the same (stolen) key
        assert wait_until(lambda: bridge.rejects.total == 20, 20.0), bridge.rejects.as_dict()
        assert bridge.rejects.counts["replayed"] == 20 and bridge.stats.poses_received == 20
    finally:
        bridge.stop()


def test_control_and_pose_streams_keep_separate_sequences():
    """A headset sends poses and control requests on two sockets with one session: both pass."""
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(**EPHEMERAL), safety=SafetyFilter()).start()
    client = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    try:
        for i in range(5):
            client.send_pose(0.01 * (i + 1), HEAD, None, hand())
        assert wait_until(lambda: bridge.stats.poses_received >= 1, 5.0)
        assert client.control("status", 1.0).ok and client.control("status", 1.1).ok
        assert bridge.rejects.total == 0
    finally:
        client.close()
        bridge.stop()


# ------------------------------------------------------------------------------ flood budget
def test_a_flooding_peer_is_held_to_its_budget_and_every_message_is_accounted_for():
    cfg = BridgeConfig(**EPHEMERAL, peer_rate_hz=200.0, peer_burst=100)
    bridge = TeleopBridge(FakeArmRobot(), cfg, safety=SafetyFilter()).start()
    operator = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    stop = threading.Event()
    poses_during: list[int] = []

    def operate() -> None:
        t = 0.0
        while not stop.is_set():
            t += 0.01
            operator.send_pose(t, HEAD, None, hand(grip=0.0))
            time.sleep(0.01)

    th = threading.Thread(target=operate)
    th.start()
    try:
        assert wait_until(lambda: bridge.stats.poses_received > 0, 5.0)
        junk = [b"\x91\xc0" + bytes([i % 256]) * 40 for i in range(20_000)]  # msgpack, not a map: malformed
        t0 = time.monotonic()
        before = bridge.stats.poses_received
        _send_from_new_socket(bridge.endpoints["upstream"], junk)
        assert wait_until(lambda: bridge.rejects.total + bridge.stats.rate_limited == len(junk), 30.0), (
            bridge.rejects.as_dict(), bridge.stats.rate_limited)
        elapsed = time.monotonic() - t0
        poses_during.append(bridge.stats.poses_received - before)
    finally:
        stop.set()
        th.join()
        operator.close()
        bridge.stop()
    decoded = bridge.rejects.counts["malformed"]
    assert decoded <= cfg.peer_burst + cfg.peer_rate_hz * elapsed + 1  # the budget held
    assert bridge.stats.rate_limited >= len(junk) - decoded > 0  # the rest dropped undecoded, counted
    assert poses_during[0] > 0 and bridge.error is None  # the operator was served throughout
    assert "rate-limited" in bridge.status_line()


# ------------------------------------------------------------------------------ Quest adapter
@pytest.fixture
def adapter():
    bridge = TeleopBridge(FakeArmRobot(), BridgeConfig(**EPHEMERAL), safety=SafetyFilter()).start()
    qa = QuestAdapter(bridge.endpoints["upstream"], bridge.endpoints["feedback"],
                      QuestConfig(http_port=0, connection_timeout_s=0.5, max_connections=4)).start()
    yield qa
    qa.stop()
    bridge.stop()


def _app(ts: float = 1.0) -> dict:
    h = {"wristPos": [0.1, 1.0, 0.3], "wristQuat": [1.0, 0.0, 0.0, 0.0], "triggerState": 0.0,
         "buttonState": [False, False, False, False, False]}
    return {"timestamp": ts, "rightHand": dict(h), "leftHand": dict(h), "headPos": [0.0, 1.6, 0.0],
            "headQuat": [1.0, 0.0, 0.0, 0.0]}


def _post(port: int, body: bytes, headers: dict | None = None, timeout: float = 5.0) -> int:
    """A raw HTTP/1.0 POST (headers as given); returns the status code, 0 if closed without one."""
    head = {"Content-Length": str(len(body)), **(headers or {})}
    req = b"POST /unity HTTP/1.0\r\n" + b"".join(f"{k}: {v}\r\n".encode() for k, v in head.items()) + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(req + body)
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    return int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else 0


def _with(mutate) -> bytes:
    d = _app()
    mutate(d)
    return json.dumps(d).encode()


HOSTILE = {
    "5000-digit integer": b'{"timestamp": ' + b"9" * 5000 + b"}",
    "400-digit integer coordinate": _with(lambda d: d.update(headPos=[10**400, 0, 0])),
    "400-digit integer trigger": _with(lambda d: d["rightHand"].update(triggerState=-(10**400))),
    "zero head quaternion": _with(lambda d: d.update(headQuat=[0, 0, 0, 0])),
    "zero wrist quaternion": _with(lambda d: d["leftHand"].update(wristQuat=[0.0, 0.0, 0.0, 0.0])),
    "huge head quaternion": _with(lambda d: d.update(headQuat=[1e300, 0, 0, 0])),
    "deeply nested list": b"[" * (MAX_BODY_BYTES - 10),
    "deeply nested object": b'{"a":' * 3000,
    "not UTF-8": b'{"timestamp": "\xff\xfe"}',
    "top-level list": b"[1, 2, 3]",
    "NaN timestamp": _with(lambda d: d.update(timestamp=float("nan"))),
    "Infinity coordinate": _with(lambda d: d["rightHand"].update(wristPos=[float("inf"), 0, 0])),
    "booleans for numbers": _with(lambda d: d.update(headPos=[True, False, True])),
    "string buttons": _with(lambda d: d["rightHand"].update(buttonState="AAAAA")),
    "empty body": b"",
    "hands missing": _with(lambda d: (d.pop("rightHand"), d.pop("leftHand"))),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_quest_handler_answers_400_to_hostile_bodies_and_counts_them(adapter, case):
    before = adapter.bad_posts
    assert _post(adapter.http_port, HOSTILE[case]) == 400
    assert adapter.bad_posts == before + 1 and adapter.posts == 0
    assert _post(adapter.http_port, json.dumps(_app(2.0)).encode()) == 200  # still serving
    assert adapter.posts == 1


@pytest.mark.parametrize("headers, status", [
    ({"Content-Length": "9" * 5000}, 400), ({"Content-Length": "-5"}, 400), ({"Content-Length": "x"}, 400),
    ({"Content-Length": str(MAX_BODY_BYTES + 1)}, 413),
])
def test_quest_handler_refuses_bad_content_lengths(adapter, headers, status):
    assert _post(adapter.http_port, b"{}", headers) == status
    assert adapter.bad_posts == 1


def test_quest_connections_are_capped_and_idle_ones_time_out(adapter):
    port = adapter.http_port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]  # every slot taken
    try:
        time.sleep(0.1)
        assert _post(port, json.dumps(_app(1.0)).encode()) == 503  # over the cap: refused at once
        assert adapter.refused_connections >= 1
        # a connection that sends half a request is closed after connection_timeout_s
        idle[0].sendall(b"POST /unity HTTP/1.0\r\nContent-Length: 100\r\n\r\n{")
        assert wait_until(lambda: adapter.timed_out >= 4, 5.0), adapter.timed_out
        for s in idle:  # each closed by the adapter (a 408 or nothing, then end of file)
            s.settimeout(5.0)
            while s.recv(1024):
                pass
        assert _post(port, json.dumps(_app(2.0)).encode()) == 200  # slots free again
    finally:
        for s in idle:
            s.close()


def test_quest_burst_of_connections_is_absorbed_by_the_backlog(adapter):
    """Connections opened at once queue in the kernel's backlog instead of being reset."""
    body = json.dumps(_app(1.0)).encode()
    results: list[int] = []
    lock = threading.Lock()

    def post(i: int) -> None:
        b = body.replace(b'"timestamp": 1.0', f'"timestamp": {1.0 + i}'.encode())
        try:
            code = _post(adapter.http_port, b)
        except OSError:
            code = -1  # connection refused or reset
        with lock:
            results.append(code)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(60)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30.0)
    assert len(results) == 60 and -1 not in results and 0 not in results, results
    assert set(results) <= {200, 503}  # served, or told the server is busy: never a reset


def test_quest_off_loopback_requires_the_headset_allow_list():
    for insecure in (False, True):  # --insecure does not lift it: the app cannot authenticate
        with pytest.raises(ValueError, match="headset allow-list is required"):
            QuestAdapter("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", QuestConfig(http_host="0.0.0.0", http_port=0),
                         insecure=insecure)
    with pytest.raises(ValueError, match="not an IP address"):
        QuestConfig(http_host="0.0.0.0", headset_ip="quest.local")


def test_quest_allow_list_refuses_other_addresses_before_serving_them():
    qa = QuestAdapter("tcp://127.0.0.1:1", "tcp://127.0.0.1:2",
                      QuestConfig(http_port=0, headset_ip="127.0.0.2, 127.0.0.3")).start()
    try:
        assert _post(qa.http_port, json.dumps(_app()).encode()) == 403  # from 127.0.0.1
        assert qa.refused_connections == 1 and qa.posts == 0
    finally:
        qa.stop()


def test_hostile_pose_messages_never_raise_in_the_parser():
    """The bodies above go straight to parse_app_message too: only AppMessageError comes out."""
    from tactkit.teleop.quest import AppMessageError, parse_app_message

    for case, body in HOSTILE.items():
        with pytest.raises(AppMessageError):
            parse_app_message(body)
            pytest.fail(case)
    with pytest.raises(AppMessageError):
        parse_app_message(msgspec.json.encode({"timestamp": 1.0}))
