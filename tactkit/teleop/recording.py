"""Recording a teleoperation session into an episode store.

Every stream is recorded at its own rate with its capture timestamp (one clock domain: the
robot's, i.e. the simulation clock in simulation, the monotonic clock on hardware):

* sensor streams (tactile marker offsets, wrench, cameras) - every new sample, detected by
  the sensor's sequence number; sequence gaps are counted as dropped samples;
* robot state (TCP pose / velocity, joints, gripper; the wrench too if no F/T sensor
  provides it) at the bridge's record rate;
* commanded targets (``action.*``, after the safety filter), when sent;
* headset input (``teleop.headset.*``: head and wrist poses, triggers and buttons), stamped
  at reception.

The bridge calls :meth:`start` / :meth:`stop` / :meth:`discard` (headset buttons, control
messages, keyboard) and the ``on_*`` / :meth:`tick` hooks, all from its own thread. Creating
an episode in the store (hundreds of ms: one Zarr array pair per stream) and committing it
run on a background worker, one store operation at a time, so the bridge loop - and the robot
under the operator's hand - never waits for the disk; samples that arrive while the episode
is being created are buffered and written once it exists.
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from tactkit.clock import Clock
from tactkit.real.robot import RobotCommand, RobotState
from tactkit.sensors.base import Sensor
from tactkit.store.schema import (
    POSE_NAMES,
    ArmFeatures,
    StreamSpec,
    command_sample,
    recording_streams,
    state_sample,
)
from tactkit.teleop import protocol as P

log = logging.getLogger(__name__)

HEADSET_PREFIX = "teleop.headset"
INPUT_NAMES = ("index_trigger", "hand_trigger", "upper", "lower", "thumbstick", "index_button", "hand_button")


def session_streams(arms: Sequence[ArmFeatures], sensors: dict[str, Sensor], *,
                    state_rate_hz: float, command_rate_hz: float, headset_rate_hz: float = 60.0) -> dict[str, StreamSpec]:
    """The store schema of a teleoperation recording with these arms (``Robot.arm_features()``)
    and sensors: :func:`tactkit.store.schema.recording_streams` plus the headset input."""
    specs = recording_streams(arms, {k: v for s in sensors.values() for k, v in s.streams().items()},
                              state_rate_hz=state_rate_hz, action_rate_hz=command_rate_hz)
    h = headset_rate_hz
    specs[f"{HEADSET_PREFIX}.head_pose"] = StreamSpec("float32", (7,), h, "m,quat", POSE_NAMES)
    for hand in ("left", "right"):
        specs[f"{HEADSET_PREFIX}.{hand}.wrist_pose"] = StreamSpec("float32", (7,), h, "m,quat", POSE_NAMES)
        specs[f"{HEADSET_PREFIX}.{hand}.inputs"] = StreamSpec("float32", (7,), h, "1", INPUT_NAMES)
    return specs


def _pose7(pose: P.Pose) -> np.ndarray:
    return np.array([*pose.pos, *pose.quat], dtype=np.float32)


def _inputs(hand: P.Hand) -> np.ndarray:
    bits = [(hand.buttons >> i) & 1 for i in range(P.NUM_BUTTONS)]
    return np.array([hand.index_trigger, hand.hand_trigger, *bits], dtype=np.float32)


class _Rate:
    """Samples per second of one stream over the last ``window`` seconds (wall clock)."""

    def __init__(self, window: float = 2.0) -> None:
        self.window = window
        self.times: collections.deque[float] = collections.deque()

    def add(self, t: float) -> None:
        self.times.append(t)

    def hz(self, now: float) -> float:
        while self.times and self.times[0] < now - self.window:
            self.times.popleft()
        return len(self.times) / self.window


class RecordingSession:
    """Records episodes of one teleoperation session into ``store``."""

    def __init__(self, store, robot_arms: tuple[str, ...], sensors: dict[str, Sensor], clock: Clock, *,
                 task: str = "", metadata: dict[str, Any] | None = None,
                 calibration: dict[str, Any] | None = None,
                 on_start: Callable[[], None] | None = None,
                 episode_metadata: Callable[[], dict[str, Any]] | None = None) -> None:
        self.store = store
        self.arms = tuple(robot_arms)
        self.sensors = sensors
        self.clock = clock
        self.task = task
        self.metadata = dict(metadata or {})
        self.calibration = dict(calibration or {})
        self.on_start = on_start
        self.episode_metadata = episode_metadata
        self.episodes = store.num_episodes
        self.discarded = 0
        self.dropped = 0  # sensor samples lost (sequence gaps) while recording
        self.rejected_samples = 0  # samples the store refused (e.g. time going backwards)
        self._rec = None  # EpisodeRecorder once created
        self._creating: Future | None = None
        self._buffer: list[tuple[str, float, np.ndarray]] = []
        self._active = False
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="teleop-store")
        self.failed = 0  # store operations that failed (logged)
        self._ep_start = 0.0
        self._last_seq: dict[str, int] = {}
        self._last_state_t = -np.inf
        self._rates: dict[str, _Rate] = collections.defaultdict(_Rate)
        self._headset_session: int | None = None
        # state quantities a sensor provides (a wrist F/T sensor's wrench) are recorded from it only
        self._from_sensors = {k for s in sensors.values() for k in s.streams()}

    @property
    def recording(self) -> bool:
        return self._active

    def _resolve(self, wait: bool = False) -> bool:
        """Pick up the episode recorder once the worker created it; True when it is ready."""
        if self._rec is not None:
            return True
        if self._creating is None or (not wait and not self._creating.done()):
            return False
        fut, self._creating = self._creating, None
        try:
            self._rec = fut.result()
        except Exception as exc:  # noqa: BLE001 - a failed begin must not kill the bridge
            self.failed += 1
            self._active = False
            self._buffer.clear()
            log.error("could not start an episode in the store: %s", exc)
            return False
        buffered, self._buffer = self._buffer, []
        for key, t, value in buffered:
            self._append(key, t, value)
        return True

    # ----------------------------------------------------------------- episode control
    def start(self, note: str = "") -> None:
        if self._active:
            raise ValueError("an episode is already being recorded")
        if self.on_start is not None:
            self.on_start()  # e.g. a simulation resets its scene
        meta = dict(self.metadata)
        if note:
            meta["operator_note"] = note
        self._ep_start = self.clock.now()
        self._active = True
        self._buffer = []
        def begin():
            t0 = time.monotonic()
            rec = self.store.begin_episode(task=self.task, metadata=meta, calibration=self.calibration,
                                           start_time=self._ep_start)
            log.info("episode created in the store in %.2f s", time.monotonic() - t0)
            return rec

        self._creating = self._worker.submit(begin)
        # only samples captured from now on belong to the episode
        self._last_seq = {}
        for name, s in self.sensors.items():
            sample = s.read_latest()
            if sample is not None:
                self._last_seq[name] = sample.seq
        self._last_state_t = -np.inf
        log.info("recording episode %d", self.episodes)

    def _detach(self) -> tuple[Any, Future | None, list]:
        """End the current episode in the bridge thread without waiting for the store."""
        if not self._active:
            raise ValueError("no episode is being recorded")
        self.poll_sensors()
        self._resolve()
        parts = (self._rec, self._creating, self._buffer)
        self._rec, self._creating, self._buffer, self._active = None, None, [], False
        return parts

    def _finish(self, parts: tuple[Any, Future | None, list], action: Callable[[Any], None], what: str) -> None:
        """On the store worker: wait for the episode's creation (queued before this job, so
        already done), write samples still buffered, then commit or discard."""
        rec, creating, buffered = parts

        def job() -> None:
            try:
                r = rec if rec is not None else creating.result()
                for key, t, value in buffered:
                    r.append(key, t, value)
                action(r)
            except Exception as exc:  # noqa: BLE001 - logged and counted, the session goes on
                self.failed += 1
                log.error("%s the episode failed: %s", what, exc)

        self._worker.submit(job)

    def stop(self, success: bool = True, note: str = "") -> None:
        """Commit the episode (in the background); ``episodes`` counts it once written."""
        extra: dict[str, Any] = {"dropped_samples": self.dropped, "headset_session": self._headset_session}
        if self.episode_metadata is not None:
            extra.update(self.episode_metadata())

        def commit(r) -> None:
            r.commit(success=success, note=note, metadata=extra)
            self.episodes += 1

        self._finish(self._detach(), commit, "committing")

    def discard(self) -> None:
        self._finish(self._detach(), lambda r: r.discard(), "discarding")
        self.discarded += 1

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Block until queued store operations (create / commit / discard) are done."""
        self._worker.submit(lambda: None).result(timeout=timeout)

    def close(self) -> None:
        """Discard an episode left open (the bridge is shutting down); finish store work."""
        if self._active:
            log.warning("discarding the unfinished episode at shutdown")
            self.discard()
        self._worker.shutdown(wait=True)

    # ----------------------------------------------------------------- hooks
    def _append(self, key: str, t: float, value) -> None:
        if self._rec is None and not self._resolve():
            if self._active:
                self._buffer.append((key, t, np.array(value, copy=True)))
            return
        try:
            self._rec.append(key, t, value)
            self._rates[key].add(time.monotonic())
        except (ValueError, KeyError) as exc:  # the store's SampleError is a ValueError
            self.rejected_samples += 1
            log.warning("sample of %s not recorded: %s", key, exc)

    def on_headset(self, msg: P.HeadsetPose, receive_time: float) -> None:
        if not self._active:
            return
        self._headset_session = msg.session
        t = self.clock.now()
        self._append(f"{HEADSET_PREFIX}.head_pose", t, _pose7(msg.head))
        for side in ("left", "right"):
            hand = getattr(msg, side)
            if hand is not None:
                self._append(f"{HEADSET_PREFIX}.{side}.wrist_pose", t, _pose7(hand.wrist))
                self._append(f"{HEADSET_PREFIX}.{side}.inputs", t, _inputs(hand))

    def on_command(self, command: RobotCommand) -> None:
        if not self._active:
            return
        for key, value in command_sample(command.arms).items():
            self._append(key, command.timestamp, value)

    def poll_sensors(self) -> None:
        """Append every sensor sample that is new since the last poll."""
        if not self._active:
            return
        for name, s in self.sensors.items():
            sample = s.read_latest()
            if sample is None:
                continue
            last = self._last_seq.get(name)
            if last is not None and sample.seq <= last:
                continue
            if last is not None and sample.seq > last + 1:
                self.dropped += sample.seq - last - 1
            self._last_seq[name] = sample.seq
            self._append(sample.key, sample.capture_time, sample.value)

    def tick(self, now: float, state: RobotState | None) -> None:
        if not self._active:
            return
        self.poll_sensors()
        if state is None or state.timestamp <= self._last_state_t:
            return
        self._last_state_t = state.timestamp
        for key, value in state_sample(state.arms, skip=self._from_sensors).items():
            self._append(key, state.timestamp, value)

    # ----------------------------------------------------------------- status
    def rates(self) -> dict[str, float]:
        now = time.monotonic()
        return {k: r.hz(now) for k, r in self._rates.items()}

    def status(self) -> str:
        if not self._active:
            state = "idle"
        else:
            state = f"REC ep {self.episodes} {self.clock.now() - self._ep_start:5.1f}s"
        rates = self.rates()
        shown = []
        for k, v in sorted(rates.items()):
            if v <= 0 or k.startswith(HEADSET_PREFIX) or k.endswith((".tcp_velocity", ".joint_positions",
                                                                      ".gripper_width")):
                continue
            name = k.removeprefix("observation.").removesuffix(".marker_offset").removeprefix("images.")
            shown.append(f"{name} {v:.0f}")
        head = rates.get(f"{HEADSET_PREFIX}.head_pose", 0.0)
        return (f"{state} | stored {self.episodes} discarded {self.discarded} | dropped {self.dropped} "
                f"| Hz: headset {head:.0f} {' '.join(shown)}")
