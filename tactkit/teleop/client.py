"""Headset-side protocol client: what every headset (simulated, desk, Quest adapter) uses.

A DEALER socket sends poses, heartbeats and control requests to the bridge's ROUTER; a SUB
socket with ``CONFLATE`` receives feedback, so a slow headset always renders the newest
feedback and never works through a backlog.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import zmq

from tactkit.teleop import protocol as P
from tactkit.teleop.security import apply_client_curve, load_keypair, load_public_key

log = logging.getLogger(__name__)


class HeadsetClient:
    """Connects to a bridge. Not thread-safe: use it from one thread.

    Poses and heartbeats go through their own DEALER with ``CONFLATE``: while the bridge is
    stalled only the newest pose waits in the queue. Control requests use a second DEALER
    without conflation, so no request is ever overwritten. Each socket has its own sequence.
    """

    def __init__(self, upstream: str = "tcp://127.0.0.1:5555", feedback: str = "tcp://127.0.0.1:5556",
                 *, keys: str | Path | None = None, client_name: str = "headset",
                 session: int | None = None, context: zmq.Context | None = None) -> None:
        from tactkit.teleop.bridge import new_session_id

        self._ctx = context or zmq.Context.instance()
        self.session = new_session_id() if session is None else session
        self.seq = 0
        self.control_seq = 0
        self._request_id = 0
        self.pose_sock = self._ctx.socket(zmq.DEALER)
        self.dealer = self._ctx.socket(zmq.DEALER)
        self.sub = self._ctx.socket(zmq.SUB)
        for sock in (self.pose_sock, self.dealer, self.sub):
            sock.linger = 0
        self.pose_sock.conflate = True
        self.dealer.sndhwm = 100
        self.sub.conflate = True  # latest wins (single-frame messages only, which feedback is)
        self.sub.setsockopt(zmq.SUBSCRIBE, b"")
        if keys:
            d = Path(keys)
            mine = load_keypair(d / f"{client_name}.key_secret")
            server = load_public_key(d / "bridge.key")
            for sock in (self.pose_sock, self.dealer, self.sub):
                apply_client_curve(sock, mine, server)
        self.pose_sock.connect(upstream)
        self.dealer.connect(upstream)
        self.sub.connect(feedback)
        self.feedback: P.Feedback | None = None
        self.feedback_rx_time = 0.0
        self.dropped = 0  # sends refused by a full queue
        self._acks: dict[int, P.Ack] = {}

    def close(self) -> None:
        self.pose_sock.close(0)
        self.dealer.close(0)
        self.sub.close(0)

    def __enter__(self) -> HeadsetClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- sending
    def _next(self) -> tuple[int, int]:
        seq = self.seq
        self.seq += 1
        return self.session, seq

    def _send_pose_socket(self, data: bytes) -> bool:
        try:
            self.pose_sock.send(data, zmq.NOBLOCK)
            return True
        except zmq.Again:
            self.dropped += 1
            return False

    def send_raw(self, data: bytes) -> bool:
        """Send arbitrary bytes on the reliable (non-conflated) socket: for tests and fuzzing."""
        try:
            self.dealer.send(data, zmq.NOBLOCK)
            return True
        except zmq.Again:
            self.dropped += 1
            return False

    def send_pose(self, t: float, head: P.Pose, left: P.Hand | None, right: P.Hand | None) -> bool:
        session, seq = self._next()
        return self._send_pose_socket(P.encode(P.HeadsetPose(v=P.PROTOCOL_VERSION, session=session, seq=seq, t=t,
                                                    head=head, left=left, right=right)))

    def send_heartbeat(self, t: float) -> bool:
        session, seq = self._next()
        return self._send_pose_socket(P.encode(P.Heartbeat(v=P.PROTOCOL_VERSION, session=session, seq=seq, t=t)))

    def control(self, command: str, t: float, *, timeout: float = 2.0, **kwargs) -> P.Ack:
        """Send a :class:`~tactkit.teleop.protocol.Control` and wait for its ack."""
        seq = self.control_seq
        self.control_seq += 1
        self._request_id += 1
        rid = self._request_id
        msg = P.Control(v=P.PROTOCOL_VERSION, session=self.session, seq=seq, t=t, command=command,
                        request_id=rid, **kwargs)
        deadline = time.monotonic() + timeout
        # a DEALER with no (authenticated) peer blocks on send: wait for one, bounded
        if not self.dealer.poll(timeout * 1000, zmq.POLLOUT):
            raise TimeoutError(f"{command!r}: no connection to the bridge within {timeout} s")
        self.dealer.send(P.encode(msg), zmq.NOBLOCK)
        while rid not in self._acks:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.dealer.poll(remaining * 1000):
                raise TimeoutError(f"no ack for {command!r} (request {rid}) within {timeout} s")
            self._read_acks()
        return self._acks.pop(rid)

    def _read_acks(self) -> None:
        while True:
            try:
                data = self.dealer.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            try:
                msg = P.decode_downstream(data)
            except P.Rejected as rej:
                log.warning("bad message from bridge: %s", rej)
                continue
            if isinstance(msg, P.Ack):
                self._acks[msg.request_id] = msg

    # ----------------------------------------------------------------- receiving
    def poll_feedback(self, timeout_ms: float = 0) -> P.Feedback | None:
        """Newest feedback if a new one arrived (waits up to ``timeout_ms``), else None."""
        if not self.sub.poll(timeout_ms):
            return None
        try:
            data = self.sub.recv(zmq.NOBLOCK)
        except zmq.Again:
            return None
        try:
            msg = P.decode_downstream(data)
        except P.Rejected as rej:
            log.warning("bad feedback from bridge: %s", rej)
            return None
        if not isinstance(msg, P.Feedback):
            return None
        self.feedback = msg
        self.feedback_rx_time = time.monotonic()
        return msg
