"""Image strip / video of an episode: cameras plus the tactile field drawn as arrows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tactkit.sim.tasks import make_expert, make_task
from tactkit.sim.tasks.base import SimTask


def tactile_panel(offsets: np.ndarray, rows: int, cols: int, size: int = 192, gain: float = 8.0,
                  label: str = "") -> np.ndarray:
    """Draw marker offsets [rows*cols, 2] (normalised) as arrows on a gel-coloured square.

    Arrows are ``gain`` times the true displacement so that 0.01 (1 % of the image) is visible.
    """
    import cv2

    img = np.full((size, size, 3), (205, 195, 185), np.uint8)
    margin = 0.12 * size
    xs = np.linspace(margin, size - margin, cols)
    ys = np.linspace(margin, size - margin, rows)
    off = np.asarray(offsets, dtype=np.float64).reshape(rows, cols, 2)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            dx, dy = off[i, j] * size * gain
            cv2.circle(img, (int(round(x)), int(round(y))), 2, (40, 40, 40), -1, cv2.LINE_AA)
            if abs(dx) + abs(dy) > 0.5:
                cv2.arrowedLine(img, (int(round(x)), int(round(y))), (int(round(x + dx)), int(round(y + dy))),
                                (200, 30, 30), 1, cv2.LINE_AA, tipLength=0.3)
    if label:
        cv2.putText(img, label, (4, size - 6), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _frame(env: SimTask, size: int) -> np.ndarray:
    import cv2

    obs = env.observation()
    panels = []
    for key in sorted(k for k in obs if k.startswith("observation.images.")):
        panels.append(cv2.resize(obs[key], (size, size), interpolation=cv2.INTER_NEAREST))
    for name, s in env.sensors.items():
        if name.startswith("tactile."):
            g = s.config.grid
            force = np.linalg.norm(env.robot.arms[s.config.arm].wrench()[:3])
            panels.append(tactile_panel(obs[s.key], g.rows, g.cols, size,
                                        label=f"{s.config.name} t={env.clock.now():.1f}s |F|={force:.1f}N"))
    return np.concatenate(panels, axis=0)


def render_episode(task: str, out: str | Path, seed: int = 0, perturb: str = "after_contact",
                   frames: int = 8, size: int = 192, **overrides: Any) -> dict[str, Any]:
    """Run the expert on ``seed`` and save ``frames`` evenly spaced columns (PNG) or every
    control step as H.264 video (``.mp4`` / ``.avi``) to ``out``; returns the episode's evaluate() dict."""
    import cv2

    out = Path(out)
    video = out.suffix.lower() in (".mp4", ".avi")
    env = make_task(task, perturb=perturb, cameras=True, **overrides)
    obs = env.reset(seed)
    expert = make_expert(env)
    n_steps = int(round(env.config.episode_s * env.config.control_hz))
    picks = set(np.linspace(0, n_steps - 1, frames).round().astype(int).tolist()) if not video else None
    cols = []
    step = 0
    info = env.evaluate()
    while not env.done:
        if video or step in picks:
            cols.append(_frame(env, size))
        obs, _, _, _, info = env.step(expert.act(obs))
        step += 1
    env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    if video:  # H.264 (PyAV), plays in browsers and players
        from tactkit.video import write_video

        write_video(cols, out, env.config.control_hz)
    else:
        strip = np.concatenate(cols, axis=1)
        if not cv2.imwrite(str(out), cv2.cvtColor(strip, cv2.COLOR_RGB2BGR)):
            raise ValueError(f"could not write image {out} (use .png or .jpg)")
    return info
