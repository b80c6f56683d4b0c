"""The inference interface the controller uses: a slow ``plan`` and a fast ``step``.

Importing this module does not import torch. Every policy (Diffusion Policy, RDP, BEAST)
implements :class:`Policy`:

* ``plan(window)`` runs at low rate (1-6 Hz) on an observation window: a dict from dataset key
  to an array ``[n_obs_steps, ...]`` (oldest first), plus ``window["timestamp"]`` of shape
  ``[n_obs_steps]``. It returns a :class:`Plan` whose step ``i`` is meant for time
  ``t0 + i * dt``.
* ``step(plan, t, fast_signal)`` runs at sensor rate. ``fast_signal`` is the latest tactile
  embedding or wrench (1-D array) or ``None``. It returns the flat action vector for time
  ``t``. DP indexes the chunk, RDP runs the asymmetric tokenizer's decoder one step carrying
  its recurrent state in the plan, BEAST evaluates its spline at ``t``.

Latency compensation: ``plan`` sets ``t0`` to the capture time of the newest observation plus
``dt``; the controller skips steps whose time is already past (``Plan.index_at``).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Plan:
    t0: float  # s, time of action step 0
    dt: float  # s, spacing of action steps
    actions: np.ndarray  # [T, action_dim], the chunk as planned (without fast feedback)
    state: dict[str, Any] = field(default_factory=dict)  # policy-specific (latent, GRU state...)

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])

    @property
    def t_end(self) -> float:
        return self.t0 + (self.horizon - 1) * self.dt

    def index_at(self, t: float) -> int:
        """Step index for time ``t``, clamped to the chunk (hold the last step after the end)."""
        i = int(np.floor((t - self.t0) / self.dt + 1e-9))
        return min(max(i, 0), self.horizon - 1)


class Policy(abc.ABC):
    #: dataset keys the observation window must contain
    obs_keys: tuple[str, ...] = ()
    #: number of observation steps in a window
    n_obs_steps: int = 2
    #: dataset keys concatenated (in order) into the flat action vector
    action_keys: tuple[str, ...] = ()
    #: key of the fast signal ("observation.tactile.<s>.embedding", "observation.wrench") or None
    fast_key: str | None = None
    #: every fast signal's key when there are several (one pad per arm); empty = ``(fast_key,)``.
    #: With several, ``step`` receives ``{key: latest value}``; with one, the value itself.
    fast_keys: tuple[str, ...] = ()
    #: control period of the training grid (s)
    dt: float = 1 / 24

    @abc.abstractmethod
    def plan(self, window: dict[str, np.ndarray]) -> Plan: ...

    @abc.abstractmethod
    def step(self, plan: Plan, t: float, fast_signal: np.ndarray | None = None) -> np.ndarray: ...

    def reset(self) -> None:
        """Forget state carried between plans (start of an episode). Stateless by default."""
        return None


def policy_fast_keys(policy: Policy) -> tuple[str, ...]:
    """The keys of every fast signal ``policy.step`` takes (empty: none)."""
    if policy.fast_keys:
        return tuple(policy.fast_keys)
    return () if policy.fast_key is None else (policy.fast_key,)
