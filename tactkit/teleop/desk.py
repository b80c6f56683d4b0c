"""Desk headset: drive the bridge from a keyboard (or a 3Dconnexion SpaceMouse) without a headset.

Keys (terminal, no Enter needed)::

    w/s  +x/-x     a/d  +y/-y     r/f  +z/-z     (``step`` m per press)
    space  clutch on/off           g  gripper open/closed
    1  start episode   2  stop (success)   3  stop (failure)   4  discard   q  quit

With ``pyspacemouse`` installed (``pip install "tactkit[spacemouse]"``) and a device present,
the SpaceMouse's translation moves the hand continuously instead; its left button is the
clutch, the right one the gripper.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from tactkit.teleop import protocol as P
from tactkit.teleop.client import HeadsetClient

log = logging.getLogger(__name__)


def key_help() -> str:
    """The key table of the module docstring, as the terminal shows it."""
    import textwrap

    block = __doc__.split("::\n\n", 1)[1].split("\n\n", 1)[0]
    return "keys:\n" + textwrap.indent(textwrap.dedent(block).replace("``", ""), "  ")


MOVES = {"w": (0, 1), "s": (0, -1), "a": (1, 1), "d": (1, -1), "r": (2, 1), "f": (2, -1)}
EPISODE_KEYS = {"1": ("start_episode", {}), "2": ("stop_episode", {"success": True}),
                "3": ("stop_episode", {"success": False}), "4": ("discard_episode", {})}


@dataclass
class DeskState:
    """The virtual right hand a desk operator moves."""

    step: float = 0.005
    hand: np.ndarray = field(default_factory=lambda: np.array([0.35, -0.2, 1.1]))
    clutch: bool = False
    gripper_closed: bool = False

    def apply_key(self, key: str) -> tuple[str, dict] | None:
        """Update the hand for a key; returns an episode command to send, if any."""
        if key in MOVES:
            axis, sign = MOVES[key]
            self.hand[axis] += sign * self.step
        elif key == " ":
            self.clutch = not self.clutch
        elif key == "g":
            self.gripper_closed = not self.gripper_closed
        elif key in EPISODE_KEYS:
            return EPISODE_KEYS[key]
        return None

    def hand_msg(self) -> P.Hand:
        buttons = (1 << P.BUTTON_HAND) * self.clutch | (1 << P.BUTTON_INDEX) * self.gripper_closed
        return P.Hand(wrist=P.Pose(pos=tuple(self.hand.tolist()), quat=(1.0, 0.0, 0.0, 0.0)),
                      index_trigger=1.0 if self.gripper_closed else 0.0,
                      hand_trigger=1.0 if self.clutch else 0.0, buttons=buttons)


def _spacemouse():
    try:
        import pyspacemouse  # optional extra
    except ImportError:
        return None
    try:
        return pyspacemouse if pyspacemouse.open() else None
    except Exception as exc:  # noqa: BLE001 - no device / permissions: fall back to keys
        log.info("no SpaceMouse: %s", exc)
        return None


def run_desk(client: HeadsetClient, step: float = 0.005, rate_hz: float = 60.0) -> None:
    """Interactive loop on the terminal (raw keys) until ``q``."""
    import select
    import termios
    import tty

    state = DeskState(step=step)
    mouse = _spacemouse()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    t0 = time.monotonic()
    last_status = 0.0
    try:
        tty.setcbreak(fd)
        print(key_help(), file=sys.stderr)
        while True:
            t = time.monotonic() - t0
            if select.select([sys.stdin], [], [], 0)[0]:
                key = sys.stdin.read(1).lower()
                if key == "q":
                    return
                cmd = state.apply_key(key)
                if cmd is not None:
                    ack = client.control(cmd[0], t, **cmd[1])
                    print(f"\n{cmd[0]}: {ack.message}", file=sys.stderr)
            if mouse is not None:
                m = mouse.read()
                state.hand += np.array([m.y, -m.x, m.z]) * 0.2 / rate_hz
                state.clutch, state.gripper_closed = bool(m.buttons[0]), bool(m.buttons[1])
            client.send_pose(t, P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0)), None, state.hand_msg())
            fb = client.poll_feedback(0)
            if fb is not None and t - last_status > 0.25:
                last_status = t
                tcp = fb.arms[0].tcp.pos if fb.arms else (float("nan"),) * 3
                print(f"\rclutch {'ON ' if state.clutch else 'off'} grip {'closed' if state.gripper_closed else 'open  '} "
                      f"tcp {tcp[0]:+.3f} {tcp[1]:+.3f} {tcp[2]:+.3f} | {fb.status[:90]}", end="", file=sys.stderr)
            time.sleep(1.0 / rate_hz)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        print(file=sys.stderr)
