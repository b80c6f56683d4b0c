"""Poses stored as 9-D (xyz + rows of R, UMI/RDP) and 6-D (xyz + axis-angle, UMI) are poses; an
image key that would be flattened is an error; a diffusion_policy/RDP buffer (Jpeg2k images,
9-D poses, 10-D action) trains through the key map."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from tactkit.policies.features import (
    feature_kind,
    from_internal,
    make_spec,
    pose_from_internal,
    pose_to_internal,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tactkit" / "store"))
from buffer_helpers import DP_JPEG2K, camera, write_buffer  # noqa: E402
from policy_helpers import training_rows  # noqa: E402


def _poses(n: int = 500, seed: int = 0):
    rot = Rotation.random(n, random_state=seed)
    xyz = np.random.default_rng(seed).normal(size=(n, 3))
    m = rot.as_matrix()
    return (np.concatenate([xyz, rot.as_quat(scalar_first=True)], 1),
            np.concatenate([xyz, m[:, :2, :].reshape(n, 6)], 1),  # UMI's mat_to_pose9d: first two rows
            np.concatenate([xyz, rot.as_rotvec()], 1), m)


def test_every_pose_layout_maps_to_the_same_internal_pose():
    p7, p9, p6, m = _poses()
    i7, i9, i6 = (pose_to_internal(torch.tensor(p)) for p in (p7, p9, p6))
    cols = np.concatenate([m[:, :, 0], m[:, :, 1]], 1)
    assert np.abs(i7[:, 3:].numpy() - cols).max() < 1e-12
    assert (i9 - i7).abs().max() < 1e-12 and (i6 - i7).abs().max() < 1e-12
    assert np.abs(pose_from_internal(i9, 9).numpy() - p9).max() < 1e-12
    assert np.abs(pose_from_internal(i6, 6).numpy() - p6).max() < 1e-12
    tiny = torch.tensor([[0.0, 0, 0, 1e-9, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=torch.float64)  # near identity
    assert torch.allclose(pose_from_internal(pose_to_internal(tiny), 6), tiny, atol=1e-15)
    noisy = pose_to_internal(torch.tensor(p9)) + 0.05 * torch.randn(len(p9), 9, dtype=torch.float64)
    back = pose_from_internal(noisy, 9).numpy()  # a network's output: rows come back orthonormal
    rows = back[:, 3:].reshape(-1, 2, 3)
    assert np.allclose(np.linalg.norm(rows, axis=2), 1) and np.allclose((rows[:, 0] * rows[:, 1]).sum(1), 0, atol=1e-12)


def test_pose_kinds_and_the_flat_image_error():
    assert feature_kind("left_robot_tcp_pose", (9,)) == "pose" and make_spec("left_robot_tcp_pose", (9,)).dim == 9
    assert feature_kind("observation.state.tcp_pose", (6,)) == "pose" and make_spec("x.tcp_pose", (6,)).dim == 9
    with pytest.raises(ValueError, match=r"7-D xyz \+ quaternion.*9-D xyz \+ 6-D rotation.*6-D xyz \+ axis-angle"):
        feature_kind("observation.state.tcp_pose", (8,))
    with pytest.raises(ValueError, match=r"trained as a flat vector of 1728.*keys\.img=observation\.images\.<camera>"):
        feature_kind("img", (24, 24, 3))
    assert feature_kind("observation.tactile.pad.marker_offset", (63, 2)) == "tactile"
    spec = make_spec("action.tcp_pose", (6,))
    assert from_internal(spec, pose_to_internal(torch.zeros(1, 6))).shape == (1, 6)


def rdp_buffer(path: Path, episodes: int = 3, steps: int = 40) -> dict[str, np.ndarray]:
    """What RDP records: left_wrist_img (Jpeg2k), left_robot_tcp_pose (9-D), gripper width,
    a 10-D action (next pose + gripper), timestamps."""
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("left_wrist_img", "left_robot_tcp_pose",
                                                          "left_robot_gripper_width", "action", "timestamp")}
    for e in range(episodes):
        t = np.arange(steps) / 10.0
        xyz = np.stack([0.4 + 0.1 * np.sin(t + e), 0.05 * t, 0.3 - 0.02 * t], 1)
        m = Rotation.from_euler("xyz", np.stack([np.pi + 0.1 * np.sin(t), 0.2 * t, 0.1 * e + 0 * t], 1)).as_matrix()
        pose9 = np.concatenate([xyz, m[:, :2, :].reshape(steps, 6)], 1).astype(np.float32)
        grip = (0.04 + 0.01 * np.cos(t))[:, None].astype(np.float32)
        nxt = np.concatenate([pose9[1:], pose9[-1:]])
        parts["left_wrist_img"].append(camera(steps, 24, 24, seed=7 * e))
        parts["left_robot_tcp_pose"].append(pose9)
        parts["left_robot_gripper_width"].append(grip)
        parts["action"].append(np.concatenate([nxt, np.concatenate([grip[1:], grip[-1:]])], 1))
        parts["timestamp"].append(1000.0 + 100 * e + t)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    write_buffer(path, arrays, list(np.cumsum([steps] * episodes)), {"left_wrist_img": DP_JPEG2K})
    return arrays


KEYS = ["keys.left_wrist_img=observation.images.wrist", "keys.left_robot_tcp_pose=observation.state.tcp_pose",
        "keys.left_robot_gripper_width=observation.state.gripper_width",
        "keys.action=action.tcp_pose[0:9],action.gripper_width[9:10]", "fps=10"]
TINY = ["size=tiny", "image_shape=[24,24]", "crop_shape=[20,20]", "resnet_width=4", "image_feature_dim=16",
        "down_dims=[32,64]", "diffusion_step_embed_dim=32", "batch_size=16", "warmup_steps=10", "ema_decay=0.9",
        "lr=3e-3", "log_every=1", "horizon=8"]


def test_an_image_key_without_the_key_map_is_refused(tmp_path):
    from tactkit.policies.pipeline import train

    rdp_buffer(tmp_path / "rdp.zarr", episodes=1, steps=12)
    with pytest.raises(ValueError, match="keys.left_wrist_img=observation.images.<camera>"):
        train("dp", tmp_path / "rdp.zarr", [*TINY, "fps=10", "obs_keys=[left_wrist_img]", "action_keys=[action]", "relative_actions=false",
                                            "num_steps=1"], tmp_path / "run", progress=False)


@pytest.mark.slow
def test_dp_buffer_with_jpeg2k_images_and_9d_poses_trains(tmp_path):
    from tactkit.policies.inference import load_policy
    from tactkit.policies.pipeline import train
    from tactkit.store import ReplayBuffer

    arrays = rdp_buffer(tmp_path / "rdp.zarr")
    result = train("dp", tmp_path / "rdp.zarr", [*TINY, *KEYS, "num_steps=80"], tmp_path / "run", progress=False)
    losses = [r["loss"] for r in training_rows(tmp_path / "run")]
    assert result["dp"].steps == 80 and np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5])
    policy = load_policy(tmp_path / "run")
    assert policy.codec.specs["observation.state.tcp_pose"].kind == "pose"
    assert policy.codec.specs["action.tcp_pose"].raw_shape == (9,)
    rb = ReplayBuffer.open(tmp_path / "rdp.zarr", key_map={k[5:].split("=")[0]: k.split("=", 1)[1] for k in KEYS[:-1]})
    window = {k: np.asarray(rb[k][5:7]) for k in policy.obs_keys}
    window["timestamp"] = arrays["timestamp"][5:7]
    plan = policy.plan(window)
    assert plan.actions.shape == (8 - policy.first_step, 10)  # the chunk from plan step 0: 9-D pose + gripper
    rows = plan.actions[:, 3:9].reshape(-1, 2, 3)  # stored layout: two orthonormal rows of R
    assert np.allclose(np.linalg.norm(rows, axis=2), 1, atol=1e-5)
    assert np.allclose((rows[:, 0] * rows[:, 1]).sum(1), 0, atol=1e-5)
    assert np.abs(plan.actions[:, :3] - arrays["left_robot_tcp_pose"][6, :3]).max() < 0.1  # near the demo
