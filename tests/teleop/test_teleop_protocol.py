import math

import msgspec
import numpy as np
import pytest
from teleop_fakes import hand, pose_msg

from tactkit.teleop import protocol as P


def _raw(msg: dict) -> bytes:
    return msgspec.msgpack.encode(msg)


def _valid_dict(**over) -> dict:
    d = msgspec.to_builtins(pose_msg(1, right=hand(grip=0.5, index=0.2, buttons=0b10)))
    d.update(over)
    return d


def test_roundtrip_all_message_types():
    msgs = [
        pose_msg(3, right=hand(pos=(0.1, 0.2, 0.3), grip=1.0), left=hand(index=0.5)),
        P.Heartbeat(v=P.PROTOCOL_VERSION, session=1, seq=2, t=0.5),
        P.Control(v=P.PROTOCOL_VERSION, session=1, seq=3, t=0.6, command="start_episode", request_id=9,
                  note="first"),
    ]
    for m in msgs:
        assert P.decode_upstream(P.encode(m)) == m
    fb = P.Feedback(v=P.PROTOCOL_VERSION, seq=1, t=2.0, arms=[], status="ok",
                    images=[P.CameraFrame(name="wrist", jpeg=b"\xff\xd8", capture_time=1.0)])
    assert P.decode_downstream(P.encode(fb)) == fb


def test_valid_dict_is_accepted():
    msg = P.decode_upstream(_raw(_valid_dict()))
    assert isinstance(msg, P.HeadsetPose) and msg.right.buttons == 0b10


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\x00" * (P.MAX_UPSTREAM_BYTES + 1), "too_large"),
        (b"\xc1garbage", "malformed"),
        (b"", "malformed"),
        (_raw([1, 2, 3]), "malformed"),
        (_raw({"v": 1}), "malformed"),  # no type
        (_raw({"v": 1, "type": "teleport"}), "malformed"),  # unknown tag
        (_raw({k: v for k, v in _valid_dict().items() if k != "head"}), "malformed"),  # missing field
        (_raw(_valid_dict(seq="7")), "malformed"),  # wrong type
        (_raw(_valid_dict(head=[[0, 0], [1, 0, 0, 0]])), "malformed"),  # wrong length
        (_raw(_valid_dict(v=2)), "wrong_version"),
        (_raw(_valid_dict(v=0, head="anything")), "wrong_version"),
        (_raw(_valid_dict(t=math.nan)), "non_finite"),
        (_raw(_valid_dict(head=[[0.0, math.inf, 0.0], [1, 0, 0, 0]])), "non_finite"),
        (_raw(_valid_dict(head=[[0.0, 0.0, 0.0], [math.nan, 0, 0, 0]])), "non_finite"),
        (_raw(_valid_dict(t=-1.0)), "out_of_range"),
        (_raw(_valid_dict(seq=-1)), "out_of_range"),
        (_raw(_valid_dict(head=[[0.0, 0.0, 11.0], [1, 0, 0, 0]])), "out_of_range"),
        (_raw(_valid_dict(head=[[0.0, 0.0, 0.0], [2, 0, 0, 0]])), "out_of_range"),
    ],
)
def test_reject_reasons(data, reason):
    with pytest.raises(P.Rejected) as exc:
        P.decode_upstream(data)
    assert exc.value.reason == reason, exc.value


@pytest.mark.parametrize("field, value", [("index_trigger", 1.5), ("hand_trigger", -0.1), ("buttons", 32)])
def test_hand_out_of_range(field, value):
    d = _valid_dict()
    d["right"][field] = value
    with pytest.raises(P.Rejected) as exc:
        P.decode_upstream(_raw(d))
    assert exc.value.reason == "out_of_range"
    assert field in exc.value.detail


def test_hand_nan_trigger_is_non_finite():
    d = _valid_dict()
    d["right"]["index_trigger"] = math.nan
    with pytest.raises(P.Rejected) as exc:
        P.decode_upstream(_raw(d))
    assert exc.value.reason == "non_finite"


def test_sequence_guard_replay_and_order():
    g = P.SequenceGuard(window=4)
    assert g.check(pose_msg(0, session=1)) is True  # first message opens a session
    for s in (1, 2, 5):
        assert g.check(pose_msg(s, session=1)) is False
    with pytest.raises(P.Rejected, match="replayed"):
        g.check(pose_msg(5, session=1))
    with pytest.raises(P.Rejected, match="replayed"):
        g.check(pose_msg(2, session=1))
    with pytest.raises(P.Rejected, match="out_of_order"):
        g.check(pose_msg(4, session=1))
    with pytest.raises(P.Rejected, match="out_of_order"):
        g.check(pose_msg(6, session=1, t=0.0))  # timestamp went backwards
    # a rejected message does not advance the guard
    assert g.check(pose_msg(6, session=1)) is False
    # a new session (reconnect) starts over at any seq; the old one is retired
    assert g.check(pose_msg(0, session=2)) is True
    with pytest.raises(P.Rejected, match="replayed"):
        g.check(pose_msg(100, session=1))


def test_reject_counter_counts_per_reason():
    c = P.RejectCounter()
    for data in (b"", b"\x01", _raw(_valid_dict(v=3))):
        try:
            P.decode_upstream(data)
        except P.Rejected as r:
            c.add(r)
    assert c.as_dict()["malformed"] == 2 and c.as_dict()["wrong_version"] == 1 and c.total == 3


def test_arrow_field_geometry():
    from tactkit.teleop.feedback import FeedbackConfig, arrow_field, marker_rest_positions

    cfg = FeedbackConfig(pad_size_m=[0.06, 0.04], marker_grid=[7, 9], tactile_scale=3.0)
    rest = marker_rest_positions(63, cfg)
    assert rest.shape == (63, 3)
    np.testing.assert_allclose(rest.mean(axis=0), 0.0, atol=1e-12)  # centred on the pad
    assert rest[:, 0].max() < 0.03 and rest[:, 1].max() < 0.02
    offsets = np.zeros((63, 2), np.float32)
    offsets[10] = (0.1, -0.05)
    f = arrow_field("pad", offsets, 1.5, cfg)
    d = np.asarray(f.displaced) - np.asarray(f.rest)
    np.testing.assert_allclose(d[10], [0.006, -0.002, 0.0], atol=1e-9)
    assert np.abs(np.delete(d, 10, axis=0)).max() == 0.0
    assert f.scale == 3.0 and f.capture_time == 1.5
    assert P.decode_downstream(P.encode(P.Feedback(v=1, seq=0, t=0.0, arms=[], tactile=[f]))).tactile[0] == f
