"""What machine a measurement ran on: the header every benchmark prints."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (``platform.processor()`` elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_summary() -> str:
    """``nproc``, CPU model, 1-minute load average, Python and numpy versions, on one line."""
    import numpy as np

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"nproc={os.cpu_count()}, CPU: {cpu_model()}, load avg {load:.2f}, "
        f"Python {platform.python_version()}, numpy {np.__version__}"
    )
