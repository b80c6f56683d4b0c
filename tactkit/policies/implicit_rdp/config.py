"""Settings of ImplicitRDP: the ``irdp`` section of a policy config.

``configs/policy/implicit_rdp.yaml`` sets them and the size overlays
(``configs/policy/size_<size>.yaml``) scale the transformer; overrides use the dotted path
(``irdp.aux_target=none``, ``irdp.stiffness=[1500,1500,2500]``). Plain data, no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tactkit.config import ConfigError


@dataclass
class ImplicitRDPConfig:
    # --- the slow-fast transformer (one network: slow tokens, fast tokens, action tokens)
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4  # decoder layers over the action tokens (causal self- + cross-attention)
    n_cond_layers: int = 1  # encoder layers over [slow tokens, fast tokens] (masked); 0 = none
    ff_mult: int = 4
    dropout: float = 0.0
    fast_hidden: int = 64  # GRU over the fast signal (one fast token per chunk step)
    #: fraction of training samples whose fast signals after the observation window are replaced
    #: by the window's newest one (what ``plan`` feeds the chunk): the slow tokens must then carry
    #: the plan. At 0 the network took its lateral motion from the friction that motion causes
    #: (a shortcut: fine offline, drifts off the path in closed loop; docs/implicit-rdp.md).
    #: configs/policy/implicit_rdp.yaml sets 0.5; 0 here, so runs saved before the option
    #: existed read back as trained without it
    fast_dropout: float = 0.0
    #: indices into the (concatenated, normalised) fast signal that the network sees; the others
    #: are zeroed in training and at run time. None: all. E.g. [2] for a single arm's wrench keeps
    #: the normal force only, dropping the friction (and its torques) the policy's own motion causes
    fast_channels: list[int] | None = None
    # --- virtual-target representation regularisation (the ablation switch)
    #: auxiliary channels denoised with the actions: "virtual_target" (x + K^-1 f, ImplicitRDP),
    #: "force" (the raw force, the paper's weaker alternative) or "none" (no regularisation)
    aux_target: Literal["virtual_target", "force", "none"] = "virtual_target"
    aux_weight: float = 1.0  # weight of the auxiliary channels' loss against the actions'
    #: translational stiffness of the robot's impedance controller (N/m): [kx, ky, kz] for every
    #: arm, or {arm: [kx, ky, kz, ...]}. None: read ``impedance_stiffness`` from the training
    #: store's attributes when training starts (the resolved value is saved with the run).
    stiffness: list[float] | dict[str, list[float]] | None = None
    #: f = wrench_sign * the recorded force is the force the arm exerts on the world. tactkit's
    #: wrench streams hold the external force ON the tool (pressing down reads fz > 0), so -1:
    #: at rest K (x_cmd - x) = -f_ext, i.e. the commanded pose is x + K^-1 f.
    wrench_sign: float = -1.0

    def __post_init__(self) -> None:
        if self.d_model % self.n_heads:
            raise ConfigError(f"irdp.d_model ({self.d_model}) must be a multiple of irdp.n_heads ({self.n_heads})")
        if self.n_layers < 1:
            raise ConfigError(f"irdp.n_layers must be >= 1, got {self.n_layers}")
        if self.n_cond_layers < 0:
            raise ConfigError(f"irdp.n_cond_layers must be >= 0, got {self.n_cond_layers}")
        if self.fast_hidden < 1 or self.ff_mult < 1:
            raise ConfigError("irdp.fast_hidden and irdp.ff_mult must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"irdp.dropout must be in [0, 1), got {self.dropout}")
        if not 0.0 <= self.fast_dropout <= 1.0:
            raise ConfigError(f"irdp.fast_dropout must be in [0, 1], got {self.fast_dropout}")
        if self.fast_channels is not None and (not self.fast_channels or min(self.fast_channels) < 0):
            raise ConfigError(f"irdp.fast_channels must be null or non-empty indices >= 0, got {self.fast_channels}")
        if self.aux_weight < 0:
            raise ConfigError(f"irdp.aux_weight must be >= 0, got {self.aux_weight}")
        if self.wrench_sign not in (-1.0, 1.0):
            raise ConfigError(f"irdp.wrench_sign must be -1 or 1, got {self.wrench_sign}")
        for arm, k in _stiffness_items(self.stiffness):
            if len(k) < 3 or any(not v > 0 for v in k[:3]):
                where = "irdp.stiffness" + (f".{arm}" if arm else "")
                raise ConfigError(f"{where} must hold >= 3 positive values [kx, ky, kz] (N/m), got {k}")


def _stiffness_items(stiffness: list[float] | dict[str, list[float]] | None) -> list[tuple[str, list[float]]]:
    if stiffness is None:
        return []
    if isinstance(stiffness, dict):
        return list(stiffness.items())
    return [("", list(stiffness))]
