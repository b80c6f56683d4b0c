"""Statistics for paired policy comparisons: bootstrap confidence intervals over seeds.

Every evaluation runs the compared policies on the same seeds (the same scene and the same
perturbation per seed), so a difference between two policies is a mean of per-seed paired
differences, and its uncertainty is the bootstrap distribution of that mean (percentile
interval, resampling seeds with replacement). Deterministic: the resampling is seeded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: resamples per interval; 10,000 puts the interval's own Monte-Carlo error below 0.005
N_BOOT = 10_000


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% (or ``level``) bootstrap interval over ``n`` paired samples."""

    mean: float
    lo: float
    hi: float
    n: int

    @property
    def excludes_zero(self) -> bool:
        return self.lo > 0.0 or self.hi < 0.0

    def fmt(self, signed: bool = False) -> str:
        f = "{:+.2f}" if signed else "{:.2f}"
        return f"{f.format(self.mean)} [{f.format(self.lo)}, {f.format(self.hi)}]"


def bootstrap_mean(values: np.ndarray | list[float], level: float = 0.95, n_boot: int = N_BOOT,
                   seed: int = 0) -> Estimate:
    """Mean of ``values`` and its percentile bootstrap interval."""
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    if x.size == 0:
        raise ValueError("bootstrap_mean needs at least one value")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    a = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [a, 1.0 - a])
    return Estimate(float(x.mean()), float(lo), float(hi), int(x.size))


def paired_difference(a: np.ndarray | list[float], b: np.ndarray | list[float], level: float = 0.95,
                      n_boot: int = N_BOOT, seed: int = 0) -> Estimate:
    """Mean of ``a - b`` over paired samples (same seeds) and its bootstrap interval."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must have the same shape, got {a.shape} and {b.shape}")
    return bootstrap_mean(a - b, level, n_boot, seed)
