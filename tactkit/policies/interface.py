"""The inference interface the controller uses: a slow ``plan`` and a fast ``step``.

Importing this module does not import torch. Every policy (Diffusion Policy, RDP, BEAST)
implements :class:`Policy`:

* ``plan(window)`` runs at low rate (1-6 Hz) on an observation window: a dict from dataset key
  to an array ``[n_obs_steps, ...]`` (oldest first), plus ``window["timestamp"]`` of shape
  ``[n_obs_steps]``. It returns a :class:`Plan` whose step ``i`` is meant for time
  ``t0 + i * dt``, with the policy's own typed run-time state (``Plan.state``: RDP's latent and
  GRU state, BEAST's spline; None for Diffusion Policy).
* ``step(plan, t, fast)`` runs at sensor rate. ``fast`` maps each of ``policy.fast_keys`` to
  its latest raw value (a tactile pad's marker offsets, a wrench), or is None when there is
  none yet (or the policy has no fast keys). It returns the flat action vector for time ``t``.
  DP indexes the chunk, RDP runs the asymmetric tokenizer's decoder one step carrying its
  recurrent state in the plan, BEAST evaluates its spline at ``t``.

Latency compensation: ``plan`` sets ``t0`` to the capture time of the newest observation plus
``dt``; the controller skips steps whose time is already past (``Plan.index_at``).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

#: the latest value of each of a policy's fast keys, by key
FastSignal = Mapping[str, np.ndarray]
S = TypeVar("S")


@dataclass
class Plan(Generic[S]):
    t0: float  # s, time of action step 0
    dt: float  # s, spacing of action steps
    actions: np.ndarray  # [T, action_dim], the chunk as planned (without fast feedback)
    state: S | None = None  # the policy's own run-time state (its type is the policy's)

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


class Policy(abc.ABC, Generic[S]):
    """A slow ``plan`` and a fast ``step`` (see the module docstring). ``S`` is the type of the
    run-time state the policy keeps in its plans."""

    #: dataset keys the observation window must contain
    obs_keys: tuple[str, ...] = ()
    #: number of observation steps in a window
    n_obs_steps: int = 2
    #: dataset keys concatenated (in order) into the flat action vector
    action_keys: tuple[str, ...] = ()
    #: keys of the signals ``step`` reacts to (tactile pads, wrenches); empty: none
    fast_keys: tuple[str, ...] = ()
    #: control period of the training grid (s)
    dt: float = 1 / 24

    @abc.abstractmethod
    def plan(self, window: dict[str, np.ndarray]) -> Plan[S]: ...

    @abc.abstractmethod
    def step(self, plan: Plan[S], t: float, fast: FastSignal | None = None) -> np.ndarray: ...

    def reset(self) -> None:
        """Forget state carried between plans (start of an episode). Stateless by default."""
        return None
