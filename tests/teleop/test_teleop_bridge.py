"""The bridge over real ZeroMQ sockets on 127.0.0.1 (ephemeral ports)."""

import time

import msgspec
import numpy as np
import pytest
from teleop_fakes import HOME, FakeArmRobot, hand

from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient

EPHEMERAL = dict(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*")
FAST = SafetyConfig(workspace_min=(0.0, -0.5, 0.0), workspace_max=(1.0, 0.5, 0.6),
                    max_linear_speed=1e5, max_angular_speed=1e5,
                    max_linear_accel=1e9, max_angular_accel=1e9)


@pytest.fixture
def rig():
    robot = FakeArmRobot()
    bridge = TeleopBridge(robot, BridgeConfig(**EPHEMERAL, stream_timeout_s=0.2), safety=SafetyFilter(FAST))
    bridge.start()
    clients = []

    def client(**kw):
        c = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"], **kw)
        clients.append(c)
        return c

    yield robot, bridge, client
    for c in clients:
        c.close()
    bridge.stop()
    assert bridge.error is None


def _head():
    return P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0))


class Operator:
    """Sends poses with an increasing headset time; waits until the bridge has each one.

    (The client conflates its pose queue, as a 60 Hz headset does; a test that fires poses
    back to back would otherwise see only the last.)
    """

    def __init__(self, client, bridge):
        self.c = client
        self.bridge = bridge
        self.t = 0.0

    def send(self, sync=True, **hand_kw):
        self.t += 0.01
        st = self.bridge.stats
        seen, drains = st.poses_received + st.ignored_other_operator, st.drains
        self.c.send_pose(self.t, _head(), None, hand(**hand_kw))
        if sync:  # handled, and its drain finished (so the next pose is not merged into it)
            assert wait_until(lambda: st.poses_received + st.ignored_other_operator > seen
                              and st.drains > drains, 2.0)


def test_pose_drives_robot_through_safety(rig):
    robot, bridge, client = rig
    op = Operator(client(), bridge)
    op.send(grip=0.0)
    op.send(grip=1.0, pos=(0.0, 0.0, 0.0))
    assert wait_until(lambda: bridge.stats.commands_sent >= 1, 2.0)
    op.send(grip=1.0, pos=(0.05, 0.0, 0.0))
    assert wait_until(lambda: abs(robot.pose()[0] - (HOME[0] + 0.05)) < 1e-9, 2.0)
    # beyond the workspace (z max 0.6): the safety filter clamps the target
    op.send(grip=1.0, pos=(0.05, 0.0, 0.5))
    assert wait_until(lambda: abs(robot.pose()[2] - 0.6) < 1e-9, 2.0)
    assert bridge.rejects.total == 0


def test_feedback_reaches_client(rig):
    robot, bridge, client = rig
    c = client()
    fb = None
    deadline = time.monotonic() + 3.0
    while fb is None and time.monotonic() < deadline:
        c.send_heartbeat(time.monotonic())
        fb = c.poll_feedback(100)
    assert fb is not None
    assert fb.arms[0].name == "arm"
    np.testing.assert_allclose(fb.arms[0].tcp.pos, HOME[:3])
    assert fb.forces[0].arm == "arm" and "engaged" in fb.status


def test_hostile_messages_counted_and_never_move_robot(rig):
    robot, bridge, client = rig
    hostile = client()
    good = pose = P.HeadsetPose(v=1, session=5, seq=0, t=0.0, head=_head(), right=hand(grip=0.0))
    hostile.send_raw(P.encode(good))
    pose = msgspec.structs.replace(good, seq=1, t=0.1, right=hand(grip=1.0))
    hostile.send_raw(P.encode(pose))  # engage (valid)
    assert wait_until(lambda: bridge.stats.commands_sent == 1, 2.0)
    bad = [
        (b"\x00" * 5000, "too_large"),
        (b"\xc1", "malformed"),
        (msgspec.msgpack.encode({"v": 9, "type": "pose"}), "wrong_version"),
        (P.encode(msgspec.structs.replace(pose, seq=2, right=hand(grip=1.0, pos=(float("nan"), 0, 0)))), "non_finite"),
        (P.encode(msgspec.structs.replace(pose, seq=3, right=hand(grip=1.0, pos=(0.0, 20.0, 0.0)))), "out_of_range"),
        (P.encode(msgspec.structs.replace(pose, right=hand(grip=1.0, pos=(0.3, 0, 0)))), "replayed"),
        (P.encode(msgspec.structs.replace(pose, seq=0, t=0.2, right=hand(grip=1.0, pos=(0.3, 0, 0)))), "replayed"),
    ]
    for data, _ in bad:
        hostile.send_raw(data)
    # a multi-frame message is malformed too
    hostile.dealer.send_multipart([b"a", b"b"])
    want = {r: 0 for r in P.REJECT_REASONS}
    for _, reason in bad:
        want[reason] += 1
    want["malformed"] += 1
    assert wait_until(lambda: bridge.rejects.total == sum(want.values()), 3.0)
    assert bridge.rejects.as_dict() == want
    assert bridge.stats.commands_sent == 1
    np.testing.assert_allclose(robot.pose(), HOME)


def test_stream_loss_holds_and_reconnect_requires_reengage(rig):
    robot, bridge, client = rig
    op = Operator(client(), bridge)
    op.send(grip=0.0)
    op.send(grip=1.0)
    op.send(grip=1.0, pos=(0.02, 0.0, 0.0))
    assert wait_until(lambda: abs(robot.pose()[0] - (HOME[0] + 0.02)) < 1e-9, 2.0)
    n = len(robot.received)
    # headset goes silent with the clutch held
    assert wait_until(lambda: bridge.stats.stream_losses == 1, 2.0)
    assert bridge.retargeter.engaged == {"arm": False}
    held = robot.pose()
    time.sleep(0.1)
    assert len(robot.received) == n  # nothing sent while the stream is lost: last target held
    # same client resumes with the clutch still held: robot must not move
    for i in range(5):
        op.send(grip=1.0, pos=(0.05 + 0.01 * i, 0.0, 0.0))
    assert wait_until(lambda: bridge.stats.poses_applied >= 8, 2.0)
    np.testing.assert_allclose(robot.pose(), held)
    # a second client while the operator is live is ignored
    op2 = Operator(client(), bridge)
    for i in range(5):
        op2.send(grip=1.0, pos=(0.1 * i, 0.0, 0.0))
    assert wait_until(lambda: bridge.stats.ignored_other_operator == 5, 2.0)
    # the operator goes away; the new client takes over with the trigger held: still no motion
    time.sleep(0.3)
    for i in range(5):
        op2.send(grip=1.0, pos=(0.1 * i, 0.0, 0.0))
    assert wait_until(lambda: bridge.stats.operator_switches == 1 and bridge.stats.poses_applied >= 13, 2.0)
    np.testing.assert_allclose(robot.pose(), held)
    # release, re-engage: moves relative to the new origin
    op2.send(grip=0.0, pos=(0.5, 0.0, 0.0))
    op2.send(grip=1.0, pos=(0.5, 0.0, 0.0))
    op2.send(grip=1.0, pos=(0.5, 0.0, 0.01))
    assert wait_until(lambda: abs(robot.pose()[2] - (held[2] + 0.01)) < 1e-9, 2.0)
    np.testing.assert_allclose(robot.pose()[:2], held[:2], atol=1e-12)


def test_latest_wins_after_stall():
    robot = FakeArmRobot()
    bridge = TeleopBridge(robot, BridgeConfig(**EPHEMERAL, stream_timeout_s=2.0), safety=SafetyFilter(FAST))
    bridge.bind()
    c = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    try:
        op = Operator(c, bridge)
        bridge.start()
        op.send(grip=0.0)
        op.send(grip=1.0)
        assert wait_until(lambda: bridge.stats.commands_sent == 1, 2.0)
        bridge._stop.set()  # stall the bridge loop
        bridge._thread.join()
        for i in range(300):
            op.send(sync=False, grip=1.0, pos=(0.0001 * i, 0.0, 0.0))
        time.sleep(0.2)
        bridge._stop.clear()
        bridge.start()
        # the newest pose wins ...
        assert wait_until(lambda: abs(robot.pose()[0] - (HOME[0] + 0.0299)) < 1e-12, 3.0)
        time.sleep(0.1)
        # ... and the 300 queued poses did not turn into a backlog of commands
        assert bridge.stats.commands_sent <= 3
        assert bridge.stats.poses_superseded >= bridge.stats.poses_received - 3
    finally:
        c.close()
        bridge.stop()


def test_control_without_recorder_is_refused_with_ack(rig):
    robot, bridge, client = rig
    c = client()
    ack = c.control("start_episode", t=0.1)
    assert ack.ok is False and "--record" in ack.message
    ack = c.control("status", t=0.2)
    assert ack.ok and "rejected 0" in ack.message
    ack = c.control("calibrate", t=0.3, calibration=P.Pose(pos=(0.0, 0.1, 0.0), quat=(1.0, 0.0, 0.0, 0.0)))
    assert ack.ok
    np.testing.assert_allclose(bridge.retargeter._t_bh, [0.0, 0.1, 0.0])


@pytest.mark.parametrize("flood", [False, True])
def test_drain_budget_cuts_a_flood_but_drains_one_peers_backlog_whole(flood):
    """The drain's time budget (here ~0: it has always run out) ends a drain that met messages of
    several peers, after the operator's pose is in, so its command goes out; a backlog of the
    operator's own poses is drained whole and only the newest becomes a command."""
    import zmq

    robot = FakeArmRobot()
    bridge = TeleopBridge(robot, BridgeConfig(**EPHEMERAL, stream_timeout_s=5.0), safety=SafetyFilter(FAST))
    bridge.bind()
    c = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    junk = zmq.Context.instance().socket(zmq.DEALER)
    junk.connect(bridge.endpoints["upstream"])
    try:
        op = Operator(c, bridge)
        bridge.start()
        op.send(grip=0.0)
        op.send(grip=1.0)
        assert wait_until(lambda: bridge.stats.commands_sent == 1, 2.0)
        bridge._stop.set()  # the loop stops: this test calls the drain itself
        bridge._thread.join()
        bridge.config.drain_budget_s = 1e-9
        for i in range(1, 51):
            op.send(sync=False, grip=1.0, pos=(0.0005 * i, 0.0, 0.0))
            if flood:
                junk.send(b"not a message")
            time.sleep(0.002)  # the client conflates: let each pose leave
        time.sleep(0.3)
        drains, sent = bridge.stats.drains, bridge.stats.commands_sent
        cut = bridge._drain()
        if flood:  # cut after the second message (round-robin: one of each peer), one command
            assert cut and bridge.stats.poses_received - 2 <= 1
            assert bridge.stats.commands_sent == sent + 1
            while bridge._drain():
                pass
            assert bridge.rejects.total == 50  # every junk message was handled in later drains
        else:  # one drain, one command: the newest pose
            assert not cut and bridge.stats.drains == drains + 1
            assert bridge.stats.commands_sent == sent + 1
            assert abs(robot.pose()[0] - (HOME[0] + 0.025)) < 1e-12
    finally:
        junk.close(linger=0)
        c.close()
        bridge.stop()
