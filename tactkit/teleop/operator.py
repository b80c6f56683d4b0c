"""A simulated human operator: drives a task through the real headset protocol.

It is a headset client like any other (same sockets, same messages), so a recording made
with it exercises the whole teleoperation path: protocol, clutch, retargeting, safety
filter, feedback, recording. Per episode it

1. asks the bridge to start an episode (control message, acknowledged);
2. squeezes the grip (clutch) after having held it released, like a person picking up a tool;
3. moves its hand down until it *feels* contact: the force arrow or the tactile arrow field
   in the feedback it receives, seen through its reaction delay;
4. wipes along +x for ``wipe_s`` while regulating the felt normal force towards
   ``target_force`` (a slow proportional correction, stable with its delay), slowing down
   when the tactile field shows large shear;
5. lifts, releases the clutch and stops the episode (success = force in band most of the time).

Human-like imperfections: reaction delay (feedback is only acted on ``reaction_s`` after it
arrives), physiological tremor (8-12 Hz, sub-millimetre), slow drift (random walk), tracking
noise, and a seeded per-operator variation of speed and force preference.
"""

from __future__ import annotations

import collections
import logging
import math
import time
from dataclasses import dataclass

import numpy as np

from tactkit.teleop import protocol as P
from tactkit.teleop.client import HeadsetClient

log = logging.getLogger(__name__)


@dataclass
class OperatorConfig:
    rate_hz: float = 60.0
    reaction_s: float = 0.2  # delay between feedback arrival and acting on it
    tremor_m: float = 0.0003  # amplitude of each tremor component
    drift_m_per_sqrt_s: float = 0.0005
    tracking_noise_m: float = 0.0002
    target_force: float = 10.0  # N
    force_band: tuple[float, float] = (5.0, 15.0)
    contact_force: float = 2.0  # N felt = contact
    contact_tactile: float = 0.004  # m mean marker displacement felt = contact
    descend_speed: float = 0.04  # m/s
    wipe_length: float = 0.18  # m along +x
    wipe_s: float = 3.5
    force_gain: float = 0.001  # m/s of hand z per N of force error
    max_z_speed: float = 0.03  # m/s
    descend_timeout_s: float = 5.0
    seed: int = 0


def _felt_force(fb: P.Feedback) -> float:
    if not fb.forces:
        return 0.0
    return abs(fb.forces[0].force[2])


def _felt_tactile(fb: P.Feedback) -> float:
    """Mean marker displacement (m) over all tactile fields."""
    if not fb.tactile:
        return 0.0
    d = [np.linalg.norm(np.asarray(f.displaced) - np.asarray(f.rest), axis=1).mean() for f in fb.tactile]
    return float(np.mean(d))


class SimOperator:
    """Runs scripted, feedback-reactive episodes on a bridge through a :class:`HeadsetClient`."""

    def __init__(self, client: HeadsetClient, config: OperatorConfig | None = None) -> None:
        self.client = client
        self.cfg = config or OperatorConfig()
        self.rng = np.random.default_rng(self.cfg.seed)
        self.tremor = [(self.rng.uniform(8, 12), self.rng.uniform(0, 2 * math.pi, 3)) for _ in range(3)]
        self.drift = np.zeros(3)
        self.hand = np.array([0.35, -0.2, 1.1])  # intended hand position, headset frame
        self.grip = 0.0
        self.index = 0.0
        self.t0 = time.monotonic()
        self._last = self.t0
        self._fb: collections.deque[tuple[float, P.Feedback]] = collections.deque(maxlen=256)
        self.log: list[dict] = []  # per-episode summaries

    # ----------------------------------------------------------------- senses
    def _poll(self) -> None:
        while True:
            fb = self.client.poll_feedback(0)
            if fb is None:
                return
            self._fb.append((time.monotonic(), fb))

    def perceived(self) -> P.Feedback | None:
        """The newest feedback that arrived at least ``reaction_s`` ago."""
        cutoff = time.monotonic() - self.cfg.reaction_s
        best = None
        for t, fb in self._fb:
            if t <= cutoff:
                best = fb
        return best

    # ----------------------------------------------------------------- body
    def _tick(self) -> None:
        """Send one pose (intended hand + tremor + drift + noise), keep the send rate."""
        now = time.monotonic()
        dt = now - self._last
        self._last = now
        t = now - self.t0
        self.drift += self.rng.normal(0, self.cfg.drift_m_per_sqrt_s * math.sqrt(max(dt, 1e-4)), 3)
        self.drift *= 0.999  # a person re-centres slowly
        tremor = sum(self.cfg.tremor_m * np.sin(2 * math.pi * f * t + ph) for f, ph in self.tremor)
        pos = self.hand + tremor + self.drift + self.rng.normal(0, self.cfg.tracking_noise_m, 3)
        hand = P.Hand(wrist=P.Pose(pos=tuple(pos.tolist()), quat=(1.0, 0.0, 0.0, 0.0)),
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

    def _control(self, command: str, **kwargs) -> P.Ack:
        ack = self.client.control(command, time.monotonic() - self.t0, timeout=10.0, **kwargs)
        if not ack.ok:
            raise RuntimeError(f"bridge refused {command}: {ack.message}")
        return ack

    # ----------------------------------------------------------------- one episode
    def episode(self, index: int) -> dict:
        cfg = self.cfg
        speed = self.rng.uniform(0.85, 1.15)  # this episode's pace
        self._control("start_episode", note=f"sim operator seed {cfg.seed} episode {index}")
        self._hold(0.3)
        self.grip = 0.0
        self._hold(0.3)
        self._ramp_grip(1.0)
        # descend until contact is felt
        contact = False
        end = time.monotonic() + cfg.descend_timeout_s
        while time.monotonic() < end:
            fb = self.perceived()
            if fb is not None and (_felt_force(fb) > cfg.contact_force or _felt_tactile(fb) > cfg.contact_tactile):
                contact = True
                break
            self.hand[2] -= cfg.descend_speed * speed / cfg.rate_hz
            self._tick()
        in_band = samples = 0
        if contact:
            t_start = time.monotonic()
            while time.monotonic() - t_start < cfg.wipe_s / speed:
                fb = self.perceived()
                force = _felt_force(fb) if fb is not None else 0.0
                shear = _felt_tactile(fb) if fb is not None else 0.0
                dz = np.clip(cfg.force_gain * (force - cfg.target_force), -cfg.max_z_speed, cfg.max_z_speed)
                self.hand[2] += dz / cfg.rate_hz
                slow = 0.5 if shear > 3 * cfg.contact_tactile else 1.0
                self.hand[0] += slow * cfg.wipe_length * speed / cfg.wipe_s / cfg.rate_hz
                samples += 1
                in_band += cfg.force_band[0] <= force <= cfg.force_band[1]
                self._tick()
        # lift, release
        for _ in range(int(0.6 * cfg.rate_hz)):
            self.hand[2] += 0.05 / (0.6 * cfg.rate_hz)
            self._tick()
        self._ramp_grip(0.0)
        self._hold(0.2)
        frac = in_band / samples if samples else 0.0
        success = bool(contact and frac >= 0.6)
        ack = self._control("stop_episode", success=success,
                            note=f"felt force in band {frac:.0%} of the wipe; contact={contact}")
        summary = {"episode": index, "contact": contact, "force_in_band": frac, "success": success,
                   "bridge": ack.message}
        self.log.append(summary)
        log.info("sim operator: %s", summary)
        return summary

    def run(self, episodes: int) -> list[dict]:
        self.wait_for_bridge()
        for i in range(episodes):
            self.episode(i)
            self._hold(0.3)
        return self.log
