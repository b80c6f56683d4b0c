"""Perturbation modes of the simulated tasks (no PyBullet import: the CLI and the experiments
layer read them without starting a physics engine).

* ``none``: the scene stays still;
* ``before_contact``: the object moves during the approach (visible to the cameras);
* ``after_contact``: the object moves after the tool first touches it (felt, hardly seen).
"""

from __future__ import annotations

PERTURBATIONS: tuple[str, ...] = ("none", "before_contact", "after_contact")


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
