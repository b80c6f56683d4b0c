"""PyBullet simulation: impedance-controlled Panda arms, simulated tactile / force / camera
sensors and contact-rich tasks (wipe, peel, lift) with scripted experts.

Modules: :mod:`~tactkit.sim.world` (physics client + lockstep clock), :mod:`~tactkit.sim.robot`
(``SimRobot``, a :class:`tactkit.real.robot.Robot`), :mod:`~tactkit.sim.sensors` (``Sensor``
implementations), :mod:`~tactkit.sim.tactile` (marker-field model), :mod:`~tactkit.sim.tasks`
(tasks, experts, evaluation). See docs/simulation.md.
"""

import os as _os
import sys as _sys


def _import_pybullet_quietly() -> None:
    """Import pybullet without the "pybullet build time: ..." line its C module prints at
    import (on stderr; stdout too in some builds) before every command's own output. Both go
    to /dev/null for the import: C stdio is flushed before they are restored, so a buffered
    copy cannot surface later. Import errors still raise."""
    if "pybullet" in _sys.modules:
        return
    try:
        for stream in (_sys.stdout, _sys.stderr):
            stream.flush()
        saved = [_os.dup(1), _os.dup(2)]
    except (OSError, ValueError, AttributeError):  # no usable fds: import as is
        import pybullet  # noqa: F401
        return
    devnull = _os.open(_os.devnull, _os.O_WRONLY)
    try:
        _os.dup2(devnull, 1)
        _os.dup2(devnull, 2)
        import pybullet  # noqa: F401
    finally:
        try:
            import ctypes

            ctypes.CDLL(None).fflush(None)
        except (OSError, AttributeError):
            pass
        for fd, copy in zip((1, 2), saved):
            _os.dup2(copy, fd)
            _os.close(copy)
        _os.close(devnull)


_import_pybullet_quietly()
