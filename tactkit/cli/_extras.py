"""Checks for optional packages before a command starts long work (install extras: docs/install.md)."""

from __future__ import annotations

import importlib.util


def require(module: str, extra: str, why: str) -> None:
    """Raise an ImportError that names the extra when ``module`` is not installed."""
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"{why} needs {module}: pip install 'tactkit[{extra}]'")
