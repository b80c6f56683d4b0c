"""A simulated human operator: does a simulated task through the real headset protocol.

It is a headset client like any other (same sockets, same messages), so a recording made with
it exercises the whole teleoperation path: protocol, clutch, retargeting, safety filter,
feedback, recording. What it knows and what it does are kept apart, like a person's:

* it **sees** the scene: the contact path of the task (the wipe path on the board, the arc
  over the peel object) and the retargeting map, from the simulation's ground truth
  (:mod:`tactkit.teleop.simscene`), as a person sees the board and learns the mapping;
* it **feels** the contact only through the bridge's feedback (the force arrow along the
  surface normal), seen through its reaction delay, and sees the robot's pose there too;
* it **acts** only by moving its hand and squeezing the grip (clutch) in headset messages.

Per episode it asks the bridge to start an episode, waits for the new scene, squeezes the
grip after holding it released (the clutch engages where the robot stands), moves the tool
above the path's first point, presses in along the surface normal, sweeps the path in
``sweep_s`` (paced by the robot's clock as the feedback shows it: a person slows down with a
robot in slow motion) while an integral loop on the felt normal force sets how deep it
presses, lifts off, releases the clutch and stops the episode with its own verdict (contact
made, path swept, felt force in the task's band for most of the sweep).

Human-like imperfections: reaction delay (feedback is acted on ``reaction_s`` after it
arrives), physiological tremor (8-12 Hz, sub-millimetre), slow drift (random walk), tracking
noise, and a seeded per-episode variation of pace.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from tactkit.teleop import protocol as P
from tactkit.teleop.client import HeadsetClient
from tactkit.teleop.simscene import SceneState, SceneSubscriber

log = logging.getLogger(__name__)


@dataclass
class OperatorConfig:
    rate_hz: float = 60.0
    reaction_s: float = 0.2  # delay between feedback arrival and acting on it
    tremor_m: float = 0.0003  # amplitude of each tremor component
    drift_m_per_sqrt_s: float = 0.0005
    tracking_noise_m: float = 0.0002
    target_force: float | None = None  # N along the normal; None: the middle of the task's band
    press_depth_m: float = 0.004  # how deep the operator first presses past the surface (a habit)
    standoff_m: float = 0.03  # approach point above the first path point
    approach_s: float = 1.0  # move above the path start (robot time)
    descend_s: float = 0.8  # press in (robot time)
    sweep_s: float = 6.0  # sweep the whole path (robot time)
    lift_m: float = 0.05
    lift_s: float = 0.6
    force_gain: float = 0.0008  # m/s of depth per N of felt force error
    max_depth_rate: float = 0.02  # m/s
    max_depth_m: float = 0.015
    contact_force: float = 1.5  # N felt along the normal = contact
    in_band_verdict: float = 0.7  # share of the sweep with felt force in band for "success"
    scene_timeout_s: float = 15.0
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("rate_hz", "approach_s", "descend_s", "sweep_s", "lift_s", "press_depth_m"):
            if not getattr(self, name) > 0:
                raise ValueError(f"operator {name} must be > 0, got {getattr(self, name)}")
        if self.reaction_s < 0:
            raise ValueError(f"operator reaction_s must be >= 0, got {self.reaction_s}")


def _quat(q: Any) -> Rotation:
    """(w, x, y, z) -> Rotation."""
    w, x, y, z = (float(v) for v in q)
    return Rotation.from_quat([x, y, z, w])


def _wxyz(r: Rotation) -> tuple[float, float, float, float]:
    x, y, z, w = r.as_quat()
    return (float(w), float(x), float(y), float(z))


def felt_normal_force(fb: P.Feedback | None, normal: np.ndarray) -> float:
    """Force (N) the tool feels pressed against the surface: the measured wrench's component
    along the surface normal (the force arrow in the feedback)."""
    if fb is None or not fb.forces:
        return 0.0
    return abs(float(np.dot(np.asarray(fb.forces[0].force, dtype=np.float64), normal)))


class _Path:
    """Waypoints of a :class:`SceneState`, interpolated along their index."""

    def __init__(self, scene: SceneState) -> None:
        self.pos = np.array([w.pos for w in scene.path], dtype=np.float64)
        self.normal = np.array([w.normal for w in scene.path], dtype=np.float64)
        self.rot = Rotation.concatenate([_quat(w.quat) for w in scene.path])
        self._slerp = Slerp(np.arange(len(scene.path), dtype=np.float64), self.rot)
        self.n = len(scene.path)

    def at(self, s: float) -> tuple[np.ndarray, Rotation, np.ndarray]:
        s = min(max(s, 0.0), self.n - 1.0)
        a = int(math.floor(s))
        b = min(a + 1, self.n - 1)
        f = s - a
        normal = self.normal[a] + f * (self.normal[b] - self.normal[a])
        return (self.pos[a] + f * (self.pos[b] - self.pos[a]), self._slerp([s])[0],
                normal / max(np.linalg.norm(normal), 1e-12))


class SimOperator:
    """Runs feedback-reactive episodes of a simulated task on a bridge through a
    :class:`HeadsetClient`, seeing the scene through a :class:`SceneSubscriber`."""

    def __init__(self, client: HeadsetClient, scene: SceneSubscriber, config: OperatorConfig | None = None) -> None:
        self.client = client
        self.scene_sub = scene
        self.cfg = config or OperatorConfig()
        self.rng = np.random.default_rng(self.cfg.seed)
        self.tremor = [(self.rng.uniform(8, 12), self.rng.uniform(0, 2 * math.pi, 3)) for _ in range(3)]
        self.drift = np.zeros(3)
        self.hand = np.array([0.35, -0.2, 1.1])  # intended hand position, headset frame
        self.hand_rot = Rotation.identity()  # intended hand orientation, headset frame
        self.grip = 0.0
        self.index = 0.0
        self.t0 = time.monotonic()
        self._last = self.t0
        self._fb: collections.deque[tuple[float, P.Feedback]] = collections.deque(maxlen=256)
        self._robot_t: tuple[float, float] | None = None  # (feedback t, wall time it arrived)
        self._robot_rate = 1.0  # robot seconds per wall second, as the feedback shows it
        self._rate_window_s = 1.0
        self._clock: collections.deque[tuple[float, float]] = collections.deque()  # (arrival, feedback t)
        self._robot_floor = -math.inf  # robot_time() never goes back within a scene
        self._body_t = 0.0  # the operator's own clock for tremor and drift (robot time)
        self.log: list[dict] = []  # per-episode summaries
        self.reclutches = 0  # times the clutch let go (stream stalled) and was squeezed again
        self._origin: tuple[np.ndarray, Rotation, np.ndarray, Rotation] | None = None
        self._engaged_at = 0.0
        self._paused_s = 0.0  # robot time spent (re-)engaging the clutch

    # ----------------------------------------------------------------- senses
    def _poll(self) -> None:
        while True:
            fb = self.client.poll_feedback(0)
            if fb is None:
                break
            now = time.monotonic()
            self._fb.append((now, fb))
            if self._robot_t is not None and fb.t < self._robot_t[0] - 0.05:
                # a new scene: its clock starts again
                self._robot_floor = -math.inf
                self._clock.clear()
            self._robot_t = (fb.t, now)
            self._clock.append((now, fb.t))
        self._update_rate()
        self.scene_sub.poll(0)

    def _update_rate(self) -> None:
        """How fast the robot's clock runs against the wall clock, over the last second of
        feedback (a window long enough that feedback arriving in bursts, when this process or
        the bridge was kept waiting, does not show as a clock that stops and jumps)."""
        clock = self._clock
        if len(clock) < 2:
            return
        rx_new, t_new = clock[-1]
        while len(clock) > 2 and rx_new - clock[1][0] >= self._rate_window_s:
            clock.popleft()
        rx_old, t_old = clock[0]
        if rx_new - rx_old >= 0.25 * self._rate_window_s:
            self._robot_rate = float(np.clip((t_new - t_old) / (rx_new - rx_old), 0.05, 2.0))

    def perceived(self) -> P.Feedback | None:
        """The newest feedback that arrived at least ``reaction_s`` ago."""
        cutoff = time.monotonic() - self.cfg.reaction_s
        for t, fb in reversed(self._fb):
            if t <= cutoff:
                return fb
        return None

    def newest(self) -> P.Feedback | None:
        return self._fb[-1][1] if self._fb else None

    def robot_time(self) -> float:
        """The robot's clock as the operator reads it from the feedback: the newest feedback's
        time, carried forward at the rate the robot's clock has been running (a simulation in
        slow motion runs slower than the wall clock) for at most 0.1 s, never backwards within
        a scene."""
        if self._robot_t is None:
            return 0.0
        t, rx = self._robot_t
        now = max(t + self._robot_rate * min(time.monotonic() - rx, 0.1), self._robot_floor)
        self._robot_floor = now
        return now

    # ----------------------------------------------------------------- body
    def _tick(self) -> None:
        """Send one pose (intended hand + tremor + drift + noise), keep the send rate."""
        now = time.monotonic()
        t = now - self.t0
        # tremor and drift run on the robot's clock, so that a recording made while the
        # simulation ran in slow motion shows a person's motion at its real pace
        dt = min(max((now - self._last) * self._robot_rate, 0.0), 0.1)
        self._last = now
        self._body_t += dt
        self.drift += self.rng.normal(0, self.cfg.drift_m_per_sqrt_s * math.sqrt(max(dt, 1e-6)), 3)
        self.drift *= 0.999 ** (dt * self.cfg.rate_hz)  # a person re-centres slowly
        tremor = sum(self.cfg.tremor_m * np.sin(2 * math.pi * f * self._body_t + ph) for f, ph in self.tremor)
        pos = self.hand + tremor + self.drift + self.rng.normal(0, self.cfg.tracking_noise_m, 3)
        hand = P.Hand(wrist=P.Pose(pos=tuple(pos.tolist()), quat=_wxyz(self.hand_rot)),
                      index_trigger=self.index, hand_trigger=self.grip,
                      buttons=(1 << P.BUTTON_HAND) * (self.grip > 0.5) | (1 << P.BUTTON_INDEX) * (self.index > 0.5))
        head = P.Pose(pos=(0.0, 0.0, 1.6 + 0.002 * math.sin(0.5 * t)), quat=(1.0, 0.0, 0.0, 0.0))
        self.client.send_pose(t, head, None, hand)
        self._poll()
        time.sleep(max(0.0, 1.0 / self.cfg.rate_hz - (time.monotonic() - now)))

    def _hold(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._tick()

    def _ramp_grip(self, to: float, seconds: float = 0.15) -> None:
        start, end = self.grip, time.monotonic() + seconds
        while time.monotonic() < end:
            frac = 1.0 - (end - time.monotonic()) / seconds
            self.grip = float(np.clip(start + (to - start) * frac, 0.0, 1.0))
            self._tick()
        self.grip = to
        self._tick()

    def wait_for_bridge(self, timeout: float = 10.0) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self._tick()
            if self._fb:
                return
        raise TimeoutError(f"no feedback from the bridge within {timeout} s")

    def _wait_scene(self, after: int | None) -> SceneState:
        """The scene state of a scene newer than ``after`` (and feedback from it)."""
        end = time.monotonic() + self.cfg.scene_timeout_s
        while time.monotonic() < end:
            self._tick()
            s = self.scene_sub.latest
            fb = self.newest()
            if s is not None and (after is None or s.scene != after) and fb is not None and fb.t <= s.t + 0.5:
                return s
        raise TimeoutError(f"no scene state from the simulation at {self.scene_sub.endpoint} within "
                           f"{self.cfg.scene_timeout_s} s (the simulated operator needs `tactkit teleop "
                           "--robot sim:<task>` publishing its scene, see --scene)")

    def _engage(self) -> None:
        """Release the grip if held, then squeeze it: the clutch engages where the robot stands,
        which (as the feedback shows it) becomes the origin of the hand's motion. The grip stays
        released long enough for a bridge that is behind to see it (the clutch engages only
        after it was seen released), and the operator waits until the feedback shows the clutch
        engaged, squeezing again (up to five times) if it does not."""
        t_robot = self.robot_time()
        for _ in range(5):
            if self.grip > 0.0:
                self._ramp_grip(0.0, 0.1)
            self._hold(0.3)
            fb = self.newest()
            if fb is None or not fb.arms:
                raise TimeoutError("no robot pose in the bridge's feedback")
            self._origin = (np.asarray(fb.arms[0].tcp.pos, dtype=np.float64), _quat(fb.arms[0].tcp.quat),
                            self.hand.copy(), self.hand_rot)
            self._ramp_grip(1.0)
            self._engaged_at = time.monotonic()
            end = self._engaged_at + 1.0
            while time.monotonic() < end:
                self._tick()
                rx, fb = self._fb[-1]
                if rx > self._engaged_at and fb.arms and fb.arms[0].engaged:
                    # the clutch took the robot's pose when it engaged, with the hand still
                    # where it was: that feedback's pose is the origin
                    self._origin = (np.asarray(fb.arms[0].tcp.pos, dtype=np.float64), _quat(fb.arms[0].tcp.quat),
                                    *self._origin[2:])
                    self._engaged_at = time.monotonic()  # seen engaged: watch for a let-go from here
                    self._paused_s += max(0.0, self.robot_time() - t_robot)
                    return
        raise RuntimeError("the clutch does not engage: the bridge never saw the grip squeezed after release")

    def _control(self, command: str, **kwargs) -> P.Ack:
        ack = self.client.control(command, time.monotonic() - self.t0, timeout=10.0, **kwargs)
        if not ack.ok:
            raise RuntimeError(f"bridge refused {command}: {ack.message}")
        return ack

    # ----------------------------------------------------------------- one episode
    def episode(self, index: int) -> dict:
        cfg = self.cfg
        pace = self.rng.uniform(0.9, 1.1)  # this episode's pace
        reclutch0 = self.reclutches
        before = self.scene_sub.latest.scene if self.scene_sub.latest is not None else None
        self._control("start_episode", note=f"sim operator seed {cfg.seed} episode {index}")
        self.grip = 0.0
        scene = self._wait_scene(before)
        self._hold(0.3)
        scene = self.scene_sub.latest or scene
        hand0, r_hand0 = self.hand.copy(), self.hand_rot
        cal = np.asarray(scene.calibration, dtype=np.float64)
        r_bh = _quat(cal[3:])
        scale = scene.translation_scale
        self._engage()
        tcp0 = self._origin[0]

        def aim(pos: np.ndarray, rot: Rotation) -> None:
            """Put the hand where the tool target is ``pos`` / ``rot`` (robot base frame); if the
            feedback shows the clutch released (the headset stream stalled), squeeze it again."""
            fb = self.perceived()
            if (fb is not None and fb.arms and not fb.arms[0].engaged
                    and time.monotonic() - self._engaged_at > self.cfg.reaction_s + 0.3):
                self.reclutches += 1
                log.info("sim operator: the clutch let go, squeezing it again")
                self._engage()
            tcp_o, r_tcp_o, hand_o, r_hand_o = self._origin
            self.hand = hand_o + r_bh.inv().apply(pos - tcp_o) / scale
            self.hand_rot = r_bh.inv() * rot * r_tcp_o.inv() * r_bh * r_hand_o

        target_force = cfg.target_force if cfg.target_force is not None else 0.5 * sum(scene.force_band)
        lo, hi = scene.force_band
        path = _Path(scene)

        def run(seconds: float, step) -> None:
            """Call ``step(fraction)`` every tick until ``seconds`` of robot time passed."""
            start, paused = self.robot_time(), self._paused_s
            while True:  # time spent squeezing the clutch again does not count
                frac = (self.robot_time() - start - (self._paused_s - paused)) / (seconds / pace)
                step(min(frac, 1.0))
                self._tick()
                if frac >= 1.0:
                    return

        # above the first path point
        p_start, r_start, n_start = path.at(0.0)

        turn = Slerp([0.0, 1.0], Rotation.concatenate([self._origin[1], r_start]))
        above = p_start + cfg.standoff_m * n_start

        def approach(f: float) -> None:
            w = 0.5 - 0.5 * math.cos(math.pi * f)
            aim(tcp0 + w * (above - tcp0), turn([w])[0])

        run(cfg.approach_s, approach)

        def descend(f: float) -> None:
            w = 0.5 - 0.5 * math.cos(math.pi * f)
            offset = cfg.standoff_m + w * (-cfg.press_depth_m - cfg.standoff_m)
            aim(p_start + offset * n_start, r_start)

        run(cfg.descend_s, descend)
        contact = felt_normal_force(self.perceived(), n_start) > cfg.contact_force
        depth = cfg.press_depth_m
        stats = {"samples": 0, "in_band": 0, "contact": contact}
        last_t = [self.robot_time()]
        seen_scene = [scene]

        def sweep(f: float) -> None:
            nonlocal depth, path
            latest = self.scene_sub.latest
            if latest is not None and latest is not seen_scene[0] and latest.scene == scene.scene:
                seen_scene[0] = latest
                path = _Path(latest)  # the surface may move: the operator sees it
            p, r, n = path.at(f * (path.n - 1))
            now = self.robot_time()
            dt, last_t[0] = max(0.0, now - last_t[0]), now
            felt = felt_normal_force(self.perceived(), n)
            if felt > cfg.contact_force:
                stats["contact"] = True
            rate = float(np.clip(cfg.force_gain * (target_force - felt), -cfg.max_depth_rate, cfg.max_depth_rate))
            depth = float(np.clip(depth + rate * dt, -cfg.standoff_m, cfg.max_depth_m))
            stats["samples"] += 1
            stats["in_band"] += lo <= felt <= hi
            aim(p - depth * n, r)

        run(cfg.sweep_s, sweep)
        p_end, r_end, n_end = path.at(path.n - 1.0)
        end_depth = depth

        def lift(f: float) -> None:
            w = 0.5 - 0.5 * math.cos(math.pi * f)
            aim(p_end + (-end_depth + w * (cfg.lift_m + end_depth)) * n_end, r_end)

        run(cfg.lift_s, lift)
        self._ramp_grip(0.0)
        self._hold(0.2)
        frac = stats["in_band"] / stats["samples"] if stats["samples"] else 0.0
        success = bool(stats["contact"] and frac >= cfg.in_band_verdict)
        self._poll()
        seen = self.scene_sub.latest
        ack = self._control("stop_episode", success=success,
                            note=f"sim operator: felt force in band {frac:.0%} of the sweep; contact={stats['contact']}")
        summary = {"episode": index, "contact": bool(stats["contact"]), "force_in_band": frac,
                   "verdict": "success" if success else "failure",
                   "task_score": seen.score if seen is not None else None,
                   "seed": seen.seed if seen is not None else None, "reclutches": self.reclutches - reclutch0,
                   "bridge": ack.message}
        self.log.append(summary)
        log.info("sim operator: %s", summary)
        # back to a neutral hand pose for the next episode (the clutch is released)
        self.hand, self.hand_rot = hand0, r_hand0
        return summary

    def run(self, episodes: int) -> list[dict]:
        self.wait_for_bridge()
        for i in range(episodes):
            self.episode(i)
            self._hold(0.3)
        return self.log
