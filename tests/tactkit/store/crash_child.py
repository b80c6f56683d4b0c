"""Child process of the SIGKILL test: records episodes in real time until killed.

Values are a deterministic function of (episode name, stream, sample index) so the parent can
check what it reads; timestamps are real ``time.monotonic()`` capture times. Progress lines go
to a file: ``B`` (begin_episode called), ``A <name> <key> <t>`` (samples of ``key`` up to
``t`` appended), ``E <name> <key> <n> <t>`` (the episode's final count and last timestamp of
``key``, written before commit is called), ``K <name>`` (commit called), ``C <name>``
(commit returned).

``python crash_child.py serve`` is a launcher: it imports tactkit once, then for each line
``STORE PROGRESS EPISODE_S`` on stdin forks a recording child (before zarr starts its event
loop thread), prints the child's pid, waits for it and prints ``exit <status>``. The test
kills the child, so a round costs the kill delay, not an interpreter start.
"""

from __future__ import annotations

import os
import sys
import threading
import time

import numpy as np

from tactkit.store import EpisodeStore, StreamSpec

STREAMS = {
    "observation.wrench": StreamSpec("float32", (6,), 200.0, "N"),
    "action.tcp_pose": StreamSpec("float64", (7,), 50.0, "m"),
    "observation.images.wrist": StreamSpec("uint8", (16, 24, 3), 30.0, "rgb"),
}
EPISODE_S = 3.0
FLUSH_INTERVAL_S = 0.25


def expected(key: str, ep_no: int, i: np.ndarray) -> np.ndarray:
    """Deterministic sample values (images: a flat colour per frame plus a gradient)."""
    i = np.asarray(i)
    if key == "observation.wrench":
        return (ep_no * 1000.0 + i[:, None] + np.arange(6) * 0.25).astype(np.float32)
    if key == "action.tcp_pose":
        return ep_no * 1e6 + i[:, None] * 0.5 + np.arange(7, dtype=np.float64)
    base = ((ep_no * 37 + i * 11) % 200).astype(np.uint8)
    grad = np.arange(24, dtype=np.uint8)[None, None, :, None] * 2
    return np.broadcast_to(base[:, None, None, None] + grad, (len(i), 16, 24, 3)).copy()


def main(path: str, progress_path: str, episode_s: float = EPISODE_S) -> None:
    store = EpisodeStore.open(path, mode="a")
    log = open(progress_path, "a", buffering=1)
    log.write("READY\n")
    while True:
        log.write("B\n")
        rec = store.begin_episode(task="crash", metadata={"pid": 0})
        ep_no = int(rec.name.split("_")[1])
        t_end = time.monotonic() + episode_s
        final: dict[str, tuple[int, float]] = {}

        def producer(keys: list[str], rec=rec, ep_no=ep_no, t_end=t_end, final=final) -> None:
            counts = dict.fromkeys(keys, 0)
            last = dict.fromkeys(keys, None)
            start = time.monotonic()
            while True:
                now = time.monotonic()
                if now >= t_end:
                    for k in keys:
                        final[k] = (counts[k], last[k])
                    return
                for k in keys:
                    due = int((now - start) * STREAMS[k].rate_hz) + 1
                    for i in range(counts[k], due):
                        last[k] = time.monotonic()
                        rec.append(k, last[k], expected(k, ep_no, np.array([i]))[0])
                    counts[k] = max(counts[k], due)
                    if last[k] is not None:
                        log.write(f"A {rec.name} {k} {last[k]!r}\n")
                time.sleep(0.004)

        threads = [threading.Thread(target=producer, args=(["observation.wrench", "action.tcp_pose"],)),
                   threading.Thread(target=producer, args=(["observation.images.wrist"],))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for k, (n, t_last) in final.items():
            log.write(f"E {rec.name} {k} {n} {t_last!r}\n")
        log.write(f"K {rec.name}\n")
        rec.commit(success=True, note=rec.name)
        log.write(f"C {rec.name}\n")


def serve() -> None:
    for line in sys.stdin:
        path, progress, episode_s = line.split()
        pid = os.fork()
        if pid == 0:
            try:
                main(path, progress, float(episode_s))
            except BaseException as exc:  # noqa: BLE001 - reported to the test through the file
                with open(progress, "a") as f:
                    f.write(f"ERROR {exc!r}\n")
            finally:
                os._exit(3)
        print(pid, flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"exit {-os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)}",
              flush=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["serve"]:
        serve()
    elif len(sys.argv) == 2:  # create the store
        EpisodeStore.create(sys.argv[1], STREAMS, flush_interval_s=FLUSH_INTERVAL_S)
    else:
        main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else EPISODE_S)
