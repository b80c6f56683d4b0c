"""Drivers for real arms: thin adapters from the :class:`~tactkit.real.robot.Robot` interface
to each vendor SDK. Each SDK is an optional extra and is imported on ``connect`` only::

    pip install "tactkit[flexiv]"   # Flexiv Rizon (flexivrdk >=1.6,<2.1; Python 3.10 / 3.12)
    pip install "tactkit[franka]"   # Franka Panda / FR3 (franky-control 2.x)
    pip install "tactkit[ur]"       # UR e-series (ur-rtde 1.6)

Each driver module keeps a table of every SDK symbol it uses (``SDK_CALLS``), checked against
the installed SDK by ``check_sdk()`` (see :mod:`tactkit.real.drivers._conformance`).
Importing this package registers the drivers' configs in ``ROBOTS`` (types ``flexiv``,
``franka``, ``ur``).
"""

from __future__ import annotations

from tactkit.real.drivers._conformance import SdkCall, check_calls
from tactkit.real.drivers._sdk import SdkArm, import_sdk
from tactkit.real.drivers.flexiv import FlexivConfig, FlexivRobot
from tactkit.real.drivers.franka import FrankaConfig, FrankaRobot
from tactkit.real.drivers.ur import URConfig, URRobot

__all__ = [
    "FlexivConfig", "FlexivRobot", "FrankaConfig", "FrankaRobot", "URConfig", "URRobot", "SdkArm", "SdkCall",
    "check_calls", "import_sdk",
]
