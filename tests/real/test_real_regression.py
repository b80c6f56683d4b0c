"""Trained checkpoints through the controller: the CLIs end to end, and the RDP-vs-DP regression.

``trained(demos, steps)`` records scripted-expert demos of ``wipe`` (with cameras) and trains
RDP (tactile fast signal) and DP on them, one torch thread. The CLI test uses a tiny run (a
smoke test of ``tactkit eval`` / ``tactkit control sim:wipe`` / ``tactkit demo`` wiring); the
regression (RDP beats DP under after-contact perturbation, shared seeds) needs policies that
actually wipe and is opt-in: ``TACTKIT_REGRESSION=1``. Measured on 2 busy cores, 12 demos and
1000 steps per stage gave RDP 0.02 and DP 0.03 (expert 0.99; the expert's actions replayed
through the same controller score 1.0), so it does not hold yet - see docs/controller.md.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest


def _train(out, demos: int, steps: int) -> dict:
    import torch

    from tactkit.real.quickstart import QuickstartConfig, tactile_key, train_policy
    from tactkit.sim.recording import record_demos

    torch.set_num_threads(1)  # tiny nets: one thread is fastest, and robust on a busy CI machine
    data = out / "demos.zarr"
    record_demos("wipe", demos, data, perturb="mixed", seed=0, progress=False, cameras=True)
    cfg = QuickstartConfig(train_steps=steps, size="tiny")
    tactile = tactile_key("wipe")
    return {k: train_policy(k, data, out / k, cfg, tactile) for k in ("rdp", "dp")}


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    return _train(tmp_path_factory.mktemp("tiny_ckpts"), demos=2, steps=20)


@pytest.mark.slow
def test_eval_and_control_cli_run_trained_checkpoints(tiny_checkpoints, tmp_path, capsys):
    from tactkit.cli.main import main

    out = tmp_path / "eval"
    argv = ["eval", "--policy", f"rdp={tiny_checkpoints['rdp']}", "--policy", f"dp={tiny_checkpoints['dp']}",
            "--task", "wipe", "--episodes", "1", "--perturb", "after_contact", "--out", str(out),
            "task.episode_s=1.5"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "| rdp |" in text and "| dp |" in text and "after_contact" in text
    res = json.loads((out / "results.json").read_text())
    rdp_ep = res["policies"]["rdp"]["episodes"][0]
    assert rdp_ep["plans"] > 0 and rdp_ep["fast_steps"] > 2 * rdp_ep["plans"]  # tactile-rate decoding
    assert res["policies"]["dp"]["episodes"][0]["plans"] > 0
    assert main(["control", "--policy", str(tiny_checkpoints["dp"]), "--robot", "sim:wipe", "--duration", "1.0"]) == 0
    assert "score" in capsys.readouterr().out
    assert main(["eval", "--policy", str(tiny_checkpoints["dp"]), "--task", "nope"]) == 1
    assert "unknown task" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.timeout(3600)
@pytest.mark.skipif(os.environ.get("TACTKIT_REGRESSION") != "1", reason="opt-in (TACTKIT_REGRESSION=1): does not hold yet")
def test_briefly_trained_rdp_beats_dp_under_after_contact_perturbation(tmp_path):
    from tactkit.policies.inference import load_policy
    from tactkit.real.evaluation import EvalSettings, evaluate_policy
    from tactkit.real.setup import load_robot_setup

    ckpts = _train(tmp_path, demos=int(os.environ.get("TACTKIT_REGRESSION_DEMOS", 12)),
                   steps=int(os.environ.get("TACTKIT_REGRESSION_STEPS", 1000)))
    settings = EvalSettings(load_robot_setup("sim", ["inference_latency=0.1"]).controller)
    scores = {}
    for kind, ckpt in ckpts.items():
        results = evaluate_policy("wipe", load_policy(ckpt), 3, ("after_contact",), settings, seed0=1000)
        scores[kind] = np.array([r.score for r in results])
    assert scores["rdp"].mean() > scores["dp"].mean(), scores
