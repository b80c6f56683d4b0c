"""Wiring a teleoperation session: robot (simulated or real), safety filter, sensors,
recording, bridge and the optional TactAR app adapter. Used by ``tactkit teleop``.

Settings come from ``configs/teleop/<name>.yaml`` (:class:`TeleopConfig`) with ``key=value``
overrides (``bridge.retarget.translation_scale=1.5``); the safety limits come from the
robot's setup (``configs/robot/<robot>.yaml``, ``controller.safety``), the same filter the
policy controller uses.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tactkit.config import find_config, load_config, to_dict
from tactkit.real.safety import SafetyFilter
from tactkit.teleop.bridge import BridgeConfig, TeleopBridge
from tactkit.teleop.quest import QuestAdapter, QuestConfig
from tactkit.teleop.recording import RecordingSession, session_streams
from tactkit.teleop.retarget import quat_wxyz_to_rot

log = logging.getLogger(__name__)


class CountingFilter:
    """The safety filter, counting per limit the commands it changed (for the session summary)."""

    def __init__(self, inner: SafetyFilter) -> None:
        self.inner = inner
        self.counts: collections.Counter = collections.Counter()
        self.commands = 0

    def filter(self, command, state):
        out = self.inner.filter(command, state)
        self.commands += 1
        for names in self.inner.report.violations.values():
            self.counts.update(names)
        return out

    def reset(self, arm: str | None = None) -> None:
        self.inner.reset(arm)


@dataclass
class TeleopConfig:
    bridge: BridgeConfig = field(default_factory=BridgeConfig)
    quest: QuestConfig = field(default_factory=QuestConfig)


def load_teleop_config(name_or_path: str | Path = "default", overrides: list[str] | tuple[str, ...] = ()) -> TeleopConfig:
    """``configs/teleop/<name>.yaml`` (or a path) with ``key=value`` overrides."""
    return load_config(TeleopConfig, find_config("teleop", name_or_path), list(overrides))


class TeleopSession:
    """Everything ``tactkit teleop`` runs, started and stopped together."""

    def __init__(self, robot: str, config: TeleopConfig, *, record: str | None = None, task: str = "",
                 seed: int = 0, realtime_factor: float = 1.0, quest: bool = False,
                 robot_overrides: tuple[str, ...] = (), sensors: str | None = None,
                 scene: str | None = None) -> None:
        """``robot``: ``sim:<task>`` or a robot setup name (``configs/robot/<name>.yaml``);
        ``sensors``: a sensor config (``configs/sensor/<name>.yaml``) for a real robot's rig;
        ``scene``: sim only, loopback endpoint where the rig publishes what a simulated operator
        sees of the scene (:mod:`tactkit.teleop.simscene`; None: not published)."""
        from tactkit.real.setup import load_robot_setup

        self.config = config
        self.rig = None
        self.store = None
        self.recorder: RecordingSession | None = None
        self.adapter: QuestAdapter | None = None
        if scene and not robot.startswith("sim:"):
            raise ValueError("--scene is for simulated robots (sim:<task>)")
        if robot.startswith("sim:") and sensors:
            raise ValueError("--sensors is for real robots; a sim task brings its own sensors")
        if robot.startswith("sim:"):
            from tactkit.teleop.simrig import SimRig

            task_name = robot.split(":", 1)[1]
            setup = load_robot_setup("sim", robot_overrides)
            publisher = None
            if scene:
                from tactkit.teleop.simscene import PATH_READERS, ScenePublisher

                if task_name in PATH_READERS:
                    publisher = ScenePublisher(scene)
                else:
                    log.info("no scene publisher: the simulated operator does not know task %r", task_name)
            try:
                self.rig = SimRig(task_name, seed=seed, realtime_factor=realtime_factor)
            except BaseException:
                if publisher is not None:
                    publisher.close()
                raise
            self.rig.scene_publisher = publisher
            self.rig.retarget_map = (list(config.bridge.retarget.calibration),
                                     config.bridge.retarget.translation_scale)
            self.robot, self.sensors, clock = self.rig.robot, self.rig.sensors, self.rig.clock
            pad, grid = self.rig.tactile_geometry()
            config.bridge.display.pad_size_m, config.bridge.display.marker_grid = pad, grid
            task = task or task_name
            before_tick = self.rig.before_tick
        else:
            from tactkit.clock import WallClock
            from tactkit.real.robot import ROBOTS

            setup = load_robot_setup(robot, robot_overrides)
            self.robot = ROBOTS.build(setup.robot)
            self.robot.connect()
            self.sensors, clock, before_tick = {}, WallClock(), None
            if sensors:
                from tactkit.sensors.config import build_sensor, load_sensor_configs

                for name, cfg in load_sensor_configs(sensors).items():
                    sensor = build_sensor(cfg)
                    sensor.connect()
                    self.sensors[name] = sensor
        self.safety = CountingFilter(SafetyFilter(setup.controller.safety))
        if record:
            self._open_store(record, robot, task, clock)
        self.bridge = TeleopBridge(self.robot, config.bridge, safety=self.safety, sensors=self.sensors,
                                   recorder=self.recorder, clock=clock, before_tick=before_tick)
        if self.rig is not None and self.recorder is not None:
            self.rig.after_chunk.append(self.recorder.poll_sensors)
        if quest:
            cal = np.asarray(config.bridge.retarget.calibration, dtype=np.float64)
            self._quest_calibration = (cal[:3], quat_wxyz_to_rot(cal[3:]))

        self._quest = quest

    def _open_store(self, path: str, robot: str, task: str, clock) -> None:
        from tactkit.store import EpisodeStore

        streams = session_streams(self.robot.arm_features(), self.sensors,
                                  state_rate_hz=self.config.bridge.record_rate_hz,
                                  command_rate_hz=60.0)
        local = Path(path)
        if local.is_dir() and any(local.iterdir()):
            self.store = EpisodeStore.open(path, mode="a")
            missing = sorted(set(streams) - set(self.store.streams))
            if missing:
                raise ValueError(f"{path}: existing store lacks streams {missing}; record into a new path")
        else:
            self.store = EpisodeStore.create(path, streams, attrs={"source": "tactkit teleop", "robot": robot,
                                                                   "teleop": to_dict(self.config)})
        self.record_path = path
        self.episodes_before = self.store.num_episodes
        meta: dict[str, Any] = {"robot": robot, "retarget_mode": self.config.bridge.retarget.mode,
                                "translation_scale": self.config.bridge.retarget.translation_scale}
        calibration = {"headset_in_robot_base": list(self.config.bridge.retarget.calibration)}
        self.recorder = RecordingSession(
            self.store, tuple(self.robot.arm_names), self.sensors, clock, task=task, metadata=meta,
            calibration=calibration,
            on_start=self.rig.reset_scene if self.rig is not None else None,
            episode_metadata=self.rig.episode_metadata if self.rig is not None else None)

    def start(self) -> TeleopSession:
        self.bridge.start()
        if self._quest:
            self.adapter = QuestAdapter(self.bridge.endpoints["upstream"], self.bridge.endpoints["feedback"],
                                        self.config.quest, keys=self.config.bridge.keys or None,
                                        client_name="quest", calibration=self._quest_calibration,
                                        insecure=self.config.bridge.insecure).start()
        return self

    def stop(self) -> None:
        if self.adapter is not None:
            self.adapter.stop()
        self.bridge.stop()
        if self.recorder is not None:
            self.recorder.close()
        if self.rig is not None:
            self.rig.close()
        else:
            for sensor in self.sensors.values():
                sensor.disconnect()
            self.robot.disconnect()

    def summary(self) -> str:
        """What the session did, for when it ends (Ctrl-C included): commands and latency,
        rejected messages, stream losses, safety-filter shares, episodes stored and where."""
        from tactkit.real.summary import describe_safety

        b = self.bridge
        lat = sorted(b.stats.latency)
        timing = ""
        if lat:
            p50, p99 = (lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3 for q in (0.5, 0.99))
            timing = f", headset pose -> command p50 {p50:.2f} ms p99 {p99:.2f} ms"
        lines = [f"teleop: {b.stats.commands_sent} commands{timing}; rejected {b.rejects.total} messages"
                 + (f" {b.rejects.as_dict()}" if b.rejects.total else "")
                 + f"; headset stream lost {b.stats.stream_losses} times while engaged"]
        if self.safety.commands:
            lines.append("teleop: " + describe_safety(self.safety.counts, self.safety.commands).replace(
                "robot ticks", "commands"))
        rec = self.recorder
        if rec is None:
            lines.append("teleop: not recording (--record PATH to store episodes)")
        else:
            stored = rec.episodes - self.episodes_before
            lines.append(f"teleop: {stored} episodes stored this session in {self.record_path} ({rec.episodes} "
                         f"in the store; {rec.discarded} discarded, {rec.dropped} dropped samples"
                         + (f", {rec.failed} store operations FAILED (see the log)" if rec.failed else "")
                         + f"); look at them with: tactkit dataset info {self.record_path}")
        return "\n".join(lines)

    def status_line(self) -> str:
        """For display from another thread: only reads copies the bridge thread refreshes."""
        s = self.bridge.last_status
        if self.rig is not None:
            s += f" | sim t={self.rig.sim_time:.1f}s lag {self.rig.lag_s:.1f}s"
        return s
