"""Episode store: crash-safe multi-rate recording in Zarr and the training view on top.

Recording and reading::

    store = EpisodeStore.create("runs/demo.zarr", streams={key: StreamSpec(...)})
    with store.begin_episode(task="wipe") as rec:
        rec.append("observation.wrench", t, wrench)
    ep = EpisodeStore.open("runs/demo.zarr").episode(0); ep.timestamps(key); ep.values(key)

Training: :func:`align` (grid + diffusion_policy replay-buffer layout), :class:`ReplayBuffer`,
:class:`SequenceSampler`, :func:`get_val_mask`, :func:`compute_stats`.
"""

from tactkit.store.episode_store import FORMAT_NAME, FORMAT_VERSION, Episode, EpisodeStore
from tactkit.store.errors import (
    FormatVersionError,
    NotAStoreError,
    SampleError,
    StoreError,
)
from tactkit.store.recorder import EpisodeRecorder
from tactkit.store.schema import POSE_NAMES, WRENCH_NAMES, StreamSpec

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "POSE_NAMES",
    "WRENCH_NAMES",
    "Episode",
    "EpisodeRecorder",
    "EpisodeStore",
    "FormatVersionError",
    "NotAStoreError",
    "SampleError",
    "StoreError",
    "StreamSpec",
]
