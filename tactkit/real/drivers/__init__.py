"""Drivers for real arms: thin adapters from the :class:`~tactkit.real.robot.Robot` interface
to each vendor SDK. Each SDK is an optional extra and is imported on ``connect`` only::

    pip install "tactkit[flexiv]"   # Flexiv Rizon (flexivrdk)
    pip install "tactkit[franka]"   # Franka Panda / FR3 (franky-control)
    pip install "tactkit[ur]"       # UR e-series (ur-rtde)

Importing this package registers the drivers' configs in ``ROBOTS`` (types ``flexiv``,
``franka``, ``ur``).
"""

from __future__ import annotations

import importlib
from typing import Any

from tactkit.real.drivers.flexiv import FlexivConfig, FlexivRobot
from tactkit.real.drivers.franka import FrankaConfig, FrankaRobot
from tactkit.real.drivers.ur import URConfig, URRobot

__all__ = ["FlexivConfig", "FlexivRobot", "FrankaConfig", "FrankaRobot", "URConfig", "URRobot", "import_sdk"]


def import_sdk(module: str, extra: str) -> Any:
    """Import a vendor SDK module, or fail with the install command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"the {extra} driver needs the {module!r} SDK: pip install \"tactkit[{extra}]\" ({exc})"
        ) from exc
