"""Clamped uniform B-spline bases on [0, 1], built once and reused.

A clamped uniform knot vector of degree ``p`` with ``N`` control points has ``p + 1`` zeros,
``N - p - 1`` uniformly spaced interior knots and ``p + 1`` ones. The curve then starts at the
first control point and ends at the last (endpoint interpolation), and the ``N`` basis
functions sum to one everywhere (partition of unity). ``N = p + 1`` gives the Bernstein
(Bezier) basis; ``p = 0`` gives ``N`` piecewise-constant segments of equal width.

:func:`design_matrix` evaluates the basis (or its derivatives) with scipy: the basis functions
are the spline whose control points are the identity matrix. :func:`cox_de_boor_matrix` is the
textbook scalar recursion, kept as an independent reference for tests and the benchmark.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.interpolate import BSpline


def _check_degree_ctrl(num_ctrl: int, degree: int) -> None:
    if int(degree) != degree or degree < 0:
        raise ValueError(f"degree must be a non-negative integer, got {degree!r}")
    if int(num_ctrl) != num_ctrl or num_ctrl < degree + 1:
        raise ValueError(
            f"num_ctrl must be an integer >= degree + 1 = {degree + 1}, got {num_ctrl!r}"
        )


def clamped_uniform_knots(num_ctrl: int, degree: int) -> np.ndarray:
    """Knot vector (length ``num_ctrl + degree + 1``) of a clamped uniform spline on [0, 1]."""
    _check_degree_ctrl(num_ctrl, degree)
    n_interior = num_ctrl - degree - 1
    interior = np.arange(1, n_interior + 1, dtype=np.float64) / (n_interior + 1)
    return np.concatenate([np.zeros(degree + 1), interior, np.ones(degree + 1)])


def _check_times(times: np.ndarray | list[float], extrapolate: bool = False) -> np.ndarray:
    x = np.asarray(times, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"times must be 1-D, got shape {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("times contain NaN or inf")
    if extrapolate:
        return x
    if x.size and (x.min() < -1e-12 or x.max() > 1.0 + 1e-12):
        raise ValueError(f"times must lie in [0, 1], got range [{x.min()}, {x.max()}]")
    return np.clip(x, 0.0, 1.0)


def design_matrix(
    times: np.ndarray | list[float],
    num_ctrl: int,
    degree: int,
    derivative: int = 0,
    extrapolate: bool = False,
) -> np.ndarray:
    """Basis matrix ``[len(times), num_ctrl]``: row ``i`` holds every basis function at ``times[i]``.

    ``derivative``: the basis functions' derivative of that order (d/du; zero above the degree).
    ``extrapolate``: times outside [0, 1] continue the first / last polynomial piece; without
    it they are an error.
    """
    x = _check_times(times, extrapolate)
    _check_degree_ctrl(num_ctrl, degree)
    if x.size == 0 or derivative > degree:
        return np.zeros((x.size, num_ctrl))
    return _basis_spline(int(num_ctrl), int(degree), bool(extrapolate))(x, nu=derivative)


@functools.lru_cache(maxsize=64)
def _basis_spline(num_ctrl: int, degree: int, extrapolate: bool) -> BSpline:
    """The basis functions as one vector-valued spline: its control points are the identity.

    Built once per setting: constructing a scipy ``BSpline`` (knot checks) costs several times
    more than evaluating it, and the policy evaluates one time per control tick.
    """
    return BSpline(clamped_uniform_knots(num_ctrl, degree), np.eye(num_ctrl), degree, extrapolate=extrapolate)


def derivative_scales(num_ctrl: int, degree: int) -> tuple[float, float]:
    """``(a0, a1)`` with ``C'(0) = a0 (c1 - c0)`` and ``C'(1) = a1 (c[N-1] - c[N-2])``.

    For a clamped spline the derivative at each end depends only on the two end control
    points: ``C'(0) = p / u[p+1] (c1 - c0)`` and ``C'(1) = p / (1 - u[N-1]) (c[N-1] - c[N-2])``.
    """
    _check_degree_ctrl(num_ctrl, degree)
    if degree == 0 or num_ctrl < 2:
        return 0.0, 0.0
    u = clamped_uniform_knots(num_ctrl, degree)
    return degree / u[degree + 1], degree / (1.0 - u[num_ctrl - 1])


def _cox_de_boor(j: int, k: int, x: float, u: np.ndarray) -> float:
    if k == 0:
        if u[j] <= x < u[j + 1]:
            return 1.0
        # the last non-empty interval is closed on the right so that x = 1 is covered
        return 1.0 if x == u[-1] and u[j] < u[j + 1] == u[-1] else 0.0
    left = 0.0
    if u[j + k] > u[j]:
        left = (x - u[j]) / (u[j + k] - u[j]) * _cox_de_boor(j, k - 1, x, u)
    right = 0.0
    if u[j + k + 1] > u[j + 1]:
        right = (u[j + k + 1] - x) / (u[j + k + 1] - u[j + 1]) * _cox_de_boor(j + 1, k - 1, x, u)
    return left + right


def cox_de_boor_matrix(times: np.ndarray | list[float], num_ctrl: int, degree: int) -> np.ndarray:
    """Reference basis matrix by the scalar Cox-de Boor recursion (slow; tests and benchmark)."""
    x = _check_times(times)
    u = clamped_uniform_knots(num_ctrl, degree)
    out = np.empty((x.size, num_ctrl))
    for i, xi in enumerate(x):
        for j in range(num_ctrl):
            out[i, j] = _cox_de_boor(j, degree, float(xi), u)
    return out


def ridge_pinv(basis: np.ndarray, ridge: float) -> np.ndarray:
    """``(B^T B + ridge I)^-1 B^T``: the regularised least-squares fit operator ``[N, T]``."""
    n = basis.shape[1]
    gram = basis.T @ basis + ridge * np.eye(n)
    return np.linalg.solve(gram, basis.T)
