"""MP4 video through PyAV: H.264 that plays everywhere, AV1 for datasets, frame-exact reading.

Every video tactkit writes (``tactkit sim view``, ``tactkit eval --video``, ``tactkit sensors
view``, ``tactkit dataset view --mp4``, the LeRobot export) goes through :class:`VideoWriter`:
frame ``i`` gets presentation time ``i / fps`` exactly (the stream's time base is ``1 / fps``),
so a reader finds a frame by its timestamp. PyAV ships FFmpeg with libx264, SVT-AV1 and dav1d
in its wheels (the ``viz`` / ``interop`` extras install it).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

#: codec name -> (PyAV encoder, default options). ``g`` is the keyframe interval.
ENCODERS: dict[str, tuple[str, dict[str, str]]] = {
    "h264": ("libx264", {"crf": "23", "preset": "veryfast"}),
    "av1": ("libsvtav1", {"crf": "30", "preset": "10"}),
    "hevc": ("libx265", {"crf": "28", "preset": "veryfast", "x265-params": "log-level=error"}),
}


def _av() -> Any:
    try:
        import av
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "writing/reading MP4 needs PyAV: pip install 'tactkit[viz]' (or 'av')") from None
    return av


def fps_fraction(fps: float) -> Fraction:
    """``fps`` as an exact fraction (30 -> 30/1, 29.97 -> 2997/100)."""
    if not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return Fraction(fps).limit_denominator(100000)


class VideoWriter:
    """RGB frames -> MP4 (``codec`` ``h264`` (default), ``av1`` or ``hevc``), one frame at a time.

    ``pix_fmt`` defaults to ``yuv420p`` (what players and LeRobot expect); its chroma planes
    need even sizes, so with ``pad=True`` odd-sized frames get one replicated edge row/column,
    and with ``pad=False`` they are an error (pass ``pix_fmt="yuv444p"`` to keep them exact).
    ``gop`` is the keyframe interval (small values make random access cheap, at some size).
    """

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "h264", *,
                 crf: int | None = None, gop: int | None = None, pix_fmt: str = "yuv420p",
                 pad: bool = True, options: dict[str, str] | None = None) -> None:
        if codec not in ENCODERS:
            raise ValueError(f"unknown video codec {codec!r}; known: {', '.join(ENCODERS)}")
        self.path = Path(path)
        self.rate = fps_fraction(fps)
        self.codec = codec
        self.pix_fmt = pix_fmt
        self.pad = pad
        encoder, opts = ENCODERS[codec]
        self._options = dict(opts)
        if crf is not None:
            self._options["crf"] = str(int(crf))
        if gop is not None:
            self._options["g"] = str(int(gop))
        self._options.update(options or {})
        self._encoder = encoder
        self._container: Any = None
        self._stream: Any = None
        self.shape: tuple[int, int, int] | None = None
        self.frames = 0
        self.bytes = 0  # encoded bytes handed to the muxer so far

    def _open(self, h: int, w: int) -> None:
        av = _av()
        if self._encoder == "libsvtav1":  # SVT-AV1 prints its configuration at info level otherwise
            os.environ.setdefault("SVT_LOG", "1")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        even = self.pix_fmt.startswith(("yuv420", "nv12"))
        if even and (h % 2 or w % 2) and not self.pad:
            raise ValueError(f"{self.path}: {self.pix_fmt} needs even frame sizes, got {h}x{w} "
                             "(pad=True, or pix_fmt='yuv444p')")
        self._container = av.open(str(self.path), mode="w")
        stream = self._container.add_stream(self._encoder, rate=self.rate)
        stream.height, stream.width = (h + h % 2, w + w % 2) if even else (h, w)
        stream.pix_fmt = self.pix_fmt
        stream.codec_context.time_base = 1 / self.rate
        stream.options = self._options
        self._stream = stream

    def write(self, frame: np.ndarray) -> None:
        """Append one ``H x W x 3`` (RGB) or ``H x W`` (grey) uint8 frame."""
        frame = np.asarray(frame)
        if frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: video frames must be uint8, got {frame.dtype}")
        if frame.ndim == 2:
            frame = np.repeat(frame[..., None], 3, axis=-1)
        if frame.ndim != 3 or frame.shape[-1] not in (3, 4):
            raise ValueError(f"{self.path}: video frames must be H x W x 3, got shape {frame.shape}")
        frame = frame[..., :3]
        if self._container is None:
            self._open(frame.shape[0], frame.shape[1])
            self.shape = tuple(frame.shape)  # type: ignore[assignment]
        elif tuple(frame.shape) != self.shape:
            raise ValueError(f"{self.path}: frame {self.frames} is {frame.shape}, earlier frames {self.shape}")
        h, w = self._stream.height, self._stream.width
        if (h, w) != frame.shape[:2]:
            frame = np.pad(frame, ((0, h - frame.shape[0]), (0, w - frame.shape[1]), (0, 0)), mode="edge")
        vf = _av().VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        vf.pts = self.frames
        self._mux(self._stream.encode(vf))
        self.frames += 1

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            self.bytes += packet.size
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file (a writer that got no frame writes nothing)."""
        if self._container is None:
            return
        self._mux(self._stream.encode())
        self._container.close()
        self._container = None

    def size_bytes(self) -> int:
        """Encoded bytes so far (frames still in the encoder's lookahead not counted)."""
        return self.bytes

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def write_video(frames: Any, path: str | os.PathLike, fps: float, codec: str = "h264", **kw: Any) -> Path:
    """Write an iterable of RGB uint8 frames to ``path`` (H.264 MP4 by default); returns the path."""
    with VideoWriter(path, fps, codec, **kw) as w:
        for f in frames:
            w.write(f)
    if w.frames == 0:
        raise ValueError(f"{path}: no frames to write")
    return Path(path)


def read_frames(path: str | os.PathLike, start_s: float = 0.0, stop_s: float | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """``(presentation time s, RGB frame)`` for every frame of the first video stream with
    ``start_s <= time < stop_s`` (decodes from the keyframe before ``start_s``)."""
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start_s > 0:
            container.seek(int(start_s / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            t = float(frame.pts * stream.time_base)
            if t < start_s - 1e-6:
                continue
            if stop_s is not None and t >= stop_s - 1e-6:
                break
            yield t, frame.to_ndarray(format="rgb24")


def video_info(path: str | os.PathLike) -> dict[str, Any]:
    """Codec, size, pixel format, frame rate, frame count and duration of the first video stream."""
    av = _av()
    with av.open(str(path)) as container:
        s = container.streams.video[0]
        return {"codec": s.codec_context.name, "width": s.width, "height": s.height,
                "pix_fmt": s.codec_context.pix_fmt, "fps": float(s.average_rate or 0),
                "frames": int(s.frames), "duration_s": float(s.duration * s.time_base) if s.duration else None}
