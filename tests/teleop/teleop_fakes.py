"""Test doubles for hardware only (a fake arm and fake sensors implementing the real
interfaces) and message builders for the teleop tests."""

from __future__ import annotations

import threading
import time

import numpy as np

from tactkit.real.robot import ArmState, Robot, RobotCommand, RobotState
from tactkit.teleop import protocol as P

HOME = np.array([0.5, 0.0, 0.3, 0.0, 1.0, 0.0, 0.0])  # TCP pointing down


class FakeArmRobot(Robot):
    """A robot whose TCP jumps to each commanded target (stands in for an arm + driver).

    Records every command it receives with the monotonic time it arrived.
    """

    rate_hz = 500.0

    def __init__(self, arm_names: tuple[str, ...] = ("arm",), home: np.ndarray = HOME) -> None:
        self.arm_names = tuple(arm_names)
        self._pose = {a: home.copy() for a in self.arm_names}
        self._gripper = dict.fromkeys(self.arm_names, 0.08)
        self.wrench = {a: np.zeros(6) for a in self.arm_names}
        self.received: list[tuple[float, RobotCommand]] = []
        self._lock = threading.Lock()
        self.connected = False

    def connect(self) -> None:
        self.connected = True

    def disconnect(self) -> None:
        self.connected = False

    def read_state(self) -> RobotState:
        with self._lock:
            return RobotState(
                timestamp=time.monotonic(),
                arms={a: ArmState(tcp_pose=self._pose[a].copy(), tcp_velocity=np.zeros(6),
                                  joint_positions=np.zeros(7), gripper_width=self._gripper[a],
                                  wrench=self.wrench[a].copy()) for a in self.arm_names},
            )

    def send(self, command: RobotCommand) -> None:
        with self._lock:
            self.received.append((time.monotonic(), command))
            for a, c in command.arms.items():
                self._pose[a] = np.asarray(c.tcp_target, dtype=float).copy()
                if c.gripper_width is not None:
                    self._gripper[a] = c.gripper_width

    def pose(self, arm: str = "arm") -> np.ndarray:
        with self._lock:
            return self._pose[arm].copy()


def hand(pos=(0.0, 0.0, 0.0), quat=(1.0, 0.0, 0.0, 0.0), grip=0.0, index=0.0, buttons=0) -> P.Hand:
    return P.Hand(wrist=P.Pose(pos=tuple(pos), quat=tuple(quat)), index_trigger=index,
                  hand_trigger=grip, buttons=buttons)


def pose_msg(seq: int, right: P.Hand | None = None, left: P.Hand | None = None, session: int = 7,
             t: float | None = None) -> P.HeadsetPose:
    return P.HeadsetPose(v=P.PROTOCOL_VERSION, session=session, seq=seq, t=float(seq) * 0.01 if t is None else t,
                         head=P.Pose(pos=(0.0, 0.0, 1.6), quat=(1.0, 0.0, 0.0, 0.0)), left=left, right=right)


class FakeSensor:
    """Stands in for a tactile pad or a camera: produces samples of a fixed value, newly stamped."""

    def __init__(self, key: str, value: np.ndarray) -> None:
        from tactkit.sensors.base import SensorHealth, SensorSample

        self._Sample, self._Health = SensorSample, SensorHealth
        self.key = key
        self.value = value
        self.seq = 0

    def streams(self) -> dict:
        from tactkit.store.schema import StreamSpec

        return {self.key: StreamSpec(str(self.value.dtype), self.value.shape, 30.0)}

    def connect(self) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def read_latest(self, max_age=None):
        now = time.monotonic()
        self.seq += 1
        return self._Sample(self.key, self.value, now, now, self.seq)

    def health(self):
        return self._Health(True, 30.0, 0)


def _register_fake_sensor():
    from tactkit.sensors.base import Sensor

    Sensor.register(FakeSensor)  # a virtual subclass: implements the whole interface


_register_fake_sensor()
