"""What a simulated operator sees of a simulated scene: the contact path, published by the rig.

A person teleoperating the wipe task sees the painted path on the board and where the peel
object lies; the simulated operator (:mod:`tactkit.teleop.operator`) gets the same knowledge
as a :class:`SceneState`, read from the simulation's privileged state (the task's public
ground-truth interface: ``path_world``, ``surface_height``, ``arc_point``, ``privileged``) and
published by the rig on its own loopback PUB socket, apart from the headset protocol. The
operator still *acts* only through the headset protocol and the clutch, and feels the contact
only through the bridge's feedback.

The path is a list of :class:`Waypoint` s in the robot base frame: the tool pose touching the
surface with zero force and the outward surface normal there. Pressing means moving the tool
target along ``-normal``. The message also carries the bridge's retargeting map (headset frame
in the robot base, translation scale), which a person learns in the first seconds of use, and
the task's score so far, which the operator only reports (its own verdict comes from what it
felt).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np
import zmq

from tactkit.teleop.protocol import Quat, Vec3

log = logging.getLogger(__name__)

SCENE_VERSION = 1
#: default endpoint of the rig's scene publisher (loopback only: it is simulation ground truth)
DEFAULT_SCENE_ENDPOINT = "tcp://127.0.0.1:5557"


class Waypoint(msgspec.Struct, array_like=True):
    pos: Vec3  # tool position touching the surface (robot base frame, m)
    quat: Quat  # tool orientation there (w, x, y, z)
    normal: Vec3  # outward unit surface normal


class SceneState(msgspec.Struct, tag="scene"):
    v: int
    t: float  # simulation time of the snapshot (the bridge's clock domain)
    task: str
    seed: int
    scene: int  # counts scene rebuilds: a new value = a new episode's scene
    path: list[Waypoint]
    force_band: tuple[float, float]  # N, the task's band on the normal force
    calibration: tuple[float, ...]  # headset frame in the robot base: x y z qw qx qy qz
    translation_scale: float
    score: float  # the task's own score so far (privileged; reported, never acted on)
    success: bool


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(SceneState)


def _tuple(x: Any) -> tuple[float, ...]:
    return tuple(float(v) for v in np.asarray(x, dtype=np.float64).reshape(-1))


def _wipe_path(task: Any) -> tuple[list[Waypoint], tuple[float, float]]:
    from tactkit.sim.geometry import DOWN

    z = task.surface_height()
    path = [Waypoint(_tuple([*task.path_world(i), z]), _tuple(DOWN), (0.0, 0.0, 1.0))
            for i in range(len(task.path))]
    return path, (float(task.config.force_band[0]), float(task.config.force_band[1]))


def _peel_path(task: Any) -> tuple[list[Waypoint], tuple[float, float]]:
    from tactkit.sim.tasks.peel import blade_orientation

    path = [Waypoint(_tuple(task.arc_point(float(th))), _tuple(blade_orientation(float(th))),
                     (0.0, math.sin(th), math.cos(th))) for th in task.thetas]
    return path, (float(task.config.force_band[0]), float(task.config.force_band[1]))


#: task name -> reader of its contact path from the task's ground-truth interface
PATH_READERS: dict[str, Callable[[Any], tuple[list[Waypoint], tuple[float, float]]]] = {
    "wipe": _wipe_path,
    "peel": _peel_path,
}


def read_scene(task: Any, scene: int, calibration: Any, translation_scale: float) -> SceneState:
    """A :class:`SceneState` of ``task`` (a :class:`tactkit.sim.tasks.SimTask` with a world)."""
    reader = PATH_READERS.get(task.name)
    if reader is None:
        raise ValueError(f"the simulated operator knows the tasks {sorted(PATH_READERS)}, not {task.name!r}")
    path, band = reader(task)
    ev = task.evaluate()
    return SceneState(v=SCENE_VERSION, t=float(task.world.time), task=task.name, seed=int(task.seed),
                      scene=int(scene), path=path, force_band=band, calibration=_tuple(calibration),
                      translation_scale=float(translation_scale), score=float(ev["score"]),
                      success=bool(ev["success"]))


class ScenePublisher:
    """PUB socket of the rig's scene state (bound on loopback; used from one thread)."""

    def __init__(self, endpoint: str = DEFAULT_SCENE_ENDPOINT, context: zmq.Context | None = None) -> None:
        from tactkit.teleop.security import is_loopback

        if not is_loopback(endpoint):
            raise ValueError(f"scene endpoint {endpoint!r}: the simulation's ground truth is served on "
                             "loopback only (tcp://127.0.0.1:PORT)")
        self._ctx = context or zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.PUB)
        self.sock.linger = 0
        self.sock.sndhwm = 2
        try:
            self.sock.bind(endpoint)
        except zmq.ZMQError as exc:
            self.sock.close(0)
            raise ValueError(f"cannot bind the scene publisher to {endpoint}: {exc} "
                             "(another `tactkit teleop`? pass --scene tcp://127.0.0.1:OTHER_PORT)") from None
        self.endpoint = self.sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def publish(self, state: SceneState) -> None:
        try:
            self.sock.send(_ENCODER.encode(state), zmq.NOBLOCK)
        except zmq.Again:
            pass

    def close(self) -> None:
        self.sock.close(0)


class SceneSubscriber:
    """SUB socket (conflated: the newest scene state only)."""

    def __init__(self, endpoint: str = DEFAULT_SCENE_ENDPOINT, context: zmq.Context | None = None) -> None:
        self._ctx = context or zmq.Context.instance()
        self.sock = self._ctx.socket(zmq.SUB)
        self.sock.linger = 0
        self.sock.conflate = True
        self.sock.setsockopt(zmq.SUBSCRIBE, b"")
        self.sock.connect(endpoint)
        self.endpoint = endpoint
        self.latest: SceneState | None = None

    def poll(self, timeout_ms: float = 0) -> SceneState | None:
        """The newest state if one arrived (waits up to ``timeout_ms``), else None."""
        if not self.sock.poll(timeout_ms):
            return None
        try:
            msg = _DECODER.decode(self.sock.recv(zmq.NOBLOCK))
        except (zmq.Again, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("bad scene message: %s", exc)
            return None
        if msg.v != SCENE_VERSION:
            log.warning("scene message version %d, expected %d", msg.v, SCENE_VERSION)
            return None
        self.latest = msg
        return msg

    def close(self) -> None:
        self.sock.close(0)
