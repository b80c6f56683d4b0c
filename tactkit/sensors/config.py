"""Sensor configs from YAML: each entry's ``type`` picks its config dataclass (and driver).

A file holds one sensor (a mapping with ``type``) or several under ``sensors:``, keyed by
name (the key becomes the sensor's ``name`` unless it sets one)::

    sensors:
      left:  {type: gelsight, device: "GelSight Mini", tracker: {grid: [7, 9]}}
      wrist: {type: opencv_camera, device: 0, width: 640, height: 480, fps: 30}
      ft:    {type: ati_netft, host: 192.168.1.1, counts_per_force: 1000000}

Types resolve through the :data:`~tactkit.sensors.base.SENSORS` registry, so a new device
is a new config dataclass registered with its driver, not another branch here.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from tactkit.config import ConfigError, find_config, from_dict, load_yaml, merge, parse_overrides
from tactkit.sensors.base import SENSORS

#: modules whose import registers the built-in drivers
DRIVER_MODULES = (
    "tactkit.sensors.cameras",
    "tactkit.sensors.tactile",
    "tactkit.sensors.netft",
    "tactkit.sensors.transport",
)


def import_drivers() -> None:
    """Import the built-in driver modules so that their config types are registered."""
    for mod in DRIVER_MODULES:
        importlib.import_module(mod)


def sensor_config_from_dict(data: dict[str, Any], path: str = "sensor") -> Any:
    """Build the config dataclass named by ``data['type']`` from the other keys."""
    import_drivers()
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with a 'type', got {type(data).__name__}")
    if "type" not in data:
        raise ConfigError(f"{path}: missing 'type' (one of: {', '.join(SENSORS.names())})")
    body = {k: v for k, v in data.items() if k != "type"}
    try:
        cls = SENSORS.config_class(str(data["type"]))
    except KeyError as exc:
        raise ConfigError(f"{path}.type: {exc.args[0]}") from None
    try:
        return from_dict(cls, body, path)
    except ConfigError:
        raise
    except (ValueError, TypeError) as exc:  # __post_init__ validation
        raise ConfigError(f"{path}: {exc}") from None


def load_sensor_configs(
    source: str | Path | dict[str, Any], overrides: list[str] | tuple[str, ...] = ()
) -> dict[str, Any]:
    """Sensor configs by name from a YAML file (path or ``configs/sensor/<name>``) or a dict.

    ``overrides`` are ``key=value`` with dotted paths into the file, e.g.
    ``sensors.left.tracker.grid=[5,5]``.
    """
    if isinstance(source, dict):
        data = source
    else:
        data = load_yaml(find_config("sensor", source))
    data = merge(data, parse_overrides(overrides))
    if "sensors" in data:
        extra = sorted(set(data) - {"sensors"})
        if extra:
            raise ConfigError(f"unknown top-level key {extra[0]!r} next to 'sensors'")
        entries = data["sensors"]
        if not isinstance(entries, dict) or not entries:
            raise ConfigError("sensors: expected a non-empty mapping of name -> sensor config")
        out = {}
        for name, entry in entries.items():
            if isinstance(entry, dict) and "name" not in entry:
                entry = {**entry, "name": str(name)}
            out[str(name)] = sensor_config_from_dict(entry, f"sensors.{name}")
        return out
    cfg = sensor_config_from_dict(data)
    return {str(getattr(cfg, "name", "sensor")): cfg}


def build_sensor(config: Any, **kwargs: Any) -> Any:
    """Instantiate the driver registered for ``type(config)``."""
    import_drivers()
    return SENSORS.build(config, **kwargs)


def build_sensors(sources: list[str | Path], overrides: list[str] | tuple[str, ...] = ()) -> list[Any]:
    """Every sensor of every config in ``sources`` (names in ``configs/sensor`` or YAML paths;
    a file may hold one sensor or a rig of several), not yet connected."""
    return [build_sensor(cfg) for src in sources for cfg in load_sensor_configs(src, overrides).values()]
