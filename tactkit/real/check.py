"""``tactkit robot check``: the first thing a lab runs on a new arm.

:func:`check_robot` connects, reads state for a few seconds (rate, read latency, jitter,
timestamps, field shapes, fields that never change), checks the configured workspace
contains the current pose and the wrench at rest, and shows that a stale command makes the
watchdog hold. With ``move`` it also moves each arm 1 cm at low speed inside the workspace
and back, sends the watchdog demonstration to the arm, and measures that the arm holds.
Every command goes through the configured :class:`~tactkit.real.safety.SafetyFilter`.
Without ``move`` nothing is sent: the watchdog demonstration is computed against the
measured (still) arm.

The watchdog demonstration: a command source streams a 1 cm min-jerk motion, goes silent
half-way, and comes back after the watchdog tripped. The check requires the fault to latch
within ``watchdog.plan_timeout`` + one robot period of the last command, and every command
after it - including while the source is back - to stay at the hold pose (the braking
trajectory of :class:`~tactkit.real.trajectory.BrakingTrajectory` from rest), until re-armed.

Each row of the result is PASS, WARN, FAIL or SKIP, with what was measured and, when it is
not PASS, what to fix.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from tactkit.clock import Clock, WallClock
from tactkit.real import quat as Q
from tactkit.real.robot import ArmCommand, Robot, RobotCommand, RobotState
from tactkit.real.safety import SafetyConfig, SafetyFilter
from tactkit.real.trajectory import BrakingTrajectory
from tactkit.real.watchdog import Watchdog, WatchdogConfig

log = logging.getLogger(__name__)

PASS, WARN, FAIL, SKIP = "PASS", "WARN", "FAIL", "SKIP"
#: the watchdog demonstration's source comes back this long after the trip, and the check
#: watches the hold for this long after that
RESUME_AFTER, HOLD_AFTER = 0.1, 0.3
#: directions tried for the 1 cm move, in order (up first: away from a table)
DIRECTIONS = {"+z": (0, 0, 1), "-z": (0, 0, -1), "+x": (1, 0, 0), "-x": (-1, 0, 0), "+y": (0, 1, 0), "-y": (0, -1, 0)}


@dataclass
class CheckResult:
    name: str
    status: str
    detail: str
    fix: str = ""


@dataclass
class CheckOptions:
    duration: float = 2.0  # s of state reading at the robot's rate
    move: bool = False  # move 1 cm and back, and send the watchdog demonstration
    distance: float = 0.01  # m
    speed: float = 0.01  # m/s, peak speed of the min-jerk moves
    settle: float = 0.5  # s after each move before the position error is measured
    position_tolerance: float = 0.002  # m, reached-target error
    hold_tolerance: float = 0.001  # m, drift allowed while the watchdog holds
    rest_force: float = 5.0  # N, |f| at rest above this: WARN (zero the sensor / set the payload)
    rest_torque: float = 0.5  # N·m

    def __post_init__(self) -> None:
        for name in ("duration", "distance", "speed", "settle", "position_tolerance", "hold_tolerance",
                     "rest_force", "rest_torque"):
            if not getattr(self, name) > 0:
                raise ValueError(f"robot check {name} must be > 0, got {getattr(self, name)}")


@dataclass
class _Reads:
    starts: list[float] = field(default_factory=list)  # clock time before read_state
    ends: list[float] = field(default_factory=list)
    states: list[RobotState] = field(default_factory=list)


def min_jerk(start: np.ndarray, end: np.ndarray, duration: float) -> Callable[[float], np.ndarray]:
    """Pose at time ``tau`` of a min-jerk move (position; orientation held at ``start``'s)."""
    start, end = np.asarray(start, float), np.asarray(end, float)

    def at(tau: float) -> np.ndarray:
        s = min(max(tau / duration, 0.0), 1.0)
        blend = 10 * s**3 - 15 * s**4 + 6 * s**5
        out = start.copy()
        out[:3] = start[:3] + blend * (end[:3] - start[:3])
        return out

    return at


def check_robot(
    robot: Robot,
    safety: SafetyConfig,
    watchdog: WatchdogConfig,
    options: CheckOptions | None = None,
    clock: Clock | None = None,
) -> list[CheckResult]:
    """Run every check on ``robot`` (not yet connected); it is disconnected at the end."""
    opts = options or CheckOptions()
    clock = clock or getattr(robot, "clock", None) or WallClock()
    results: list[CheckResult] = []
    t0 = clock.now()
    try:
        robot.connect()
    except Exception as exc:
        results.append(CheckResult("connect", FAIL, f"{type(exc).__name__}: {exc}",
                                   "check the address, the network link and that the robot accepts remote control"))
        return results
    results.append(CheckResult("connect", PASS, f"connected in {clock.now() - t0:.2f} s"))
    try:
        reads = _read_phase(robot, clock, opts.duration)
        results += _analyse_reads(robot, reads)
        if any(r.status == FAIL and r.name == "state fields" for r in results):
            return results
        state = reads.states[-1]
        results += [_workspace(arm, state, safety) for arm in robot.arm_names]
        results += [_rest_wrench(arm, reads, safety, opts) for arm in robot.arm_names]
        results.append(_gripper(robot, reads))
        if all(r.status != FAIL for r in results):
            results += _motion_checks(robot, clock, safety, watchdog, opts, state)
        else:
            results.append(CheckResult("move", SKIP, "not attempted: fix the failures above first"))
    except Exception as exc:  # a driver error mid-check is a finding, not a crash
        log.debug("robot check aborted", exc_info=True)
        results.append(CheckResult("check aborted", FAIL, f"{type(exc).__name__}: {exc}",
                                   "the driver raised during the check; rerun with -vv for the traceback"))
    finally:
        try:
            robot.disconnect()
            results.append(CheckResult("disconnect", PASS, "clean"))
        except Exception as exc:
            results.append(CheckResult("disconnect", FAIL, f"{type(exc).__name__}: {exc}",
                                       "the SDK did not release the robot; it may need a restart from the pendant"))
    return results


# -- reading ------------------------------------------------------------------------------------

def _read_phase(robot: Robot, clock: Clock, duration: float) -> _Reads:
    period = 1.0 / robot.rate_hz
    reads = _Reads()
    start = clock.now()
    n = max(2, int(round(duration / period)))
    for k in range(n):
        clock.sleep_until(start + k * period)
        reads.starts.append(clock.now())
        reads.states.append(robot.read_state())
        reads.ends.append(clock.now())
    return reads


def _analyse_reads(robot: Robot, reads: _Reads) -> list[CheckResult]:
    period = 1.0 / robot.rate_hz
    out: list[CheckResult] = []
    starts, ends = np.asarray(reads.starts), np.asarray(reads.ends)
    latency = ends - starts
    p50, p99 = np.percentile(latency, [50, 99]) * 1e3
    span = starts[-1] - starts[0]
    rate = (len(starts) - 1) / span if span > 0 else math.inf
    status = PASS if rate >= 0.9 * robot.rate_hz else WARN if rate >= 0.5 * robot.rate_hz else FAIL
    out.append(CheckResult(
        "read rate", status, f"{rate:.0f} Hz achieved of {robot.rate_hz:.0f} Hz over {len(starts)} reads",
        "" if status == PASS else "the loop cannot keep the robot's rate: see read latency and jitter; "
        "lower rate_hz, fix the link or give the loop a real-time priority",
    ))
    # a median above the period is a call that blocks every time; a tail above it is stalls
    status = FAIL if p50 > period * 1e3 else WARN if p99 > period * 1e3 else PASS
    out.append(CheckResult(
        "read latency", status, f"read_state p50 {p50:.3f} ms, p99 {p99:.3f} ms, max {latency.max() * 1e3:.3f} ms "
        f"(period {period * 1e3:.3f} ms)",
        {PASS: "", FAIL: "read_state blocks longer than one period: a blocking SDK call in the loop or a slow "
         "network link (use a direct cable to the controller)",
         WARN: "some reads took longer than one period: CPU contention or frequency scaling; set "
         "controller.realtime_priority and the performance governor"}[status],
    ))
    jitter = np.abs(np.diff(starts) - period)
    jp99 = float(np.percentile(jitter, 99)) * 1e3 if len(jitter) else 0.0
    status = PASS if jp99 <= 0.5 * period * 1e3 else WARN
    out.append(CheckResult(
        "jitter", status, f"read period error p99 {jp99:.3f} ms",
        "" if status == PASS else "the loop misses its deadlines: set controller.realtime_priority (needs "
        "CAP_SYS_NICE), isolate a core, or lower rate_hz",
    ))
    times = np.asarray([s.timestamp for s in reads.states])
    repeats = int(np.sum(np.diff(times) <= 0))
    out.append(CheckResult(
        "timestamps", PASS if repeats == 0 else FAIL,
        "strictly increasing" if repeats == 0 else f"{repeats} of {len(times) - 1} state timestamps did not increase",
        "" if repeats == 0 else "the driver returns cached states: stamp each read_state with the clock",
    ))
    out.append(_fields(robot, reads))
    return out


def _fields(robot: Robot, reads: _Reads) -> CheckResult:
    shapes = {"tcp_pose": (7,), "tcp_velocity": (6,), "wrench": (6,)}
    unchanged: list[str] = []
    for arm in robot.arm_names:
        for name, shape in shapes.items():
            values = np.asarray([np.asarray(getattr(s.arms[arm], name), float) for s in reads.states])
            if values.shape[1:] != shape:
                return CheckResult("state fields", FAIL, f"{arm}.{name} has shape {values.shape[1:]}, expected {shape}",
                                   "the driver must convert the SDK's state to the Robot interface's shapes")
            if not np.all(np.isfinite(values)):
                return CheckResult("state fields", FAIL, f"{arm}.{name} has non-finite values ({values[~np.isfinite(values).all(1)][0]})",
                                   "the SDK reports NaN/inf: check the robot's error state on the pendant")
            if len(values) > 1 and not np.any(np.diff(values, axis=0)):
                unchanged.append(f"{arm}.{name}")
        n_joints = {np.asarray(s.arms[arm].joint_positions).shape for s in reads.states}
        if n_joints != {(robot.n_joints,)}:
            return CheckResult("state fields", FAIL, f"{arm}.joint_positions has shape {sorted(n_joints)}, the robot "
                               f"declares {robot.n_joints} joints", "fix the driver's n_joints or its read_state: "
                               "recordings and the controller name joint streams from n_joints")
        norms = np.asarray([np.linalg.norm(s.arms[arm].tcp_pose[3:]) for s in reads.states])
        if np.any(np.abs(norms - 1) > 1e-3):
            return CheckResult("state fields", FAIL, f"{arm}.tcp_pose quaternion norm {norms[np.argmax(np.abs(norms - 1))]:.4f}",
                               "the pose is not (x, y, z, qw, qx, qy, qz) with a unit quaternion: check the "
                               "driver's conversion (xyzw vs wxyz, rotation vector)")
    detail = "shapes, finite values and unit quaternions OK"
    if unchanged:
        detail += f"; unchanged at rest: {', '.join(unchanged)} (checked again while moving with --move)"
    return CheckResult("state fields", PASS, detail)


def _workspace(arm: str, state: RobotState, safety: SafetyConfig) -> CheckResult:
    pos = np.asarray(state.arms[arm].tcp_pose[:3], float)
    lo, hi = np.asarray(safety.workspace_min, float), np.asarray(safety.workspace_max, float)
    box = f"[{_fmt(lo)}]..[{_fmt(hi)}]"
    bad = [f"{'xyz'[i]} {pos[i]:.3f} < min {lo[i]:.3f}" for i in range(3) if pos[i] < lo[i]]
    bad += [f"{'xyz'[i]} {pos[i]:.3f} > max {hi[i]:.3f}" for i in range(3) if pos[i] > hi[i]]
    name = "workspace" if arm == "arm" else f"workspace {arm}"
    if bad:
        return CheckResult(name, FAIL, f"TCP at [{_fmt(pos)}] is outside the workspace {box}: {'; '.join(bad)}",
                           "jog the arm into the box, or fix controller.safety.workspace_min / workspace_max "
                           "(the safety filter would pull the first command to the box face)")
    margin = float(min(np.min(pos - lo), np.min(hi - pos)))
    return CheckResult(name, PASS, f"TCP at [{_fmt(pos)}] inside {box} ({margin * 100:.1f} cm from the nearest face)")


def _rest_wrench(arm: str, reads: _Reads, safety: SafetyConfig, opts: CheckOptions) -> CheckResult:
    w = np.asarray([s.arms[arm].wrench for s in reads.states], float)
    mean = w.mean(axis=0)
    f, tau = float(np.linalg.norm(mean[:3])), float(np.linalg.norm(mean[3:]))
    noise = float(np.linalg.norm(w[:, :3].std(axis=0)))
    name = "wrench at rest" if arm == "arm" else f"wrench at rest {arm}"
    detail = f"|f| {f:.2f} N, |tau| {tau:.3f} Nm (mean over {len(w)} reads), force noise {noise:.3f} N"
    if f >= safety.max_force or tau >= safety.max_torque:
        return CheckResult(name, FAIL, detail + f"; safety limits {safety.max_force} N / {safety.max_torque} Nm",
                           "the safety filter would latch a wrench hold on the first command: make sure nothing "
                           "touches the tool, zero the F/T sensor (zero_ft_sensor=true) and set the tool payload")
    if f > opts.rest_force or tau > opts.rest_torque:
        return CheckResult(name, WARN, detail + f"; expected below {opts.rest_force} N / {opts.rest_torque} Nm",
                           "zero the F/T sensor (zero_ft_sensor=true) with nothing touching the tool, and set the "
                           "payload (mass, centre of mass) of the tool on the controller")
    return CheckResult(name, PASS, detail)


def _gripper(robot: Robot, reads: _Reads) -> CheckResult:
    widths = np.asarray([[s.arms[a].gripper_width for a in robot.arm_names] for s in reads.states], float)
    if np.all(np.isnan(widths)):
        return CheckResult("gripper", SKIP, "no gripper width reported")
    if np.any(np.isnan(widths)):
        return CheckResult("gripper", WARN, f"width missing in {int(np.isnan(widths).any(1).sum())} of {len(widths)} reads",
                           "the width arrives late or not at all: check the gripper connection")
    return CheckResult("gripper", PASS, "width " + ", ".join(f"{w:.4f} m" for w in widths[-1]))


# -- moving -------------------------------------------------------------------------------------

@dataclass
class _Tick:
    t: float
    state: RobotState
    sent: dict[str, np.ndarray]


class _Streamer:
    """Stream targets at the robot rate through the safety filter (sent only when ``live``)."""

    def __init__(self, robot: Robot, clock: Clock, safety: SafetyConfig, live: bool) -> None:
        self.robot, self.clock, self.live = robot, clock, live
        self.period = 1.0 / robot.rate_hz
        self.filter = SafetyFilter(safety)
        self.limited: dict[str, int] = {}  # limit name -> ticks it bound (counted phases only)
        self.ticks = 0
        self.sent: list[tuple[float, dict[str, np.ndarray]]] = []  # the last two commands

    @property
    def last(self) -> dict[str, np.ndarray]:
        return self.sent[-1][1]

    def velocity(self, arm: str) -> np.ndarray:
        """(6,) velocity of the last two commands of ``arm`` (zeros before there are two)."""
        if len(self.sent) < 2 or self.sent[-1][0] <= self.sent[-2][0]:
            return np.zeros(6)
        (t0, p0), (t1, p1) = self.sent[-2], self.sent[-1]
        a, b = p0[arm], p1[arm]
        return np.concatenate([(b[:3] - a[:3]) / (t1 - t0), Q.delta(a[3:], b[3:]) / (t1 - t0)])

    def run(self, duration: float, target: Callable[[float, RobotState], dict[str, np.ndarray]],
            count: bool = True) -> list[_Tick]:
        ticks: list[_Tick] = []
        start = self.clock.now()
        for k in range(max(1, int(math.ceil(duration / self.period)))):
            self.clock.sleep_until(start + k * self.period)
            state = self.robot.read_state()
            now = self.clock.now()  # after the read: a command is never older than its state
            cmd = RobotCommand(now, {a: ArmCommand(p) for a, p in target(now, state).items()})
            out = self.filter.filter(cmd, state)
            if count:
                for name in set().union(*self.filter.report.violations.values()):
                    self.limited[name] = self.limited.get(name, 0) + 1
                self.ticks += 1
            if self.live:
                self.robot.send(out)
            sent = {a: np.asarray(c.tcp_target, float) for a, c in out.arms.items()}
            self.sent = [*self.sent[-1:], (now, sent)]
            ticks.append(_Tick(now, state, sent))
        return ticks


def _direction(pose: np.ndarray, safety: SafetyConfig, distance: float) -> tuple[str, np.ndarray] | None:
    lo, hi = np.asarray(safety.workspace_min, float), np.asarray(safety.workspace_max, float)
    for name, d in DIRECTIONS.items():
        target = pose[:3] + distance * np.asarray(d, float)
        if np.all(target >= lo) and np.all(target <= hi):
            return name, np.asarray(d, float)
    return None


def _motion_checks(robot: Robot, clock: Clock, safety: SafetyConfig, watchdog: WatchdogConfig,
                   opts: CheckOptions, state: RobotState) -> list[CheckResult]:
    start = {a: np.asarray(state.arms[a].tcp_pose, float).copy() for a in robot.arm_names}
    offsets = {}
    for a in robot.arm_names:
        found = _direction(start[a], safety, opts.distance)
        if found is None:
            return [CheckResult("move", FAIL, f"no direction with {opts.distance * 100:.0f} cm of room inside the workspace for {a}",
                                "move the arm away from the workspace faces or widen the workspace")]
        offsets[a] = (found[0], opts.distance * found[1])
    out: list[CheckResult] = []
    stream = _Streamer(robot, clock, safety, live=opts.move)
    move_s = 1.875 * opts.distance / opts.speed  # min-jerk peak speed = 1.875 * distance / duration
    goal = {a: np.concatenate([start[a][:3] + offsets[a][1], start[a][3:]]) for a in robot.arm_names}
    if opts.move:
        out.append(_move_out_and_back(robot, stream, start, goal, offsets, move_s, opts))
    else:
        out.append(CheckResult("move 1 cm", SKIP, "pass --move to move each arm 1 cm and back (low speed, inside the workspace)"))
    out.append(_watchdog_hold(robot, stream, start, goal, move_s, watchdog, opts))
    if opts.move:
        back = {a: min_jerk(stream.last[a], start[a], move_s) for a in robot.arm_names}
        t0 = clock.now()
        stream.run(move_s + opts.settle, lambda now, _s: {a: back[a](now - t0) for a in robot.arm_names})
        err = _pos_error(robot.read_state(), start)
        status = PASS if err <= opts.position_tolerance else FAIL
        out.append(CheckResult("back at start", status, f"{err * 1e3:.2f} mm from the starting pose",
                               "" if status == PASS else "the arm did not return: check the robot's error state"))
    # rate limits can bind on a tick or two after a scheduling stall (a short tick after a long
    # one reads as an acceleration); anything else, or rate limits on many ticks, is a finding
    rates = {"linear_rate", "angular_rate", "rate"}
    frequent = {n: c for n, c in stream.limited.items() if n not in rates or c > 0.05 * stream.ticks}
    if frequent:
        out.append(CheckResult("safety filter", WARN, f"limited the check's own commands: {frequent} of {stream.ticks} ticks",
                               "the 1 cm test motion should pass the filter untouched: check the speed/acceleration "
                               "limits and the workspace in controller.safety"))
    return out


def _pos_error(state: RobotState, target: dict[str, np.ndarray]) -> float:
    return max(float(np.linalg.norm(np.asarray(state.arms[a].tcp_pose[:3]) - target[a][:3])) for a in target)


def _move_out_and_back(robot: Robot, stream: _Streamer, start: dict, goal: dict, offsets: dict,
                       move_s: float, opts: CheckOptions) -> CheckResult:
    clock = stream.clock
    out = {a: min_jerk(start[a], goal[a], move_s) for a in robot.arm_names}
    back = {a: min_jerk(goal[a], start[a], move_s) for a in robot.arm_names}
    t0 = clock.now()
    ticks = stream.run(move_s + opts.settle, lambda now, _s: {a: out[a](now - t0) for a in robot.arm_names})
    err_out = _pos_error(ticks[-1].state, goal)
    moved = {a: float(np.linalg.norm(ticks[-1].state.arms[a].tcp_pose[:3] - start[a][:3])) for a in robot.arm_names}
    t0 = clock.now()
    ticks_back = stream.run(move_s + opts.settle, lambda now, _s: {a: back[a](now - t0) for a in robot.arm_names})
    err_back = _pos_error(ticks_back[-1].state, start)
    lag = max(float(np.linalg.norm(t.state.arms[a].tcp_pose[:3] - t.sent[a][:3]))
              for t in ticks + ticks_back for a in robot.arm_names)
    stale = [f"{a}.{f}" for a in robot.arm_names for f in ("tcp_pose", "joint_positions")
             if not np.any(np.diff([np.asarray(getattr(t.state.arms[a], f), float) for t in ticks], axis=0))]
    dirs = ", ".join(f"{a} {offsets[a][0]}" for a in robot.arm_names)
    detail = (f"{dirs} at {opts.speed * 100:.1f} cm/s: reached within {err_out * 1e3:.2f} mm, back within "
              f"{err_back * 1e3:.2f} mm; max tracking lag {lag * 1e3:.2f} mm")
    if any(f.endswith("tcp_pose") for f in stale) or min(moved.values()) < 0.5 * opts.distance:
        return CheckResult("move 1 cm", FAIL, detail + f"; the measured pose did not follow (moved {min(moved.values()) * 1e3:.2f} mm)",
                           "commands are not reaching the arm: check the control mode, the E-stop and the driver's send()")
    if max(err_out, err_back) > opts.position_tolerance:
        return CheckResult("move 1 cm", FAIL, detail, f"errors above {opts.position_tolerance * 1e3:.1f} mm: check "
                           "the robot's stiffness / gains and the payload")
    if stale:
        return CheckResult("move 1 cm", WARN, detail + f"; {', '.join(stale)} never changed while moving",
                           "the driver reports a constant field: check its read_state conversion")
    return CheckResult("move 1 cm", PASS, detail)


def _watchdog_hold(robot: Robot, stream: _Streamer, start: dict, goal: dict, move_s: float,
                   cfg: WatchdogConfig, opts: CheckOptions) -> CheckResult:
    clock, period, arms = stream.clock, stream.period, robot.arm_names
    timeout = cfg.plan_timeout
    path = {a: min_jerk(start[a], goal[a], move_s) for a in arms}
    wd = Watchdog()
    t0 = clock.now()
    wd.watch("command", timeout, t0)
    silent_at = t0 + 0.5 * move_s  # the source stops mid-motion, at peak speed
    box: dict = {"last": dict(start), "fed": t0, "brake": None, "trip": None, "resumed": False}

    def target(now: float, _state: RobotState) -> dict[str, np.ndarray]:
        if now < silent_at or (box["trip"] is not None and now >= box["trip"] + RESUME_AFTER):
            box["resumed"] |= box["trip"] is not None
            box["last"] = {a: path[a](now - t0) for a in arms}
            if box["brake"] is not None:  # how far the ignored source asks the arm to go
                box["gap"] = max(box.get("gap", 0.0), *(float(np.linalg.norm(
                    box["last"][a][:3] - box["brake"][a](math.inf)[:3])) for a in arms))
            wd.feed("command", now)
            if box["trip"] is None:
                box["fed"] = now
        if wd.check(now) is not None and box["brake"] is None:
            box["trip"] = now
            # as the controller does: brake from the last command sent, at its velocity
            t_sent = stream.sent[-1][0] if stream.sent else now
            box["brake"] = {a: BrakingTrajectory(stream.last[a] if stream.sent else box["last"][a], stream.velocity(a),
                                                 t_sent, cfg.stop_linear_decel, cfg.stop_angular_decel) for a in arms}
        if box["brake"] is not None:
            return {a: box["brake"][a](now) for a in arms}
        return box["last"]

    horizon = 0.5 * move_s + timeout + 2 * period + RESUME_AFTER + HOLD_AFTER
    wd_log = logging.getLogger("tactkit.real.watchdog")
    level = wd_log.level
    wd_log.setLevel(logging.CRITICAL)  # the trip is this check's expected outcome, not an error
    try:
        # the abrupt stop of the source is the point here: the filter's braking is expected
        ticks = stream.run(horizon, target, count=False)
    finally:
        wd_log.setLevel(level)
    mode = "sent to the arm" if opts.move else "dry run: nothing sent, pass --move to send it"
    if box["trip"] is None:
        return CheckResult("watchdog hold", FAIL, f"no fault {horizon:.2f} s after the commands stopped ({mode})",
                           "the watchdog did not trip: check controller.watchdog")
    latency = box["trip"] - box["fed"]
    rest_at = max(b.stop_time for b in box["brake"].values())
    hold = {a: box["brake"][a](rest_at) for a in arms}
    after = [t for t in ticks if t.t >= max(rest_at, box["trip"])]
    resumed = [t for t in after if t.t >= box["trip"] + RESUME_AFTER]
    moved_cmd = max((float(np.linalg.norm(t.sent[a][:3] - hold[a][:3])) for t in after for a in arms), default=0.0)
    braking = max(float(np.linalg.norm(hold[a][:3] - box["brake"][a](box["trip"])[:3])) for a in arms)
    detail = (f"tripped {latency:.3f} s after the last command (timeout {timeout:.3f} s), came to rest "
              f"{braking * 1e3:.2f} mm later and held while the source came back asking for "
              f"{box.get('gap', 0.0) * 1e3:.1f} mm: commanded drift {moved_cmd * 1e3:.3f} mm ({mode})")
    problems = []
    # the fault must latch on the first tick past the timeout (how late that tick is depends on
    # the loop's scheduling, reported by the jitter row, not on the watchdog)
    before = [t.t for t in ticks if t.t < box["trip"]]
    if latency <= timeout or (before and before[-1] - box["fed"] > timeout):
        problems.append(f"tripped {latency:.3f} s after the last command: not on the first tick past the "
                        f"{timeout:.3f} s timeout")
    # the safety filter may round off the stop by a few micrometres on an irregular loop; a
    # command that followed the source back would move millimetres (the source is ~5 mm away)
    if moved_cmd > 0.1 * opts.hold_tolerance or not box["resumed"] or not resumed:
        problems.append("commands moved after the fault (the fault must latch until re-armed)")
    if opts.move and resumed:
        drift = max(float(np.linalg.norm(t.state.arms[a].tcp_pose[:3] - hold[a][:3])) for t in resumed for a in arms)
        detail += f"; measured drift {drift * 1e3:.2f} mm"
        if drift > opts.hold_tolerance:
            problems.append(f"the arm drifted {drift * 1e3:.2f} mm while held (tolerance {opts.hold_tolerance * 1e3:.1f} mm)")
    if problems:
        return CheckResult("watchdog hold", FAIL, detail + "; " + "; ".join(problems),
                           "the stale-command stop does not hold: check controller.watchdog and the driver's send()")
    return CheckResult("watchdog hold", PASS, detail)


def _fmt(v: np.ndarray) -> str:
    return " ".join(f"{x:.3f}" for x in v)


def format_results(results: list[CheckResult]) -> str:
    """The pass/fail table printed by ``tactkit robot check``."""
    width = max((len(r.name) for r in results), default=10)
    lines = []
    for r in results:
        lines.append(f"  {r.status:<4}  {r.name:<{width}}  {r.detail}")
        if r.fix:
            lines.append(f"  {'':<4}  {'':<{width}}  fix: {r.fix}")
    failed = sum(r.status == FAIL for r in results)
    warned = sum(r.status == WARN for r in results)
    lines.append(f"{failed} failed, {warned} warnings, {sum(r.status == PASS for r in results)} passed")
    return "\n".join(lines)
