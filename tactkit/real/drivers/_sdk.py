"""What every vendor driver shares: importing its optional SDK, and the single-arm set-up."""

from __future__ import annotations

import importlib
import importlib.metadata
import sys
from types import ModuleType
from typing import Any, ClassVar

from tactkit.clock import Clock, WallClock
from tactkit.real.drivers._conformance import SdkCall, check_calls
from tactkit.real.robot import Robot


def import_sdk(module: str, extra: str, hint: str = "") -> Any:
    """Import a vendor SDK module, or fail with the install command that provides it.

    ``hint`` is appended to the error (e.g. which Python versions the SDK has wheels for).
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        py = f"{sys.version_info.major}.{sys.version_info.minor}"
        raise ImportError(
            f"the {extra} driver needs the {module!r} SDK: pip install \"tactkit[{extra}]\" "
            f"(this is Python {py}{'; ' + hint if hint else ''}) ({exc})"
        ) from exc


def sdk_version(module: ModuleType, dist: str) -> str:
    """Installed version of an SDK (its distribution's, else the module's ``__version__``)."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return str(getattr(module, "__version__", "unknown version"))


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
    sdk_dist: ClassVar[str]  # the PyPI distribution, for versions in messages
    install_hint: ClassVar[str] = ""

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

    def _load_sdk(self) -> Any:
        if self._sdk is None:
            self._sdk = import_sdk(self.sdk_module, self.extra, self.install_hint)
        return self._sdk

    def sdk_calls(self, sdk: Any) -> tuple[SdkCall, ...]:
        """Every SDK symbol this driver uses (its conformance table) for ``sdk``."""
        raise NotImplementedError

    def check_sdk(self) -> tuple[str, list[str]]:
        """(SDK name and version, problems with the calls this driver makes into it)."""
        sdk = self._load_sdk()
        label = f"{self.sdk_dist} {sdk_version(sdk, self.sdk_dist)}"
        try:
            calls = self.sdk_calls(sdk)
        except ValueError as exc:
            return label, [str(exc)]
        return label, check_calls(calls, {self.sdk_module: sdk})
