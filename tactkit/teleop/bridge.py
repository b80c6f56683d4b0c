"""The teleoperation bridge: headset poses in, robot commands out, tactile feedback back.

One thread owns everything that touches the robot, so there are no locks around it::

    loop:
      poll the upstream ROUTER until the next deadline (feedback, record, world step)
      drain queued upstream messages for at most drain_budget_s:
        per-peer budget (token bucket) -> over it: dropped undecoded, counted (rate_limited)
        size check -> decode -> validate -> sequence check
        (each refusal is counted by reason; nothing refused goes further)
        control  -> handled at once, acknowledged
        pose     -> only the newest survives the drain (latest wins, no backlog after a stall)
      newest pose -> retarget (clutch) -> safety filter -> robot.send
      pose stream silent > stream_timeout_s -> clutches reset: the robot holds its last target
      feedback due -> one Feedback on the PUB socket (subscribers CONFLATE: latest wins)

The ``before_tick`` hook lets a simulation step its world in this same thread.

Fairness under a flood: the ROUTER hands out messages round-robin between peers, so the
operator's next pose is at most one message per other peer away; the per-peer budget makes a
flooding peer's excess cost a receive and a dictionary lookup instead of a decode, and the
drain's time budget sends the operator's command (and runs the stream watchdog) within a few
milliseconds however much junk is queued.

Replay protection: sequence state is kept per *authenticated identity* (the CURVE public key
the ZAP handler verified) or, without CURVE, per *session nonce* (the random 63-bit ``session``
of every message), and per channel (stream: poses and heartbeats; control), never per socket:
a message replayed from a new connection meets the same sequence state and is refused.

Two clocks: loop scheduling, stream timeouts and latency use the monotonic wall clock (they
are about the network and the operator); command and recording timestamps use ``clock``, the
robot's time domain (the simulation clock in simulation). If the robot's clock jumps back
(a simulated scene was rebuilt) the clutches and the safety filter's motion history reset.
"""

from __future__ import annotations

import collections
import logging
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import zmq

from tactkit.clock import Clock, WallClock
from tactkit.eventlog import EventLog
from tactkit.rate import realtime_thread
from tactkit.real.robot import Robot, RobotCommand, RobotState
from tactkit.real.watchdog import Watchdog
from tactkit.sensors.base import Sensor
from tactkit.teleop import protocol as P
from tactkit.teleop.feedback import (
    FeedbackConfig,
    arm_feedback,
    arrow_field,
    encode_jpeg,
    force_arrows,
    sensor_name,
)
from tactkit.teleop.retarget import RetargetConfig, Retargeter
from tactkit.teleop.security import ServerSecurity, check_bind_policy

log = logging.getLogger(__name__)

#: sequence states kept (one per key or session and channel), least recently used evicted
MAX_SEQUENCE_STATES = 256
#: evicted sessions remembered as refused
MAX_EVICTED_SESSIONS = 16384


class BindError(ValueError):
    """A bridge socket could not be bound; the message names the setting and the address."""


class CommandFilter(Protocol):
    """The controller's safety filter: clamps a command given the measured state."""

    def filter(self, command: RobotCommand, state: RobotState) -> RobotCommand: ...


class EpisodeControl(Protocol):
    """What the bridge needs from a recording session (see :mod:`tactkit.teleop.recording`)."""

    recording: bool
    episodes: int

    def start(self, note: str = "") -> None: ...
    def stop(self, success: bool = True, note: str = "") -> None: ...
    def discard(self) -> None: ...
    def on_headset(self, msg: P.HeadsetPose, receive_time: float) -> None: ...
    def on_command(self, command: RobotCommand) -> None: ...
    def tick(self, now: float, state: RobotState | None) -> None: ...
    def status(self) -> str: ...


@dataclass
class BridgeConfig:
    upstream: str = "tcp://127.0.0.1:5555"  # ROUTER: headset poses, heartbeats, control
    feedback: str = "tcp://127.0.0.1:5556"  # PUB: feedback
    keys: str = ""  # directory from `tactkit keys generate`; empty = no CURVE
    insecure: bool = False  # allow a non-loopback bind without CURVE
    stream_timeout_s: float = 0.25  # pose stream silent longer than this = lost
    max_drain: int = 10_000  # upstream messages handled per loop iteration at most
    # s: a drain with messages of several peers ends after this, so the operator's command never
    # waits behind a flood (a backlog of one peer's own messages is drained whole: latest wins)
    drain_budget_s: float = 0.002
    peer_rate_hz: float = 1000.0  # messages/s one peer (CURVE key or connection) may send; 0 = unlimited
    peer_burst: int = 500  # messages a peer may send at once above its rate
    # SCHED_FIFO priority of the bridge loop and of ZeroMQ's I/O thread (0 = normal scheduling):
    # commands then reach the robot within milliseconds however busy the machine is. Needs root
    # or CAP_SYS_NICE (otherwise a warning). Under a flood the loop rests one drain budget after
    # each full drain, so even then it takes at most about half a core.
    realtime_priority: int = 0
    record_rate_hz: float = 50.0  # robot state / sensor polling for the recorder
    button_start_stop: str = "right.lower"  # A: start / stop (commit) an episode
    button_discard: str = "right.upper"  # B: discard the current episode
    retarget: RetargetConfig = field(default_factory=RetargetConfig)
    display: FeedbackConfig = field(default_factory=FeedbackConfig)

    def __post_init__(self) -> None:
        if self.stream_timeout_s <= 0:
            raise ValueError(f"bridge.stream_timeout_s={self.stream_timeout_s} must be > 0")
        if not self.drain_budget_s > 0:
            raise ValueError(f"bridge.drain_budget_s={self.drain_budget_s} must be > 0")
        if not 0 <= self.realtime_priority <= 99:
            raise ValueError(f"bridge.realtime_priority={self.realtime_priority} must be in 0..99")
        if not self.peer_rate_hz >= 0 or self.peer_burst < 1:
            raise ValueError(f"bridge.peer_rate_hz={self.peer_rate_hz} must be >= 0 and bridge.peer_burst="
                             f"{self.peer_burst} >= 1")
        for name in ("button_start_stop", "button_discard"):
            side, _, button = getattr(self, name).partition(".")
            if side not in ("left", "right") or button not in _BUTTONS:
                raise ValueError(f"bridge.{name}={getattr(self, name)!r}: use <left|right>.<{'|'.join(_BUTTONS)}>")


_BUTTONS = {"upper": P.BUTTON_UPPER, "lower": P.BUTTON_LOWER, "thumbstick": P.BUTTON_THUMBSTICK}


@dataclass
class BridgeStats:
    drains: int = 0  # loop iterations that handled upstream messages (incremented when done)
    poses_received: int = 0  # accepted pose messages
    poses_applied: int = 0  # poses of the active operator given to the retargeter
    poses_superseded: int = 0  # poses whose command lost to a newer pose in the same drain
    heartbeats: int = 0
    controls: int = 0
    rate_limited: int = 0  # messages dropped undecoded: their peer was over its budget
    commands_sent: int = 0
    feedback_sent: int = 0
    stream_losses: int = 0
    operator_switches: int = 0
    ignored_other_operator: int = 0
    latency: collections.deque = field(default_factory=lambda: collections.deque(maxlen=100_000))  # rx -> send, s
    #: headset timestamp of the pose each sent command was built from (same-host benchmarks)
    command_pose_t: collections.deque = field(default_factory=lambda: collections.deque(maxlen=100_000))


class PeerBudget:
    """Token bucket per peer: ``rate`` messages/s sustained, ``burst`` at once (0 rate = off).

    Bounded: the least recently seen peers are forgotten beyond ``max_peers`` (a forgotten
    peer starts again with a full bucket, which is the state a new peer gets anyway).
    """

    def __init__(self, rate: float, burst: int, max_peers: int = 256) -> None:
        self.rate, self.burst, self.max_peers = float(rate), float(burst), max_peers
        self._peers: collections.OrderedDict[bytes, list[float]] = collections.OrderedDict()

    def allow(self, peer: bytes, now: float) -> bool:
        if self.rate <= 0:
            return True
        entry = self._peers.get(peer)
        if entry is None:
            entry = self._peers[peer] = [self.burst, now]
            if len(self._peers) > self.max_peers:
                self._peers.popitem(last=False)
        else:
            self._peers.move_to_end(peer)
            entry[0] = min(self.burst, entry[0] + (now - entry[1]) * self.rate)
            entry[1] = now
        if entry[0] >= 1.0:
            entry[0] -= 1.0
            return True
        return False


class TeleopBridge:
    """Headset <-> robot bridge over ZeroMQ. ``start()`` runs it in a thread; ``stop()`` ends it."""

    def __init__(self, robot: Robot, config: BridgeConfig | None = None, *,
                 safety: CommandFilter, sensors: dict[str, Sensor] | None = None,
                 recorder: EpisodeControl | None = None, clock: Clock | None = None,
                 before_tick: Callable[[float], float | None] | None = None,
                 context: zmq.Context | None = None) -> None:
        self.robot = robot
        self.config = config or BridgeConfig()
        self.safety = safety
        self.sensors = dict(sensors or {})
        self.recorder = recorder
        self.clock = clock or WallClock()
        self.before_tick = before_tick
        self.retargeter = Retargeter(self.config.retarget, tuple(robot.arm_names))
        self.rejects = P.RejectCounter()
        self.stats = BridgeStats()
        # own context: ZAP authentication is per context, and a bridge must not share its
        # authenticator (or lose it) with clients or another bridge in the same process
        self._own_ctx = context is None
        self._ctx = context or zmq.Context()
        if self._own_ctx and self.config.realtime_priority:
            try:  # must precede the first socket: the I/O thread starts with it
                self._ctx.set(zmq.THREAD_SCHED_POLICY, os.SCHED_FIFO)
                self._ctx.set(zmq.THREAD_PRIORITY, self.config.realtime_priority)
            except (AttributeError, zmq.ZMQError) as exc:
                log.warning("teleop bridge: ZeroMQ I/O thread stays at normal priority (%s)", exc)
        self._security: ServerSecurity | None = None
        # sequence state per (authenticated key or session nonce, channel); sessions whose
        # state was evicted stay refused (their numbers may be replayed)
        self._guards: collections.OrderedDict[tuple, P.SequenceGuard] = collections.OrderedDict()
        self._evicted_sessions: collections.OrderedDict[tuple, None] = collections.OrderedDict()
        self._budget = PeerBudget(self.config.peer_rate_hz, self.config.peer_burst)
        self._reject_log = EventLog(log)
        self._operator: bytes | None = None
        self._last_pose_time = -np.inf
        # the controller's staleness watchdog guards the headset stream while a clutch is engaged
        self.watchdog = Watchdog()
        self._prev_buttons: dict[str, int] = {"left": 0, "right": 0}
        self._requests: queue.Queue = queue.Queue()
        self._log_lines: collections.deque[str] = collections.deque(maxlen=8)
        self._feedback_seq = 0
        self._last_camera_t = -np.inf
        self._state: RobotState | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._bound = threading.Event()
        self._error: BaseException | None = None
        self.endpoints: dict[str, str] = {}
        #: status line as of the last feedback, for other threads (the robot, the simulation
        #: and the recorder belong to the bridge thread; other threads read this copy)
        self.last_status = "starting"

    # ----------------------------------------------------------------- lifecycle
    def bind(self) -> None:
        """Create and bind the sockets (checks the bind policy first).

        Raises :class:`BindError` naming the address when one cannot be bound (in use, not an
        address of this machine, malformed); everything created so far is closed again.
        """
        cfg = self.config
        check_bind_policy([cfg.upstream, cfg.feedback], curve=bool(cfg.keys), insecure=cfg.insecure)
        try:
            if cfg.keys:
                from pathlib import Path

                self._security = ServerSecurity(self._ctx, Path(cfg.keys) / "bridge.key_secret")
            self._router = self._ctx.socket(zmq.ROUTER)
            self._pub = self._ctx.socket(zmq.PUB)
            for sock in (self._router, self._pub):
                sock.linger = 0
                if self._security:
                    self._security.apply(sock)
            self._router.maxmsgsize = P.ZMQ_MAX_MSG_BYTES
            self._router.rcvhwm = 1000
            self._router.router_mandatory = False
            self._pub.sndhwm = 2
            for sock, name, address in ((self._router, "upstream", cfg.upstream), (self._pub, "feedback", cfg.feedback)):
                try:
                    sock.bind(address)
                except zmq.ZMQError as exc:
                    raise BindError(f"teleop bridge: cannot bind bridge.{name}={address}: {exc.strerror}") from None
        except BaseException:
            # sockets left open would make Context.term() wait for ever
            for name in ("_router", "_pub"):
                sock = self.__dict__.pop(name, None)
                if sock is not None:
                    sock.close(0)
            if self._security is not None:
                self._security.stop()
                self._security = None
            if self._own_ctx and not self._ctx.closed:
                self._ctx.term()
            raise
        self.endpoints = {
            "upstream": self._router.getsockopt_string(zmq.LAST_ENDPOINT),
            "feedback": self._pub.getsockopt_string(zmq.LAST_ENDPOINT),
        }
        self._bound.set()
        log.info("teleop bridge: upstream %s, feedback %s, CURVE %s", self.endpoints["upstream"],
                 self.endpoints["feedback"], "on" if self._security else "OFF")

    def start(self) -> TeleopBridge:
        if not self._bound.is_set():
            self.bind()
        self._thread = threading.Thread(target=self._run, name="teleop-bridge", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
        self.close()

    def close(self) -> None:
        if self._bound.is_set():
            self._router.close(0)
            self._pub.close(0)
            self._bound.clear()
        if self._security is not None:
            self._security.stop()
            self._security = None
        if self._own_ctx and not self._ctx.closed:
            self._ctx.term()

    def __enter__(self) -> TeleopBridge:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the loop, if one did."""
        return self._error

    def request(self, command: str, **kwargs) -> None:
        """Thread-safe local control (keyboard): 'start_episode', 'stop_episode', 'discard_episode'."""
        self._requests.put((command, kwargs))

    # ----------------------------------------------------------------- the loop
    def _run(self) -> None:
        try:
            with realtime_thread(self.config.realtime_priority):
                self.run_forever()
        except BaseException as exc:  # noqa: BLE001 - reported via .error and the log
            self._error = exc
            log.exception("teleop bridge loop crashed")

    def run_forever(self) -> None:
        poller = zmq.Poller()
        poller.register(self._router, zmq.POLLIN)
        fb_period = 1.0 / self.config.display.rate_hz
        rec_period = 1.0 / self.config.record_rate_hz
        now = time.monotonic()
        next_fb = now
        next_rec = now
        self._read_state()
        while not self._stop.is_set():
            now = time.monotonic()
            next_world = self.before_tick(now) if self.before_tick else None
            deadline = min(next_fb, next_rec, next_world if next_world is not None else np.inf)
            timeout_ms = max(0.0, (deadline - time.monotonic()) * 1000.0)
            if poller.poll(min(timeout_ms, 50.0)) and self._drain():
                # the drain's time budget ran out with messages still queued (a flood): rest as
                # long, so the rest of this process and machine keep their share of the CPU
                time.sleep(self.config.drain_budget_s)
            self._handle_local_requests()
            now = time.monotonic()
            self._check_stream(now)
            if now >= next_rec:
                next_rec = max(next_rec + rec_period, now)
                state = self._read_state()
                if self.recorder is not None:
                    self.recorder.tick(self.clock.now(), state)
            if now >= next_fb:
                next_fb = max(next_fb + fb_period, now)
                self._publish_feedback(now)

    def _read_state(self) -> RobotState:
        state = self.robot.read_state()
        if self._state is not None and state.timestamp < self._state.timestamp:
            # the robot's clock restarted (simulated scene rebuilt): old origins and motion
            # history are meaningless
            reset = getattr(self.safety, "reset", None)
            if reset is not None:
                reset()
            self._reset_clutch("robot restarted: clutch released, re-engage to move")
        self._state = state
        return state

    def _drain(self) -> bool:
        """Handle queued upstream messages for up to ``drain_budget_s``; True if some remain.

        The time budget ends a drain only once it has met messages of more than one peer (a
        flood next to the operator): a backlog of one peer's own messages (its poses queued
        while the loop stalled; that peer's budget bounds it) is drained whole however long a
        busy machine takes, so only its newest pose becomes a command, not its stale ones.

        Every accepted pose advances the clutches and buttons (no edge is lost), but only the
        command from the newest pose of this drain is sent: latest wins, no backlog."""
        newest: tuple[RobotCommand | None, float, float] | None = None
        state = self._read_state()
        curve = self._security is not None
        deadline = time.monotonic() + self.config.drain_budget_s
        cut = False
        first_peer: bytes | None = None
        mixed = False  # messages of more than one peer in this drain
        for _ in range(self.config.max_drain):
            try:
                frames = self._router.recv_multipart(zmq.NOBLOCK, copy=not curve)
            except zmq.Again:
                break
            t_rx = time.monotonic()
            user: bytes | None = None
            if curve:  # the CURVE key the ZAP handler verified (z85 text)
                user = frames[-1].get("User-Id").encode()
                frames = [f.bytes for f in frames]
            peer = user or frames[0]
            if first_peer is None:
                first_peer = peer
            elif peer != first_peer:
                mixed = True
            if not self._budget.allow(peer, t_rx):
                self.stats.rate_limited += 1
                self._reject_log.event("rate_limited", logging.WARNING,
                                       "teleop bridge: a peer is over its budget of %.0f messages/s: dropping",
                                       self.config.peer_rate_hz)
            elif len(frames) != 2:
                self._reject(P.Rejected("malformed", f"{len(frames) - 1} frames, expected 1"))
            else:
                ident, data = frames
                msg = self._validate(ident, data, user)
                if isinstance(msg, P.HeadsetPose):
                    self.stats.poses_received += 1
                    if newest is not None:
                        self.stats.poses_superseded += 1
                    newest = (self._process_pose(ident, msg, t_rx, state), t_rx, msg.t)
                elif isinstance(msg, P.Heartbeat):
                    self.stats.heartbeats += 1
                elif msg is not None:
                    self.stats.controls += 1
                    self._handle_control(ident, msg)
            if mixed and t_rx > deadline:  # the rest waits for the next drain, after this one's command
                cut = True
                break
        else:
            cut = True  # max_drain messages handled, more may wait
        if newest is not None and newest[0] is not None:
            self._send(newest[0], state, newest[1], newest[2])
        self.stats.drains += 1
        return cut

    def _validate(self, ident: bytes, data: bytes, user: bytes | None = None) -> P.Upstream | None:
        try:
            msg = P.decode_upstream(data)
            channel = "control" if isinstance(msg, P.Control) else "stream"
            # bound to who sent it: the verified CURVE key, else the session nonce; never the socket
            key = ("key", user, channel) if user is not None else ("session", msg.session, channel)
            guard = self._guards.get(key)
            if guard is None:
                if ("session", msg.session, channel) in self._evicted_sessions:
                    raise P.Rejected("replayed", f"session {msg.session} is no longer accepted")
                guard = self._guards[key] = P.SequenceGuard()
                if len(self._guards) > MAX_SEQUENCE_STATES:
                    old_key, old = self._guards.popitem(last=False)
                    if old.session is not None:
                        self._evicted_sessions[("session", old.session, old_key[2])] = None
                        if len(self._evicted_sessions) > MAX_EVICTED_SESSIONS:
                            self._evicted_sessions.popitem(last=False)
            self._guards.move_to_end(key)
            if guard.check(msg) and ident == self._operator:
                self._reset_clutch(f"operator reconnected (session {msg.session})")
            return msg
        except P.Rejected as rej:
            self._reject(rej)
            return None

    def _reject(self, rej: P.Rejected) -> None:
        self.rejects.add(rej)
        self._reject_log.event(rej.reason, logging.DEBUG, "rejected upstream message: %s", rej)

    def _process_pose(self, ident: bytes, msg: P.HeadsetPose, t_rx: float,
                      state: RobotState) -> RobotCommand | None:
        now = time.monotonic()
        if ident != self._operator:
            if self._operator is not None and now - self._last_pose_time < self.config.stream_timeout_s:
                self.stats.ignored_other_operator += 1
                return None
            if self._operator is not None:
                self.stats.operator_switches += 1
            self._operator = ident
            self._reset_clutch("new operator connected")
        elif now - self._last_pose_time > self.config.stream_timeout_s:
            self._reset_clutch("headset stream resumed after a gap: re-engage to move")
        self._last_pose_time = now
        self.watchdog.feed("headset", now)
        self.stats.poses_applied += 1
        if self.recorder is not None:
            self.recorder.on_headset(msg, t_rx)
        self._handle_buttons(msg)
        command = self.retargeter.update(msg, state.arms, self.clock.now())
        if command is not None and "headset" not in self.watchdog.channels:
            self.watchdog.watch("headset", self.config.stream_timeout_s, now)
        return command

    def _send(self, command: RobotCommand, state: RobotState, t_rx: float, pose_t: float) -> None:
        safe = self.safety.filter(command, state)
        self.robot.send(safe)
        self.stats.commands_sent += 1
        self.stats.latency.append(time.monotonic() - t_rx)
        self.stats.command_pose_t.append(pose_t)
        if self.recorder is not None:
            self.recorder.on_command(safe)

    def _check_stream(self, now: float) -> None:
        if not any(self.retargeter.engaged.values()):
            return
        fault = self.watchdog.check(now)
        if fault is not None:
            self.stats.stream_losses += 1
            self._reset_clutch(f"{fault.reason}: holding the last target; re-engage to move")

    def _reset_clutch(self, why: str) -> None:
        self.retargeter.reset()
        self.watchdog.unwatch("headset")
        self.watchdog.rearm(time.monotonic())
        self._say(why)

    def _say(self, text: str) -> None:
        log.info("%s", text)
        self._log_lines.append(text)

    # ----------------------------------------------------------------- control
    def _handle_buttons(self, msg: P.HeadsetPose) -> None:
        for name, action in (("button_start_stop", "toggle"), ("button_discard", "discard_episode")):
            side, _, button = getattr(self.config, name).partition(".")
            hand = getattr(msg, side)
            buttons = hand.buttons if hand is not None else 0
            bit = 1 << _BUTTONS[button]
            if buttons & bit and not self._prev_buttons[side] & bit:
                if action == "toggle":
                    recording = self.recorder is not None and self.recorder.recording
                    action = "stop_episode" if recording else "start_episode"
                ok, text = self._episode_command(action)
                self._say(text)
        for side in ("left", "right"):
            hand = getattr(msg, side)
            self._prev_buttons[side] = hand.buttons if hand is not None else 0

    def _handle_local_requests(self) -> None:
        while True:
            try:
                command, kwargs = self._requests.get_nowait()
            except queue.Empty:
                return
            ok, text = self._episode_command(command, **kwargs)
            self._say(text)

    def _episode_command(self, command: str, success: bool = True, note: str = "") -> tuple[bool, str]:
        rec = self.recorder
        if rec is None:
            return False, f"{command}: not recording (start the bridge with --record PATH)"
        try:
            if command == "start_episode":
                if rec.recording:
                    return False, "start_episode: an episode is already being recorded"
                rec.start(note=note)
                return True, f"episode {rec.episodes} started"
            if command == "stop_episode":
                if not rec.recording:
                    return False, "stop_episode: no episode is being recorded"
                rec.stop(success=success, note=note)
                return True, f"episode stopped, committing ({rec.episodes} committed before it)"
            if command == "discard_episode":
                if not rec.recording:
                    return False, "discard_episode: no episode is being recorded"
                rec.discard()
                return True, "episode discarded"
        except (ValueError, OSError) as exc:
            log.exception("%s failed", command)
            return False, f"{command} failed: {exc}"
        return False, f"unknown command {command!r}"

    def _handle_control(self, ident: bytes, msg: P.Control) -> None:
        if msg.command == "calibrate":
            ok, text = self._calibrate(msg)
        elif msg.command == "status":
            ok, text = True, self.status_line()
        else:
            ok, text = self._episode_command(msg.command, success=msg.success, note=msg.note)
        self._say(text)
        rec = self.recorder
        ack = P.Ack(v=P.PROTOCOL_VERSION, request_id=msg.request_id, ok=ok, message=text,
                    episodes=rec.episodes if rec else 0, recording=bool(rec and rec.recording))
        try:
            self._router.send_multipart([ident, P.encode(ack)], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("could not send ack %d: %s", msg.request_id, exc)

    def _calibrate(self, msg: P.Control) -> tuple[bool, str]:
        """Set T_BH (the headset frame in the robot base) from the message; clutches reset."""
        if msg.calibration is not None:
            pose = [*msg.calibration.pos, *msg.calibration.quat]
            self.retargeter.set_calibration(pose)
            return True, "calibration set"
        return False, "calibrate: message carries no calibration pose"

    # ----------------------------------------------------------------- feedback
    def _publish_feedback(self, now: float) -> None:
        state = self._state
        if state is None:
            return
        cfg = self.config.display
        tactile, images = [], []
        send_cameras = cfg.camera_rate_hz > 0 and now - self._last_camera_t >= 1.0 / cfg.camera_rate_hz
        for sensor in self.sensors.values():
            sample = sensor.read_latest(max_age=cfg.max_sample_age_s)
            if sample is None:
                continue
            kind = sensor_name(sample.key)
            if kind is None:
                continue
            if kind[0] == "tactile":
                tactile.append(arrow_field(kind[1], sample.value, sample.capture_time, cfg))
            elif send_cameras:
                images.append(encode_jpeg(kind[1], sample.value, sample.capture_time, cfg.jpeg_quality))
        if send_cameras:
            self._last_camera_t = now
        rec = self.recorder
        self.last_status = self.status_line()
        msg = P.Feedback(
            v=P.PROTOCOL_VERSION, seq=self._feedback_seq, t=self.clock.now(),
            arms=arm_feedback(state, self.retargeter.engaged),
            tactile=tactile, forces=force_arrows(state, cfg), status=self.last_status,
            log=list(self._log_lines), images=images,
            recording=bool(rec and rec.recording), episodes=rec.episodes if rec else 0,
        )
        self._feedback_seq += 1
        try:
            self._pub.send(P.encode(msg), zmq.NOBLOCK)
            self.stats.feedback_sent += 1
        except zmq.Again:
            pass

    def status_line(self) -> str:
        engaged = ",".join(a for a, e in self.retargeter.engaged.items() if e) or "-"
        rec = self.recorder.status() if self.recorder is not None else "not recording"
        limited = f" rate-limited {self.stats.rate_limited}" if self.stats.rate_limited else ""
        return (f"engaged {engaged} | poses {self.stats.poses_applied} cmds {self.stats.commands_sent} "
                f"| rejected {self.rejects.total}{limited} | {rec}")


def new_session_id() -> int:
    """A random session id for a headset client (63 bits)."""
    return secrets.randbits(63)


def wait_until(predicate: Callable[[], bool], timeout: float, poll: float = 0.005) -> bool:
    """Poll ``predicate`` until true or ``timeout`` s pass (test and client helper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return predicate()
