"""Simulation speed: simulated seconds per wall second with cameras and tactile on, and where
the time goes (physics incl. the impedance controller, tactile, rendering, F/T + task).

Runs one scripted-expert episode per setting in this process (one core), side by side with
the same episode without sensors as the physics-only baseline, then times TinyRenderer
against the EGL renderer plugin on the same scene.

    .venv/bin/python benchmarks/sim_speed.py
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

from tactkit.sim.sensors import SimCamera, SimTactile
from tactkit.sim.tasks import make_expert, make_task
from tactkit.sysinfo import machine_summary


class Timed:
    """Wraps a hook and accumulates its wall time under ``bucket``."""

    def __init__(self, fn, bucket: str, acc: dict) -> None:
        self.fn, self.bucket, self.acc = fn, bucket, acc

    def __call__(self) -> None:
        t = time.perf_counter()
        self.fn()
        self.acc[self.bucket] += time.perf_counter() - t


def episode(task: str, cameras: bool, tactile: bool = True, **overrides) -> dict:
    env = make_task(task, perturb="after_contact", cameras=cameras, **overrides)
    obs = env.reset(0)
    acc: dict[str, float] = defaultdict(float)
    w = env.world
    w._controllers = [Timed(f, "controller", acc) for f in w._controllers]
    wrapped = []
    for f in w._observers:
        owner = getattr(f, "__self__", None)
        if isinstance(owner, SimCamera):
            bucket = "rendering"
        elif isinstance(owner, SimTactile):
            bucket = "tactile"
            if not tactile:
                owner.enabled = False
        else:
            bucket = "F/T, task, other sensors"
        wrapped.append(Timed(f, bucket, acc))
    w._observers = wrapped
    expert = make_expert(env)
    t0, c0 = time.perf_counter(), time.process_time()
    while not env.done:
        obs, *_ = env.step(expert.act(obs))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    sim = env.clock.now()
    env.close()
    hooks = sum(acc.values())
    acc["physics step"] = wall - hooks  # stepSimulation + expert + env.step bookkeeping
    acc["physics step"] += acc.pop("controller")
    return {"sim": sim, "wall": wall, "cpu": cpu, "split": dict(acc)}


def renderers(size: int = 96, n: int = 40) -> dict[str, float]:
    out = {}
    for renderer in ("tiny", "egl"):
        env = make_task("wipe", cameras=True, camera_size=[size, size])
        env.reset(0)
        cam = env.sensors["camera.external"]
        try:
            if renderer == "egl":
                from tactkit.sim.sensors import SimCameraConfig

                cfg = SimCameraConfig(**{**cam.config.__dict__, "renderer": "egl"})
                cam = SimCamera(cfg, env.world, env.robot, enabled=False)
            cam._measure()
            t = time.perf_counter()
            for _ in range(n):
                img = cam._measure()
            out[renderer] = (time.perf_counter() - t) / n * 1e3
            out[f"{renderer}_mean_pixel"] = float(img.mean())
        except Exception as exc:  # plugin missing or no EGL device
            out[renderer] = float("nan")
            out[f"{renderer}_error"] = str(exc)
        env.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.parse_args()
    print(f"machine: {machine_summary()} (at start)")
    print("settings: physics 1 kHz, impedance control every step, expert 24 Hz, cameras 96x96 TinyRenderer, "
          "tactile 30 Hz, wrench 100 Hz, one process / one core\n")
    rows = [
        ("wipe (1 arm)", "wipe", dict(cameras=False, tactile=False), "physics only"),
        ("wipe (1 arm)", "wipe", dict(cameras=True), "2 cameras @12 Hz + tactile"),
        ("wipe (1 arm)", "wipe", dict(cameras=True, camera_rate_hz=24.0), "2 cameras @24 Hz + tactile"),
        ("lift (2 arms)", "lift", dict(cameras=False, tactile=False), "physics only"),
        ("lift (2 arms)", "lift", dict(cameras=True), "3 cameras @12 Hz + 2 tactile"),
    ]
    print("| task | sensors | sim s | wall s | sim s / wall s | sim s / CPU s | physics | tactile | rendering | F/T+task |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, task, kw, desc in rows:
        r = episode(task, **kw)
        sp = r["split"]
        tot = r["wall"]

        def pct(k, sp=sp, tot=tot):
            return f"{100 * sp.get(k, 0.0) / tot:.0f}%"

        print(f"| {label} | {desc} | {r['sim']:.1f} | {r['wall']:.1f} | {r['sim'] / r['wall']:.2f} | "
              f"{r['sim'] / r['cpu']:.2f} | {pct('physics step')} | {pct('tactile')} | {pct('rendering')} | "
              f"{pct('F/T, task, other sensors')} |")
    rr = renderers()
    print(f"\nrenderer, 96x96 external camera on the wipe scene: TinyRenderer {rr['tiny']:.2f} ms/image, "
          f"EGL plugin {rr['egl']:.2f} ms/image" + (f" ({rr.get('egl_error')})" if "egl_error" in rr else ""))
    best = "tiny" if not rr["egl"] < rr["tiny"] else "egl"
    print(f"faster here: {best}")
    print(f"load average at end {os.getloadavg()[0]:.1f} (other processes share the cores: wall-time ratios "
          "are pessimistic; the CPU-time ratio is this process's own cost)")


if __name__ == "__main__":
    main()
