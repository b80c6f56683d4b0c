"""Seeing the data: recorded episodes and evaluation episodes in the rerun viewer or as MP4.

* :func:`log_store` - ``tactkit dataset view``: every stream of the chosen episodes on the
  ``capture_time`` timeline (seconds from the episode's first sample): cameras (JPEG frames),
  tactile marker fields as 2-D arrows, wrench / robot state / actions as time series, TCP poses
  as 3-D transforms, the episode's metadata as a text document. One entity tree per episode
  (``episode_000/observation/images/wrist``, ...).
* :func:`store_video` - ``tactkit dataset view --mp4``: the same without rerun, an H.264 video
  per call (cameras, tactile arrows, wrench and state plots with a moving cursor).
* :class:`RerunEvalLog` and :class:`EpisodeVideo` - observers of closed-loop evaluation episodes
  (``EvalSettings.observers``; ``tactkit eval --rerun FILE.rrd`` / ``--video``): measured vs
  commanded TCP pose, wrench, gripper, each plan as it arrives, cameras and touch; the video
  shows the wrist and external cameras enlarged with time, force, touch, perturbation and the
  episode's score overlaid. :func:`log_eval_trace` logs an ``EpisodeResult.trace`` instead
  (evaluations run in worker processes, where an observer's log cannot reach the parent).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

TIMELINE = "capture_time"
_PLOT_COLORS = [(230, 80, 60), (60, 170, 80), (60, 110, 230), (200, 160, 40), (160, 70, 200), (40, 180, 190),
                (120, 120, 120)]


def _rr() -> Any:
    try:
        import rerun as rr
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise ImportError("the viewer needs the rerun SDK: pip install 'tactkit[viz]' (or use --mp4)") from None
    return rr


def marker_grid(m: int) -> tuple[int, int]:
    """(rows, cols) of a marker array of ``m`` markers: the most square factorisation, rows <= cols."""
    rows = max(r for r in range(1, int(math.isqrt(m)) + 1) if m % r == 0)
    return rows, m // rows


def marker_origins(m: int) -> np.ndarray:
    """Rest positions of ``m`` markers on the unit pad, row-major (what the offsets refer to)."""
    rows, cols = marker_grid(m)
    ys, xs = np.meshgrid((np.arange(rows) + 0.5) / rows, (np.arange(cols) + 0.5) / cols, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float32)


def entity(key: str) -> str:
    """Dataset key -> entity path (``observation.images.wrist`` -> ``observation/images/wrist``)."""
    return key.replace(".", "/")


def _recording(save: str | os.PathLike | None, spawn: bool, name: str) -> Any:
    rr = _rr()
    rec = rr.RecordingStream(f"tactkit_{name}")
    if save is not None:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        rec.save(str(save))
    elif spawn:
        try:
            rec.spawn()
        except Exception as exc:  # no display / no viewer binary
            raise ValueError(f"could not start the rerun viewer ({str(exc).strip().splitlines()[0]}); "
                             "pass --save FILE.rrd (open it with `rerun FILE.rrd`) or --mp4 FILE.mp4") from None
    return rec


def _jpeg_blobs(frames: np.ndarray, quality: int = 90) -> list[bytes]:
    import imagecodecs

    return [bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(f[..., 0] if f.shape[-1] == 1 else f[..., :3]),
                                           level=quality)) for f in frames]


def _send_stream(rec: Any, path: str, key: str, spec: Any, ts: np.ndarray, values: np.ndarray,
                 arrow_gain: float) -> None:
    """Log one stream's samples at times ``ts`` (seconds) under ``path``."""
    rr = _rr()
    if not len(ts):
        return
    idx = [rr.TimeColumn(TIMELINE, duration=ts)]
    if spec.is_image:
        rec.send_columns(path, indexes=idx, columns=rr.EncodedImage.columns(
            blob=_jpeg_blobs(values), media_type=["image/jpeg"] * len(ts)))
        return
    if key.startswith("observation.tactile.") and values.ndim == 3 and values.shape[-1] == 2:
        n, m = values.shape[:2]
        rec.send_columns(path, indexes=idx, columns=rr.Arrows2D.columns(
            origins=np.tile(marker_origins(m), (n, 1)), vectors=values.reshape(-1, 2) * arrow_gain).partition([m] * n))
        return
    flat = values.reshape(len(ts), -1).astype(np.float64)
    if len(spec.names) == flat.shape[1]:
        rec.log(path, rr.SeriesLines(names=list(spec.names)), static=True)
    rec.send_columns(path, indexes=idx, columns=rr.Scalars.columns(scalars=flat))
    if key.endswith("tcp_pose") and flat.shape[1] == 7:  # the pose in 3-D too
        quat_xyzw = flat[:, [4, 5, 6, 3]]
        rec.send_columns(f"world/{path}", indexes=idx, columns=rr.Transform3D.columns(
            translation=flat[:, :3], quaternion=quat_xyzw))


def _metadata_markdown(ep: Any) -> str:
    import json

    md = ep.metadata
    lines = [f"# {ep.name}", f"task: **{ep.task or '-'}**, success: {md.get('success')}, "
             f"duration {ep.duration:.2f} s", "", "```json", json.dumps(md, indent=1, default=str)[:4000], "```"]
    return "\n".join(lines)


def log_store(store: Any, episodes: Sequence[int] | None = None, keys: Sequence[str] | None = None,
              save: str | os.PathLike | None = None, spawn: bool = False, recording: Any = None,
              arrow_gain: float = 5.0) -> dict[str, Any]:
    """Log ``episodes`` (default: episode 0) of an :class:`EpisodeStore` to rerun: to the file
    ``save`` (.rrd), to a spawned viewer (``spawn``) or to ``recording``. Returns what was logged."""
    rr = _rr()
    keys = list(store.streams) if keys is None else list(keys)
    unknown = [k for k in keys if k not in store.streams]
    if unknown:
        raise KeyError(f"unknown stream keys {unknown}; the store has {list(store.streams)}")
    episodes = [0] if episodes is None else list(episodes)
    rec = recording if recording is not None else _recording(save, spawn, "dataset")
    logged: dict[str, int] = {}
    for i in episodes:
        ep = store.episode(i)
        root = f"episode_{ep.index:03d}"
        firsts = [ep.timestamps(k)[0] for k in keys if ep.length(k)]
        t0 = min(firsts) if firsts else 0.0
        rec.log(f"{root}/info", rr.TextDocument(_metadata_markdown(ep), media_type=rr.MediaType.MARKDOWN), static=True)
        for k in keys:
            ts = ep.timestamps(k) - t0
            _send_stream(rec, f"{root}/{entity(k)}", k, store.streams[k], ts, ep.values(k), arrow_gain)
            logged[f"{root}/{entity(k)}"] = len(ts)
    if recording is None:
        rec.flush()
        if save is not None:
            rec.disconnect()
    return {"episodes": len(episodes), "entities": logged, "path": str(save) if save else None}


# ---------------------------------------------------------------------------------- drawing (MP4)
def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.5, color=(255, 255, 255),
          box: bool = True) -> None:
    """Text at ``org`` (baseline left), on a dark box unless ``box`` is False."""
    import cv2

    if box:
        (w, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        x, y = org
        img[max(0, y - h - 3):y + base, max(0, x - 2):x + w + 2] = (20, 20, 20)
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _fit(img: np.ndarray, height: int) -> np.ndarray:
    import cv2

    img = img if img.shape[-1] == 3 else np.repeat(img[..., :1], 3, axis=-1)
    w = max(1, int(round(img.shape[1] * height / img.shape[0])))
    interp = cv2.INTER_NEAREST if height >= 2 * img.shape[0] else cv2.INTER_AREA
    return cv2.resize(img, (w, height), interpolation=interp)


def tactile_image(offsets: np.ndarray, size: int, gain: float = 8.0, label: str = "") -> np.ndarray:
    """Marker offsets ``[M, 2]`` (normalised) as arrows on a gel-coloured square."""
    from tactkit.sim.view import tactile_panel

    rows, cols = marker_grid(len(offsets))
    return tactile_panel(offsets, rows, cols, size, gain=gain, label=label)


class _Plot:
    """Time series drawn once into a strip; :meth:`at` adds the cursor for one moment."""

    def __init__(self, title: str, t: np.ndarray, values: np.ndarray, names: Sequence[str], width: int,
                 height: int, t_range: tuple[float, float]) -> None:
        import cv2

        self.t_range, self.width = t_range, width
        img = np.full((height, width, 3), 250, np.uint8)
        v = values.reshape(len(t), -1).astype(np.float64)
        lo, hi = float(np.nanmin(v)) if v.size else 0.0, float(np.nanmax(v)) if v.size else 1.0
        pad = max(hi - lo, 1e-9) * 0.08
        lo, hi = lo - pad, hi + pad
        xs = self._x(t)
        for j in range(v.shape[1]):
            ys = (height - 4) - (v[:, j] - lo) / (hi - lo) * (height - 22)
            pts = np.stack([xs, ys], 1).round().astype(np.int32)
            cv2.polylines(img, [pts], False, _PLOT_COLORS[j % len(_PLOT_COLORS)], 1, cv2.LINE_AA)
        legend = " ".join(names[: v.shape[1]]) if names else ""
        _text(img, f"{title} [{lo:.3g}, {hi:.3g}] {legend}"[:90], (4, 13), 0.4, (30, 30, 30), box=False)
        self.img = img

    def _x(self, t: np.ndarray) -> np.ndarray:
        a, b = self.t_range
        return (np.asarray(t) - a) / max(b - a, 1e-9) * (self.width - 1)

    def at(self, t: float) -> np.ndarray:
        import cv2

        img = self.img.copy()
        x = int(round(float(self._x(np.array([t]))[0])))
        cv2.line(img, (x, 0), (x, img.shape[0] - 1), (0, 0, 0), 1)
        return img


def store_video(store: Any, path: str | os.PathLike, episodes: Sequence[int] | None = None,
                keys: Sequence[str] | None = None, height: int = 240, fps: float | None = None) -> Path:
    """An H.264 MP4 of ``episodes`` (default 0) at the cameras' rate (or ``fps``): cameras and
    tactile arrows ``height`` px high side by side, wrench/state/action plots below."""
    from tactkit.video import VideoWriter

    keys = list(store.streams) if keys is None else list(keys)
    cams = [k for k in keys if store.streams[k].is_image]
    pads = [k for k in keys if k.startswith("observation.tactile.") and len(store.streams[k].shape) == 2]
    series = [k for k in keys if k not in cams and k not in pads and store.streams[k].dtype.startswith("float")
              and len(store.streams[k].shape) == 1 and (k.startswith("observation.wrench") or
                                                        k.endswith(("tcp_pose", "gripper_width")))]
    rate = fps or (max(store.streams[k].rate_hz for k in cams) if cams else 15.0)
    episodes = [0] if episodes is None else list(episodes)
    with VideoWriter(path, rate) as writer:
        for i in episodes:
            ep = store.episode(i)
            stamps = {k: ep.timestamps(k) for k in keys}
            t0 = min(s[0] for s in stamps.values() if len(s))
            t1 = max(s[-1] for s in stamps.values() if len(s))
            ticks = t0 + np.arange(int(np.floor((t1 - t0) * rate)) + 1) / rate
            vals = {k: ep.values(k) for k in cams + pads}
            width = height * max(1, len(cams) + len(pads))
            plots = [_Plot(k, stamps[k] - t0, ep.values(k)[:, :3] if k.endswith("tcp_pose") else ep.values(k),
                           store.streams[k].names, width, 90, (0.0, t1 - t0)) for k in series]
            for t in ticks:
                panels = []
                for k in cams + pads:
                    j = int(np.searchsorted(stamps[k], t, side="right")) - 1
                    if k in cams:
                        frame = vals[k][max(j, 0)] if len(stamps[k]) else np.zeros((*store.streams[k].shape[:2], 3), np.uint8)
                        panels.append(_fit(frame, height))
                    else:
                        off = vals[k][max(j, 0)] if len(stamps[k]) else np.zeros(store.streams[k].shape, np.float32)
                        panels.append(tactile_image(off, height, label=k.split(".")[2]))
                top = np.concatenate(panels, axis=1) if panels else np.full((height, width, 3), 255, np.uint8)
                rows = [top] + [p.at(t - t0) for p in plots]
                w = max(r.shape[1] for r in rows)
                frame = np.concatenate([np.pad(r, ((0, 0), (0, w - r.shape[1]), (0, 0)), constant_values=255) for r in rows])
                _text(frame, f"{ep.name} {ep.task}  t={t - t0:5.2f} s", (6, 18))
                writer.write(frame)
    return Path(path)


# ---------------------------------------------------------------------------------- evaluation
class _EpisodeRecord:
    """What an evaluation episode's observers collect per robot tick and per camera frame."""

    def __init__(self, task: Any) -> None:
        self.task = task
        self.arms = tuple(task.arm_names)
        self.t: list[float] = []
        self.pose: list[np.ndarray] = []
        self.cmd: list[np.ndarray] = []
        self.wrench: list[np.ndarray] = []
        self.grip: list[np.ndarray] = []
        self.surface: list[float] = []
        self.plans: list[tuple[float, np.ndarray, float, float]] = []  # (arrival, actions, t0, dt)
        self.samples: dict[str, tuple[list[float], list[np.ndarray]]] = {}
        self._seq: dict[str, int] = {}
        self._last_plan: Any = None

    def tick(self, now: float, state: Any, cmd: Any, plans: Sequence[Any]) -> None:
        self.t.append(now)
        self.pose.append(np.concatenate([np.asarray(state.arms[a].tcp_pose, float) for a in self.arms]))
        self.cmd.append(np.concatenate([np.asarray(cmd.arms[a].tcp_target, float) if a in cmd.arms
                                        else np.full(7, np.nan) for a in self.arms]))
        self.wrench.append(np.concatenate([np.asarray(state.arms[a].wrench, float) for a in self.arms]))
        self.grip.append(np.array([state.arms[a].gripper_width for a in self.arms], float))
        self.surface.append(self.task.surface_height())
        if plans and plans[-1] is not self._last_plan:
            p = plans[-1]
            self._last_plan = p
            self.plans.append((now, np.asarray(p.actions, float), float(p.t0), float(p.dt)))

    def poll_sensors(self, prefixes: tuple[str, ...]) -> None:
        for s in self.task.sensors.values():
            if not s.key.startswith(prefixes):
                continue
            sample = s.read_latest()
            if sample is not None and sample.seq != self._seq.get(s.key):
                self._seq[s.key] = sample.seq
                ts, vs = self.samples.setdefault(s.key, ([], []))
                ts.append(float(sample.capture_time))
                vs.append(np.array(sample.value))


class _RerunEpisode:
    def __init__(self, owner: RerunEvalLog, name: str, task: Any, perturb: str, seed: int) -> None:
        self.owner, self.name, self.perturb, self.seed = owner, name, perturb, seed
        self.rec_data = _EpisodeRecord(task)
        self.t0 = task.clock.now()

    def tick(self, now: float, state: Any, cmd: Any, plans: Sequence[Any]) -> None:
        self.rec_data.tick(now, state, cmd, plans)
        self.rec_data.poll_sensors(("observation.images.", "observation.tactile."))

    def finish(self, info: dict[str, Any]) -> None:
        rr = _rr()
        rec, d, root = self.owner.rec, self.rec_data, f"eval/{self.name}"
        t = np.asarray(d.t) - self.t0
        idx = [rr.TimeColumn(TIMELINE, duration=t)]
        pose, cmd, wrench = np.asarray(d.pose), np.asarray(d.cmd), np.asarray(d.wrench)
        for a_i, arm in enumerate(d.arms):
            base = f"{root}/{arm}" if len(d.arms) > 1 else root
            sl = slice(7 * a_i, 7 * a_i + 7)
            for label, arr in (("measured", pose[:, sl]), ("commanded", cmd[:, sl])):
                rec.log(f"{base}/tcp_xyz/{label}", rr.SeriesLines(names=[f"{label} x", f"{label} y", f"{label} z"]), static=True)
                rec.send_columns(f"{base}/tcp_xyz/{label}", indexes=idx, columns=rr.Scalars.columns(scalars=arr[:, :3]))
                rec.send_columns(f"world/{base}/tcp_{label}", indexes=idx, columns=rr.Transform3D.columns(
                    translation=arr[:, :3], quaternion=arr[:, [4, 5, 6, 3]]))
            rec.log(f"{base}/wrench", rr.SeriesLines(names=["fx", "fy", "fz", "tx", "ty", "tz"]), static=True)
            rec.send_columns(f"{base}/wrench", indexes=idx, columns=rr.Scalars.columns(scalars=wrench[:, 6 * a_i:6 * a_i + 6]))
            rec.send_columns(f"{base}/gripper_width", indexes=idx, columns=rr.Scalars.columns(scalars=np.asarray(d.grip)[:, a_i]))
        surface = np.asarray(d.surface, float)
        if np.isfinite(surface).any():
            rec.send_columns(f"{root}/surface_z", indexes=idx, columns=rr.Scalars.columns(scalars=surface))
        for k, (arrival, actions, p_t0, p_dt) in enumerate(d.plans):  # each plan as it arrived
            rec.set_time(TIMELINE, duration=arrival - self.t0)
            rec.log(f"world/{root}/plan", rr.LineStrips3D([actions[:, :3]]))  # its xyz path in 3-D
            rec.send_columns(f"{root}/plan_z/{k:04d}", indexes=[rr.TimeColumn(  # its z over the chunk's times
                TIMELINE, duration=p_t0 - self.t0 + np.arange(len(actions)) * p_dt)],
                columns=rr.Scalars.columns(scalars=actions[:, 2]))
        for key, (ts, vs) in d.samples.items():
            ts_rel = np.asarray(ts) - self.t0
            spec = _SpecLike(np.asarray(vs[0]))
            _send_stream(rec, f"{root}/{entity(key)}", key, spec, ts_rel, np.stack(vs), self.owner.arrow_gain)
        text = (f"# {self.name}\nperturbation **{self.perturb}**, seed {self.seed}: score **{info['score']:.3f}** "
                f"({'success' if info['success'] else 'failure'}), raw {info['raw_score']:.3f}, {len(d.plans)} plans")
        rec.log(f"{root}/result", rr.TextDocument(text, media_type=rr.MediaType.MARKDOWN), static=True)
        rec.flush()


class _SpecLike:
    """The little of a StreamSpec :func:`_send_stream` reads, for live sensor samples."""

    def __init__(self, value: np.ndarray) -> None:
        self.is_image = value.dtype == np.uint8 and value.ndim == 3 and value.shape[-1] in (1, 3)
        self.names: tuple[str, ...] = ()


class RerunEvalLog:
    """Evaluation observer factory: every episode into one rerun recording (``save`` .rrd path,
    or ``spawn`` a viewer) under ``eval/<label>/<task>_<perturb>_seed<seed>``."""

    needs_cameras = True

    def __init__(self, save: str | os.PathLike | None = None, label: str = "policy", spawn: bool = False,
                 arrow_gain: float = 5.0) -> None:
        self.save, self.label, self.arrow_gain = save, label, arrow_gain
        self.rec = _recording(save, spawn, "eval")

    def __call__(self, task_name: str, perturb: str, seed: int, task: Any) -> _RerunEpisode:
        return _RerunEpisode(self, f"{self.label}/{task_name}_{perturb}_seed{seed}", task, perturb, seed)

    def close(self) -> None:
        self.rec.flush()
        if self.save is not None:
            self.rec.disconnect()


def log_eval_trace(rec: Any, result: Any, label: str = "policy") -> None:
    """Log an ``EpisodeResult`` with a ``trace`` (t, z, z_cmd, fz, surface_z) to recording ``rec``."""
    rr = _rr()
    if result.trace is None:
        raise ValueError("the result has no trace: evaluate with EvalSettings(trace=True)")
    tr = result.trace
    root = f"eval/{label}/{result.task}_{result.perturb}_seed{result.seed}"
    idx = [rr.TimeColumn(TIMELINE, duration=np.asarray(tr["t"]) - float(tr["t"][0]))]
    for k in ("z", "z_cmd", "fz", "surface_z"):
        if np.isfinite(tr[k]).any():
            rec.send_columns(f"{root}/{k}", indexes=idx, columns=rr.Scalars.columns(scalars=np.asarray(tr[k], float)))
    rec.log(f"{root}/result", rr.TextDocument(f"score {result.score:.3f} ({'success' if result.success else 'failure'})"),
            static=True)


class _VideoEpisode:
    def __init__(self, owner: EpisodeVideo, path: Path, task: Any, perturb: str, seed: int) -> None:
        self.owner, self.path, self.perturb, self.seed = owner, path, perturb, seed
        self.task = task
        self.t0 = task.clock.now()
        self.frames: list[tuple[float, dict[str, np.ndarray], dict[str, np.ndarray], float, float]] = []
        self.sensors = [s for s in task.sensors.values() if s.key.startswith(("observation.images.", "observation.tactile."))]
        cams = sorted((s for s in self.sensors if s.key.startswith("observation.images.")), key=lambda s: s.key)
        self.main = next((s for s in cams if s.key.endswith("external")), cams[0] if cams else None)
        self.rate = float(getattr(task.config, "camera_rate_hz", 15.0))
        self.arm = task.arm_names[0]
        self.surface0: float | None = None
        self._last_seq: int | None = None

    def tick(self, now: float, state: Any, cmd: Any, plans: Sequence[Any]) -> None:
        surface = self.task.surface_height()
        if self.surface0 is None and math.isfinite(surface):
            self.surface0 = surface
        sample = self.main.read_latest() if self.main is not None else None
        if sample is None or sample.seq == self._last_seq:
            return
        self._last_seq = sample.seq  # a new main-camera frame: one video frame, with the latest of the rest
        latest = {s.key: s.read_latest() for s in self.sensors}
        cams = {k: np.asarray(v.value) for k, v in latest.items() if v is not None and k.startswith("observation.images.")}
        pads = {k: np.asarray(v.value) for k, v in latest.items() if v is not None and k.startswith("observation.tactile.")}
        force = float(np.linalg.norm(np.asarray(state.arms[self.arm].wrench)[:3]))
        offset = surface - self.surface0 if self.surface0 is not None and math.isfinite(surface) else math.nan
        self.frames.append((now - self.t0, cams, pads, force, offset))

    def finish(self, info: dict[str, Any]) -> Path | None:
        if not self.frames:
            return None
        from tactkit.video import VideoWriter

        h = self.owner.height
        verdict = f"score {info['score']:.2f} ({'success' if info['success'] else 'failure'})"
        forces = np.array([f[3] for f in self.frames])
        with VideoWriter(self.path, self.rate) as w:
            for t, cams, pads, force, offset in self.frames:
                panels = [_fit(cams[k], h) for k in sorted(cams, key=lambda k: (not k.endswith("wrist"), k))]
                touch = ""
                for k, off in pads.items():
                    mag = float(np.linalg.norm(np.asarray(off).reshape(-1, 2), axis=1).mean())
                    panels.append(tactile_image(np.asarray(off).reshape(-1, 2), h, label=f"{k.split('.')[2]} {mag:.4f}"))
                    touch = f"touch {mag:.4f}"
                top = np.concatenate(panels, axis=1)
                head = np.full((48, top.shape[1], 3), 32, np.uint8)
                pert = self.perturb if not math.isfinite(offset) else f"{self.perturb} (surface {offset * 1e3:+.1f} mm)"
                _text(head, f"{self.task.name} seed {self.seed}  t={t:5.2f} s  |F|={force:5.1f} N  {touch}", (6, 18))
                _text(head, f"perturbation: {pert}    {verdict}", (6, 40), color=(255, 230, 120))
                bar = np.full((14, top.shape[1], 3), 230, np.uint8)
                fmax = max(float(forces.max()), 1.0)
                bar[:, : int(top.shape[1] * min(force / fmax, 1.0))] = (220, 90, 60)
                w.write(np.concatenate([head, top, bar]))
        return self.path


class EpisodeVideo:
    """Evaluation observer factory: one H.264 MP4 per episode in ``video_dir``, every frame of
    the external camera with the wrist camera and tactile pads beside it at ``height`` px, the
    time, wrist force, touch, perturbation and the episode's score overlaid."""

    needs_cameras = True

    def __init__(self, video_dir: str | os.PathLike, height: int = 288) -> None:
        self.video_dir, self.height = Path(video_dir), height

    def __call__(self, task_name: str, perturb: str, seed: int, task: Any) -> _VideoEpisode:
        return _VideoEpisode(self, self.video_dir / f"{task_name}_{perturb}_seed{seed}.mp4", task, perturb, seed)
