"""Compatibility adapter for the published TactAR Quest app (unchanged app, tactkit bridge).

The app speaks its own protocol; the adapter translates both ways and is, to the bridge, just
another headset client (same validation, same clutch, same safety filter):

    app --HTTP POST JSON :8082/unity--> adapter --HeadsetPose (ZMQ)--> bridge
    app <--UDP BSON :10001-10005------- adapter <--Feedback (ZMQ)----- bridge

App -> workstation (``POST /unity``, JSON, at the app's send rate)::

    {"timestamp": float, "leftHand": HAND, "rightHand": HAND, "headPos": [x,y,z], "headQuat": [w,x,y,z]}
    HAND = {"wristPos": [x,y,z], "wristQuat": [w,x,y,z], "triggerState": float,
            "buttonState": [B/Y, A/X, thumbstick, index trigger, hand trigger]}

in Unity's left-handed, y-up frame U (x right, y up, z forward), already in the app's
calibrated space. Workstation -> app, UDP, one BSON document per datagram:
10001 ``{leftRobotTCP, rightRobotTCP: [x,y,z,qw,qx,qy,qz], leftGripperState, rightGripperState}``,
10002 ``{device_id, arrows: [{start, end}], scale: [3]}``, 10003 ``{text}``,
10004 images (a datagram with the total length as uint32 little-endian, one with the chunk
size as uint32, then the BSON ``{images: [...]}`` in chunks of that size),
10005 ``{device_id, arrow: {start, end}, scale: [3]}``.

Frame transform (explicit, documented in docs/teleop-protocol.md). The tactkit headset frame
H is right-handed, z up, x forward, y left. A Unity point maps as

    p_H = M p_U,   M = [[0, 0, 1], [-1, 0, 0], [0, 1, 0]]   (x_H = z_U, y_H = -x_U, z_H = y_U)

``det M = -1``: the mirror that turns left-handed into right-handed coordinates. A Unity
rotation matrix maps as ``R_H = M R_U M^T`` (a proper rotation again); quaternions go through
that matrix identity. Poses sent back to the app use the inverse (``M^T``). Robot poses are
first taken from the robot base frame B into H with the bridge's calibration ``T_BH^-1``.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import socket
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
from scipy.spatial.transform import Rotation

from tactkit.teleop import protocol as P
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.retarget import quat_wxyz_to_rot, rot_to_quat_wxyz
from tactkit.teleop.security import is_loopback

log = logging.getLogger(__name__)


def _bson():
    """The ``bson`` module (pymongo's), which the TactAR app's messages need: the ``quest`` extra."""
    try:
        import bson
    except ImportError as exc:
        raise ImportError("the TactAR Quest app speaks BSON: pip install 'tactkit[quest]' (pymongo)") from exc
    return bson

M_UNITY_TO_H = np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
MAX_BODY_BYTES = 16384


@dataclass
class QuestConfig:
    http_host: str = "127.0.0.1"  # 0.0.0.0 to accept the headset over Wi-Fi
    http_port: int = 8082
    #: the headset allow-list: addresses that may POST (comma-separated); feedback goes to the
    #: one that posted last. Required off loopback; empty on loopback = any local client
    headset_ip: str = ""
    connection_timeout_s: float = 5.0  # a connection silent this long is closed
    max_connections: int = 16  # connections served at once; more are answered 503 and closed
    listen_backlog: int = 128  # connections the kernel queues before they are accepted
    port_robot: int = 10001
    port_tactile: int = 10002
    port_log: int = 10003
    port_image: int = 10004
    port_force: int = 10005
    image_chunk: int = 8192  # bytes per image datagram
    max_image_bytes: int = 1 << 20
    #: robot arm name for each app hand ("" = that hand has no arm)
    left_arm: str = ""
    right_arm: str = "arm"
    #: app-side placement of camera images (Unity local frame of the calibration object)
    image_position: tuple[float, float, float] = (0.0, 0.6, 1.0)
    image_scale: tuple[float, float, float] = (0.0008, 0.0008, 0.0008)

    def __post_init__(self) -> None:
        for name in ("http_port", "port_robot", "port_tactile", "port_log", "port_image", "port_force"):
            v = getattr(self, name)
            if not 0 <= v <= 65535:
                raise ValueError(f"quest.{name}={v} is not a port number")
        if not 512 <= self.image_chunk <= 65000:
            raise ValueError(f"quest.image_chunk={self.image_chunk} must be in [512, 65000] (UDP datagram)")
        if not (self.connection_timeout_s > 0 and math.isfinite(self.connection_timeout_s)):
            raise ValueError(f"quest.connection_timeout_s={self.connection_timeout_s} must be > 0")
        if self.max_connections < 1 or self.listen_backlog < 1:
            raise ValueError(f"quest.max_connections={self.max_connections} and quest.listen_backlog="
                             f"{self.listen_backlog} must be >= 1")
        for ip in self.allowed_ips:
            try:
                ipaddress.ip_address(ip)
            except ValueError:
                raise ValueError(f"quest.headset_ip: {ip!r} is not an IP address") from None

    @property
    def allowed_ips(self) -> tuple[str, ...]:
        return tuple(ip.strip() for ip in self.headset_ip.split(",") if ip.strip())


# ---------------------------------------------------------------------------- frames
def unity_to_h_pos(p) -> np.ndarray:
    return M_UNITY_TO_H @ np.asarray(p, dtype=np.float64)


def h_to_unity_pos(p) -> np.ndarray:
    return M_UNITY_TO_H.T @ np.asarray(p, dtype=np.float64)


def unity_to_h_quat(q_wxyz) -> np.ndarray:
    r_u = quat_wxyz_to_rot(q_wxyz).as_matrix()
    return rot_to_quat_wxyz(Rotation.from_matrix(M_UNITY_TO_H @ r_u @ M_UNITY_TO_H.T))


def h_to_unity_quat(q_wxyz) -> np.ndarray:
    r_h = quat_wxyz_to_rot(q_wxyz).as_matrix()
    return rot_to_quat_wxyz(Rotation.from_matrix(M_UNITY_TO_H.T @ r_h @ M_UNITY_TO_H))


# ---------------------------------------------------------------------------- app -> bridge
class AppMessageError(ValueError):
    """A POST body that is not the app's message; the text names the field."""


def _number(x: object, what: str) -> float:
    if not isinstance(x, (int, float)) or isinstance(x, bool):
        raise AppMessageError(f"{what}: expected a number, got {type(x).__name__}")
    try:
        v = float(x)  # an integer of 400 digits overflows
    except OverflowError:
        raise AppMessageError(f"{what}: number out of range") from None
    if not math.isfinite(v):
        raise AppMessageError(f"{what}: non-finite value")
    return v


def _floats(d: dict, key: str, n: int, where: str) -> list[float]:
    v = d.get(key)
    if not isinstance(v, list) or len(v) != n:
        raise AppMessageError(f"{where}{key}: expected {n} numbers, got {_short(v)}")
    return [_number(x, f"{where}{key}") for x in v]


def _short(v: object) -> str:
    try:
        text = repr(v)
    except ValueError:  # an integer too long to print
        text = type(v).__name__
    return text if len(text) <= 80 else text[:77] + "..."


def _quat(d: dict, key: str, where: str) -> list[float]:
    q = _floats(d, key, 4, where)
    norm = math.sqrt(sum(x * x for x in q))
    if not 0.5 <= norm <= 2.0:
        raise AppMessageError(f"{where}{key}: norm {norm:.3f} is not a rotation")
    return [x / norm for x in q]


def _hand(d: dict, side: str) -> P.Hand:
    h = d.get(side)
    if not isinstance(h, dict):
        raise AppMessageError(f"{side}: missing or not an object")
    pos = _floats(h, "wristPos", 3, f"{side}.")
    quat = _quat(h, "wristQuat", f"{side}.")
    trig = _number(h.get("triggerState"), f"{side}.triggerState")
    buttons = h.get("buttonState")
    if not isinstance(buttons, list) or len(buttons) != 5 or not all(isinstance(b, bool) for b in buttons):
        raise AppMessageError(f"{side}.buttonState: expected 5 booleans, got {_short(buttons)}")
    bits = sum(1 << i for i, b in enumerate(buttons) if b)
    return P.Hand(
        wrist=P.Pose(pos=tuple(unity_to_h_pos(pos).tolist()), quat=tuple(unity_to_h_quat(quat).tolist())),
        index_trigger=min(max(float(trig), 0.0), 1.0),
        hand_trigger=1.0 if buttons[P.BUTTON_HAND] else 0.0,  # the app reports the grip as a button
        buttons=bits,
    )


def parse_app_message(body: bytes) -> tuple[float, P.Pose, P.Hand, P.Hand]:
    """The app's JSON -> (timestamp, head, left, right) in the tactkit headset frame H."""
    if len(body) > MAX_BODY_BYTES:
        raise AppMessageError(f"body of {len(body)} bytes > {MAX_BODY_BYTES}")
    try:
        d = json.loads(body)
    except RecursionError:
        raise AppMessageError("not JSON: nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an integer of > 4300 digits
        raise AppMessageError(f"not JSON: {str(exc)[:120]}") from None
    if not isinstance(d, dict):
        raise AppMessageError("top level is not an object")
    ts = _number(d.get("timestamp"), "timestamp")
    if ts < 0:
        raise AppMessageError(f"timestamp: expected a non-negative number, got {ts}")
    head_pos = _floats(d, "headPos", 3, "")
    head_quat = _quat(d, "headQuat", "")
    head = P.Pose(pos=tuple(unity_to_h_pos(head_pos).tolist()), quat=tuple(unity_to_h_quat(head_quat).tolist()))
    return ts, head, _hand(d, "leftHand"), _hand(d, "rightHand")


# ---------------------------------------------------------------------------- bridge -> app
def robot_document(fb: P.Feedback, cfg: QuestConfig, t_hb: tuple[np.ndarray, Rotation]) -> dict:
    """Port 10001 document. Robot TCP poses in Unity coordinates of the calibrated space."""
    t_bh, r_bh = t_hb
    doc = {"leftRobotTCP": [0.0] * 7, "rightRobotTCP": [0.0] * 7,
           "leftGripperState": [0.0], "rightGripperState": [0.0]}
    for arm in fb.arms:
        for side, name in (("left", cfg.left_arm), ("right", cfg.right_arm)):
            if arm.name != name:
                continue
            p_h = r_bh.inv().apply(np.asarray(arm.tcp.pos) - t_bh)
            q_h = rot_to_quat_wxyz(r_bh.inv() * quat_wxyz_to_rot(arm.tcp.quat))
            doc[f"{side}RobotTCP"] = [*h_to_unity_pos(p_h).tolist(), *h_to_unity_quat(q_h).tolist()]
            doc[f"{side}GripperState"] = [float(arm.gripper_width)]
    return doc


def tactile_documents(fb: P.Feedback) -> list[dict]:
    """Port 10002 documents: arrows in the sensor frame, Unity axes (the app parents them to
    a GameObject named after ``device_id``)."""
    docs = []
    for field in fb.tactile:
        arrows = []
        for rest, disp in zip(field.rest, field.displaced):
            # magnify the displacement by the display scale, as the headset is asked to
            end = np.asarray(rest) + field.scale * (np.asarray(disp) - np.asarray(rest))
            arrows.append({"start": h_to_unity_pos(rest).tolist(), "end": h_to_unity_pos(end).tolist()})
        docs.append({"device_id": field.sensor, "arrows": arrows, "scale": [0.002, 0.001, 0.002]})
    return docs


def force_documents(fb: P.Feedback, cfg: QuestConfig) -> list[dict]:
    """Port 10005 documents: force arrow per arm (``device_id`` left/right), Unity axes."""
    docs = []
    for f in fb.forces:
        side = "left" if f.arm == cfg.left_arm else "right" if f.arm == cfg.right_arm else None
        if side is None:
            continue
        end = np.asarray(f.force) * f.scale
        docs.append({"device_id": side, "arrow": {"start": [0.0, 0.0, 0.0], "end": h_to_unity_pos(end).tolist()},
                     "scale": [0.01, 0.005, 0.01]})
    return docs


def image_document(fb: P.Feedback, cfg: QuestConfig) -> dict | None:
    if not fb.images:
        return None
    return {"images": [
        {"id": im.name, "inHeadSpace": False, "leftOrRight": False,
         "position": [cfg.image_position[0] + 0.3 * i, cfg.image_position[1], cfg.image_position[2]],
         "rotation": [0.0, 0.0, 0.0], "scale": list(cfg.image_scale), "image": im.jpeg}
        for i, im in enumerate(fb.images)
    ]}


def image_datagrams(doc: dict, chunk: int) -> list[bytes]:
    """The app's image framing: total length (uint32 LE), chunk size (uint32 LE), chunks."""
    data = _bson().encode(doc)
    parts = [struct.pack("<I", len(data)), struct.pack("<I", chunk)]
    parts += [data[i:i + chunk] for i in range(0, len(data), chunk)]
    return parts


# ---------------------------------------------------------------------------- the adapter
class BoundedHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that serves at most ``max_connections`` connections at once
    (more are answered 503 and closed, counted), refuses addresses off the allow-list before
    starting a thread for them, and queues ``backlog`` connections in the kernel."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler: type, max_connections: int, backlog: int,
                 allowed: tuple[str, ...] = ()) -> None:
        self.request_queue_size = backlog  # read by server_activate (listen)
        self._slots = threading.BoundedSemaphore(max_connections)
        self.allowed = frozenset(allowed)
        self.refused_connections = 0  # over the connection cap
        self.refused_addresses = 0  # from an address off the allow-list
        super().__init__(address, handler)

    def process_request(self, request, client_address) -> None:  # noqa: ANN001 - socketserver API
        if self.allowed and client_address[0] not in self.allowed:
            self.refused_addresses += 1
            self._refuse(request, b"403 Forbidden")
            return
        if not self._slots.acquire(blocking=False):
            self.refused_connections += 1
            self._refuse(request, b"503 Service Unavailable")
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:  # noqa: ANN001
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def _refuse(self, request: socket.socket, status: bytes) -> None:
        try:
            request.settimeout(0.2)
            request.sendall(b"HTTP/1.0 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass
        self.shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # noqa: ANN001
        log.debug("quest http: error serving %s", client_address, exc_info=True)


class QuestAdapter:
    """HTTP server for the app's poses + UDP sender of its visualisation, bridged over ZMQ.

    The app's protocol has no encryption or authentication: anyone who can reach the port can
    move the robot. Listening on a non-loopback address therefore requires the headset
    allow-list ``headset_ip`` (connections from any other address are closed, 403, before a
    thread serves them); this is an address filter, not cryptography: use a dedicated network
    for the headset. Every connection has ``connection_timeout_s`` to send its request, at most
    ``max_connections`` are served at once, and a request that is not the app's message is
    answered 400 and counted (:attr:`bad_posts`), whatever it holds.
    """

    def __init__(self, upstream: str, feedback: str, config: QuestConfig | None = None, *,
                 keys: str | None = None, client_name: str = "headset",
                 calibration: tuple[np.ndarray, Rotation] | None = None, insecure: bool = False) -> None:
        """``insecure`` is accepted for the bridge's sake and does not lift the allow-list."""
        self.config = cfg = config or QuestConfig()
        allowed = cfg.allowed_ips
        if not is_loopback(f"tcp://{cfg.http_host}:0") and not allowed:
            raise ValueError(
                f"refusing to accept TactAR app poses on {cfg.http_host}:{cfg.http_port}: the app's HTTP "
                "protocol is unauthenticated, so off loopback the headset allow-list is required. Set "
                "quest.headset_ip=<the Quest's address>[,<another>] (only those may connect)")
        self.calibration = calibration or (np.zeros(3), Rotation.identity())
        self.posts = 0
        self.bad_posts = 0  # answered 400: not the app's message (counted whatever broke)
        self.stale_posts = 0
        self.refused_posts = 0  # from an address other than headset_ip (loopback listener)
        self.timed_out = 0  # connections closed after connection_timeout_s without a full request
        self.datagrams = 0
        self._last_ts = -math.inf
        self._headset_ip: str | None = allowed[0] if len(allowed) == 1 else None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        try:
            self._http = BoundedHTTPServer((cfg.http_host, cfg.http_port), self._handler(), cfg.max_connections,
                                           cfg.listen_backlog, allowed)
        except OSError as exc:
            raise ValueError(f"TactAR app adapter: cannot listen on {cfg.http_host}:{cfg.http_port} "
                             f"(quest.http_host / quest.http_port): {exc.strerror or exc}") from None
        self.http_port = self._http.server_address[1]
        self._udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.client = HeadsetClient(upstream, feedback, keys=keys, client_name=client_name)
        self._threads: list[threading.Thread] = []

    @property
    def refused_connections(self) -> int:
        """Connections closed unserved: over the cap (503) or off the allow-list (403)."""
        return self._http.refused_connections + self._http.refused_addresses

    def _handler(self):
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            timeout = adapter.config.connection_timeout_s  # per connection: StreamRequestHandler.setup

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                if self.path.rstrip("/") != "/unity":
                    self.send_error(404, "POST to /unity")
                    return
                try:
                    n = int(self.headers.get("Content-Length", "0"))
                except ValueError:
                    n = -1
                if not 0 <= n <= MAX_BODY_BYTES:
                    adapter.bad_posts += 1
                    self.send_error(413 if n > MAX_BODY_BYTES else 400, "bad Content-Length")
                    return
                try:
                    body = self.rfile.read(n)
                except TimeoutError:
                    adapter.timed_out += 1
                    self.close_connection = True
                    return
                status = adapter.handle_post(body, self.client_address[0])
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, fmt: str, *args) -> None:
                log.debug("quest http: " + fmt, *args)

            def log_error(self, fmt: str, *args) -> None:
                if fmt.startswith("Request timed out"):  # http.server's own read of the request line
                    adapter.timed_out += 1
                log.debug("quest http: " + fmt, *args)

        return Handler

    def handle_post(self, body: bytes, source_ip: str) -> int:
        """One app message -> one HeadsetPose to the bridge; returns the HTTP status (never raises)."""
        allowed = self.config.allowed_ips
        if allowed and source_ip not in allowed:
            self.refused_posts += 1
            return 403
        try:
            ts, head, left, right = parse_app_message(body)
        except AppMessageError as exc:
            self.bad_posts += 1
            log.debug("bad app message: %s", exc)
            return 400
        except Exception:  # whatever else a hostile body breaks: refused, counted, logged once
            self.bad_posts += 1
            log.warning("TactAR app message broke the parser (answered 400)", exc_info=True)
            return 400
        with self._lock:  # the HTTP server is threaded; the ZMQ socket is not thread-safe
            if ts <= self._last_ts:
                # the app POSTs asynchronously: an older message that arrives late is dropped
                if ts < self._last_ts - 5.0:  # app restarted (Unity time starts at 0): new session
                    self.client.session += 1
                    self.client.seq = 0
                else:
                    self.stale_posts += 1
                    return 200
            self._last_ts = ts
            self._headset_ip = source_ip  # feedback goes to the headset that posted last
            self.posts += 1
            self.client.send_pose(ts, head, left, right)
        return 200

    def start(self) -> QuestAdapter:
        _bson()  # fail here, with the install hint, rather than in the feedback thread
        for target, name in ((self._http.serve_forever, "quest-http"), (self._feedback_loop, "quest-udp")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        log.info("TactAR app adapter: POST http://%s:%d/unity, UDP feedback to ports %d-%d",
                 self.config.http_host, self.http_port, self.config.port_robot, self.config.port_force)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._threads:  # shutdown() waits for serve_forever, which runs only after start()
            self._http.shutdown()
        self._http.server_close()
        for t in self._threads:
            t.join(timeout=2.0)
        with self._lock:
            self.client.close()
        self._udp.close()

    def _send(self, port: int, data: bytes) -> None:
        if self._headset_ip is None:
            return
        try:
            self._udp.sendto(data, (self._headset_ip, port))
            self.datagrams += 1
        except OSError as exc:
            log.debug("udp send to %s:%d failed: %s", self._headset_ip, port, exc)

    def _feedback_loop(self) -> None:
        cfg = self.config
        last_log = None
        while not self._stop.is_set():
            with self._lock:
                fb = self.client.poll_feedback(0)
            if fb is None:
                time.sleep(0.002)
                continue
            self.publish(fb)
            text = fb.log[-1] if fb.log else fb.status
            if text != last_log:
                self._send(cfg.port_log, _bson().encode({"text": text}))
                last_log = text

    def publish(self, fb: P.Feedback) -> None:
        """Send one feedback message to the app as its BSON datagrams."""
        cfg = self.config
        self._send(cfg.port_robot, _bson().encode(robot_document(fb, cfg, self.calibration)))
        for doc in tactile_documents(fb):
            self._send(cfg.port_tactile, _bson().encode(doc))
        for doc in force_documents(fb, cfg):
            self._send(cfg.port_force, _bson().encode(doc))
        doc = image_document(fb, cfg)
        if doc is not None:
            for part in image_datagrams(doc, cfg.image_chunk):
                self._send(cfg.port_image, part)
