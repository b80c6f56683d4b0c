"""Recording through the bridge: episodes started / stopped / discarded by headset buttons,
every stream stamped and stored, per-episode metadata."""

import numpy as np
from teleop_fakes import FakeArmRobot, FakeSensor, hand

from tactkit.clock import WallClock
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.store import EpisodeStore
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.desk import DeskState
from tactkit.teleop.recording import RecordingSession, session_streams

A = 1 << P.BUTTON_LOWER
B = 1 << P.BUTTON_UPPER
FAST = SafetyConfig(max_linear_speed=1e5, max_angular_speed=1e5, max_linear_accel=1e9, max_angular_accel=1e9)


def test_buttons_drive_episodes_and_streams_are_recorded(tmp_path):
    robot = FakeArmRobot()
    sensors = {"tactile": FakeSensor("observation.tactile.left.marker_offset", np.zeros((63, 2), np.float32))}
    streams = session_streams(robot.arm_features(), sensors, state_rate_hz=50.0, command_rate_hz=60.0)
    store = EpisodeStore.create(tmp_path / "s.zarr", streams)
    rec = RecordingSession(store, robot.arm_names, sensors, WallClock(), task="demo",
                           metadata={"operator": "test"}, episode_metadata=lambda: {"score": 0.5})
    bridge = TeleopBridge(robot, BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*"),
                          safety=SafetyFilter(FAST), sensors=sensors, recorder=rec)
    bridge.start()
    c = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    t = [0.0]

    def send(grip=0.0, x=0.0, buttons=0):
        t[0] += 0.01
        st = bridge.stats
        seen, drains = st.poses_received, st.drains
        c.send_pose(t[0], P.Pose(pos=(0, 0, 1.6), quat=(1, 0, 0, 0)), None, hand(grip=grip, pos=(x, 0, 0), buttons=buttons))
        assert wait_until(lambda: st.poses_received > seen and st.drains > drains, 2.0)

    try:
        send()
        send(buttons=A)  # A pressed: start
        assert wait_until(lambda: rec.recording, 2.0)
        send(buttons=A)  # held: no second edge
        send(grip=1.0)
        for i in range(20):
            send(grip=1.0, x=0.001 * i)
        send(grip=0.0)
        send(buttons=A)  # A again: stop -> commit
        assert wait_until(lambda: not rec.recording, 2.0)
        rec.wait_idle()
        assert rec.episodes == 1
        send()
        send(buttons=A)  # start a second one ...
        send()
        send(buttons=B)  # ... and discard it with B
        assert wait_until(lambda: not rec.recording, 2.0)
        rec.wait_idle()
        assert rec.episodes == 1 and rec.discarded == 1
        assert "stored 1 discarded 1" in bridge.status_line()
        # the keyboard path (tactkit teleop's s / d keys) goes through bridge.request
        bridge.request("start_episode")
        assert wait_until(lambda: rec.recording, 2.0)
        bridge.request("discard_episode")
        assert wait_until(lambda: not rec.recording and rec.discarded == 2, 2.0)
    finally:
        c.close()
        bridge.stop()
        rec.close()
    s = EpisodeStore.open(tmp_path / "s.zarr")
    assert s.num_episodes == 1 and not s.verify()
    ep = s.episode(0)
    md = ep.metadata
    assert md["task"] == "demo" and md["operator"] == "test" and md["score"] == 0.5 and md["success"] is True
    act = ep.values("action.tcp_pose")
    assert len(act) == 21  # engage + 20 moves
    np.testing.assert_allclose(act[-1, 0] - act[0, 0], 0.019, atol=1e-6)
    assert len(ep.values("teleop.headset.right.wrist_pose")) >= 24
    inputs = ep.values("teleop.headset.right.inputs")
    assert inputs[:, 1].max() == 1.0  # hand trigger recorded
    assert len(ep.timestamps("observation.tactile.left.marker_offset")) > 0
    assert len(ep.timestamps("observation.state.tcp_pose")) > 0
    for key in ep.keys:
        assert np.all(np.diff(ep.timestamps(key)) >= 0), key


def test_desk_keys():
    d = DeskState(step=0.01)
    d.apply_key("w")
    d.apply_key("r")
    d.apply_key("a")
    np.testing.assert_allclose(d.hand, [0.36, -0.19, 1.11])
    assert d.apply_key(" ") is None and d.clutch and d.hand_msg().hand_trigger == 1.0
    assert d.apply_key("g") is None and d.hand_msg().index_trigger == 1.0
    assert d.apply_key("1") == ("start_episode", {})
    assert d.apply_key("3") == ("stop_episode", {"success": False})
    assert d.hand_msg().buttons == (1 << P.BUTTON_HAND) | (1 << P.BUTTON_INDEX)
