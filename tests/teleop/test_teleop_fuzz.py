"""Fuzzing a running bridge: every hostile message rejected for its exact reason, none moves the robot."""

import threading
import time

import numpy as np
from teleop_fakes import HOME, FakeArmRobot, hand

from tactkit.real.safety import SafetyFilter
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.fuzz import VALID, generate, send_all


def test_fuzz_5000_exact_counters_no_commands():
    robot = FakeArmRobot()
    # the per-peer budget off: this test counts every refusal by reason, so none may be dropped
    # undecoded for flooding (the budget has its own test, test_teleop_flood.py)
    bridge = TeleopBridge(robot, BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*",
                                              peer_rate_hz=0), safety=SafetyFilter())
    bridge.start()
    operator = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    stop = threading.Event()

    def operate():  # a legitimate operator, clutch released, throughout the attack
        t = 0.0
        while not stop.is_set():
            t += 0.01
            operator.send_pose(t, P.Pose(pos=(0, 0, 1.6), quat=(1, 0, 0, 0)), None, hand(grip=0.0))
            time.sleep(0.01)

    th = threading.Thread(target=operate)
    th.start()
    try:
        msgs, expected = generate(5000, seed=7)
        n_valid = sum(1 for _, r in msgs if r == VALID)
        assert set(expected) == set(P.REJECT_REASONS)  # every reason is exercised
        send_all(bridge.endpoints["upstream"], msgs)
        assert wait_until(lambda: bridge.rejects.total == sum(expected.values()), 30.0), bridge.rejects.as_dict()
        assert wait_until(lambda: bridge.stats.heartbeats == n_valid, 5.0), (bridge.stats.heartbeats, n_valid)
        time.sleep(0.1)
        assert bridge.rejects.as_dict() == dict(expected), (bridge.rejects.as_dict(), dict(expected), bridge.rejects.last)
        assert bridge.error is None
        assert robot.received == [], (len(robot.received), bridge.stats)  # nothing reached the robot
        np.testing.assert_allclose(robot.pose(), HOME)
        assert bridge.stats.ignored_other_operator == 0
    finally:
        stop.set()
        th.join()
    # the bridge still works for its operator after the attack
    t = 100.0
    st = bridge.stats
    for grip, x in ((0.0, 0.0), (1.0, 0.0), (1.0, 0.01)):
        t += 0.01
        seen, drains = st.poses_received, st.drains
        operator.send_pose(t, P.Pose(pos=(0, 0, 1.6), quat=(1, 0, 0, 0)), None, hand(grip=grip, pos=(x, 0, 0)))
        assert wait_until(lambda s=seen, d=drains, st=st: st.poses_received > s and st.drains > d, 2.0)
    assert wait_until(lambda: len(robot.received) >= 2, 2.0), (bridge.stats, bridge.rejects.as_dict())
    operator.close()
    bridge.stop()
