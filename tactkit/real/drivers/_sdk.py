"""What every vendor driver shares: importing its optional SDK, and the single-arm set-up."""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

from tactkit.clock import Clock, WallClock
from tactkit.real.robot import Robot


def import_sdk(module: str, extra: str) -> Any:
    """Import a vendor SDK module, or fail with the install command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the {extra} driver needs the {module!r} SDK: pip install \"tactkit[{extra}]\" ({exc})"
        ) from exc


class SdkArm(Robot):
    """One arm (``"arm"``) driven through a vendor SDK module imported on ``connect``.

    Subclasses name the SDK module, the extra that installs it, and the config field that
    addresses the robot. ``sdk`` overrides the module (tests pass a fake of its interface).
    """

    arm_names = ("arm",)
    sdk_module: ClassVar[str]
    extra: ClassVar[str]
    address_field: ClassVar[str]
    address_example: ClassVar[str]

    def __init__(self, config: Any, sdk: Any = None, clock: Clock | None = None) -> None:
        if not getattr(config, self.address_field):
            raise ValueError(
                f"{self.extra}: {self.address_field} is required "
                f"(e.g. {self.address_field}={self.address_example})"
            )
        self.config = config
        self.rate_hz = config.rate_hz
        self.clock = clock or WallClock()
        self._sdk = sdk
        self.robot: Any = None
        self.gripper: Any = None
        self._last_width: float | None = None

    def _load_sdk(self) -> Any:
        if self._sdk is None:
            self._sdk = import_sdk(self.sdk_module, self.extra)
        return self._sdk
