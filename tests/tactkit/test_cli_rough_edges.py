"""The CLI's rough edges (issue 19, item 7): each seen by a new user, each checked here."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

import numpy as np
import pytest

from tactkit.cli.main import build_parser, main

PY = [sys.executable, "-m", "tactkit.cli.main"]


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_train_policy_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "dp", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "--data" in out and "--print-config" in out and "size=tiny|small|paper" in out


def test_help_texts_have_no_rst_markup(capsys):
    for p in _parsers(build_parser()):
        texts = [p.description or "", p.epilog or ""] + [a.help or "" for a in p._actions if isinstance(a.help, str)]
        for text in texts:
            assert "``" not in text and ":mod:`" not in text, (p.prog, text)
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    assert "make demo runs this" in capsys.readouterr().out


def test_version(capsys):
    import tactkit

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"tactkit {tactkit.__version__}"


def test_key_error_without_stray_quotes(capsys):
    assert main(["eval", "--policy", "x", "--task", "wip"]) == 1
    assert capsys.readouterr().err == "error: unknown task 'wip'; known: lift, peel, wipe\n"


def test_sim_import_prints_nothing():
    r = subprocess.run([sys.executable, "-c", "import tactkit.sim.world, pybullet; print('ok')"],
                       capture_output=True, text=True, timeout=60)
    assert r.stdout == "ok\n" and r.stderr == ""


def test_missing_robot_sdk_is_one_line_and_debug_shows_the_traceback(capsys):
    import importlib.util

    if importlib.util.find_spec("flexivrdk") is not None:  # no wheel for every Python; CI has none
        pytest.skip("flexivrdk is installed")
    args = ["teleop", "--robot", "flexiv", "serial_number=Rizon4-000000", "--no-keyboard", "--duration", "0.1"]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "flexivrdk" in err and "tactkit[flexiv]" in err
    with pytest.raises(ImportError):
        main(["--debug", *args])


def test_unexpected_error_is_one_line_naming_debug(tmp_path, monkeypatch, capsys):
    from tactkit.store import EpisodeStore

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(EpisodeStore, "open", boom)
    assert main(["dataset", "info", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "error: RuntimeError: disk on fire (run with --debug for the traceback)\n"
    with pytest.raises(RuntimeError):
        main(["--debug", "dataset", "info", str(tmp_path)])


def test_one_spelling_for_robot_settings_in_control_and_teleop():
    from tactkit.cli.teleop import split_overrides
    from tactkit.real.setup import load_robot_setup

    teleop, robot = split_overrides(["bridge.retarget.translation_scale=1.5", "host=10.0.0.2",
                                     "controller.safety.max_force=30", "quest.http_port=9000"])
    assert teleop == ["bridge.retarget.translation_scale=1.5", "quest.http_port=9000"]
    assert robot == ["host=10.0.0.2", "controller.safety.max_force=30"]
    for spelling in (["host=10.0.0.2"], ["robot.host=10.0.0.2"]):
        _, robot = split_overrides(spelling)
        setup = load_robot_setup("franka", robot)
        assert setup.robot.host == "10.0.0.2"


def test_size_error_lists_sizes_not_policies(capsys):
    assert main(["train", "dp", "--data", ".", "--print-config", "size=huge"]) == 1
    err = capsys.readouterr().err
    assert "paper, small, tiny" in err and "beast" not in err


def test_config_docstring_example_runs():
    import tactkit.config as config_module
    from tactkit.config import find_config, load_config  # noqa: F401  (used by the example)
    from tactkit.policies.config import PolicyConfig  # noqa: F401

    line = next(ln.strip() for ln in config_module.__doc__.splitlines() if "load_config(" in ln)
    scope = {"load_config": load_config, "find_config": find_config, "PolicyConfig": PolicyConfig}
    exec(line, scope)
    assert scope["cfg"].lr == 3e-4 and scope["cfg"].beast.d_model == 128


def test_desk_key_help_lists_the_keys():
    from tactkit.teleop.desk import key_help

    text = key_help()
    for needle in ("w/s", "clutch", "gripper", "start episode", "discard", "quit"):
        assert needle in text
    assert "``" not in text


def test_teleop_seed_is_the_first_episodes_seed():
    from tactkit.teleop.simrig import SimRig

    rig = SimRig("wipe", seed=5, cameras=False)
    try:
        rig.reset_scene()
        assert rig.episode_metadata()["sim_seed"] == 5
        rig.reset_scene()
        assert rig.episode_metadata()["sim_seed"] == 6
    finally:
        rig.close()


def test_closed_pipe_is_quiet(tmp_path):
    from tactkit.store import EpisodeStore, StreamSpec

    store = EpisodeStore.create(tmp_path / "s.zarr", {"observation.wrench": StreamSpec("float32", (6,), 10.0)})
    with store.begin_episode(task="t") as rec:
        rec.append_many("observation.wrench", np.arange(3.0), np.zeros((3, 6), np.float32))
    proc = subprocess.Popen([*PY, "dataset", "info", str(tmp_path / "s.zarr")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdout.close()  # like `| head` that has read what it wanted
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 141
    assert "BrokenPipe" not in err and "Traceback" not in err, err


def test_shell_completion(tmp_path):
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": "tactkit datas", "COMP_POINT": "13",
           "_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_STDOUT_FILENAME": str(out)}
    r = subprocess.run([*PY], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert out.read_text().split() == ["dataset"]
