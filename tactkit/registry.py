"""Register implementations by the type of their config dataclass.

A device (robot, sensor, camera...) is a class with a config dataclass. Building one from a
config looks the implementation up by ``type(config)``, so adding a device is a local change
(a new config class and a decorated implementation) instead of another branch in an if/elif
chain::

    ROBOTS = Registry("robot")

    @dataclass
    class SimWipeConfig: ...

    @ROBOTS.register(SimWipeConfig)
    class SimWipeRobot(Robot): ...

    robot = ROBOTS.build(SimWipeConfig(...))

Configs loaded from YAML carry a ``type`` field; :meth:`Registry.config_class` maps that
name to its config dataclass.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps config dataclasses (and their ``type`` names) to implementation factories."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._by_config: dict[type, Callable[..., T]] = {}
        self._by_name: dict[str, type] = {}

    def register(self, config_cls: type, name: str | None = None) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``impl`` for configs of class ``config_cls`` (and name ``name``)."""

        def deco(impl: Callable[..., T]) -> Callable[..., T]:
            if config_cls in self._by_config:
                raise ValueError(f"{self.kind}: {config_cls.__name__} is already registered")
            self._by_config[config_cls] = impl
            type_name = name or getattr(config_cls, "type_name", None) or config_cls.__name__
            self._by_name[type_name] = config_cls
            return impl

        return deco

    def build(self, config: Any, *args: Any, **kwargs: Any) -> T:
        """Instantiate the implementation registered for ``type(config)``."""
        try:
            impl = self._by_config[type(config)]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise KeyError(
                f"no {self.kind} registered for config {type(config).__name__}; known: {known}"
            ) from None
        return impl(config, *args, **kwargs)

    def config_class(self, name: str) -> type:
        """The config dataclass registered under ``name`` (the YAML ``type`` field)."""
        try:
            return self._by_name[name]
        except KeyError:
            known = ", ".join(sorted(self._by_name)) or "none"
            raise KeyError(f"unknown {self.kind} type {name!r}; known: {known}") from None

    def names(self) -> list[str]:
        return sorted(self._by_name)
