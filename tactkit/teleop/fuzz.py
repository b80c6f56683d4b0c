"""A protocol fuzzer: hostile headset messages, each with the rejection reason it must get.

Used by the test suite (a few thousand messages) and ``benchmarks/teleop_fuzz.py`` (>= 100k)
against a running bridge. Every generated message is invalid for exactly one known reason,
so the bridge's per-reason counters can be checked for equality, not just "something was
rejected". To produce *replayed* and *out_of_order* messages the fuzzer keeps its own session
alive with valid heartbeats on even sequence numbers (heartbeats never move a robot): an
accepted ``seq`` sent again is a replay, an odd ``seq`` below the last one is out of order.

Categories: random bytes that are not a msgpack map, truncated messages, unknown tags,
missing / mistyped / extra-long fields, multi-frame messages (malformed); other protocol
versions (wrong_version); NaN / +-Inf in any float (non_finite); triggers, positions,
quaternion norms, buttons, negative seq / t out of range (out_of_range); above the size
limit but below ZMQ's hard limit (too_large).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator

import msgspec

from tactkit.teleop import protocol as P

VALID = "valid"  # a heartbeat the fuzzer needs to keep its session going


def _pose_dict(session: int, seq: int, t: float) -> dict:
    hand = {"wrist": [[0.1, 0.2, 0.3], [1.0, 0.0, 0.0, 0.0]], "index_trigger": 0.0, "hand_trigger": 0.0,
            "buttons": 0, "tracked": True}
    return {"type": "pose", "v": P.PROTOCOL_VERSION, "session": session, "seq": seq, "t": t,
            "head": [[0.0, 0.0, 1.6], [1.0, 0.0, 0.0, 0.0]], "left": None, "right": hand}


class HostileMessages:
    """Deterministic (seeded) stream of ``(frames, expected_reason)``; ``VALID`` for keep-alives."""

    def __init__(self, seed: int = 0, session: int = 123_456_789) -> None:
        self.rng = random.Random(seed)
        self.session = session
        self.seq = 0  # next even sequence number for a valid heartbeat
        self.accepted: list[int] = []
        self.t = 1.0

    def _heartbeat(self) -> bytes:
        seq = self.seq
        self.seq += 2
        self.t += 0.001
        self.accepted.append(seq)
        return msgspec.msgpack.encode({"type": "heartbeat", "v": P.PROTOCOL_VERSION, "session": self.session,
                                       "seq": seq, "t": self.t})

    def _valid_pose(self) -> dict:
        # a structurally valid pose with an unused odd seq that is *above* everything sent,
        # so that only the injected fault can reject it
        return _pose_dict(self.session, self.seq + 1, self.t + 0.0005)

    def __iter__(self) -> Iterator[tuple[list[bytes], str]]:
        while True:
            yield self.next()

    def next(self) -> tuple[list[bytes], str]:
        r = self.rng
        if not self.accepted or r.random() < 0.05:
            return [self._heartbeat()], VALID
        kind = r.choice(("malformed", "malformed", "wrong_version", "non_finite", "out_of_range",
                         "replayed", "out_of_order", "too_large"))
        return getattr(self, f"_{kind}")(), kind

    # ------------------------------------------------------------------ categories
    def _malformed(self) -> list[bytes]:
        r = self.rng
        choice = r.randrange(7)
        if choice == 0:  # random bytes that do not start a msgpack map
            first = bytes([r.choice([*range(0x00, 0x80), *range(0x90, 0xde), 0xc0, 0xc1, 0xc2, 0xc3])])
            return [first + r.randbytes(r.randrange(0, 200))]
        if choice == 1:  # truncated valid message
            data = msgspec.msgpack.encode(self._valid_pose())
            return [data[: r.randrange(1, len(data) - 1)]]
        d = self._valid_pose()
        if choice == 2:
            d["type"] = r.choice(["teleport", "", "POSE", "fire"])
        elif choice == 3:
            d.pop(r.choice(["head", "seq", "t", "session"]))
        elif choice == 4:
            field = r.choice(["seq", "t", "head", "right"])
            d[field] = r.choice(["7", [1, 2], {"x": 1}, True if field != "right" else 3])
        elif choice == 5:
            d["head"] = [[0.0, 0.0], [1.0, 0.0, 0.0, 0.0]]  # wrong tuple length
        else:
            return [b"extra", msgspec.msgpack.encode(d)]  # two frames
        return [msgspec.msgpack.encode(d)]

    def _wrong_version(self) -> list[bytes]:
        d = self._valid_pose()
        d["v"] = self.rng.choice([0, 2, 3, 99, -1, 2**31])
        if self.rng.random() < 0.5:
            d["head"] = "a future format"  # anything goes after the version
        return [msgspec.msgpack.encode(d)]

    def _non_finite(self) -> list[bytes]:
        d = self._valid_pose()
        bad = self.rng.choice([math.nan, math.inf, -math.inf])
        where = self.rng.randrange(5)
        if where == 0:
            d["t"] = bad
        elif where == 1:
            d["head"][0][self.rng.randrange(3)] = bad
        elif where == 2:
            d["right"]["wrist"][1][self.rng.randrange(4)] = bad
        elif where == 3:
            d["right"]["index_trigger"] = bad
        else:
            d["right"]["hand_trigger"] = bad
        return [msgspec.msgpack.encode(d)]

    def _out_of_range(self) -> list[bytes]:
        r = self.rng
        d = self._valid_pose()
        where = r.randrange(7)
        if where == 0:
            d["right"]["hand_trigger"] = r.choice([1.5, -0.2, 1e9])
        elif where == 1:
            d["right"]["index_trigger"] = r.choice([1.01, -1.0])
        elif where == 2:
            d["right"]["wrist"][0][r.randrange(3)] = r.choice([10.5, -50.0, 1e30])
        elif where == 3:
            d["head"][1] = [r.uniform(1.2, 5.0), 0.0, 0.0, 0.0]
        elif where == 4:
            d["right"]["buttons"] = r.choice([32, 255, 1 << 40])
        elif where == 5:
            d["seq"] = -r.randrange(1, 1000)
        else:
            d["t"] = -r.uniform(0.1, 100.0)
        return [msgspec.msgpack.encode(d)]

    def _replayed(self) -> list[bytes]:
        recent = self.accepted[-1000:]  # inside the bridge's replay window (1024)
        d = self._valid_pose()
        d["seq"] = self.rng.choice(recent)
        d["t"] = self.t + 0.0005  # only the seq is wrong
        if self.rng.random() < 0.5:
            d = {"type": "heartbeat", "v": P.PROTOCOL_VERSION, "session": self.session, "seq": d["seq"], "t": d["t"]}
        return [msgspec.msgpack.encode(d)]

    def _out_of_order(self) -> list[bytes]:
        d = self._valid_pose()
        if self.seq > 2 and self.rng.random() < 0.7:
            # an odd seq (never sent valid) below the last accepted one
            d["seq"] = 2 * self.rng.randrange(0, (self.seq - 2) // 2) + 1
        else:
            d["t"] = self.t - self.rng.uniform(0.01, 1.0)  # seq fine, time goes backwards
        return [msgspec.msgpack.encode(d)]

    def _too_large(self) -> list[bytes]:
        # stay 256 bytes under ZMQ's hard limit: with CURVE the cipher's framing counts against
        # MAXMSGSIZE, and a message over it drops the connection instead of being counted
        n = self.rng.randrange(P.MAX_UPSTREAM_BYTES + 1, P.ZMQ_MAX_MSG_BYTES - 256)
        return [self.rng.randbytes(n)]


def generate(n: int, seed: int = 0) -> tuple[list[tuple[list[bytes], str]], Counter]:
    """``n`` messages (keep-alives included) and the expected count per rejection reason."""
    gen = HostileMessages(seed)
    msgs = [gen.next() for _ in range(n)]
    expected = Counter(reason for _, reason in msgs if reason != VALID)
    return msgs, expected


def send_all(upstream: str, msgs: list[tuple[list[bytes], str]], *, curve=None) -> None:
    """Send every message to a bridge's upstream socket from one DEALER (blocking, none lost).

    ``curve``: optional ``(client KeyPair, server public key)`` for a CURVE bridge.
    """
    import zmq

    from tactkit.teleop.security import apply_client_curve

    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 5000
    if curve is not None:
        apply_client_curve(sock, *curve)
    sock.connect(upstream)
    try:
        for frames, _ in msgs:
            sock.send_multipart(frames)
    finally:
        sock.close()
