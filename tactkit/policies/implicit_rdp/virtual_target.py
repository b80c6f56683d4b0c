"""The virtual target: where the impedance controller is effectively driven, ``x + K^-1 f``.

An arm under Cartesian impedance control with translational stiffness ``K`` (diagonal) settles
where its spring balances the contact: ``K (x_cmd - x) = f``, with ``f`` the force the arm
exerts on the world. The *virtual target* ``x_vt = x + K^-1 f`` is that commanded position
recovered from what was measured (TCP position ``x``, wrench ``f``): the force expressed in
the action's own space. ImplicitRDP denoises it beside the actions as an auxiliary target
(virtual-target representation regularisation) so the network cannot ignore the force.

tactkit's wrench streams hold the external force ON the tool (``observation.wrench``: pressing
down reads ``fz > 0``), the negative of the force the arm exerts, hence
``ImplicitRDPConfig.wrench_sign = -1``. The stiffness comes from the policy config or from
the training store's attributes (``impedance_stiffness``); the policy layer never asks the
simulator.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from tactkit.config import ConfigError
from tactkit.policies.config import PolicyConfig

ArrayT = TypeVar("ArrayT")

#: store attribute holding the robot's impedance stiffness: [kx, ky, kz, ...] or {arm: [...]}
STIFFNESS_ATTR = "impedance_stiffness"


def virtual_target(x: ArrayT, f: ArrayT, stiffness: Any, wrench_sign: float = -1.0) -> ArrayT:
    """``x[..., :3] + K^-1 (wrench_sign * f[..., :3])`` for a diagonal ``K = diag(stiffness[:3])``.

    ``x`` is a position or a 7-D pose (xyz first), ``f`` a force or a 6-D wrench (force first),
    numpy arrays or torch tensors of the same kind; ``stiffness`` a sequence of >= 3 values (N/m)
    or an array broadcastable to ``[..., 3]``."""
    k = stiffness
    if isinstance(k, list | tuple):
        k = x.new_tensor(k[:3]) if hasattr(x, "new_tensor") else np.asarray(k[:3], dtype=np.float64)  # type: ignore[attr-defined]
    return x[..., :3] + (wrench_sign * f[..., :3]) / k  # type: ignore[index,operator]


def arm_of(action_key: str) -> str:
    """``action.tcp_pose`` -> ``""``; ``action.left.tcp_pose`` -> ``"left"``."""
    middle = action_key[len("action.") : -len("tcp_pose")].strip(".")
    return middle


def force_sources(cfg: PolicyConfig) -> list[tuple[str, str, str]]:
    """``(pose action key, observed pose key, wrench key)`` for every arm's pose action:
    ``action.tcp_pose`` -> ``observation.state.tcp_pose``, ``observation.wrench``;
    ``action.left.tcp_pose`` -> ``observation.state.left.tcp_pose``, ``observation.wrench.left``."""
    out = []
    for k in cfg.action_keys:
        if k.startswith("action.") and k.endswith("tcp_pose"):
            arm = arm_of(k)
            out.append((k, "observation.state." + k[len("action.") :], "observation.wrench" + (f".{arm}" if arm else "")))
    return out


def aux_keys(cfg: PolicyConfig) -> list[str]:
    """Dataset keys the auxiliary target is computed from (sampled over the whole horizon)."""
    aux = cfg.irdp.aux_target
    keys: list[str] = []
    for _, pose, wrench in force_sources(cfg):
        if aux == "virtual_target":
            keys += [pose, wrench]
        elif aux == "force":
            keys.append(wrench)
    return keys


def stiffness_for(stiffness: list[float] | dict[str, list[float]] | None, arm: str) -> list[float]:
    """The translational stiffness ``[kx, ky, kz]`` of ``arm`` ("" for a single-arm key)."""
    if stiffness is None:
        raise ConfigError("irdp.stiffness is not set")
    if isinstance(stiffness, dict):
        if arm in stiffness:
            return [float(v) for v in stiffness[arm][:3]]
        if not arm and len(stiffness) == 1:
            return [float(v) for v in next(iter(stiffness.values()))[:3]]
        raise ConfigError(f"irdp.stiffness has no entry for arm {arm or '(single arm)'!r}; arms: {sorted(stiffness)}")
    return [float(v) for v in stiffness[:3]]


def data_attributes(path: str | Path) -> dict[str, Any]:
    """The user attributes of the episode store at ``path`` (``{}`` for a replay buffer)."""
    from tactkit.store import EpisodeStore, NotAStoreError

    try:
        return dict(EpisodeStore.open(str(path), mode="r").attrs)
    except NotAStoreError:
        return {}


def prepare_config(cfg: PolicyConfig, data_path: str | Path) -> PolicyConfig:
    """Resolve what ImplicitRDP takes from the data before training: the stiffness (config,
    else the store's ``impedance_stiffness`` attribute) and ``target_keys`` (the pose and
    wrench streams the auxiliary target needs over the whole horizon)."""
    ic = cfg.irdp
    sources = force_sources(cfg)
    if ic.aux_target != "none" and not sources:
        raise ConfigError(f"irdp.aux_target={ic.aux_target} needs a tcp_pose action key, got {cfg.action_keys}")
    if ic.aux_target == "virtual_target" and ic.stiffness is None:
        found = data_attributes(data_path).get(STIFFNESS_ATTR)
        if found is None:
            raise ConfigError(
                f"the virtual target needs the robot's stiffness: set irdp.stiffness=[kx,ky,kz] (N/m), or record "
                f"{STIFFNESS_ATTR!r} in the store's attributes ({data_path} has none), or turn the "
                f"regularisation off with irdp.aux_target=none"
            )
        ic = dataclasses.replace(ic, stiffness=found)
    if ic.aux_target == "virtual_target":
        for ak, _, _ in sources:
            k = stiffness_for(ic.stiffness, arm_of(ak))
            if len(k) < 3 or any(not v > 0 for v in k):
                raise ConfigError(f"stiffness of arm {arm_of(ak) or '(single)'!r} must be 3 positive values, got {k}")
    targets = list(cfg.target_keys)
    for k in aux_keys(dataclasses.replace(cfg, irdp=ic)):
        if k not in targets and k not in cfg.fast_keys:
            targets.append(k)
    return dataclasses.replace(cfg, irdp=ic, target_keys=targets)
