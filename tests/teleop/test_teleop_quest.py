"""The TactAR Quest app adapter, driven by a client speaking the app's exact JSON over HTTP
and decoding its BSON UDP datagrams (all on 127.0.0.1, ephemeral ports)."""

import json
import socket
import struct
import urllib.error
import urllib.request

import bson
import numpy as np
import pytest
from scipy.spatial.transform import Rotation
from teleop_fakes import HOME, FakeArmRobot, FakeSensor

from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.quest import (
    QuestAdapter,
    QuestConfig,
    h_to_unity_pos,
    h_to_unity_quat,
    parse_app_message,
    unity_to_h_pos,
    unity_to_h_quat,
)
from tactkit.teleop.retarget import quat_wxyz_to_rot, rot_to_quat_wxyz

FAST = SafetyConfig(max_linear_speed=1e5, max_angular_speed=1e5, max_linear_accel=1e9, max_angular_accel=1e9)


def app_json(ts, right_pos=(0.1, 1.0, 0.3), grip=False, trigger=0.0, a_button=False):
    """Exactly what the app's VRController serialises (JsonUtility.ToJson field order)."""
    hand = lambda pos, g, trig, a: {  # noqa: E731
        "wristPos": list(pos), "wristQuat": [1.0, 0.0, 0.0, 0.0], "triggerState": trig,
        "buttonState": [False, a, False, trig > 0.5, g]}
    return json.dumps({
        "timestamp": ts,
        "rightHand": hand(right_pos, grip, trigger, a_button),
        "leftHand": hand((-0.1, 1.0, 0.3), False, 0.0, False),
        "headPos": [0.0, 1.6, 0.0],
        "headQuat": [1.0, 0.0, 0.0, 0.0],
    }).encode()


def _angle_deg(q_wxyz, r: Rotation) -> float:
    """Angle (deg) of the rotation between a wxyz quaternion and ``r``: 0 for the same rotation,
    whatever the quaternion's sign."""
    return float(np.degrees((quat_wxyz_to_rot(q_wxyz).inv() * r).magnitude()))


def _check_quat_maps(to_h, to_unity, rng):
    """Both quaternion maps agree with the position maps (rotate-then-map == map-then-rotate)
    and undo each other, up to 1e-7 deg. Raises AssertionError otherwise."""
    for _ in range(20):
        r_u, r_h = Rotation.random(random_state=rng), Rotation.random(random_state=rng)
        q_u, q_h = rot_to_quat_wxyz(r_u), rot_to_quat_wxyz(r_h)
        v = rng.normal(size=3)
        np.testing.assert_allclose(unity_to_h_pos(r_u.apply(v)), quat_wxyz_to_rot(to_h(q_u)).apply(unity_to_h_pos(v)), atol=1e-9)
        np.testing.assert_allclose(h_to_unity_pos(r_h.apply(v)), quat_wxyz_to_rot(to_unity(q_h)).apply(h_to_unity_pos(v)), atol=1e-9)
        assert _angle_deg(to_unity(to_h(q_u)), r_u) < 1e-7
        assert _angle_deg(to_h(to_unity(q_h)), r_h) < 1e-7


def test_frame_transform_is_explicit_and_right_handed():
    np.testing.assert_allclose(unity_to_h_pos([1, 2, 3]), [3, -1, 2])  # x_H=z_U, y_H=-x_U, z_H=y_U
    np.testing.assert_allclose(h_to_unity_pos(unity_to_h_pos([0.3, -0.2, 0.7])), [0.3, -0.2, 0.7])
    # Unity yaw +90 deg about y turns forward (z) to the right (x); in H that is -90 deg about z
    r_u = Rotation.from_euler("y", 90, degrees=True)
    want = Rotation.from_euler("z", -90, degrees=True)
    assert _angle_deg(unity_to_h_quat(rot_to_quat_wxyz(r_u)), want) < 1e-7
    assert _angle_deg(h_to_unity_quat(rot_to_quat_wxyz(want)), r_u) < 1e-7
    _check_quat_maps(unity_to_h_quat, h_to_unity_quat, np.random.default_rng(0))


def _inverse(q_map):
    return lambda q: q_map(q) * np.array([1.0, -1.0, -1.0, -1.0])  # the conjugate: inverse rotation


@pytest.mark.parametrize("to_h, to_unity", [(unity_to_h_quat, _inverse(h_to_unity_quat)),
                                            (_inverse(unity_to_h_quat), h_to_unity_quat)])
def test_quat_map_check_rejects_the_inverse_rotation(to_h, to_unity):
    """Mutation check: a map returning the inverse rotation has the same absolute quaternion
    components on a round trip, so only an angle comparison catches it."""
    with pytest.raises(AssertionError):
        _check_quat_maps(to_h, to_unity, np.random.default_rng(0))


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d.pop("headPos"), "headPos"),
    (lambda d: d["rightHand"].update(buttonState=[True, False]), "buttonState"),
    (lambda d: d["leftHand"].update(wristPos=[0, "x", 0]), "wristPos"),
    (lambda d: d.update(timestamp="now"), "timestamp"),
    (lambda d: d["rightHand"].update(triggerState=None), "triggerState"),
])
def test_bad_app_messages_name_the_field(mutate, field):
    d = json.loads(app_json(1.0))
    mutate(d)
    with pytest.raises(ValueError, match=field):
        parse_app_message(json.dumps(d).encode())
    with pytest.raises(ValueError, match="JSON"):
        parse_app_message(b"{not json")
    with pytest.raises(ValueError, match="non-finite"):
        parse_app_message(app_json(1.0).replace(b"1.6", b"NaN"))


class App:
    """The app's side: HTTP POSTs out, five UDP ports in (decoding BSON like VisualizationServer)."""

    def __init__(self):
        self.socks = {}
        for name in ("robot", "tactile", "log", "image", "force"):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.0.1", 0))
            s.settimeout(3.0)
            self.socks[name] = s

    def ports(self):
        return {f"port_{k}": s.getsockname()[1] for k, s in self.socks.items()}

    def post(self, port, body):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/unity", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=3.0) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    def recv(self, name):
        data, _ = self.socks[name].recvfrom(65535)
        return bson.decode(data)

    def recv_image(self):
        """VisualizationServer.ReceiveImage: total length, chunk size, then the chunks."""
        s = self.socks["image"]
        while True:
            length_bytes, _ = s.recvfrom(65535)
            if len(length_bytes) == 4:
                break
        total = struct.unpack("<I", length_bytes)[0]
        chunk_bytes, _ = s.recvfrom(65535)
        assert len(chunk_bytes) == 4
        chunk = struct.unpack("<I", chunk_bytes)[0]
        buf = bytearray(total)
        for i in range(-(-total // chunk)):
            part, _ = s.recvfrom(65535)
            buf[i * chunk:i * chunk + len(part)] = part
        return bson.decode(bytes(buf))

    def close(self):
        for s in self.socks.values():
            s.close()


# the app test's TCP orientation: a generic rotation, not a half-turn (a half-turn is its own
# inverse, so HOME's pointing-down pose could not tell a pose from its inverse)
TCP_ROT = Rotation.from_euler("xyz", [160.0, 25.0, 40.0], degrees=True)


def test_app_drives_robot_and_gets_visualisation():
    robot = FakeArmRobot(home=np.concatenate([HOME[:3], rot_to_quat_wxyz(TCP_ROT)]))
    tactile = FakeSensor("observation.tactile.left.marker_offset", np.full((63, 2), 0.01, np.float32))
    camera = FakeSensor("observation.images.wrist", np.zeros((32, 32, 3), np.uint8))
    bridge = TeleopBridge(robot, BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*"),
                          safety=SafetyFilter(FAST), sensors={"tactile": tactile, "camera": camera})
    bridge.start()
    app = App()
    adapter = QuestAdapter(bridge.endpoints["upstream"], bridge.endpoints["feedback"],
                           QuestConfig(http_port=0, headset_ip="127.0.0.1", image_chunk=1024, **app.ports()))
    adapter.start()
    try:
        port = adapter.http_port
        ts = 10.0
        assert app.post(port, app_json(ts)) == 200
        ts += 0.02
        assert app.post(port, app_json(ts, grip=True)) == 200  # hand trigger = clutch
        assert wait_until(lambda: bridge.stats.commands_sent >= 1, 3.0)
        # hand forward 5 cm in Unity (z) and up 2 cm (y) -> robot +x 5 cm, +z 2 cm in its base
        ts += 0.02
        assert app.post(port, app_json(ts, right_pos=(0.1, 1.02, 0.35), grip=True, trigger=1.0)) == 200
        want = HOME[:3] + [0.05, 0.0, 0.02]
        assert wait_until(lambda: np.allclose(robot.pose()[:3], want, atol=1e-6), 3.0)
        assert robot.received[-1][1].arms["arm"].gripper_width == pytest.approx(0.0)  # trigger 1 = closed
        # a late (older) POST is dropped, garbage is refused: the robot does not move
        assert app.post(port, app_json(ts - 0.01, right_pos=(0.5, 1.5, 0.9), grip=True)) == 200
        assert app.post(port, b"{garbage") == 400
        assert adapter.stale_posts == 1 and adapter.bad_posts == 1
        assert np.allclose(robot.pose()[:3], want, atol=1e-6)

        # UDP, as the app decodes it
        doc = app.recv("robot")
        for _ in range(50):  # newest state
            if np.allclose(doc["rightRobotTCP"][:3], h_to_unity_pos(want), atol=1e-6):
                break
            doc = app.recv("robot")
        np.testing.assert_allclose(doc["rightRobotTCP"][:3], h_to_unity_pos(want), atol=1e-6)
        # the orientation, as the app applies it: rotating a Unity vector by the received
        # quaternion == rotating the same vector, taken into H, by the robot's TCP rotation
        np.testing.assert_allclose(robot.pose()[3:], rot_to_quat_wxyz(TCP_ROT), atol=1e-9)  # unchanged
        r_app = quat_wxyz_to_rot(doc["rightRobotTCP"][3:])
        for v in np.eye(3):
            np.testing.assert_allclose(r_app.apply(v), h_to_unity_pos(TCP_ROT.apply(unity_to_h_pos(v))), atol=1e-6)
        assert len(doc["rightRobotTCP"]) == 7 and doc["leftRobotTCP"] == [0.0] * 7
        assert set(doc) == {"leftRobotTCP", "rightRobotTCP", "leftGripperState", "rightGripperState"}
        tdoc = app.recv("tactile")
        assert tdoc["device_id"] == "left" and len(tdoc["arrows"]) == 63 and len(tdoc["scale"]) == 3
        a0 = tdoc["arrows"][0]
        assert len(a0["start"]) == 3 and len(a0["end"]) == 3 and a0["start"] != a0["end"]
        fdoc = app.recv("force")
        assert fdoc["device_id"] == "right" and set(fdoc["arrow"]) == {"start", "end"}
        assert "text" in app.recv("log")
        idoc = app.recv_image()
        im = idoc["images"][0]
        assert im["id"] == "wrist" and bytes(im["image"][:2]) == b"\xff\xd8"
        assert set(im) == {"id", "inHeadSpace", "leftOrRight", "position", "rotation", "scale", "image"}
    finally:
        adapter.stop()
        app.close()
        bridge.stop()
    assert bridge.error is None and bridge.rejects.total == 0


def test_public_http_bind_needs_headset_ip_or_insecure():
    with pytest.raises(ValueError, match="unauthenticated.*headset_ip"):
        QuestAdapter("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", QuestConfig(http_host="0.0.0.0", http_port=0))


def test_posts_from_other_addresses_are_refused():
    adapter = QuestAdapter("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", QuestConfig(http_port=0, headset_ip="127.0.0.2"))
    try:
        assert adapter.handle_post(app_json(1.0), "127.0.0.1") == 403
        assert adapter.refused_posts == 1 and adapter.posts == 0
        assert adapter.handle_post(app_json(1.0), "127.0.0.2") == 200
        assert adapter.posts == 1
    finally:
        adapter.stop()
