"""After-contact motions that no training code generates, for evaluating generalisation.

The demonstrations draw their after-contact motions from the family of
:mod:`tactkit.sim.perturbations` (random walks, steps, ramps, sines and sums of two). These
are other shapes of the same size and speed (each fitted into the task's ``MotionRange``):
a chirp, a triangle wave at constant speed, a square wave, a sawtooth and isolated bumps.
Select one for an evaluation with the task's ``motion`` setting::

    tactkit eval --policy rdp=runs/demo/rdp/ldp --task wipe --perturb after_contact \\
        task.motion=tactkit.experiments.heldout_motions:triangle
"""

from __future__ import annotations

import math

import numpy as np

from tactkit.sim.perturbations import Motion, MotionRange, fit_to_range, profile_grid

#: every held-out motion, by name (``tactkit.experiments.heldout_motions:<name>``)
HELDOUT = ("chirp", "triangle", "square", "sawtooth", "bumps")


def _make(rng: np.random.Generator, r: MotionRange, dim: int, shape, name: str) -> Motion:
    t = profile_grid()
    span = r.high - r.low
    cols = []
    for _ in range(dim):
        x = shape(t, rng, span / 2, r.max_rate)
        x = x - x[0]
        if r.low >= 0.0:
            x = np.abs(x)
        cols.append(fit_to_range(x, r))
    return Motion(np.stack(cols, axis=1), name)


def chirp(rng: np.random.Generator, r: MotionRange, dim: int) -> Motion:
    """A sine whose frequency sweeps from 0.1 Hz up to 0.6-1.2 Hz over 8 s."""
    def shape(t, rng, a, rate):
        f1 = rng.uniform(0.6, 1.2)
        phase = 2 * math.pi * (0.1 * t + (f1 - 0.1) * t * t / 16.0)
        return rng.uniform(0.6, 1.0) * a * np.sin(phase)
    return _make(rng, r, dim, shape, "chirp")


def triangle(rng: np.random.Generator, r: MotionRange, dim: int) -> Motion:
    """Constant-speed ramps between +-A (the speed 25-90% of the range's)."""
    def shape(t, rng, a, rate):
        amp = rng.uniform(0.5, 1.0) * a
        period = 4 * amp / (rng.uniform(0.25, 0.9) * rate)
        u = (t / period + rng.uniform()) % 1.0
        return amp * (4 * np.abs(u - 0.5) - 1.0)
    return _make(rng, r, dim, shape, "triangle")


def square(rng: np.random.Generator, r: MotionRange, dim: int) -> Motion:
    """A square wave between +-A, switching every 0.8-2 s (fitted under the rate limit)."""
    def shape(t, rng, a, rate):
        amp, half = rng.uniform(0.5, 1.0) * a, rng.uniform(0.8, 2.0)
        x = amp * np.sign(np.sin(math.pi * t / half + 1e-9))
        k = max(1, int(0.15 * 200))  # soften the corners over 0.15 s before fitting the rate
        return np.convolve(np.pad(x, (k, k), mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="valid")
    return _make(rng, r, dim, shape, "square")


def sawtooth(rng: np.random.Generator, r: MotionRange, dim: int) -> Motion:
    """A slow rise over 2-4 s, then a quick return."""
    def shape(t, rng, a, rate):
        amp, period = rng.uniform(0.5, 1.0) * a, rng.uniform(2.0, 4.0)
        u = (t / period) % 1.0
        return amp * np.where(u < 0.85, u / 0.85, (1.0 - u) / 0.15) * 2 - amp
    return _make(rng, r, dim, shape, "sawtooth")


def bumps(rng: np.random.Generator, r: MotionRange, dim: int) -> Motion:
    """Isolated Gaussian bumps (0.2-0.5 s wide) of random sign every 1-2.5 s."""
    def shape(t, rng, a, rate):
        x, tk = np.zeros_like(t), rng.uniform(0.2, 1.0)
        while tk < t[-1]:
            x += rng.choice([-1.0, 1.0]) * rng.uniform(0.5, 1.0) * a * np.exp(-0.5 * ((t - tk) / rng.uniform(0.1, 0.25)) ** 2)
            tk += rng.uniform(1.0, 2.5)
        return x
    return _make(rng, r, dim, shape, "bumps")
