"""Child processes of the step-by-step SIGKILL tests: each kills itself at one named step.

``python crash_steps.py DIR STEP...``: for each step, a forked child creates ``DIR/STEP.zarr``,
records and commits one episode normally, then records a second one (``ep_000001``) and kills
itself (SIGKILL) at ``STEP`` of its commit, of its discard, or of the next begin. Steps are
reached by wrapping the store's own functions, so the kill lands exactly between two writes of
the real code. The launcher imports tactkit once and forks (before zarr starts its event-loop
thread) so that each kill costs milliseconds, not an interpreter start; it prints
``{step: exit status}`` as JSON (-9: killed as planned).
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import numpy as np

from tactkit.store import EpisodeStore, StreamSpec, index, layout
from tactkit.store._paths import KeyIO

STREAMS = {
    "observation.wrench": StreamSpec("float32", (6,), 100.0, "N"),
    "observation.images.wrist": StreamSpec("uint8", (8, 8, 3), 10.0, "rgb"),
}
N = {"observation.wrench": 150, "observation.images.wrist": 15}
#: the test's own episode has these samples in every stream
COMMIT_STEPS = ("before_record", "after_record", "after_segment", "after_head")
DISCARD_STEPS = ("after_marker", "after_one_chunk_deleted", "after_4_deletions",
                 "after_all_deletions", "after_marker_removed")
BEGIN_STEPS = ("after_reserve",)


def values(key: str, ep: int) -> tuple[np.ndarray, np.ndarray]:
    n = N[key]
    ts = 100.0 * ep + np.arange(n) / STREAMS[key].rate_hz
    if key == "observation.wrench":
        return ts, (ep * 1000 + np.arange(n)[:, None] + np.arange(6)).astype(np.float32)
    return ts, np.full((n, 8, 8, 3), 40 * ep + 10, np.uint8)


def record(store: EpisodeStore, ep: int):
    rec = store.begin_episode(task=f"ep{ep}")
    for key in STREAMS:
        rec.append_many(key, *values(key, ep))
    rec.flush()
    return rec


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def wrap(owner, name: str, before: bool = False, when=lambda *a, **k: True) -> None:
    """Make ``owner.name`` kill the process before or after its first call that ``when`` accepts."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        if before and when(*args, **kwargs):
            die()
        out = real(*args, **kwargs)
        if not before and when(*args, **kwargs):
            die()
        return out

    setattr(owner, name, wrapper)


def main(path: str, step: str) -> None:
    store = EpisodeStore.open(path, mode="a")
    record(store, 0).commit()
    if step == "after_reserve":
        wrap(layout, "create_episode", before=True)
        record(store, 1)
    rec = record(store, 1)
    if step in COMMIT_STEPS:
        if step == "before_record":
            wrap(layout, "write_commit", before=True)
        elif step == "after_record":
            wrap(index.EpisodeIndex, "add", before=True)
        elif step == "after_segment":
            wrap(KeyIO, "set", when=lambda self, key, data: key.startswith("index/seg-"))
        elif step == "after_head":
            rec.commit()
            die()
        rec.commit()
    elif step in DISCARD_STEPS:
        if step == "after_marker":
            wrap(KeyIO, "delete_prefix", before=True)
        elif step == "after_all_deletions":
            wrap(KeyIO, "delete", before=True, when=lambda self, key: key.startswith("discards/"))
        elif step == "after_marker_removed":
            wrap(index.EpisodeIndex, "forget", before=True)
        elif step == "after_one_chunk_deleted":  # a delete killed after its first file
            def delete_one(self, prefix):
                chunk = next(p for p in (self.local / prefix).rglob("c.*") if p.is_file())
                chunk.unlink()
                die()

            KeyIO.delete_prefix = delete_one
        else:  # kill after k files of the episode were deleted
            k = int(step.split("_")[1])
            seen = [0]
            real_unlink = os.unlink

            def unlink(p, *a, **kw):
                real_unlink(p, *a, **kw)
                seen[0] += 1
                if seen[0] >= k:
                    die()

            os.unlink = unlink
        rec.discard()
    else:
        raise SystemExit(f"unknown step {step}")
    raise SystemExit(f"step {step} was never reached")


def launch(directory: str, steps: list[str]) -> dict[str, int]:
    results = {}
    for step in steps:
        pid = os.fork()
        if pid == 0:  # the child: never returns
            try:
                path = str(Path(directory) / f"{step}.zarr")
                EpisodeStore.create(path, STREAMS)
                main(path, step)
            except BaseException as exc:  # noqa: BLE001 - reported through the exit status
                print(f"{step}: {exc!r}", file=sys.stderr)
            finally:
                os._exit(3)
        _, status = os.waitpid(pid, 0)
        results[step] = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return results


if __name__ == "__main__":
    print(json.dumps(launch(sys.argv[1], sys.argv[2:])))
