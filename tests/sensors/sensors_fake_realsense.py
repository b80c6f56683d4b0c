"""A fake ``pyrealsense2`` module: the subset of the SDK's interface the RealSense driver calls.

Frames come from a synthetic colour/depth generator with the SDK's semantics: a pipeline is
started with a config of enabled streams, ``wait_for_frames(timeout_ms)`` returns a frameset,
frames carry a frame number, a millisecond timestamp and its domain.
"""

from __future__ import annotations

import time
import types

import numpy as np


class _Enum:
    def __init__(self, *names):
        for n in names:
            setattr(self, n, n)


stream = _Enum("color", "depth")
format = _Enum("bgr8", "z16")  # noqa: A001 - mirrors the SDK's name
option = _Enum("enable_auto_exposure", "exposure")
timestamp_domain = _Enum("hardware_clock", "system_time", "global_time")
camera_info = _Enum("serial_number", "name")

STATE = types.SimpleNamespace(options={}, started=None, stopped=0, skip_every=0, domain="global_time")


class config:  # noqa: N801 - SDK class names are lower case
    def __init__(self):
        self.streams, self.device = [], None

    def enable_device(self, serial):
        self.device = serial

    def enable_stream(self, st, w, h, fmt, fps):
        self.streams.append((st, w, h, fmt, fps))


class _Frame:
    def __init__(self, data, number, ts_ms, domain):
        self._data, self._n, self._ts, self._domain = data, number, ts_ms, domain

    def __bool__(self):
        return True

    def get_data(self):
        return memoryview(self._data)

    def get_frame_number(self):
        return self._n

    def get_timestamp(self):
        return self._ts

    def get_frame_timestamp_domain(self):
        return self._domain


class _Frameset:
    def __init__(self, frames):
        self.frames = frames

    def get_color_frame(self):
        return self.frames.get("color")

    def get_depth_frame(self):
        return self.frames.get("depth")


class _Sensor:
    def set_option(self, opt, value):
        STATE.options[opt] = value


class _Device:
    def first_color_sensor(self):
        return _Sensor()


class _Profile:
    def get_device(self):
        return _Device()


class pipeline:  # noqa: N801
    def __init__(self):
        self.cfg, self.n = None, 0

    def start(self, cfg):
        STATE.started = cfg
        self.cfg = cfg
        return _Profile()

    def stop(self):
        STATE.stopped += 1

    def wait_for_frames(self, timeout_ms=5000):
        fps = self.cfg.streams[0][4]
        time.sleep(1.0 / fps)
        self.n += 1
        if STATE.skip_every and self.n % STATE.skip_every == 0:
            self.n += 1  # the device dropped a frame
        frames = {}
        ts = time.time() * 1000.0 - 5.0  # exposure mid-point 5 ms ago
        for st, w, h, _fmt, _fps in self.cfg.streams:
            if st == "color":
                img = np.full((h, w, 3), self.n % 256, dtype=np.uint8)
                frames["color"] = _Frame(img, self.n, ts, STATE.domain)
            else:
                frames["depth"] = _Frame(np.full((h, w), 1000 + self.n, dtype=np.uint16), self.n, ts, STATE.domain)
        return _Frameset(frames)


class align:  # noqa: N801
    def __init__(self, to):
        self.to = to

    def process(self, frames):
        return frames
