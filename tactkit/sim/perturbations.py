"""Perturbation modes of the simulated tasks and the family of after-contact motions (no PyBullet
import: the CLI and the experiments layer read them without starting a physics engine).

Modes:

* ``none``: the scene stays still;
* ``before_contact``: the object moves during the approach (cm-scale, visible to the cameras);
* ``after_contact``: the object moves after the tool first touches it (mm-scale, felt, not seen).

**The after-contact motion is drawn from a family, not one profile**, so that a policy cannot
memorise a shape: every episode draws one of :data:`FAMILY` (smooth random walks, steps,
ramps, sines, and sums of two of them) with random amplitude, speed, timing and phase, inside
a task's :class:`MotionRange` (the largest offset, in the task's units, and the fastest rate of
change). :func:`sample_motion` is seeded by the episode's generator, so a seed gives the same
motion every time.

Any other motion can be plugged in with a task's ``motion`` setting, ``"module:function"``:
``function(rng, motion_range, dim) -> Motion``; the evaluation uses this for motions that no
training code has generated (:mod:`tactkit.experiments.heldout_motions`).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

PERTURBATIONS: tuple[str, ...] = ("none", "before_contact", "after_contact")
#: the training family's kinds; ``sample_motion`` picks one per episode
FAMILY: tuple[str, ...] = ("random_walk", "steps", "ramps", "sine", "mixed")
#: profiles are tabulated at this rate and interpolated linearly
_RATE_HZ = 200.0
#: longer than any episode (s); after it the profile holds its last value
_DURATION = 15.0


def parse_modes(arg: str) -> tuple[str, ...]:
    """``"all"`` -> every mode; otherwise one mode or a comma-separated list (checked)."""
    if arg == "all":
        return PERTURBATIONS
    modes = tuple(m.strip() for m in arg.split(","))
    for m in modes:
        if m not in PERTURBATIONS:
            raise ValueError(f"--perturb must be one of {', '.join(PERTURBATIONS)}, a comma-separated list of them "
                             f"or all, got {arg!r}")
    return modes


@dataclass(frozen=True)
class MotionRange:
    """The size and speed of a task's after-contact motions: every component stays within
    ``[low, high]`` and changes no faster than ``max_rate`` per second."""

    low: float
    high: float
    max_rate: float

    def __post_init__(self) -> None:
        if not (self.low < self.high and self.max_rate > 0):
            raise ValueError(f"motion range needs low < high and max_rate > 0, got {self}")

    def scaled(self, speed: float) -> MotionRange:
        """The same range with ``speed`` times the rate (a task's ``perturb_speed``)."""
        return MotionRange(self.low, self.high, self.max_rate * speed)


class Motion:
    """An offset profile ``tau -> [dim]`` (tau: seconds since the motion started; 0 before),
    tabulated at 200 Hz from 0 to 15 s and held after."""

    def __init__(self, values: np.ndarray, kind: str) -> None:
        values = np.asarray(values, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] < 2:
            raise ValueError(f"motion values must be [n >= 2, dim], got {values.shape}")
        self.values = values
        self.kind = kind

    @classmethod
    def from_function(cls, fn: Callable[[float], np.ndarray | float], dim: int, kind: str) -> Motion:
        """Tabulate ``fn(tau)`` (an offset of ``dim`` components) on the profile grid."""
        tau = np.arange(int(_DURATION * _RATE_HZ) + 1) / _RATE_HZ
        return cls(np.stack([np.broadcast_to(np.asarray(fn(float(t)), dtype=np.float64), (dim,)) for t in tau]), kind)

    @property
    def dim(self) -> int:
        return self.values.shape[1]

    def __call__(self, tau: float) -> np.ndarray:
        if tau <= 0.0:
            return self.values[0] * 0.0
        x = tau * _RATE_HZ
        i = int(x)
        if i >= self.values.shape[0] - 1:
            return self.values[-1].copy()
        f = x - i
        return self.values[i] + f * (self.values[i + 1] - self.values[i])

    def max_rate(self) -> float:
        """Largest |change| per second of any component."""
        return float(np.abs(np.diff(self.values, axis=0)).max() * _RATE_HZ)


# ----------------------------------------------------------------------------- the family
def profile_grid() -> np.ndarray:
    """The times (s) a :class:`Motion` is tabulated at."""
    return np.arange(int(_DURATION * _RATE_HZ) + 1) / _RATE_HZ


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _onset(t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A smooth 0 -> 1 ramp over 0.1-0.4 s: every profile starts from rest at 0."""
    return _smoothstep(t / rng.uniform(0.1, 0.4))


def _sine(t: np.ndarray, rng: np.random.Generator, span: float, rate: float) -> np.ndarray:
    amp = rng.uniform(0.3, 1.0) * span / 2
    f_max = min(1.5, rate / (2 * math.pi * max(amp, 1e-12)))  # |d/dt| = 2 pi f amp <= rate
    f = rng.uniform(0.25, 1.0) * f_max
    return amp * np.sin(2 * math.pi * f * t + rng.uniform(0, 2 * math.pi))


def _steps(t: np.ndarray, rng: np.random.Generator, span: float, rate: float) -> np.ndarray:
    out = np.zeros_like(t)
    level, t_k = 0.0, rng.uniform(0.0, 0.8)
    while t_k < t[-1]:
        new = rng.uniform(-span / 2, span / 2)
        # a smoothstep over d peaks at 1.5 |new - level| / d: keep it under the rate
        d = max(rng.uniform(0.1, 0.8), 1.5 * abs(new - level) / rate)
        out += (new - level) * _smoothstep((t - t_k) / d)
        level = new
        t_k += d + rng.uniform(0.3, 2.0)
    return out


def _ramps(t: np.ndarray, rng: np.random.Generator, span: float, rate: float) -> np.ndarray:
    knots_t, knots_v, t_k, v = [0.0], [0.0], 0.0, 0.0
    while t_k < t[-1]:
        new = rng.uniform(-span / 2, span / 2)
        dur = max(rng.uniform(0.3, 2.5), abs(new - v) / (0.8 * rate))
        t_k += dur
        knots_t.append(t_k)
        knots_v.append(new)
        v = new
        if rng.uniform() < 0.5:  # sometimes hold a while
            t_k += rng.uniform(0.2, 1.5)
            knots_t.append(t_k)
            knots_v.append(v)
    lin = np.interp(t, knots_t, knots_v)
    k = max(1, int(0.1 * _RATE_HZ))  # round the corners (moving average over 0.1 s)
    return np.convolve(np.pad(lin, (k, k), mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="valid")


def _random_walk(t: np.ndarray, rng: np.random.Generator, span: float, rate: float) -> np.ndarray:
    # band-limited noise: random-phase sines up to a random corner frequency, 1/f amplitudes
    f_hi = rng.uniform(0.5, 2.0)
    freqs = np.linspace(0.1, f_hi, 12)
    amps = rng.uniform(0.5, 1.0, freqs.size) / np.sqrt(freqs)
    phases = rng.uniform(0, 2 * math.pi, freqs.size)
    x = (amps[:, None] * np.sin(2 * math.pi * freqs[:, None] * t[None] + phases[:, None])).sum(0)
    x -= x[0]
    x *= rng.uniform(0.4, 1.0) * (span / 2) / max(float(np.abs(x).max()), 1e-12)
    return x


_KINDS: dict[str, Callable[[np.ndarray, np.random.Generator, float, float], np.ndarray]] = {
    "random_walk": _random_walk,
    "steps": _steps,
    "ramps": _ramps,
    "sine": _sine,
}


def fit_to_range(x: np.ndarray, r: MotionRange) -> np.ndarray:
    """Scale a zero-started profile (tabulated at 200 Hz) into ``[low, high]`` and under ``max_rate``."""
    hi, lo = max(r.high, 0.0), min(r.low, 0.0)
    peak_hi, peak_lo = float(x.max()), float(x.min())
    s = 1.0
    if peak_hi > 0 and hi < peak_hi:
        s = min(s, hi / peak_hi)
    if peak_lo < 0 and lo > peak_lo:
        s = min(s, lo / peak_lo)
    x = x * s
    rate = float(np.abs(np.diff(x)).max() * _RATE_HZ) if x.size > 1 else 0.0
    if rate > r.max_rate:
        x = x * (r.max_rate / rate)
    return x


def sample_motion(rng: np.random.Generator, motion_range: MotionRange, dim: int = 1,
                  kinds: tuple[str, ...] = FAMILY) -> Motion:
    """One after-contact motion of the training family: a kind drawn from ``kinds``, then its
    random amplitude, speed, timing and phase (each component independently), fitted into
    ``motion_range``. Deterministic given ``rng``."""
    if dim < 1:
        raise ValueError(f"dim must be >= 1, got {dim}")
    unknown = [k for k in kinds if k not in FAMILY]
    if unknown or not kinds:
        raise ValueError(f"unknown motion kinds {unknown}; the family is {FAMILY}")
    kind = kinds[int(rng.integers(len(kinds)))]
    t = profile_grid()
    span, rate = motion_range.high - motion_range.low, motion_range.max_rate
    one_sided = motion_range.low >= 0.0 or motion_range.high <= 0.0
    if one_sided:  # the profile is folded onto one side below: draw it twice as wide
        span *= 2
    cols = []
    for _ in range(dim):
        onset = _onset(t, rng)
        if kind == "mixed":
            a, b = rng.choice(list(_KINDS), size=2, replace=False)
            x = _KINDS[a](t, rng, span, rate) + 0.5 * _KINDS[b](t, rng, span, rate)
        else:
            x = _KINDS[kind](t, rng, span, rate)
        x = (x - x[0]) * onset
        if motion_range.low >= 0.0:  # one-sided ranges (an added mass): fold onto that side
            x = np.abs(x)
        elif motion_range.high <= 0.0:
            x = -np.abs(x)
        cols.append(fit_to_range(x, motion_range))
    return Motion(np.stack(cols, axis=1), kind)


MotionFactory = Callable[[np.random.Generator, MotionRange, int], Motion]


def motion_factory(spec: str) -> MotionFactory:
    """``"family"`` -> :func:`sample_motion`; ``"family:<kind>"`` -> one kind of it;
    ``"module:function"`` -> that function (``function(rng, motion_range, dim) -> Motion``, or
    one returning a callable ``tau -> offset``, which is tabulated)."""
    if spec == "family":
        return lambda rng, r, dim: sample_motion(rng, r, dim)
    if spec.startswith("family:"):
        kind = spec.split(":", 1)[1]
        if kind not in FAMILY:
            raise ValueError(f"motion {spec!r}: unknown kind {kind!r}; the family is {', '.join(FAMILY)}")
        return lambda rng, r, dim: sample_motion(rng, r, dim, kinds=(kind,))
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise ValueError(f"motion must be 'family', 'family:<kind>' or 'module:function', got {spec!r}")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"motion {spec!r}: cannot import it ({exc})") from None

    def make(rng: np.random.Generator, r: MotionRange, dim: int) -> Motion:
        m = fn(rng, r, dim)
        return m if isinstance(m, Motion) else Motion.from_function(m, dim, spec)

    return make
