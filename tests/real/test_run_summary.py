"""Run summaries that explain themselves (issue 19, item 6): counts as shares of ticks with
their meaning, a warning when a limit shapes most of the motion, per policy in `tactkit eval`,
and a session summary when the teleop bridge is stopped with Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from tactkit.real.summary import describe_plans, describe_safety


def test_safety_counts_become_shares_with_meaning_and_a_warning():
    # what `tactkit control --robot sim:wipe` printed for DP, bare, over ~4500 ticks
    text = describe_safety({"gripper_width": 2883, "angular_rate": 2833, "linear_rate": 1012, "wrench": 34}, 4500)
    lines = text.splitlines()
    assert "4500 robot ticks" in lines[0]
    assert lines[1].split()[:2] == ["gripper_width", "64.1%"] and "clamped" in lines[1]
    assert lines[2].split()[:2] == ["angular_rate", "63.0%"] and "slowed" in lines[2]
    assert lines[3].split()[:2] == ["linear_rate", "22.5%"]
    assert lines[4].split()[:2] == ["wrench", "0.8%"] and "hold" in lines[4]
    # angular_rate shaped most of the motion; the gripper clamp is no motion limit
    assert lines[5].startswith("WARNING: angular_rate shaped most of the motion")
    assert "gripper_width" not in lines[5]


def test_quiet_run_says_so():
    assert describe_safety({}, 1000) == "safety filter: no limit changed a command (1000 ticks)"
    assert describe_safety({"linear_rate": 0}, 1000).startswith("safety filter: no limit")
    assert "WARNING" not in describe_safety({"linear_rate": 400}, 1000)
    with pytest.raises(ValueError):
        describe_safety({"wrench": 3}, 0)


def test_dropped_plan_steps_in_words():
    text = describe_plans(180, 45, 16)
    assert "45 plan steps dropped (1.6% of 2880 planned)" in text and "already in the past" in text
    assert describe_plans(10, 0) == "plans: 10 installed, no plan step arrived too late"


def test_eval_prints_summaries_per_policy():
    from tactkit.cli.eval import run_summaries
    from tactkit.experiments.evaluation import EpisodeResult

    def result(safety, dropped):
        return EpisodeResult(task="wipe", perturb="none", seed=0, score=0.5, success=False, raw_score=0.5,
                             plans=36, fast_steps=200, plan_steps_dropped=dropped, safety=safety, fault=None,
                             wall_s=1.0)

    text = run_summaries("wipe", {}, {"dp": [result({"linear_rate": 4000}, 3), result({"linear_rate": 3000}, 0)],
                                      "rdp": [result({}, 0)]}, 500.0)
    ticks = 2 * 9 * 500  # two 9 s wipe episodes at 500 Hz
    assert f"dp (2 episodes):\n  safety filter: share of {ticks} robot ticks" in text
    assert "linear_rate  77.8%" in text and "WARNING: linear_rate" in text
    assert "3 plan steps dropped" in text
    assert "rdp (1 episodes):\n  safety filter: no limit changed a command (4500 ticks)" in text


@pytest.mark.slow
def test_teleop_ctrl_c_prints_the_session_summary(tmp_path, capsys, monkeypatch, request):
    import _thread

    from tactkit.cli.main import main
    from tactkit.teleop.session import TeleopSession

    # Ctrl-C once the session runs (a fixed timer fired during start-up on a loaded machine)
    started = threading.Event()
    start = TeleopSession.start

    def start_and_signal(self):
        out = start(self)
        started.set()
        return out

    monkeypatch.setattr(TeleopSession, "start", start_and_signal)
    # a shell starting pytest in the background leaves SIGINT ignored (POSIX), and then
    # interrupt_main() does nothing: give this process the default Ctrl-C handler
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, previous))

    def interrupt() -> None:
        if started.wait(120):
            time.sleep(1.0)
            _thread.interrupt_main()

    threading.Thread(target=interrupt, daemon=True).start()
    store = tmp_path / "teleop.zarr"
    t0 = time.monotonic()
    rc = main(["teleop", "--robot", "sim:wipe", "--record", str(store), "--no-keyboard", "--scene", "none",
               "--upstream", "tcp://127.0.0.1:0", "--feedback", "tcp://127.0.0.1:0", "--duration", "120"])
    assert rc == 0 and started.is_set()
    assert time.monotonic() - t0 < 100  # stopped by the Ctrl-C, not by --duration
    out = capsys.readouterr()
    assert "stopping (Ctrl-C)" in out.err
    assert f"0 episodes stored this session in {store}" in out.out
    assert f"tactkit dataset info {store}" in out.out
    assert "headset stream lost 0 times" in out.out
