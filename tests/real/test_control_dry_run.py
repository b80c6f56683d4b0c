"""The dry run works for every shipped policy (issue 19, item 4): `tactkit control --robot fake`
builds the synthetic sensors a checkpoint reads (cameras, tactile pads named and sized as in
its keys); a real robot without them is refused before anything moves."""

from __future__ import annotations

import pytest

from tactkit.cli.control import grid_for, synthetic_sensor_configs


def test_marker_grid_from_the_checkpoints_marker_count():
    assert grid_for(63) == (7, 9)
    assert grid_for(25) == (5, 5)
    assert grid_for(6) == (2, 3)
    with pytest.raises(ValueError, match="7 markers"):
        grid_for(7)


def test_synthetic_sensors_are_named_and_sized_by_the_keys():
    cfgs = synthetic_sensor_configs(["observation.images.wrist", "observation.tactile.pad.marker_offset"],
                                    {"observation.tactile.pad.marker_offset": (25, 2)})
    cam, pad = cfgs
    assert type(cam).__name__ == "SyntheticCameraConfig" and cam.key == "observation.images.wrist"
    assert type(pad).__name__ == "SyntheticTactileConfig" and pad.name == "pad" and tuple(pad.tracker.grid) == (5, 5)
    with pytest.raises(ValueError, match="observation.wrench.left"):
        synthetic_sensor_configs(["observation.wrench.left"], {})


@pytest.mark.slow
def test_dry_run_of_a_camera_and_tactile_policy(tmp_path, capsys):
    import torch

    from tactkit.cli.main import main
    from tactkit.policies.pipeline import train
    from tactkit.policies.synthetic import make_synthetic_store

    torch.set_num_threads(1)
    store = tmp_path / "store.zarr"
    make_synthetic_store(store, episodes=2, seconds=1.0, image_hw=(24, 24))
    train("dp", store, ["size=tiny", "num_steps=2", "down_dims=[16,32]", "diffusion_step_embed_dim=16", "batch_size=4",
                        "obs_keys=[observation.images.wrist,observation.state.tcp_pose,"
                        "observation.tactile.left.marker_offset]"], tmp_path / "dp", progress=False)
    capsys.readouterr()
    # a real arm without the sensors the policy reads: refused before it connects or asks to move
    assert main(["control", "--policy", str(tmp_path / "dp"), "--robot", "flexiv", "serial_number=x", "--yes"]) == 1
    err = capsys.readouterr().err
    assert "observation.images.wrist" in err and "--sensor" in err
    # the stand-in arm: synthetic sensors from the checkpoint's keys, plans arrive, no fault
    rc = main(["control", "--policy", str(tmp_path / "dp"), "--robot", "fake", "--duration", "10",
               "controller.watchdog.plan_timeout=30"])  # a shared CI machine starts the planner slowly
    out = capsys.readouterr()
    assert rc == 0, out.out + out.err
    assert "synthetic sensors for observation.images.wrist (SyntheticCamera 'wrist'), " \
           "observation.tactile.left.marker_offset (SyntheticTactile 'left')" in out.out
    assert "no observations yet" not in out.err and "FAULT" not in out.err
    plans = next(line for line in out.out.splitlines() if line.startswith("plans: "))
    assert int(plans.split()[1]) >= 1, out.out + out.err
    assert "safety filter:" in out.out
