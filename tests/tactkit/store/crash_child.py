"""Child process of the SIGKILL test: records short episodes in real time until killed.

Values are a deterministic function of (episode name, stream, sample index) so the parent can
check what it reads; timestamps are real ``time.monotonic()`` capture times. Progress lines go
to a file: ``B`` (begin_episode called), ``A <name> <t>`` (samples up to t appended),
``K <name>`` (commit called), ``C <name>`` (commit returned).
"""

from __future__ import annotations

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
EPISODE_S = 0.45


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

        def producer(keys: list[str], rec=rec, ep_no=ep_no, t_end=t_end) -> None:
            counts = dict.fromkeys(keys, 0)
            start = time.monotonic()
            last = None
            while True:
                now = time.monotonic()
                if now >= t_end:
                    return
                for k in keys:
                    due = int((now - start) * STREAMS[k].rate_hz) + 1
                    for i in range(counts[k], due):
                        last = time.monotonic()
                        rec.append(k, last, expected(k, ep_no, np.array([i]))[0])
                    counts[k] = max(counts[k], due)
                if "observation.wrench" in keys and last is not None:
                    log.write(f"A {rec.name} {last!r}\n")
                time.sleep(0.004)

        threads = [threading.Thread(target=producer, args=(["observation.wrench", "action.tcp_pose"],)),
                   threading.Thread(target=producer, args=(["observation.images.wrist"],))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        log.write(f"K {rec.name}\n")
        rec.commit(success=True, note=rec.name)
        log.write(f"C {rec.name}\n")


if __name__ == "__main__":
    if len(sys.argv) == 2:  # create the store
        EpisodeStore.create(sys.argv[1], STREAMS, flush_interval_s=0.25)
    else:
        main(sys.argv[1], sys.argv[2], float(sys.argv[3]) if len(sys.argv) > 3 else EPISODE_S)
