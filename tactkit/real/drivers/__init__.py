"""Drivers for real arms: thin adapters from the :class:`~tactkit.real.robot.Robot` interface
to each vendor SDK. Each SDK is an optional extra and is imported on ``connect`` only::

    pip install "tactkit[flexiv]"   # Flexiv Rizon (flexivrdk)
    pip install "tactkit[franka]"   # Franka Panda / FR3 (franky-control)
    pip install "tactkit[ur]"       # UR e-series (ur-rtde)

Importing this package registers the drivers' configs in ``ROBOTS`` (types ``flexiv``,
``franka``, ``ur``).
"""

from __future__ import annotations

from tactkit.real.drivers._sdk import SdkArm, import_sdk
from tactkit.real.drivers.flexiv import FlexivConfig, FlexivRobot
from tactkit.real.drivers.franka import FrankaConfig, FrankaRobot
from tactkit.real.drivers.ur import URConfig, URRobot

__all__ = ["FlexivConfig", "FlexivRobot", "FrankaConfig", "FrankaRobot", "URConfig", "URRobot", "SdkArm", "import_sdk"]

