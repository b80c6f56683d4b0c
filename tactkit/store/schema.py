"""Stream schema: what one recorded stream holds.

A store's attributes hold a :class:`StreamSpec` per key. Keys follow the LeRobot convention:
``observation.images.<camera>``, ``observation.state.<name>``,
``observation.tactile.<sensor>.marker_offset``, ``observation.wrench``, ``action.<name>``.
For multi-arm robots the arm name goes before the quantity: ``observation.state.left.tcp_pose``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class StreamSpec:
    dtype: str  # numpy dtype name, e.g. "uint8", "float32"
    shape: tuple[int, ...]  # per-sample shape, e.g. (240, 320, 3)
    rate_hz: float  # nominal rate
    units: str = ""  # e.g. "m", "N", "rgb", "normalised"
    names: tuple[str, ...] = field(default_factory=tuple)  # element names for 1-D streams

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(s) for s in self.shape))
        object.__setattr__(self, "names", tuple(self.names))
        np.dtype(self.dtype)  # raises on an unknown dtype
        if self.rate_hz <= 0:
            raise ValueError(f"rate_hz must be > 0, got {self.rate_hz}")

    @property
    def is_image(self) -> bool:
        return self.dtype == "uint8" and len(self.shape) == 3 and self.shape[-1] in (1, 3, 4)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["shape"] = list(self.shape)
        d["names"] = list(self.names)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> StreamSpec:
        return cls(
            dtype=d["dtype"],
            shape=tuple(d["shape"]),
            rate_hz=float(d["rate_hz"]),
            units=d.get("units", ""),
            names=tuple(d.get("names", ())),
        )


#: 7-D pose element names (position + quaternion w, x, y, z)
POSE_NAMES = ("x", "y", "z", "qw", "qx", "qy", "qz")
#: 6-D wrench element names
WRENCH_NAMES = ("fx", "fy", "fz", "tx", "ty", "tz")
