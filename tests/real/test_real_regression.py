"""Trained checkpoints through the controller: the CLIs end to end, and the RDP-vs-DP regression.

``_train`` records scripted-expert demos of ``wipe`` and trains RDP (tactile fast signal) and
DP on them, one torch thread. The CLI test uses a tiny run with cameras (a smoke test of
``tactkit eval`` / ``tactkit control sim:wipe`` / ``tactkit demo`` wiring). The regression uses
the CI-sized setting of docs/controller.md: the nominal scene every seed (``scene_variation=0``),
demos from the force-feedback expert (``expert_feedback=force``, modes none/after_contact), TCP
pose + touch observations (no camera), 12 demos, 600 steps per stage; RDP (planner sees the pad,
decoder reacts to it) must beat DP (TCP pose only) under after-contact perturbation on shared
seeds. Measured: RDP 0.12/0.22/0.12 vs DP 0.04/0.05/0.03 (seeds 1000-1002).
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

REGRESSION_TASK = {"scene_variation": 0.0, "expert_feedback": "force"}


def _train(out, demos: int, steps: int, cameras: bool = True, perturb: str = "mixed", task: dict | None = None) -> dict:
    import torch

    from tactkit.real.quickstart import QuickstartConfig, tactile_key, train_policy
    from tactkit.sim.recording import record_demos

    torch.set_num_threads(1)  # tiny nets: one thread is fastest, and robust on a busy CI machine
    data = out / "demos.zarr"
    record_demos("wipe", demos, data, perturb=perturb, seed=0, progress=False, cameras=cameras, **(task or {}))
    cfg = QuickstartConfig(train_steps=steps, size="tiny", cameras=cameras)
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
@pytest.mark.timeout(1200)
def test_briefly_trained_rdp_beats_dp_under_after_contact_perturbation(tmp_path):
    from tactkit.policies.inference import load_policy
    from tactkit.real.evaluation import EvalSettings, evaluate_policy
    from tactkit.real.setup import load_robot_setup

    ckpts = _train(tmp_path, demos=int(os.environ.get("TACTKIT_REGRESSION_DEMOS", 12)),
                   steps=int(os.environ.get("TACTKIT_REGRESSION_STEPS", 600)), cameras=False,
                   perturb="none,after_contact", task=REGRESSION_TASK)
    settings = EvalSettings(load_robot_setup("sim", ["inference_latency=0.1"]).controller,
                            {"scene_variation": 0.0})
    scores = {}
    for kind, ckpt in ckpts.items():
        results = evaluate_policy("wipe", load_policy(ckpt), 3, ("after_contact",), settings, seed0=1000)
        scores[kind] = np.array([r.score for r in results])
    print("after_contact scores", {k: v.round(3).tolist() for k, v in scores.items()})
    # a clear margin, not the 0.3 target (see docs/controller.md for where it falls short)
    assert scores["rdp"].mean() > scores["dp"].mean() + 0.05, scores
    assert (scores["rdp"] > scores["dp"]).all(), scores
