"""Training you can watch (issue 19, item 5) and training logs where people look (issue 15,
item 4): what `tactkit train` says before, during and after, `--print-config`, a validation
split by default, what `--resume` to a larger num_steps does, TensorBoard event files."""

from __future__ import annotations

import json
import math

import pytest
import yaml
from policy_helpers import metrics_rows, training_rows

from tactkit.cli.main import main
from tactkit.policies.synthetic import make_synthetic_store

LOWDIM = ["size=tiny", "batch_size=8", "down_dims=[16,32]", "diffusion_step_embed_dim=16", "log_every=1",
          "warmup_steps=2", "obs_keys=[observation.state.tcp_pose,observation.tactile.*.marker_offset]"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("watch") / "store.zarr"
    make_synthetic_store(path, episodes=4, seconds=1.0, image_hw=(24, 24))
    return path


def test_print_config_resolves_against_the_data_and_trains_nothing(store, tmp_path, capsys):
    out = tmp_path / "dp"
    assert main(["train", "dp", "--data", str(store), "--out", str(out), "--print-config", *LOWDIM]) == 0
    cfg = yaml.safe_load(capsys.readouterr().out)
    assert cfg["policy"] == "dp" and cfg["size"] == "tiny" and cfg["batch_size"] == 8
    assert cfg["obs_keys"] == ["observation.state.tcp_pose", "observation.tactile.left.marker_offset"]
    assert not out.exists()
    assert main(["train", "rdp", "--print-config"]) == 0
    text = capsys.readouterr().out
    assert "# at\n" in text and "# ldp\n" in text


def test_trackers_setting():
    from tactkit.policies.training import resolve_trackers

    assert resolve_trackers("none") == []
    assert resolve_trackers("auto") == ["tensorboard"]  # installed by the dev extra
    assert resolve_trackers("tensorboard") == ["tensorboard"]
    with pytest.raises(ValueError, match="pip install wandb"):
        resolve_trackers("wandb")
    with pytest.raises(ValueError, match="not one of"):
        resolve_trackers("mlflow")


@pytest.mark.slow
def test_train_reports_splits_labels_summarises_and_logs(store, tmp_path, capsys):
    out = tmp_path / "dp"
    rc = main(["train", "dp", "--data", str(store), "--out", str(out), *LOWDIM, "num_steps=6", "val_every=3"])
    assert rc == 0
    cap = capsys.readouterr()
    lines = cap.out.splitlines()
    # before: data, split, keys and shapes, parameter count, the config
    assert lines[0].startswith(f"dp: data {store}: 4 episodes, ") and "steps at 24 Hz" in lines[0]
    assert "train 3 episodes / " in lines[0] and "validation 1 episode / " in lines[0] and "val_ratio=0.1" in lines[0]
    keyed = {line.split()[0]: line for line in lines[1:5]}
    assert keyed["observation.tactile.left.marker_offset"].split()[1:3] == ["63x2", "observation"]
    assert "PCA 15" in keyed["observation.tactile.left.marker_offset"]
    assert keyed["action.tcp_pose"].split()[1:3] == ["7", "action"]
    params = next(line for line in lines if "trainable parameters" in line)
    assert int(params.split()[2].replace(",", "")) > 1000 and "num_steps=6" in params
    assert str(out / "run_config.json") in params
    # during: a labelled bar (tqdm on stderr)
    assert "dp: diffusion policy" in cap.err
    # after: one line with the checkpoint
    assert lines[-1].startswith("trained dp in ") and lines[-1].endswith(f"-> {out / 'checkpoint'}")
    assert "val loss" in lines[-1]
    assert json.loads((out / "run_config.json").read_text())["val_ratio"] == 0.1
    assert [m["step"] for m in metrics_rows(out) if "val_loss" in m] == [3, 6]

    # TensorBoard: loss, learning rate, samples/s and validation loss, per step
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = sorted((out / "logs").rglob("events.out.tfevents.*"))
    scalars: dict[str, list] = {}
    for ev in events:
        acc = EventAccumulator(str(ev))
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(acc.Scalars(tag))
    assert {"loss", "lr", "samples_per_s", "val_loss"} <= set(scalars)
    assert [e.step for e in scalars["loss"]] == [1, 2, 3, 4, 5, 6]
    jsonl = {m["step"]: m for m in training_rows(out)}
    for e in scalars["loss"]:
        assert math.isclose(e.value, jsonl[e.step]["loss"], rel_tol=1e-6)
    assert [e.step for e in scalars["val_loss"]] == [3, 6]

    # an explicit val_ratio=0 trains on every episode; log_with=none writes no tracker files
    rc = main(["train", "dp", "--data", str(store), "--out", str(tmp_path / "all"), *LOWDIM, "num_steps=2",
               "val_ratio=0", "log_with=none", "--no-progress"])
    assert rc == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "train 4 episodes / " in first and "no validation split (val_ratio=0)" in first
    assert not (tmp_path / "all" / "logs").exists()


@pytest.mark.slow
def test_resume_to_a_larger_num_steps_says_what_the_schedule_does(store, tmp_path, capsys):
    from diffusers.optimization import get_scheduler
    from torch import nn, optim

    out = tmp_path / "dp"
    common = ["train", "dp", "--data", str(store), "--out", str(out), *LOWDIM, "log_with=none", "--no-progress"]
    assert main([*common, "num_steps=6"]) == 0
    capsys.readouterr()
    assert main([*common, "--resume", "num_steps=12"]) == 0
    text = capsys.readouterr().out
    assert "resuming" in text and "num_steps 6 -> 12" in text and "stretched to end at step 12" in text
    lr = {m["step"]: m["lr"] for m in metrics_rows(out) if "lr" in m}
    assert lr[6] == 0.0  # the end of the first schedule
    # from step 7 on: the cosine schedule of a 12-step run (lr 1e-3, warm-up 2), not 0 and not restarted
    opt = optim.SGD(nn.Linear(1, 1).parameters(), lr=1e-3)
    ref = get_scheduler("cosine", opt, num_warmup_steps=2, num_training_steps=12)
    expected = {}
    for step in range(1, 13):
        opt.step()
        ref.step()
        expected[step] = ref.get_last_lr()[0]
    for step in range(7, 13):
        assert math.isclose(lr[step], expected[step], rel_tol=1e-9, abs_tol=1e-15), (step, lr[step], expected[step])
    assert lr[7] > 0
    # resuming to the same total: nothing to stretch, said so
    assert main([*common, "--resume", "num_steps=12"]) == 0
    assert "already at step 12 of num_steps 12" in capsys.readouterr().out
