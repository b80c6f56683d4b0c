"""The headset <-> bridge wire protocol: versioned, typed msgspec Structs in msgpack.

Every message is a msgpack map with ``v`` (protocol version) and ``type`` (the tag). Decoding
happens in two steps, so that a message from another protocol version is reported as
``wrong_version`` rather than as a schema error: first a header (``v``, ``type``) is read,
then the full Struct for that tag. Values are then checked for NaN/Inf and ranges. No
pickle, no eval: a message is data.

headset -> bridge (DEALER -> ROUTER):
    :class:`HeadsetPose` (pose stream, latest wins), :class:`Heartbeat`, :class:`Control`.
bridge -> headset:
    :class:`Ack` (ROUTER -> the requesting DEALER), :class:`Feedback` (PUB -> SUB, latest wins).

See ``docs/teleop-protocol.md`` for the full description.
"""

from __future__ import annotations

import math
from typing import Literal

import msgspec

PROTOCOL_VERSION = 1

#: own limit on a headset -> bridge message (bytes); ZMQ MAXMSGSIZE is the hard stop above it
MAX_UPSTREAM_BYTES = 4096
#: hard limit for ZMQ_MAXMSGSIZE on the bridge's upstream socket (peer is disconnected above it)
ZMQ_MAX_MSG_BYTES = 65536
#: limit on a bridge -> headset feedback message (camera frames included)
MAX_FEEDBACK_BYTES = 4 * 1024 * 1024

#: positions farther than this from the headset origin are rejected (m)
MAX_ABS_POSITION = 10.0
#: a quaternion whose norm differs from 1 by more than this is rejected
QUAT_NORM_TOL = 0.05

# button bit positions (same order as the TactAR app's buttonState array)
BUTTON_UPPER = 0  # B (right) / Y (left)
BUTTON_LOWER = 1  # A (right) / X (left)
BUTTON_THUMBSTICK = 2
BUTTON_INDEX = 3  # index trigger pressed
BUTTON_HAND = 4  # hand (grip) trigger pressed
NUM_BUTTONS = 5

Vec3 = tuple[float, float, float]
Quat = tuple[float, float, float, float]  # w, x, y, z


class Pose(msgspec.Struct, array_like=True):
    """Position (m) and unit quaternion (w, x, y, z)."""

    pos: Vec3
    quat: Quat


class Hand(msgspec.Struct):
    """One controller: wrist pose in the headset frame, triggers in [0, 1], button bitmask."""

    wrist: Pose
    index_trigger: float
    hand_trigger: float
    buttons: int = 0  # bit i set = button i pressed, see BUTTON_* constants
    tracked: bool = True


class HeadsetPose(msgspec.Struct, tag_field="type", tag="pose"):
    """headset -> bridge, at the headset's rate (e.g. 60-90 Hz). Latest wins."""

    v: int
    session: int  # random per client start; a new value = a new connection
    seq: int  # strictly increasing within a session (shared by all upstream messages)
    t: float  # headset timestamp (s, headset clock)
    head: Pose
    left: Hand | None = None
    right: Hand | None = None


class Heartbeat(msgspec.Struct, tag_field="type", tag="heartbeat"):
    """headset -> bridge when there is no pose to send; keeps the session alive."""

    v: int
    session: int
    seq: int
    t: float


ControlCommand = Literal["calibrate", "start_episode", "stop_episode", "discard_episode", "status"]


class Control(msgspec.Struct, tag_field="type", tag="control"):
    """headset -> bridge session control; the bridge answers with an :class:`Ack`."""

    v: int
    session: int
    seq: int
    t: float
    command: ControlCommand
    request_id: int
    note: str = ""
    success: bool = True  # for stop_episode: was the demonstration successful
    calibration: Pose | None = None  # for calibrate: headset frame expressed in the robot base


class Ack(msgspec.Struct, tag_field="type", tag="ack"):
    """bridge -> headset: result of one :class:`Control` (matched by ``request_id``)."""

    v: int
    request_id: int
    ok: bool
    message: str = ""
    episodes: int = 0  # episodes committed so far
    recording: bool = False


class ArmFeedback(msgspec.Struct):
    name: str
    tcp: Pose  # robot base frame
    gripper_width: float  # m
    engaged: bool  # clutch engaged for this arm


class ArrowField(msgspec.Struct):
    """Tactile marker field of one sensor, in the sensor frame (m): rest -> displaced."""

    sensor: str
    rest: list[Vec3]
    displaced: list[Vec3]
    scale: float  # display scale the headset applies to the displacement
    capture_time: float  # s, bridge clock domain


class ForceArrow(msgspec.Struct):
    """Force at one arm's wrist as an arrow from the TCP (robot base frame, m and N)."""

    arm: str
    start: Vec3
    force: Vec3  # N
    scale: float  # m per N for display
    capture_time: float


class CameraFrame(msgspec.Struct):
    name: str
    jpeg: bytes
    capture_time: float


class Feedback(msgspec.Struct, tag_field="type", tag="feedback"):
    """bridge -> headset at the feedback rate. Latest wins (SUB socket with CONFLATE)."""

    v: int
    seq: int
    t: float  # bridge clock when sent
    arms: list[ArmFeedback]
    tactile: list[ArrowField] = []
    forces: list[ForceArrow] = []
    status: str = ""
    log: list[str] = []
    images: list[CameraFrame] = []
    recording: bool = False
    episodes: int = 0


Upstream = HeadsetPose | Heartbeat | Control
Downstream = Ack | Feedback


class _Header(msgspec.Struct):
    v: int
    type: str


REJECT_REASONS = (
    "too_large",
    "malformed",
    "wrong_version",
    "non_finite",
    "out_of_range",
    "replayed",
    "out_of_order",
)


class Rejected(Exception):
    """A message was refused; ``reason`` is one of :data:`REJECT_REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


_header_decoder = msgspec.msgpack.Decoder(_Header)
_upstream_decoder = msgspec.msgpack.Decoder(Upstream)
_downstream_decoder = msgspec.msgpack.Decoder(Downstream)
def _enc_hook(obj):
    # numpy scalars (np.float64 from maths on poses) encode as plain numbers
    item = getattr(obj, "item", None)
    if item is not None and getattr(obj, "shape", None) == ():
        return item()
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")


_encoder = msgspec.msgpack.Encoder(enc_hook=_enc_hook)


def encode(msg: msgspec.Struct) -> bytes:
    """msgpack bytes of a protocol message."""
    return _encoder.encode(msg)


def _decode(data: bytes, decoder: msgspec.msgpack.Decoder, max_bytes: int):
    if len(data) > max_bytes:
        raise Rejected("too_large", f"{len(data)} bytes > limit {max_bytes}")
    try:
        header = _header_decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Rejected("malformed", f"no valid header: {exc}") from None
    if header.v != PROTOCOL_VERSION:
        raise Rejected("wrong_version", f"protocol version {header.v}, bridge speaks {PROTOCOL_VERSION}")
    try:
        return decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise Rejected("malformed", f"{header.type!r}: {exc}") from None


def _check_finite(name: str, values) -> None:
    for x in values:
        if not math.isfinite(x):
            raise Rejected("non_finite", f"{name} contains {x}")


def _check_pose(name: str, pose: Pose) -> None:
    _check_finite(f"{name}.pos", pose.pos)
    _check_finite(f"{name}.quat", pose.quat)
    for x in pose.pos:
        if abs(x) > MAX_ABS_POSITION:
            raise Rejected("out_of_range", f"{name}.pos component {x} beyond ±{MAX_ABS_POSITION} m")
    norm = math.sqrt(sum(q * q for q in pose.quat))
    if abs(norm - 1.0) > QUAT_NORM_TOL:
        raise Rejected("out_of_range", f"{name}.quat norm {norm:.4f} is not 1 ± {QUAT_NORM_TOL}")


def _check_unit(name: str, x: float) -> None:
    _check_finite(name, (x,))
    if not 0.0 <= x <= 1.0:
        raise Rejected("out_of_range", f"{name}={x} outside [0, 1]")


def _check_common(msg: HeadsetPose | Heartbeat | Control) -> None:
    _check_finite("t", (msg.t,))
    if msg.t < 0:
        raise Rejected("out_of_range", f"t={msg.t} is negative")
    if not 0 <= msg.seq < 2**63:
        raise Rejected("out_of_range", f"seq={msg.seq} outside [0, 2^63)")
    if not 0 <= msg.session < 2**63:
        raise Rejected("out_of_range", f"session={msg.session} outside [0, 2^63)")


def decode_upstream(data: bytes, max_bytes: int = MAX_UPSTREAM_BYTES) -> Upstream:
    """Decode and validate one headset -> bridge message; raises :class:`Rejected`."""
    msg = _decode(data, _upstream_decoder, max_bytes)
    _check_common(msg)
    if isinstance(msg, HeadsetPose):
        _check_pose("head", msg.head)
        for side in ("left", "right"):
            hand = getattr(msg, side)
            if hand is None:
                continue
            _check_pose(f"{side}.wrist", hand.wrist)
            _check_unit(f"{side}.index_trigger", hand.index_trigger)
            _check_unit(f"{side}.hand_trigger", hand.hand_trigger)
            if not 0 <= hand.buttons < (1 << NUM_BUTTONS):
                raise Rejected("out_of_range", f"{side}.buttons={hand.buttons} has bits beyond {NUM_BUTTONS}")
    elif isinstance(msg, Control):
        if msg.request_id < 0 or msg.request_id >= 2**63:
            raise Rejected("out_of_range", f"request_id={msg.request_id} outside [0, 2^63)")
        if len(msg.note) > 1024:
            raise Rejected("out_of_range", f"note is {len(msg.note)} chars > 1024")
        if msg.calibration is not None:
            _check_pose("calibration", msg.calibration)
    return msg


def decode_downstream(data: bytes, max_bytes: int = MAX_FEEDBACK_BYTES) -> Ack | Feedback:
    """Decode one bridge -> headset message (for clients); raises :class:`Rejected`."""
    return _decode(data, _downstream_decoder, max_bytes)


class SequenceGuard:
    """Per-client session and sequence check: rejects replayed and out-of-order messages.

    Within a session ``seq`` must strictly increase. A ``seq`` equal to one of the last
    ``window`` accepted is *replayed*; any other ``seq`` not above the last is *out of order*.
    A new ``session`` value starts a new connection (the previous session is retired; a
    message from a retired session is *replayed*). Headset timestamps must not go backwards
    within a session (*out_of_order*).
    """

    def __init__(self, window: int = 1024, max_retired: int = 4096) -> None:
        self.window = window
        self.max_retired = max_retired
        self.session: int | None = None
        self.last_seq = -1
        self.last_t = -math.inf
        self._recent: dict[int, None] = {}  # insertion-ordered set
        self._retired: dict[int, None] = {}

    def check(self, msg: HeadsetPose | Heartbeat | Control) -> bool:
        """Raise :class:`Rejected` or accept; returns True when ``msg`` opened a new session."""
        new_session = False
        if msg.session != self.session:
            if msg.session in self._retired:
                raise Rejected("replayed", f"session {msg.session} was already closed")
            new_session = True
        elif msg.seq in self._recent:
            raise Rejected("replayed", f"seq {msg.seq} already received")
        elif msg.seq <= self.last_seq:
            raise Rejected("out_of_order", f"seq {msg.seq} after {self.last_seq}")
        elif msg.t < self.last_t:
            raise Rejected("out_of_order", f"t {msg.t} before {self.last_t}")
        if new_session:
            if self.session is not None:
                self._retired[self.session] = None
                if len(self._retired) > self.max_retired:
                    self._retired.pop(next(iter(self._retired)))
            self.session = msg.session
            self._recent.clear()
        self.last_seq = msg.seq
        self.last_t = msg.t
        self._recent[msg.seq] = None
        if len(self._recent) > self.window:
            self._recent.pop(next(iter(self._recent)))
        return new_session


class RejectCounter:
    """Counts rejected messages per reason; ``total`` and ``as_dict`` for status and tests."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(REJECT_REASONS, 0)
        self.last: Rejected | None = None

    def add(self, rej: Rejected) -> None:
        self.counts[rej.reason] += 1
        self.last = rej

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(self.counts)
