"""Settings of the BEAST policy: the ``beast`` section of a policy config.

``configs/policy/beast.yaml`` sets them; overrides use the dotted path
(``beast.head=continuous``, ``beast.num_ctrl=8``). Plain data, no torch import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tactkit.config import ConfigError


@dataclass
class BeastConfig:
    #: "discrete": cross-entropy over ``bins`` tokens per control point and dimension (BEAST);
    #: "continuous": regression of the normalised control points
    head: Literal["discrete", "continuous"] = "discrete"
    num_ctrl: int = 8  # B-spline control points per action dimension (N)
    degree: int = 3  # spline degree of the pose dimensions (gripper dimensions: 0)
    bins: int = 256  # tokens per control point (discrete head)
    #: discrete head at inference: "argmax" (each slot's most likely bin, BEAST) or
    #: "expectation" (each slot's mean bin; see docs/beast-policy.md)
    decode: Literal["argmax", "expectation"] = "expectation"
    #: continuity with the previous plan: none, c0 (position) or c1 (position and velocity)
    continuity: Literal["none", "c0", "c1"] = "c0"
    # --- the bidirectional transformer over the N x D token slots
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    ff_mult: int = 4
    dropout: float = 0.0
    label_smoothing: float = 0.0  # discrete head: uniform smoothing of the targets
    #: discrete head: spread each target over its neighbouring bins with a Gaussian of this
    #: width (in bins), so near misses cost less than far ones; 0 = one-hot targets (BEAST)
    label_sigma: float = 2.0

    def __post_init__(self) -> None:
        if self.degree < 0:
            raise ConfigError(f"beast.degree must be >= 0, got {self.degree}")
        if self.num_ctrl < max(2, self.degree + 1):
            raise ConfigError(
                f"beast.num_ctrl must be >= max(2, degree + 1) = {max(2, self.degree + 1)}, got {self.num_ctrl}"
            )
        if self.decode not in ("argmax", "expectation"):
            raise ConfigError(f"beast.decode must be 'argmax' or 'expectation', got {self.decode!r}")
        if self.bins < 2:
            raise ConfigError(f"beast.bins must be >= 2, got {self.bins}")
        if self.d_model % self.n_heads:
            raise ConfigError(
                f"beast.d_model ({self.d_model}) must be a multiple of beast.n_heads ({self.n_heads})"
            )
        if self.n_layers < 1:
            raise ConfigError(f"beast.n_layers must be >= 1, got {self.n_layers}")
        if self.continuity == "c1" and (self.degree < 1 or self.num_ctrl < 3):
            raise ConfigError("beast.continuity=c1 needs degree >= 1 and num_ctrl >= 3")
        if self.label_sigma < 0:
            raise ConfigError(f"beast.label_sigma must be >= 0, got {self.label_sigma}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(
                f"beast.label_smoothing must be in [0, 1), got {self.label_smoothing}"
            )
