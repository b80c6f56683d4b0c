"""Synthetic action-trajectory families for the tokenizer benchmark (seeded, reproducible).

Each arm has 6 pose dimensions (3 positions in metres, 3 rotations in radians) and one
gripper width (0 closed or 0.08 m open, switched as a step). ``D = 7 * arms``; gripper
dimensions are ``6, 13, ...``.

Families:

* ``min_jerk``: minimum-jerk reaches through random via-points (rest at each via-point).
* ``sinusoids``: sums of three sinusoids per dimension, periods 25 to 500 steps.
* ``teleop_linear``: piecewise-linear teleoperation: constant-velocity moves between holds.
* ``random_walk``: low-pass filtered random walks plus white measurement noise.
* ``gripper_steps``: slow arm motion with long holds and frequent gripper open/close steps.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import butter, lfilter

ARM_SCALE = np.array([0.15, 0.15, 0.1, 0.4, 0.4, 0.6])  # m, m, m, rad, rad, rad
GRIPPER_OPEN = 0.08

FAMILIES = ("min_jerk", "sinusoids", "teleop_linear", "random_walk", "gripper_steps")


def gripper_dims(arms: int) -> tuple[int, ...]:
    return tuple(7 * a + 6 for a in range(arms))


def _gripper(rng: np.random.Generator, length: int, min_hold: int, max_hold: int) -> np.ndarray:
    out = np.empty(length)
    state = float(rng.integers(0, 2)) * GRIPPER_OPEN
    i = 0
    while i < length:
        hold = int(rng.integers(min_hold, max_hold + 1))
        out[i : i + hold] = state
        state = GRIPPER_OPEN - state
        i += hold
    return out


def _min_jerk(rng: np.random.Generator, length: int, min_seg: int, max_seg: int, hold_prob: float = 0.0) -> np.ndarray:
    out = np.empty((length, 6))
    a = rng.uniform(-1, 1, 6) * ARM_SCALE
    i = 0
    while i < length:
        n = int(rng.integers(min_seg, max_seg + 1))
        if rng.random() < hold_prob:
            out[i : i + n] = a
        else:
            b = rng.uniform(-1, 1, 6) * ARM_SCALE
            tau = np.arange(1, n + 1)[:, None] / n
            s = 10 * tau**3 - 15 * tau**4 + 6 * tau**5
            out[i : i + n] = (a + (b - a) * s)[: length - i]
            a = b
        i += n
    return out


def _sinusoids(rng: np.random.Generator, length: int) -> np.ndarray:
    t = np.arange(length)[:, None, None]
    freq = rng.uniform(1 / 500, 1 / 25, (1, 3, 6))
    amp = rng.uniform(0.2, 1.0, (1, 3, 6)) / 3
    phase = rng.uniform(0, 2 * np.pi, (1, 3, 6))
    return (amp * np.sin(2 * np.pi * freq * t + phase)).sum(axis=1) * ARM_SCALE


def _teleop_linear(rng: np.random.Generator, length: int) -> np.ndarray:
    out = np.empty((length, 6))
    a = rng.uniform(-1, 1, 6) * ARM_SCALE
    i, moving = 0, bool(rng.integers(0, 2))
    while i < length:
        n = int(rng.integers(5, 41))
        if moving:
            # operators move a few axes at a time
            b = a + rng.uniform(-0.5, 0.5, 6) * ARM_SCALE * (rng.random(6) < 0.6)
            out[i : i + n] = (a + (b - a) * (np.arange(1, n + 1)[:, None] / n))[: length - i]
            a = b
        else:
            out[i : i + n] = a
        moving = not moving
        i += n
    return out


def _random_walk(rng: np.random.Generator, length: int) -> np.ndarray:
    b, a = butter(2, 0.06)
    warm = 100
    steps = rng.normal(0, 1, (length + warm, 6))
    walk = lfilter(b, a, np.cumsum(steps, axis=0), axis=0)[warm:]
    walk = (walk - walk.mean(axis=0)) / (walk.std(axis=0) + 1e-9) * 0.5
    return (walk + rng.normal(0, 0.01, walk.shape)) * ARM_SCALE


def _arm(family: str, rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    if family == "min_jerk":
        return _min_jerk(rng, length, 15, 60), _gripper(rng, length, 60, 200)
    if family == "sinusoids":
        return _sinusoids(rng, length), _gripper(rng, length, 60, 200)
    if family == "teleop_linear":
        return _teleop_linear(rng, length), _gripper(rng, length, 60, 200)
    if family == "random_walk":
        return _random_walk(rng, length), _gripper(rng, length, 60, 200)
    if family == "gripper_steps":
        return _min_jerk(rng, length, 20, 80, hold_prob=0.5), _gripper(rng, length, 8, 40)
    raise ValueError(f"unknown trajectory family {family!r}; choose from {FAMILIES}")


def generate(family: str, num: int, length: int, arms: int, seed: int) -> np.ndarray:
    """``[num, length, 7 * arms]`` trajectories of ``family`` (deterministic in ``seed``)."""
    if family not in FAMILIES:
        raise ValueError(f"unknown trajectory family {family!r}; choose from {FAMILIES}")
    rng = np.random.default_rng(seed)
    out = np.empty((num, length, 7 * arms))
    for i in range(num):
        for a in range(arms):
            arm, grip = _arm(family, rng, length)
            out[i, :, 7 * a : 7 * a + 6] = arm
            out[i, :, 7 * a + 6] = grip
    return out


def chunk(traj: np.ndarray, chunk_len: int, stride: int) -> np.ndarray:
    """Cut ``[num, L, D]`` trajectories into ``[num, n_chunks, chunk_len, D]`` windows."""
    n = (traj.shape[1] - chunk_len) // stride + 1
    if n < 1:
        raise ValueError(f"trajectories of length {traj.shape[1]} are shorter than chunk_len {chunk_len}")
    idx = np.arange(n)[:, None] * stride + np.arange(chunk_len)[None, :]
    return traj[:, idx]
