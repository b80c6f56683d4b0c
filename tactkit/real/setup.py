"""Robot setups: one YAML per robot with its driver config and its controller config.

``configs/robot/<name>.yaml``::

    robot:            # the driver's config; ``type`` picks it from the ROBOTS registry
      type: flexiv
      serial_number: Rizon4-062468
    controller:       # tactkit.real.controller.ControllerConfig (safety, watchdog, timing)
      execution_latency: 0.03
      safety: {workspace_min: [0.3, -0.3, 0.02], workspace_max: [0.8, 0.3, 0.5]}

Overrides use dotted keys (``robot.serial_number=...``, ``controller.safety.max_force=40``);
a bare key is looked up in the robot's config first, then in the controller's
(``serial_number=...``, ``plan_period=0.2``). ``controller.robot_rate_hz`` defaults to the
robot's ``rate_hz``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tactkit.config import ConfigError, find_config, from_dict, load_yaml, merge, parse_overrides
from tactkit.real.controller import ControllerConfig
from tactkit.real.robot import ROBOTS


@dataclass
class RobotSetup:
    name: str
    robot_type: str
    robot: Any | None  # driver config dataclass (None for sim:<task>, built by the task)
    controller: ControllerConfig


def _register_builtin_robots() -> None:
    import tactkit.real.drivers  # noqa: F401  (registers flexiv, franka, ur)
    import tactkit.real.fake  # noqa: F401  (registers fake)


def _expand_bare_keys(overrides: dict[str, Any], robot_fields: set[str]) -> dict[str, Any]:
    ctrl_fields = {f.name for f in dataclasses.fields(ControllerConfig)}
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key in ("robot", "controller"):
            out = merge(out, {key: value})
        elif key in robot_fields:
            out = merge(out, {"robot": {key: value}})
        elif key in ctrl_fields:
            out = merge(out, {"controller": {key: value}})
        else:
            raise ConfigError(
                f"unknown setting {key!r}: not a robot field ({', '.join(sorted(robot_fields)) or 'none'}) "
                f"nor a controller field ({', '.join(sorted(ctrl_fields))})"
            )
    return out


def load_robot_setup(name_or_path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> RobotSetup:
    """Load ``configs/robot/<name>.yaml`` (or a path) with ``key=value`` overrides."""
    _register_builtin_robots()
    path = find_config("robot", name_or_path)
    data = load_yaml(path)
    unknown = set(data) - {"robot", "controller"}
    if unknown:
        raise ConfigError(f"{path}: unknown top-level key {sorted(unknown)[0]!r}; expected robot, controller")
    robot_data = dict(data.get("robot") or {})
    robot_type = robot_data.pop("type", None)
    if not robot_type:
        raise ConfigError(f"{path}: robot.type is required (one of {', '.join(ROBOTS.names())}, or sim)")
    robot_cls = None if robot_type == "sim" else ROBOTS.config_class(robot_type)
    robot_fields = {f.name for f in dataclasses.fields(robot_cls)} if robot_cls else set()
    extra = _expand_bare_keys(parse_overrides(list(overrides)), robot_fields)
    robot_data = merge(robot_data, extra.get("robot", {}))
    ctrl_data = merge(dict(data.get("controller") or {}), extra.get("controller", {}))
    robot_cfg = from_dict(robot_cls, robot_data, "robot") if robot_cls else None
    if robot_cls is None and robot_data:
        raise ConfigError(f"{path}: a sim robot takes no robot settings, got {sorted(robot_data)}")
    if "robot_rate_hz" not in ctrl_data and robot_cfg is not None and hasattr(robot_cfg, "rate_hz"):
        ctrl_data["robot_rate_hz"] = float(robot_cfg.rate_hz)
    controller = from_dict(ControllerConfig, ctrl_data, "controller")
    return RobotSetup(Path(path).stem, robot_type, robot_cfg, controller)
