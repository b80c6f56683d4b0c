"""Retargeting: headset hand poses -> robot TCP targets, relative, through a clutch.

Frames. The headset frame H is the frame of :class:`~tactkit.teleop.protocol.HeadsetPose`
(right-handed, metres). The calibration ``T_BH`` (pose of H in the robot base frame B) maps a
hand pose into B: ``p_B = R_BH p_H + t_BH``, ``R_B = R_BH R_H``.

Clutch. Per arm, the driving hand's grip (hand) trigger is the clutch: pressing it past
``engage_threshold`` engages; releasing below ``release_threshold`` disengages (hysteresis).
On engage, the arm's measured TCP pose ``P0`` and the hand pose ``H0`` (in B) become the
origins; while engaged::

    p_target = p0 + scale * (p_hand - p_hand0)
    R_target = (R_hand R_hand0^T) R0          (6-DoF and dual modes)
    R_target = fixed orientation (or R0)      (translation mode)

After a reset (new connection, lost stream, calibration) an arm is *disarmed*: it cannot
engage until its clutch has been seen released, so a trigger that was held through a
disconnect never moves the robot.
Gripper width follows the index trigger (0 = open, 1 = closed) while engaged.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.spatial.transform import Rotation

from tactkit.real.robot import ArmCommand, ArmState, RobotCommand
from tactkit.teleop.protocol import Hand, HeadsetPose, Pose


def quat_wxyz_to_rot(q) -> Rotation:
    q = np.asarray(q, dtype=np.float64)
    return Rotation.from_quat([q[1], q[2], q[3], q[0]])


def rot_to_quat_wxyz(r: Rotation) -> np.ndarray:
    x, y, z, w = r.as_quat()
    q = np.array([w, x, y, z])
    return q if w >= 0 else -q  # canonical hemisphere


@dataclass
class RetargetConfig:
    """How hands drive arms. See the module docstring for the maths."""

    mode: Literal["6dof", "translation", "dual"] = "6dof"
    #: single-arm modes: the hand that drives the (only) arm
    hand: Literal["left", "right"] = "right"
    translation_scale: float = 1.0
    engage_threshold: float = 0.6
    release_threshold: float = 0.4
    gripper_open_width: float = 0.08  # m at index trigger 0
    gripper_closed_width: float = 0.0  # m at index trigger 1
    #: translation mode: fixed TCP orientation (w, x, y, z); empty = the orientation at engage
    fixed_orientation: list[float] = field(default_factory=list)
    #: headset frame in the robot base frame: x, y, z, qw, qx, qy, qz
    calibration: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0])

    def __post_init__(self) -> None:
        if self.mode not in ("6dof", "translation", "dual"):
            raise ValueError(f"retarget.mode: {self.mode!r} is not one of 6dof, translation, dual")
        if self.hand not in ("left", "right"):
            raise ValueError(f"retarget.hand: {self.hand!r} is not left or right")
        if not 0 < self.translation_scale <= 10:
            raise ValueError(f"retarget.translation_scale={self.translation_scale} must be in (0, 10]")
        if not 0 <= self.release_threshold < self.engage_threshold <= 1:
            raise ValueError("retarget: need 0 <= release_threshold < engage_threshold <= 1")
        if len(self.calibration) != 7 or not np.all(np.isfinite(self.calibration)):
            raise ValueError("retarget.calibration must be 7 finite numbers: x y z qw qx qy qz")
        if self.fixed_orientation and len(self.fixed_orientation) != 4:
            raise ValueError("retarget.fixed_orientation must be 4 numbers (w, x, y, z) or empty")


@dataclass
class _ArmClutch:
    hand: str
    engaged: bool = False
    armed: bool = False  # clutch seen released since the last reset
    robot_p0: np.ndarray | None = None
    robot_r0: Rotation | None = None
    hand_p0: np.ndarray | None = None
    hand_r0: Rotation | None = None
    last_target: np.ndarray | None = None
    engage_count: int = 0


class Retargeter:
    """Stateful mapping from :class:`HeadsetPose` messages to :class:`RobotCommand` s."""

    def __init__(self, config: RetargetConfig, arm_names: tuple[str, ...]) -> None:
        self.config = config
        if config.mode == "dual":
            missing = {"left", "right"} - set(arm_names)
            if missing:
                raise ValueError(f"retarget.mode=dual needs arms 'left' and 'right'; robot has {arm_names}")
            mapping = {"left": "left", "right": "right"}
        else:
            if len(arm_names) != 1:
                raise ValueError(
                    f"retarget.mode={config.mode} drives one arm; robot has {arm_names} (use mode: dual)")
            mapping = {arm_names[0]: config.hand}
        self.arms = {arm: _ArmClutch(hand=hand) for arm, hand in mapping.items()}
        self.set_calibration(config.calibration)
        self._fixed = quat_wxyz_to_rot(config.fixed_orientation) if config.fixed_orientation else None

    def set_calibration(self, pose7) -> None:
        """Set ``T_BH`` (x, y, z, qw, qx, qy, qz) and reset every clutch."""
        pose7 = np.asarray(pose7, dtype=np.float64)
        self._t_bh = pose7[:3].copy()
        self._r_bh = quat_wxyz_to_rot(pose7[3:])
        self.reset()

    def reset(self) -> None:
        """Disengage and disarm every arm (after reconnect, stream loss or calibration)."""
        for clutch in self.arms.values():
            clutch.engaged = False
            clutch.armed = False

    @property
    def engaged(self) -> dict[str, bool]:
        return {arm: c.engaged for arm, c in self.arms.items()}

    def hand_in_base(self, wrist: Pose) -> tuple[np.ndarray, Rotation]:
        p = self._r_bh.apply(np.asarray(wrist.pos, dtype=np.float64)) + self._t_bh
        return p, self._r_bh * quat_wxyz_to_rot(wrist.quat)

    def update(self, msg: HeadsetPose, states: dict[str, ArmState], now: float) -> RobotCommand | None:
        """Advance the clutches with ``msg``; the command for engaged arms, or ``None``."""
        cfg = self.config
        command = RobotCommand(timestamp=now)
        for arm, clutch in self.arms.items():
            hand: Hand | None = getattr(msg, clutch.hand)
            if hand is None or not hand.tracked:
                clutch.engaged = False
                continue
            grip = hand.hand_trigger
            if grip <= cfg.release_threshold:
                clutch.armed = True
                clutch.engaged = False
            elif grip >= cfg.engage_threshold and clutch.armed and not clutch.engaged:
                state = states[arm]
                clutch.engaged = True
                clutch.engage_count += 1
                clutch.robot_p0 = np.asarray(state.tcp_pose[:3], dtype=np.float64).copy()
                clutch.robot_r0 = quat_wxyz_to_rot(state.tcp_pose[3:])
                clutch.hand_p0, clutch.hand_r0 = self.hand_in_base(hand.wrist)
            if not clutch.engaged:
                continue
            p, r = self.hand_in_base(hand.wrist)
            target_p = clutch.robot_p0 + cfg.translation_scale * (p - clutch.hand_p0)
            if cfg.mode == "translation":
                target_r = self._fixed if self._fixed is not None else clutch.robot_r0
            else:
                target_r = r * clutch.hand_r0.inv() * clutch.robot_r0
            target = np.concatenate([target_p, rot_to_quat_wxyz(target_r)])
            clutch.last_target = target
            width = cfg.gripper_open_width + hand.index_trigger * (
                cfg.gripper_closed_width - cfg.gripper_open_width)
            command.arms[arm] = ArmCommand(tcp_target=target, gripper_width=float(width))
        return command if command.arms else None
