"""A tiny, learnable multi-rate episode store for policy tests and benchmarks.

The arm follows a smooth path; the commanded action is the pose 1/24 s ahead plus a
correction proportional to the tactile shear (so the fast signal matters), and the camera
image shows a dot where the arm is. Streams run at their own rates (camera 30 Hz, tactile
60 Hz, state/wrench/action 100 Hz), so training exercises ``tactkit.store.align``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tactkit.store import POSE_NAMES, WRENCH_NAMES, EpisodeStore, StreamSpec


def streams(image_hw: tuple[int, int] = (40, 40)) -> dict[str, StreamSpec]:
    return {
        "observation.images.wrist": StreamSpec("uint8", (*image_hw, 3), 30.0, "rgb"),
        "observation.tactile.left.marker_offset": StreamSpec("float32", (63, 2), 60.0, "normalised"),
        "observation.wrench": StreamSpec("float32", (6,), 100.0, "N, N*m", WRENCH_NAMES),
        "observation.state.tcp_pose": StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
        "observation.state.gripper_width": StreamSpec("float32", (1,), 100.0, "m"),
        "action.tcp_pose": StreamSpec("float64", (7,), 100.0, "m", POSE_NAMES),
        "action.gripper_width": StreamSpec("float32", (1,), 100.0, "m"),
    }


def _pose(t: np.ndarray, phase: float) -> np.ndarray:
    x = 0.4 + 0.1 * np.sin(t + phase)
    y = 0.1 * np.cos(0.7 * t + phase)
    z = 0.2 + 0.02 * t
    yaw = 0.3 * np.sin(0.5 * t + phase)
    q = np.stack([np.cos(yaw / 2), np.zeros_like(t), np.zeros_like(t), np.sin(yaw / 2)], -1)
    return np.concatenate([np.stack([x, y, z], -1), q], -1)


def _shear(t: np.ndarray, phase: float) -> np.ndarray:
    return 0.02 * np.sin(3 * t + 2 * phase)  # contact shear, drives the reactive correction


def make_synthetic_store(path: str | Path, episodes: int = 4, seconds: float = 3.0, image_hw: tuple[int, int] = (40, 40),
               seed: int = 0) -> EpisodeStore:
    rng = np.random.default_rng(seed)
    store = EpisodeStore.create(str(path), streams(image_hw))
    markers = rng.normal(size=(63, 2)).astype(np.float32)
    for e in range(episodes):
        phase = 0.8 * e
        t_state = np.arange(0, seconds, 0.01)
        t_cam = np.arange(0, seconds, 1 / 30)
        t_tac = np.arange(0, seconds, 1 / 60)
        with store.begin_episode(task="synthetic") as rec:
            pose = _pose(t_state, phase)
            rec.append_many("observation.state.tcp_pose", t_state, pose)
            act = _pose(t_state + 1 / 24, phase)
            act[:, 2] += _shear(t_state, phase)  # react to touch
            rec.append_many("action.tcp_pose", t_state, act)
            grip = (0.04 + 0.02 * (t_state > seconds / 2)).astype(np.float32)[:, None]
            rec.append_many("observation.state.gripper_width", t_state, grip)
            rec.append_many("action.gripper_width", t_state, grip)
            wrench = np.zeros((len(t_state), 6), np.float32)
            wrench[:, 0] = 50 * _shear(t_state, phase)
            wrench[:, 2] = 5.0 + rng.normal(0, 0.01, len(t_state))
            rec.append_many("observation.wrench", t_state, wrench)
            shear = _shear(t_tac, phase)
            tac = (shear[:, None, None] * markers[None] + 0.001 * rng.normal(size=(len(t_tac), 63, 2))).astype(np.float32)
            rec.append_many("observation.tactile.left.marker_offset", t_tac, tac)
            h, w = image_hw
            imgs = np.full((len(t_cam), h, w, 3), 40, np.uint8)
            cam_pose = _pose(t_cam, phase)
            for i, p in enumerate(cam_pose):
                cy = int((p[1] + 0.1) / 0.2 * (h - 8)) + 4
                cx = int((p[0] - 0.3) / 0.2 * (w - 8)) + 4
                imgs[i, cy - 3 : cy + 3, cx - 3 : cx + 3] = (230, 200, 60)
            rec.append_many("observation.images.wrist", t_cam, imgs)
    return store
