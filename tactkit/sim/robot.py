"""Simulated Franka Panda arms in torque mode with a Cartesian impedance controller.

Each physics step (1 kHz) and for each arm the controller applies::

    tau = J^T [K_p (x_d - x) - D_p v ;  K_r log(R_d R^T) - D_r w]      (Cartesian spring-damper)
        + g(q) + C(q, dq) dq                                          (calculateInverseDynamics)
        + N (k_ns (q_home - q) - d_ns dq)                              (posture in the nullspace)

clipped to the Panda's joint torque limits. The default velocity motors are disabled, so
contact forces come from the impedance law and not from a stiff position servo.

Poses are expressed in the world frame, which is the robot's base frame (a bimanual robot's
arms share it). The wrist wrench comes from a force/torque sensor on the fixed joint between
the flange and the hand, low-pass filtered like a real sensor's (``wrench_filter_hz``), with
the hand-plus-tool gravity removed. It is the external wrench acting ON the tool, expressed
in the world frame, torque about the TCP: pressing down on a table reads ``fz > 0``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import pybullet as p

from tactkit.real.robot import ROBOTS, ArmCommand, ArmState, Robot, RobotCommand, RobotState
from tactkit.sim.geometry import DOWN, unit_quat, wxyz_to_xyzw, xyzw_to_wxyz
from tactkit.sim.urdf import GRIPPER, TOOLS, panda_urdf
from tactkit.sim.world import SimWorld
from tactkit.store.schema import ArmFeatures

log = logging.getLogger(__name__)

PANDA_TORQUE_LIMITS = np.array([87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0])
PANDA_HOME = [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.785]


@dataclass
class ImpedanceGains:
    """Cartesian impedance: stiffness (x, y, z in N/m; rx, ry, rz in N·m/rad) and damping."""

    stiffness: list[float] = field(default_factory=lambda: [1500.0, 1500.0, 1500.0, 60.0, 60.0, 60.0])
    damping: list[float] = field(default_factory=lambda: [90.0, 90.0, 90.0, 2.5, 2.5, 2.5])
    nullspace_stiffness: float = 5.0  # N·m/rad towards the home posture
    nullspace_damping: float = 1.0  # N·m·s/rad
    joint_damping: float = 0.2  # N·m·s/rad on every joint (friction-like)

    def __post_init__(self) -> None:
        for name in ("stiffness", "damping"):
            v = getattr(self, name)
            if len(v) != 6 or any((not math.isfinite(x)) or x < 0 for x in v):
                raise ValueError(f"gains.{name} must be 6 finite values >= 0, got {v}")


@dataclass
class SimArmConfig:
    """One Panda arm: where it stands, which tool it carries, how stiff it is."""

    name: str = "arm"
    tool: str = "wipe_pad"  # wipe_pad | peel_blade | clamp_pad | gripper
    base_position: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    base_yaw: float = 0.0  # rad
    home_joints: list[float] = field(default_factory=lambda: list(PANDA_HOME))
    gains: ImpedanceGains = field(default_factory=ImpedanceGains)
    gripper_force: float = 20.0  # N, default grasp force (gripper tool only)

    def __post_init__(self) -> None:
        if self.tool != GRIPPER and self.tool not in TOOLS:
            raise ValueError(f"arm {self.name!r}: unknown tool {self.tool!r}; known: {sorted(TOOLS)} + gripper")
        if len(self.base_position) != 3:
            raise ValueError(f"arm {self.name!r}: base_position needs 3 values")
        if len(self.home_joints) != 7:
            raise ValueError(f"arm {self.name!r}: home_joints needs 7 values")


@dataclass
class SimRobotConfig:
    """A simulated robot: one or more Panda arms sharing a world."""

    type_name = "sim_panda"
    arms: list[SimArmConfig] = field(default_factory=lambda: [SimArmConfig()])
    wrench_filter_hz: float = 100.0  # first-order low-pass of the wrist F/T sensor

    def __post_init__(self) -> None:
        names = [a.name for a in self.arms]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"robot arms need unique names, got {names}")


class _Arm:
    """Per-arm PyBullet handles, target and impedance law."""

    def __init__(self, world: SimWorld, cfg: SimArmConfig, filter_hz: float) -> None:
        c = self.client = world.client
        self.cfg = cfg
        base_orn = p.getQuaternionFromEuler([0, 0, cfg.base_yaw])
        self.body = p.loadURDF(
            str(panda_urdf(cfg.tool)),
            cfg.base_position,
            base_orn,
            useFixedBase=True,
            flags=p.URDF_USE_INERTIA_FROM_FILE,
            physicsClientId=c,
        )
        self.links: dict[str, int] = {}
        self.movable: list[int] = []
        self.fingers: list[int] = []
        self.limits_lo: list[float] = []
        self.limits_hi: list[float] = []
        for j in range(p.getNumJoints(self.body, physicsClientId=c)):
            info = p.getJointInfo(self.body, j, physicsClientId=c)
            self.links[info[12].decode()] = j
            if info[2] != p.JOINT_FIXED:
                self.movable.append(j)
                self.limits_lo.append(info[8])
                self.limits_hi.append(info[9])
                if info[1].decode().startswith("panda_finger"):
                    self.fingers.append(j)
        self.arm_joints = self.movable[:7]
        self.n_mov = len(self.movable)
        self.tcp = self.links["tcp"]
        self.hand = self.links["panda_hand"]
        self.ft_joint = self.hand  # joint index == child link index in PyBullet
        self.tool_links = [self.links[n] for n in self.links if n not in _PANDA_LINKS]
        self.gel_link = self.links[TOOLS[cfg.tool][1]] if cfg.tool in TOOLS else None
        # Only the tool (and fingers) collide: the arm links are filtered out of collisions.
        for j in self.links.values():
            if j not in self.tool_links:
                p.setCollisionFilterGroupMask(self.body, j, 0, 0, physicsClientId=c)
        p.setCollisionFilterGroupMask(self.body, -1, 0, 0, physicsClientId=c)
        p.enableJointForceTorqueSensor(self.body, self.ft_joint, True, physicsClientId=c)
        # Torque mode: switch off the default velocity motors.
        p.setJointMotorControlArray(
            self.body, self.movable, p.VELOCITY_CONTROL, forces=[0.0] * self.n_mov, physicsClientId=c
        )
        for j in self.movable:
            p.changeDynamics(self.body, j, linearDamping=0, angularDamping=0, physicsClientId=c)
        # Gravity compensation of the sensor reading: mass and COM of everything past the sensor.
        self.payload = [self.hand] + self.tool_links
        self.payload_masses = np.array([p.getDynamicsInfo(self.body, j, physicsClientId=c)[0] for j in self.payload])
        self.payload_mass = float(self.payload_masses.sum())
        g = cfg.gains
        self.kp = np.array(g.stiffness[:3])
        self.kr = np.array(g.stiffness[3:])
        self.dp = np.array(g.damping[:3])
        self.dr = np.array(g.damping[3:])
        self.zeros = [0.0] * self.n_mov
        self.alpha = 1.0 - math.exp(-2 * math.pi * filter_hz * world.dt) if filter_hz > 0 else 1.0
        self.ft_raw = np.zeros(6)
        self.ft_filt = np.zeros(6)
        self.ft_valid = False
        self.gripper_width = 0.08
        self.gripper_force = cfg.gripper_force
        self.home = np.array(cfg.home_joints)
        self._tick = 0
        self.tau_ns = np.zeros(7)
        self.target_pos = np.zeros(3)
        self.target_quat = DOWN.copy()
        self.reset_joints(self.home)

    # ---- state ----------------------------------------------------------------------
    def reset_joints(self, q7: np.ndarray, finger: float = 0.04) -> None:
        c = self.client
        for j, q in zip(self.arm_joints, q7):
            p.resetJointState(self.body, j, float(q), 0.0, physicsClientId=c)
        for j in self.fingers:
            p.resetJointState(self.body, j, finger, 0.0, physicsClientId=c)
        pos, quat, _, _ = self.tcp_state()
        self.target_pos, self.target_quat = pos, quat
        self.ft_valid = False

    def reset_tcp(self, pose: np.ndarray) -> None:
        """Teleport the arm (before an episode) so its TCP sits at ``pose``; target = pose."""
        c = self.client
        lo, hi = self.limits_lo, self.limits_hi
        ranges = [b - a for a, b in zip(lo, hi)]
        rest = list(self.home) + [0.04] * len(self.fingers)
        self.reset_joints(self.home)
        for _ in range(3):  # IK on the live arm: repeat to refine from the last solution
            q = p.calculateInverseKinematics(
                self.body, self.tcp, list(pose[:3]), wxyz_to_xyzw(pose[3:]),
                lowerLimits=lo, upperLimits=hi, jointRanges=ranges, restPoses=rest,
                maxNumIterations=200, residualThreshold=1e-6, physicsClientId=c,
            )
            self.reset_joints(np.array(q[:7]))
        self.target_pos = np.array(pose[:3], dtype=np.float64)
        self.target_quat = unit_quat(pose[3:])

    def tcp_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ls = p.getLinkState(self.body, self.tcp, computeLinkVelocity=1, computeForwardKinematics=1,
                            physicsClientId=self.client)
        return np.array(ls[4]), xyzw_to_wxyz(ls[5]), np.array(ls[6]), np.array(ls[7])

    def joint_state(self) -> tuple[list[float], list[float]]:
        js = p.getJointStates(self.body, self.movable, physicsClientId=self.client)
        return [s[0] for s in js], [s[1] for s in js]

    def width(self) -> float:
        if not self.fingers:
            return 0.0
        q, _ = self.joint_state()
        return float(q[7] + q[8])

    # ---- control (every physics step) -------------------------------------------------
    def control(self) -> None:
        c = self.client
        js = p.getJointStates(self.body, self.movable, physicsClientId=c)
        q = [s[0] for s in js]
        dq = [s[1] for s in js]
        ls = p.getLinkState(self.body, self.tcp, computeLinkVelocity=1, computeForwardKinematics=1,
                            physicsClientId=c)
        jl, ja = p.calculateJacobian(self.body, self.tcp, _ORIGIN, q, dq, self.zeros, physicsClientId=c)
        J = np.array(jl + ja)[:, :7]
        bias = p.calculateInverseDynamics(self.body, q, dq, self.zeros, physicsClientId=c)
        # Cartesian spring-damper; scalars in plain Python floats (tiny numpy ops cost ~1 us each).
        pos, v, w = ls[4], ls[6], ls[7]
        tp = self.target_pos
        kp, dp, kr, dr = self.kp, self.dp, self.kr, self.dr
        rot = rotation_error_xyzw(self.target_quat, ls[5])
        wrench = np.array([
            kp[0] * (tp[0] - pos[0]) - dp[0] * v[0],
            kp[1] * (tp[1] - pos[1]) - dp[1] * v[1],
            kp[2] * (tp[2] - pos[2]) - dp[2] * v[2],
            kr[0] * rot[0] - dr[0] * w[0],
            kr[1] * rot[1] - dr[1] * w[1],
            kr[2] * rot[2] - dr[2] * w[2],
        ])
        dq7 = np.array(dq[:7])
        self._tick += 1
        if self._tick % _NULLSPACE_EVERY == 1 or _NULLSPACE_EVERY == 1:
            # Posture in the nullspace: N = I - J^T J#^T, J# = J^T (J J^T)^-1 (damped), which
            # changes slowly: refreshed every few steps.
            g = self.cfg.gains
            tau0 = g.nullspace_stiffness * (self.home - np.array(q[:7])) - g.nullspace_damping * dq7
            y = np.linalg.solve(J @ J.T + 1e-6 * _EYE6, J @ tau0)
            self.tau_ns = tau0 - J.T @ y
        tau = J.T @ wrench + np.array(bias[:7]) + self.tau_ns - self.cfg.gains.joint_damping * dq7
        tau = np.minimum(np.maximum(tau, -PANDA_TORQUE_LIMITS), PANDA_TORQUE_LIMITS)
        p.setJointMotorControlArray(self.body, self.arm_joints, p.TORQUE_CONTROL, forces=tau.tolist(),
                                    physicsClientId=c)
        if self.fingers:
            half = min(max(self.gripper_width / 2, 0.0), 0.04)
            p.setJointMotorControlArray(self.body, self.fingers, p.POSITION_CONTROL,
                                        targetPositions=[half, half],
                                        forces=[self.gripper_force, self.gripper_force],
                                        positionGains=[0.05, 0.05], physicsClientId=c)

    def sense(self) -> None:
        """Read and low-pass the raw F/T joint reaction (every physics step)."""
        raw = p.getJointState(self.body, self.ft_joint, physicsClientId=self.client)[2]
        self.ft_raw = np.asarray(raw)
        if not self.ft_valid:  # first reading after a reset: start the filter there
            self.ft_filt = self.ft_raw.copy()
            self.ft_valid = True
        self.ft_filt += self.alpha * (self.ft_raw - self.ft_filt)

    def wrench(self, filtered: bool = True) -> np.ndarray:
        """External wrench on the tool: world frame, torque about the TCP, gravity removed."""
        if not self.ft_valid:  # no physics step since the reset: nothing measured yet
            return np.zeros(6)
        c = self.client
        reading = self.ft_filt if filtered else self.ft_raw
        states = p.getLinkStates(self.body, self.payload + [self.tcp], computeForwardKinematics=1,
                                 physicsClientId=c)
        hs = states[0]
        r_hand = np.array(p.getMatrixFromQuaternion(hs[5])).reshape(3, 3)
        p_joint = np.array(hs[4])
        # PyBullet reports the force the parent exerts on the child link (the hand) in the
        # hand's frame, torque about the joint origin.
        f_sup = r_hand @ reading[:3]
        t_sup = r_hand @ reading[3:]
        g = np.array([0.0, 0.0, -9.81 * self.payload_mass])
        com = self.payload_masses @ np.array([st[0] for st in states[:-1]]) / self.payload_mass
        # Static balance of the payload: f_sup + f_ext + g = 0 (torques about the joint).
        f_ext = -(f_sup + g)
        t_ext_joint = -(t_sup + _cross(com - p_joint, g))
        t_ext_tcp = t_ext_joint - _cross(np.array(states[-1][4]) - p_joint, f_ext)
        return np.concatenate([f_ext, t_ext_tcp])


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


_PANDA_LINKS = {f"panda_link{i}" for i in range(9)} | {"panda_hand"}
_ORIGIN = [0.0, 0.0, 0.0]
_EYE6 = np.eye(6)
#: physics steps between nullspace-projector refreshes
_NULLSPACE_EVERY = 4


def rotation_error_xyzw(qt: np.ndarray, qc: tuple[float, ...]) -> tuple[float, float, float]:
    """Rotation vector turning the current orientation into the target (:func:`tactkit.real.quat.delta`) for a target (w, x, y, z) and a PyBullet (x, y, z, w) quaternion."""
    aw, ax, ay, az = qt
    bx, by, bz, bw = -qc[0], -qc[1], -qc[2], qc[3]  # conjugate of the current orientation
    ew = aw * bw - ax * bx - ay * by - az * bz
    ex = aw * bx + ax * bw + ay * bz - az * by
    ey = aw * by - ax * bz + ay * bw + az * bx
    ez = aw * bz + ax * by - ay * bx + az * bw
    if ew < 0:
        ew, ex, ey, ez = -ew, -ex, -ey, -ez
    s = math.sqrt(ex * ex + ey * ey + ez * ez)
    if s < 1e-9:
        return 2.0 * ex, 2.0 * ey, 2.0 * ez
    k = 2.0 * math.atan2(s, ew) / s
    return k * ex, k * ey, k * ez


@ROBOTS.register(SimRobotConfig, name="sim_panda")
class SimRobot(Robot):
    """Franka Panda arm(s) in a :class:`SimWorld`, Cartesian impedance at the physics rate.

    ``send`` only stores the target; the impedance law runs inside ``world.step_physics``.
    ``read_state`` reads the current physics state, stamped with ``world.clock.now()``.
    """

    rate_hz = 1000.0

    def __init__(self, config: SimRobotConfig, world: SimWorld) -> None:
        self.config = config
        self.world = world
        self.arm_names = tuple(a.name for a in config.arms)
        self.rate_hz = 1.0 / world.dt
        self.arms: dict[str, _Arm] = {a.name: _Arm(world, a, config.wrench_filter_hz) for a in config.arms}
        self._connected = False
        world.add_controller(self._control)
        world.add_observer(self._sense)

    # ---- Robot API -------------------------------------------------------------------
    def arm_features(self) -> tuple[ArmFeatures, ...]:
        """Seven joints per Panda; only the ``gripper`` tool is a gripper."""
        return tuple(ArmFeatures(a.name, 7, a.tool == GRIPPER) for a in self.config.arms)

    def connect(self) -> None:
        self._connected = True

    def disconnect(self) -> None:
        self._connected = False

    def read_state(self) -> RobotState:
        arms = {}
        for name, arm in self.arms.items():
            pos, quat, v, w = arm.tcp_state()
            q, _ = arm.joint_state()
            arms[name] = ArmState(
                tcp_pose=np.concatenate([pos, quat]),
                tcp_velocity=np.concatenate([v, w]),
                joint_positions=np.asarray(q[:7]),
                gripper_width=arm.width(),
                wrench=arm.wrench(),
            )
        return RobotState(timestamp=self.world.clock.now(), arms=arms)

    def send(self, command: RobotCommand) -> None:
        for name, cmd in command.arms.items():
            if name not in self.arms:
                raise KeyError(f"command for unknown arm {name!r}; arms: {list(self.arms)}")
            self._apply(self.arms[name], cmd, name)

    # ---- helpers ---------------------------------------------------------------------
    @staticmethod
    def _apply(arm: _Arm, cmd: ArmCommand, name: str) -> None:
        target = np.asarray(cmd.tcp_target, dtype=np.float64)
        if target.shape != (7,) or not np.all(np.isfinite(target)):
            raise ValueError(f"arm {name!r}: tcp_target must be 7 finite values, got {target}")
        arm.target_pos = target[:3].copy()
        arm.target_quat = unit_quat(target[3:])
        if cmd.gripper_width is not None:
            arm.gripper_width = float(cmd.gripper_width)
        if cmd.gripper_force is not None:
            arm.gripper_force = float(cmd.gripper_force)

    def reset_tcp(self, poses: dict[str, np.ndarray]) -> None:
        """Place arms (IK, teleport) with their TCPs at ``poses`` — only before contact."""
        for name, pose in poses.items():
            self.arms[name].reset_tcp(np.asarray(pose, dtype=np.float64))

    def targets(self) -> dict[str, np.ndarray]:
        """Current Cartesian targets per arm (7,)."""
        return {n: np.concatenate([a.target_pos, a.target_quat]) for n, a in self.arms.items()}

    def _control(self) -> None:
        for arm in self.arms.values():
            arm.control()

    def _sense(self) -> None:
        for arm in self.arms.values():
            arm.sense()
