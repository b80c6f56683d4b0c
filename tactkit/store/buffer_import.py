"""diffusion_policy / UMI / RDP replay buffer -> episode store (``tactkit dataset import --format dp``).

One store episode per buffer episode, every ``data/<key>`` a stream with its dtype and shape
(``uint8 H x W x {1,3}`` keys re-encoded by the store's JPEG codec, whatever the buffer used:
Blosc, Jpeg2k, JpegXL). Sample times come from ``data/timestamp`` when the buffer has it (the
real-robot buffers of those projects do; tactkit's aligned views too), otherwise from ``fps``.
A key map renames keys on the way (``{"img": "observation.images.wrist"}``, see
:func:`tactkit.store.replay_buffer.apply_key_map`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from tactkit.store.replay_buffer import TIMESTAMP_KEY, ReplayBuffer

log = logging.getLogger(__name__)


def import_replay_buffer(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    fps: float | None = None,
    key_map: Mapping[str, Any] | None = None,
    task: str = "",
    episodes: Sequence[int] | None = None,
    image_quality: int = 90,
    overwrite: bool = False,
    progress: bool = False,
) -> Any:
    """Import the replay buffer at ``src`` into a new episode store at ``dst``; returns it."""
    from tactkit.store.episode_store import EpisodeStore
    from tactkit.store.schema import StreamSpec

    rb = ReplayBuffer.open(src, key_map=key_map)
    if rb.n_episodes == 0:
        raise ValueError(f"{src}: the replay buffer has no episodes")
    has_ts = TIMESTAMP_KEY in rb.data
    if not has_ts and fps is None:
        raise ValueError(f"{src} has no data/{TIMESTAMP_KEY}: pass the control rate (fps, --fps HZ)")
    if fps is not None and not fps > 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    ts_all = np.asarray(rb[TIMESTAMP_KEY][:], dtype=np.float64) if has_ts else None
    rate = float(fps) if fps is not None else None
    if rate is None:
        steps = np.concatenate([np.diff(ts_all[rb.episode_slice(i)]) for i in range(rb.n_episodes)])
        steps = steps[steps > 0]
        if not len(steps):
            raise ValueError(f"{src}: data/{TIMESTAMP_KEY} never increases; pass fps (--fps HZ)")
        rate = float(1.0 / np.median(steps))
    keys = [k for k in rb.keys() if k != TIMESTAMP_KEY]
    if not keys:
        raise ValueError(f"{src}: the replay buffer holds only timestamps")
    bad = [k for k in keys if "/" in k or k.startswith("__")]
    if bad:
        raise ValueError(f"{src}: keys {bad} cannot be store streams; rename them with a key map")
    streams = {k: StreamSpec(str(rb[k].dtype), tuple(rb[k].shape[1:]), rate,
                             "rgb" if StreamSpec(str(rb[k].dtype), tuple(rb[k].shape[1:]), 1.0).is_image else "")
               for k in keys}
    attrs = {"source": "replay_buffer", "replay_buffer": {"path": str(src), "key_map": dict(key_map or {}),
                                                          "timestamps": "data/timestamp" if has_ts else f"k / {rate:g}"}}
    store = EpisodeStore.create(dst, streams, attrs=attrs, image_quality=image_quality, overwrite=overwrite)
    indices = list(range(rb.n_episodes)) if episodes is None else list(episodes)
    iterator: Any = indices
    if progress:
        from tqdm import tqdm

        iterator = tqdm(indices, desc="import buffer", unit="episode")
    for i in iterator:
        sl = rb.episode_slice(i)
        n = sl.stop - sl.start
        if n == 0:
            log.warning("%s: episode %d is empty, skipped", src, i)
            continue
        ts = ts_all[sl] if ts_all is not None else np.arange(n) / rate
        if not np.all(np.diff(ts) > 0):
            raise ValueError(f"{src}: episode {i}: timestamps do not increase")
        rec = store.begin_episode(task=task, metadata={"buffer_episode": i}, start_time=float(ts[0]))
        try:
            for k in keys:
                rec.append_many(k, ts, np.asarray(rb[k][sl]))
            rec.commit(success=True)
        except BaseException:
            rec.discard()
            raise
    return EpisodeStore.open(dst)
