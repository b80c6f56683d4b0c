"""CLI level: keys, the bind refusal message, a short bridge run on the fake robot, dual-arm wiring,
one episode recorded through `tactkit teleop --sensors --record`."""

import threading
import time

import numpy as np
from teleop_fakes import HOME, FakeArmRobot, hand

from tactkit.cli.main import main
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.store import EpisodeStore
from tactkit.teleop import protocol as P
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge, wait_until
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.retarget import RetargetConfig
from tactkit.teleop.session import load_teleop_config


def test_keys_generate_cli(tmp_path, capsys):
    assert main(["keys", "generate", str(tmp_path / "k"), "--clients", "quest"]) == 0
    assert (tmp_path / "k" / "allowed" / "quest.key").is_file()
    assert main(["keys", "generate", str(tmp_path / "k")]) == 1  # never overwrites
    assert "refusing to overwrite" in capsys.readouterr().err


def test_teleop_refuses_public_bind_without_keys(capsys):
    assert main(["teleop", "--robot", "fake", "--upstream", "tcp://0.0.0.0:*", "--no-keyboard", "--duration", "1"]) == 1
    err = capsys.readouterr().err
    assert "refusing to bind tcp://0.0.0.0:* without CURVE" in err and "--insecure" in err


def test_teleop_runs_on_fake_robot(capsys):
    rc = main(["teleop", "--robot", "fake", "--upstream", "tcp://127.0.0.1:*", "--feedback", "tcp://127.0.0.1:*",
               "--no-keyboard", "--duration", "0.5", "bridge.retarget.mode=translation",
               "controller.safety.max_force=30", "robot.time_constant=0.05"])
    assert rc == 0
    assert "teleop: 0 commands; rejected 0 messages" in capsys.readouterr().out


def test_config_overrides_name_bad_keys():
    cfg = load_teleop_config("default", ["bridge.retarget.translation_scale=2", "quest.http_port=9000"])
    assert cfg.bridge.retarget.translation_scale == 2 and cfg.quest.http_port == 9000
    try:
        load_teleop_config("default", ["bridge.retarget.scale=2"])
    except ValueError as exc:
        assert "scale" in str(exc)
    else:
        raise AssertionError("unknown key accepted")


def test_dual_arm_through_the_bridge():
    robot = FakeArmRobot(("left", "right"))
    fast = SafetyConfig(max_linear_speed=1e5, max_angular_speed=1e5, max_linear_accel=1e9, max_angular_accel=1e9)
    bridge = TeleopBridge(robot, BridgeConfig(upstream="tcp://127.0.0.1:*", feedback="tcp://127.0.0.1:*",
                                              retarget=RetargetConfig(mode="dual")),
                          safety=SafetyFilter({"left": fast, "right": fast}))
    bridge.start()
    c = HeadsetClient(bridge.endpoints["upstream"], bridge.endpoints["feedback"])
    st = bridge.stats
    try:
        for i, (lg, rg, dz) in enumerate(((0, 0, 0), (1, 1, 0), (1, 1, 0.01), (0, 1, 0.03))):
            seen, drains = st.poses_received, st.drains
            c.send_pose(0.01 * (i + 1), P.Pose(pos=(0, 0, 1.6), quat=(1, 0, 0, 0)),
                        hand(grip=lg, pos=(0, 0.2, dz)), hand(grip=rg, pos=(0, -0.2, 2 * dz)))
            assert wait_until(lambda s=seen, d=drains: st.poses_received > s and st.drains > d, 2.0)
        # left released before the last pose: it stayed at +1 cm; right followed to +6 cm
        np.testing.assert_allclose(robot.pose("left")[:3], HOME[:3] + [0, 0, 0.01], atol=1e-9)
        np.testing.assert_allclose(robot.pose("right")[:3], HOME[:3] + [0, 0, 0.06], atol=1e-9)
        assert wait_until(lambda: c.poll_feedback(50) is not None, 3.0)
        assert [a.name for a in c.feedback.arms] == ["left", "right"]
        assert [a.engaged for a in c.feedback.arms] == [False, True]
    finally:
        c.close()
        bridge.stop()


def _endpoints(capsys, out: list[str], timeout: float = 20.0) -> tuple[str, str]:
    """The bridge's ephemeral endpoints, from the CLI's first line (``teleop: upstream U  feedback F``)."""
    assert wait_until(lambda: (out.append(capsys.readouterr().out), "feedback tcp://" in "".join(out))[1], timeout)
    words = "".join(out).split("teleop: upstream ", 1)[1].split()
    return words[0], words[2]


def test_teleop_with_a_sensor_rig_records(tmp_path, capsys):
    """An operator records one episode through the CLI (start, move with the hand trigger
    held, stop): the store holds it, with samples in every stream."""
    store = tmp_path / "rig.zarr"
    rc: list[int] = []
    cli = threading.Thread(target=lambda: rc.append(main([
        "teleop", "--robot", "fake", "--sensors", "synthetic_rig", "--record", str(store),
        "--upstream", "tcp://127.0.0.1:*", "--feedback", "tcp://127.0.0.1:*", "--no-keyboard",
        "--exit-after-episodes", "1", "--duration", "30"])))
    cli.start()
    out: list[str] = []
    try:
        upstream, feedback = _endpoints(capsys, out)
        c = HeadsetClient(upstream, feedback)
        head = P.Pose(pos=(0, 0, 1.6), quat=(1, 0, 0, 0))
        try:
            t = [0.02]

            def pose(grip: float, x: float = 0.0) -> None:
                t[0] += 0.02
                c.send_pose(t[0], head, hand(pos=(0, 0.2, 0)), hand(grip=grip, pos=(x, -0.2, 0)))
                time.sleep(0.02)

            # start / stop as acknowledged controls (the A button's edge rides the conflated pose
            # socket, which a loaded machine may coalesce)
            assert c.control("start_episode", t[0], timeout=10.0).ok
            # the clutch engages on a press seen after a release: release and press (the pose
            # socket is conflated, so repeat until the bridge reports the arm engaged), then
            # hold the trigger while the hand moves
            assert wait_until(lambda: (pose(0.0), pose(1.0), c.poll_feedback(0))[2] is not None
                              and c.feedback.arms[0].engaged, 10.0)
            for i in range(30):
                pose(1.0, 0.001 * i)
            assert c.control("stop_episode", t[0] + 0.02, timeout=10.0, success=True).ok
        finally:
            c.close()
    finally:
        cli.join(30.0)
    out.append(capsys.readouterr().out)
    assert not cli.is_alive() and rc == [0], "".join(out)
    assert f"teleop: 1 episodes stored this session in {store}" in "".join(out)

    s = EpisodeStore.open(store)
    assert s.num_episodes == 1 and not s.verify()
    ep = s.episode(0)
    assert {"observation.tactile.left.marker_offset", "observation.tactile.right.marker_offset",
            "observation.images.wrist", "action.tcp_pose", "teleop.headset.left.wrist_pose"} <= set(ep.keys)
    empty = [k for k in ep.keys if ep.length(k) == 0]
    assert not empty, f"streams without samples: {empty}"
    assert ep.metadata["success"] is True
    # >= 0.6 s between start and stop: the 30 Hz pads and the camera have ~18 frames each
    for k in ("observation.tactile.left.marker_offset", "observation.tactile.right.marker_offset",
              "observation.images.wrist"):
        assert ep.length(k) >= 5, (k, ep.length(k))
    assert main(["teleop", "--robot", "sim:wipe", "--sensors", "synthetic_rig", "--duration", "0.1"]) == 1
    assert "--sensors is for real robots" in capsys.readouterr().err
