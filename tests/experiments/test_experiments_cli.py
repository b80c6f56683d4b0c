"""``tactkit eval`` / ``tactkit control sim:wipe`` on trained checkpoints (tiny: a wiring test)."""

from __future__ import annotations

import json

import pytest


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    import torch

    from tactkit.experiments.quickstart import QuickstartConfig, train_policy
    from tactkit.sim.recording import record_demos

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("tiny_ckpts")
    record_demos("wipe", 2, out / "demos.zarr", perturb="none,after_contact", seed=0, progress=False, cameras=False,
                 episode_s=2.0)
    cfg = QuickstartConfig(train_steps=20)
    return {k: train_policy(k, out / "demos.zarr", out / k, cfg) for k in ("rdp", "dp")}


@pytest.mark.slow
def test_eval_and_control_cli_run_trained_checkpoints(tiny_checkpoints, tmp_path, capsys):
    from tactkit.cli.main import main

    out = tmp_path / "eval"
    argv = ["eval", "--policy", f"rdp={tiny_checkpoints['rdp']}", "--policy", f"dp={tiny_checkpoints['dp']}",
            "--task", "wipe", "--episodes", "2", "--perturb", "after_contact", "--out", str(out),
            "--workers", "2", "task.episode_s=1.5"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| rdp |" in text and "| dp |" in text and "after_contact" in text
    assert "| vs rdp (paired seeds) |" in text and "| dp |" in text.split("vs rdp")[1]  # paired differences
    assert "rdp: plan every 0.67 s" in text and "dp: plan every 1.25 s" in text  # the paper's schedule
    res = json.loads((out / "results.json").read_text())
    assert res["schedule"] == "paper"
    rdp_ep = res["policies"]["rdp"]["episodes"][0]
    assert rdp_ep["plans"] > 0 and rdp_ep["fast_steps"] > 2 * rdp_ep["plans"]  # tactile-rate decoding
    assert res["policies"]["dp"]["episodes"][0]["plans"] > 0
    assert {"ci", "limited_share", "max_force"} <= set(res["policies"]["dp"]["summary"]["after_contact"])
    assert main(["control", "--policy", str(tiny_checkpoints["dp"]), "--robot", "sim:wipe", "--duration", "1.0"]) == 0
    assert "score" in capsys.readouterr().out
    assert main(["eval", "--policy", str(tiny_checkpoints["dp"]), "--task", "nope"]) == 1
    assert "unknown task" in capsys.readouterr().err
    assert main(["eval", "--policy", str(tiny_checkpoints["dp"]), "--task", "wipe", "--schedule", "2.0"]) == 1
    assert "--schedule" in capsys.readouterr().err
