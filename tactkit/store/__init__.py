"""Episode store: crash-safe multi-rate recording in Zarr and the training view on top.

Recording and reading::

    store = EpisodeStore.create("runs/demo.zarr", streams={key: StreamSpec(...)})
    with store.begin_episode(task="wipe") as rec:
        rec.append("observation.wrench", t, wrench)
    ep = EpisodeStore.open("runs/demo.zarr").episode(0); ep.timestamps(key); ep.values(key)

Integrity: :meth:`EpisodeStore.check` (``tactkit dataset verify [--quick]``). The committed
episodes are listed from an index (:mod:`tactkit.store.index`), so opening, listing and
recording cost the same at 10 and at 10,000 episodes.

Training: :func:`align` (grid + diffusion_policy replay-buffer layout, ``workers`` processes),
:func:`cached_view` (aligned once per store content, fps and keys), :class:`ReplayBuffer`
(:meth:`ReplayBuffer.on_disk` for views larger than memory),
:class:`SequenceSampler`, :func:`get_val_mask`, :func:`compute_stats`; the PyTorch dataset that
training uses is :class:`tactkit.policies.data.WindowDataset`.
"""

from tactkit.store.align import align
from tactkit.store.episode_store import FORMAT_NAME, FORMAT_VERSION, Episode, EpisodeStore
from tactkit.store.errors import (
    FormatVersionError,
    NotAStoreError,
    SampleError,
    StoreError,
)
from tactkit.store.recorder import EpisodeRecorder
from tactkit.store.replay_buffer import ReplayBuffer, ReplayBufferWriter
from tactkit.store.sampler import SequenceSampler, create_indices, get_val_mask
from tactkit.store.schema import POSE_NAMES, WRENCH_NAMES, StreamSpec
from tactkit.store.stats import compute_stats
from tactkit.store.view_cache import cached_view

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
    "ReplayBuffer",
    "ReplayBufferWriter",
    "SampleError",
    "SequenceSampler",
    "StoreError",
    "StreamSpec",
    "align",
    "cached_view",
    "compute_stats",
    "create_indices",
    "get_val_mask",
]
