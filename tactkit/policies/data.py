"""Training data: an episode store (or replay buffer) -> prepared arrays -> windows.

``load_training_data`` gets the store on the config's control grid from the training-view
cache (:func:`tactkit.store.view_cache.cached_view`: aligned once per store content, fps and
keys, after the store's quick integrity checks), checks every key the config needs, resizes
images to ``image_shape``, embeds tactile marker offsets with
:class:`~tactkit.sensors.embedding.TactilePCA` (fitted here or loaded from ``pca_path``),
builds the min-max normaliser from the data's statistics and splits episodes into
train/validation. :func:`prepare_arrays` is the single place where raw dataset arrays become
policy inputs; inference calls it on each observation window, so training and run time apply
the same resize and the same PCA.

A view that fits the memory budget (:func:`training_memory_budget`) is prepared whole in
memory; a larger one stays on disk: windows are read through a bounded cache of decoded
chunks and prepared one window at a time (:class:`PreparedArray`), so memory does not grow
with the dataset. Both give the same windows.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tactkit.policies.config import PolicyConfig
from tactkit.policies.features import FeatureSpec, Normalizer, make_spec
from tactkit.sensors.embedding import TactilePCA
from tactkit.store import ReplayBuffer, compute_stats

log = logging.getLogger(__name__)


def needed_keys(cfg: PolicyConfig) -> list[str]:
    """Every dataset key a policy trains on (observations, fast signals, actions), in order."""
    keys: list[str] = []
    for k in [*cfg.obs_keys, *cfg.fast_keys, *cfg.action_keys, *cfg.action_anchors.values(), *cfg.target_keys]:
        if k not in keys:
            keys.append(k)
    return keys


def resize_images(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize ``[..., H, W, 3]`` uint8 images to ``shape`` (area interpolation)."""
    if tuple(x.shape[-3:-1]) == tuple(shape):
        return x
    import cv2

    flat = x.reshape(-1, *x.shape[-3:])
    out = np.stack([cv2.resize(im, (shape[1], shape[0]), interpolation=cv2.INTER_AREA) for im in flat])
    return out.reshape(*x.shape[:-3], shape[0], shape[1], x.shape[-1])


def prepare_arrays(
    arrays: dict[str, np.ndarray], specs: dict[str, FeatureSpec], pcas: dict[str, TactilePCA], image_shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """Raw dataset arrays ``[N, *raw_shape]`` -> policy inputs: images resized to
    ``image_shape`` (uint8), tactile keys PCA-embedded (float32 ``[N, k]``), the rest float32."""
    out = {}
    for key, x in arrays.items():
        spec = specs.get(key)
        if spec is None:
            continue
        x = np.asarray(x)
        if spec.kind == "tactile":
            if x.shape[-2:] != spec.raw_shape:
                raise ValueError(f"{key}: expected marker offsets [..., {spec.raw_shape[0]}, 2], got {x.shape}")
            out[key] = pcas[key].transform(x.astype(np.float32))
        elif spec.kind == "image":
            if x.shape[-1] != 3 or x.dtype != np.uint8:
                raise ValueError(f"{key}: expected uint8 images [..., H, W, 3], got {x.dtype} {x.shape}")
            out[key] = resize_images(x, image_shape)
        else:
            if tuple(x.shape[x.ndim - len(spec.raw_shape) :]) != spec.raw_shape:
                raise ValueError(f"{key}: expected trailing shape {spec.raw_shape}, got {x.shape}")
            out[key] = x.astype(np.float32)
    return out


def available_keys(path: str | Path, key_map: dict[str, Any] | None = None) -> list[str]:
    """Stream keys of an episode store, or data keys of a replay buffer, at ``path`` (renamed
    by the config's ``keys`` map)."""
    from tactkit.store import EpisodeStore, NotAStoreError
    from tactkit.store.replay_buffer import mapped_keys

    path = str(path)
    if not Path(path).exists() and "://" not in path:
        raise FileNotFoundError(f"training data not found: {path}")
    try:
        return sorted(mapped_keys(list(EpisodeStore.open(path, mode="r").streams), key_map, path))
    except NotAStoreError:
        return sorted(ReplayBuffer.open(path, key_map=key_map).keys())


def resolve_keys(cfg: PolicyConfig, available: list[str]) -> PolicyConfig:
    """Expand glob patterns in the config's key lists (``observation.tactile.*.marker_offset``)
    against the data's keys; a pattern that matches nothing is an error naming it."""
    import dataclasses
    import fnmatch

    def expand(keys: list[str], field: str) -> list[str]:
        out: list[str] = []
        for k in keys:
            if not any(c in k for c in "*?["):
                out.append(k)
                continue
            hits = sorted(a for a in available if fnmatch.fnmatchcase(a, k))
            if not hits:
                raise KeyError(f"{field}: pattern {k!r} matches no key of the data; keys: {', '.join(available)}")
            out += [h for h in hits if h not in out]
        return out

    return dataclasses.replace(
        cfg,
        obs_keys=expand(cfg.obs_keys, "obs_keys"),
        fast_keys=expand(cfg.fast_keys, "fast_keys"),
        action_keys=expand(cfg.action_keys, "action_keys"),
        target_keys=expand(cfg.target_keys, "target_keys"),
    )


def align_workers() -> int:
    """Processes that build a training view (``TACTKIT_ALIGN_WORKERS``, default: CPUs, <= 8)."""
    return max(1, int(os.environ.get("TACTKIT_ALIGN_WORKERS", min(8, os.cpu_count() or 1))))


def disk_view(path: str | Path, cfg: PolicyConfig, keys: list[str]) -> ReplayBuffer:
    """Aligned training view of ``path`` on disk: for an episode store the cached view at
    ``cfg.fps`` (built on first use), for a replay buffer the buffer itself; it holds ``keys``,
    the data's keys renamed by the config's key map (``cfg.keys``)."""
    from tactkit.store import EpisodeStore, NotAStoreError
    from tactkit.store.replay_buffer import select_key_map
    from tactkit.store.view_cache import cached_view

    path = str(path)
    if not Path(path).exists() and "://" not in path:
        raise FileNotFoundError(f"training data not found: {path}")
    try:
        store = EpisodeStore.open(path, mode="r")
    except NotAStoreError:
        store = None
    key_map, sources = select_key_map(cfg.keys, keys)
    if store is not None:
        missing = [k for k in sources if k not in store.streams]
        if missing:
            raise KeyError(
                f"store {path} has no stream {missing[0]!r} needed by the config; "
                f"streams: {', '.join(sorted(store.streams))}"
            )
        if store.num_episodes == 0:
            raise ValueError(f"store {path} has no committed episodes")
        episodes = None
        if cfg.episodes:
            from tactkit.store.selection import select_episodes

            episodes = select_episodes(store, cfg.episodes)
            log.info("training on %d of %d episodes (%s)", len(episodes), store.num_episodes, cfg.episodes)
        rb = cached_view(store, cfg.fps, sources, workers=align_workers(), episodes=episodes)
        if rb.n_episodes == 0:
            raise ValueError(f"store {path}: no episode could be aligned at {cfg.fps} Hz "
                             f"(skipped: {rb.attrs.get('skipped_episodes')})")
        rb = rb.renamed(key_map)  # the view caches the store's streams; the config's names on top
    else:
        if cfg.episodes:
            raise ValueError(f"episodes={cfg.episodes!r} selects episodes of an episode store by their metadata; "
                             f"{path} is a replay buffer")
        rb = ReplayBuffer.open(path, key_map=key_map)
    available = list(rb.data.keys()) if hasattr(rb.data, "keys") else list(rb.data)
    missing = [k for k in keys if k not in available]
    if missing:
        raise KeyError(f"{path} has no key {missing[0]!r} needed by the config; keys: {', '.join(sorted(available))}")
    return rb


def open_view(path: str | Path, cfg: PolicyConfig, keys: list[str]) -> ReplayBuffer:
    """Aligned training view of ``path`` (an episode store, aligned at ``cfg.fps``, or an
    existing replay buffer) holding ``keys``, loaded into memory."""
    rb = disk_view(path, cfg, keys).on_disk(cache_bytes=0)  # chunk reads, nothing cached
    data = {k: np.asarray(rb.data[k][:]) for k in keys}
    return ReplayBuffer(data, np.asarray(rb.episode_ends[:]), where=str(path))


def _parse_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    t = text.strip().upper().rstrip("B")
    return int(float(t[:-1]) * units[t[-1]]) if t and t[-1] in units else int(float(t))


def _cgroup_memory_limit() -> int | None:
    """This process's cgroup memory limit (v1 or v2), ``None`` when unlimited or unknown."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, rel = line.split(":", 2)
        rel = rel.lstrip("/")
        if "memory" in controllers.split(","):
            files = [Path("/sys/fs/cgroup/memory") / rel / "memory.limit_in_bytes"]
        elif controllers == "":
            files = [Path("/sys/fs/cgroup") / rel / "memory.max",
                     Path("/sys/fs/cgroup/unified") / rel / "memory.max"]
        else:
            continue
        for f in files:
            try:
                text = f.read_text().strip()
            except OSError:
                continue
            if text != "max" and int(text) < 1 << 60:
                return int(text)
    return None


def training_memory_budget() -> int:
    """Bytes of prepared training data held in memory before the on-disk path is taken:
    ``TACTKIT_TRAIN_MEMORY`` (e.g. ``8G``) if set, else 40% of the memory available to this
    process (the smaller of free RAM and its cgroup limit)."""
    if os.environ.get("TACTKIT_TRAIN_MEMORY"):
        return _parse_bytes(os.environ["TACTKIT_TRAIN_MEMORY"])
    avail = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
    except OSError:
        pass
    limits = [x for x in (avail, _cgroup_memory_limit()) if x]
    return int(0.4 * min(limits)) if limits else 4 << 30


#: Chunk cache of the on-disk path (``TACTKIT_CHUNK_CACHE``, e.g. ``512M``).
def chunk_cache_bytes() -> int:
    return _parse_bytes(os.environ.get("TACTKIT_CHUNK_CACHE", "256M"))


#: Rows of each tactile key a PCA is fitted on when the data stays on disk.
PCA_FIT_MAX_ROWS = 200_000


def _with_resized_images(view: ReplayBuffer, raw: ReplayBuffer, keys: list[str],
                         image_shape: tuple[int, int]) -> ReplayBuffer:
    """``raw`` with its camera keys read from a cached, lossless copy of the view whose frames
    are already resized to ``image_shape`` (the same :func:`resize_images` the in-memory path
    applies, so the windows are identical); decoding and resizing a full-size frame per window
    would otherwise dominate training from disk."""
    from tactkit.store.view_cache import derived_view

    images = [k for k in keys if view[k].dtype == np.uint8 and view[k].ndim == 4
              and tuple(view[k].shape[1:3]) != tuple(image_shape)]
    if not images:
        return raw
    small = derived_view(view, f"resize{image_shape[0]}x{image_shape[1]}", images,
                         lambda ep: {k: resize_images(v, image_shape) for k, v in ep.items()})
    if small is None:
        return raw
    data = dict(raw.data)
    cache = next((a.cache for a in raw.data.values() if hasattr(a, "cache")), None)
    resized = small.on_disk(chunk_cache_bytes())
    for k in images:
        arr = resized.data[k]
        if cache is not None and hasattr(arr, "cache"):
            arr.cache = cache  # one bound for all keys
        data[k] = arr
    return ReplayBuffer(data, raw.episode_ends, attrs=raw.attrs, root=raw.root, where=raw.where)


class PreparedArray:
    """A stored array of the view, prepared for the policy (:func:`prepare_arrays`) as it is
    read: ``arr[rows]``, ``arr[a:b]`` and ``arr[a:b, cols]`` read the raw rows through the
    view's chunk cache and prepare just those."""

    fancy_rows = True

    def __init__(self, raw: Any, key: str, specs: dict[str, FeatureSpec], pcas: dict[str, TactilePCA],
                 image_shape: tuple[int, int]) -> None:
        self.raw, self.key = raw, key
        self.specs, self.pcas, self.image_shape = specs, pcas, tuple(image_shape)
        first = self._prepare(np.asarray(raw[0:1]))
        self.shape = (raw.shape[0], *first.shape[1:])
        self.dtype = first.dtype
        self.ndim = len(self.shape)

    def _prepare(self, x: np.ndarray) -> np.ndarray:
        return prepare_arrays({self.key: x}, self.specs, self.pcas, self.image_shape)[self.key]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, sel: Any) -> np.ndarray:
        rest: tuple = ()
        if isinstance(sel, tuple):
            sel, rest = sel[0], sel[1:]
        if isinstance(sel, slice):
            out = self._prepare(np.asarray(self.raw[sel]))
        else:
            rows = np.asarray(sel, dtype=np.int64)
            x = np.asarray(self.raw[rows.reshape(-1)])
            out = self._prepare(x).reshape(*rows.shape, *self.shape[1:])
        return out[(slice(None),) * (1 if isinstance(sel, slice) else np.ndim(sel)) + rest] if rest else out


@dataclass
class TrainingData:
    buffer: ReplayBuffer  # prepared arrays: in memory, or PreparedArray read from disk
    specs: dict[str, FeatureSpec]
    normalizer: Normalizer
    pcas: dict[str, TactilePCA]
    train_mask: np.ndarray  # per episode
    val_mask: np.ndarray


def build_specs(cfg: PolicyConfig, raw_shapes: dict[str, tuple[int, ...]], pcas: dict[str, TactilePCA]) -> dict[str, FeatureSpec]:
    specs = {}
    for k in needed_keys(cfg):
        specs[k] = make_spec(k, raw_shapes[k], pcas[k].n_components if k in pcas else None)
    for k in cfg.action_keys:
        if specs[k].kind in ("image", "tactile"):
            raise ValueError(f"action key {k!r} must be a low-dimensional stream")
    for k in cfg.fast_keys:
        if specs[k].kind == "image":
            raise ValueError(f"fast key {k!r} must be a tactile or wrench stream, not an image")
    return specs


def load_training_data(
    path: str | Path,
    cfg: PolicyConfig,
    normalizer: Normalizer | None = None,
    pcas: dict[str, TactilePCA] | None = None,
    *,
    in_memory: bool | None = None,
) -> TrainingData:
    """Build :class:`TrainingData`. ``normalizer``/``pcas`` (e.g. the tokenizer's, for the
    latent diffusion stage) are reused for the keys they cover; the rest are fitted here.
    ``in_memory``: prepare the whole view in memory (True) or read windows from disk (False);
    default: in memory when the decoded view fits :func:`training_memory_budget`."""
    keys = needed_keys(cfg)
    view = disk_view(path, cfg, keys)
    if in_memory is None:
        need = sum(view.n_steps * int(np.prod(view[k].shape[1:], dtype=np.int64)) * np.dtype(view[k].dtype).itemsize
                   for k in keys)
        in_memory = 2 * need <= training_memory_budget()  # raw and prepared copies
        if not in_memory:
            log.info("training data %s: %.1f GB decoded exceeds the memory budget; reading "
                     "windows from the on-disk view", path, need / 1e9)
    if in_memory:
        whole = view.on_disk(cache_bytes=0)  # chunk reads, nothing cached
        raw = ReplayBuffer({k: np.asarray(whole.data[k][:]) for k in keys},
                           np.asarray(view.episode_ends[:]), where=str(path))
    else:
        raw = view.on_disk(chunk_cache_bytes())
    raw_shapes = {k: tuple(raw.data[k].shape[1:]) for k in keys}
    if not in_memory:  # camera frames resized to the policy's input once, not per window
        raw = _with_resized_images(view, raw, keys, tuple(cfg.image_shape))
    pcas = dict(pcas or {})
    for k in keys:
        if k.startswith("observation.tactile.") and k.endswith("marker_offset") and k not in pcas:
            if cfg.pca_path:
                pcas[k] = TactilePCA.load(_pca_file(cfg.pca_path, k))
            else:
                x = raw.data[k]
                if not in_memory and x.shape[0] > PCA_FIT_MAX_ROWS:  # a uniform sample of rows
                    rows = np.sort(np.random.default_rng(cfg.seed).choice(x.shape[0], PCA_FIT_MAX_ROWS, replace=False))
                    x = x[rows]
                pcas[k] = TactilePCA.fit(np.asarray(x[:]) if not isinstance(x, np.ndarray) else x,
                                         n_components=cfg.pca_components, metadata={"key": k, "data": str(path)})
    specs = build_specs(cfg, raw_shapes, pcas)
    for k, p in pcas.items():
        if k in specs and p.n_markers != specs[k].raw_shape[0]:
            raise ValueError(f"tactile PCA for {k!r} expects {p.n_markers} markers, data has {specs[k].raw_shape[0]}")
    if in_memory:
        arrays: dict[str, Any] = prepare_arrays(raw.data, specs, pcas, tuple(cfg.image_shape))
        for k, x in arrays.items():
            if specs[k].kind != "image" and not np.isfinite(x).all():
                raise ValueError(f"{k}: training data contains NaN or Inf")
    else:
        arrays = {k: PreparedArray(raw.data[k], k, specs, pcas, tuple(cfg.image_shape)) for k in keys}
    buffer = ReplayBuffer(arrays, raw.episode_ends, where=str(path))
    stats = compute_stats(buffer, keys=[k for k, s in specs.items() if s.kind != "image"])
    if not in_memory:  # the streaming pass saw every value: a NaN or Inf shows in its statistics
        for k, st in stats.items():
            if not all(np.isfinite(st[n]).all() for n in ("min", "max", "mean")):
                raise ValueError(f"{k}: training data contains NaN or Inf")
    stats.update(relative_action_stats(buffer, cfg))
    fitted = Normalizer.from_stats([s for s in specs.values() if s.kind != "image"], stats)
    if normalizer is not None:  # keep the given entries, add the missing ones
        params = dict(fitted.params)
        params.update(normalizer.params)
        fitted = Normalizer(params)
    train_mask, val_mask = split_episodes(buffer.n_episodes, cfg.val_ratio, cfg.seed)
    log.info(
        "training data %s: %d episodes (%d train, %d val), %d steps at %.1f Hz, %s",
        path, buffer.n_episodes, int(train_mask.sum()), int(val_mask.sum()), buffer.n_steps, cfg.fps,
        "in memory" if in_memory else "read from disk",
    )
    return TrainingData(buffer, specs, fitted, pcas, train_mask, val_mask)


def relative_action_stats(buffer: ReplayBuffer, cfg: PolicyConfig) -> dict[str, dict[str, np.ndarray]]:
    """xyz ``min``/``max`` of every relative pose action over every training window (the
    windows :class:`WindowDataset` draws, edge frames repeated); empty without
    ``relative_actions``."""
    out = {}
    offsets = np.arange(cfg.horizon) - (cfg.n_obs_steps - 1)  # action frames around the anchor frame
    for ak, ok in cfg.action_anchors.items():
        lo, hi = np.full(3, np.inf), np.full(3, -np.inf)
        start = 0
        for end in buffer.episode_ends:
            a = np.asarray(buffer[ak][start:end, :3], dtype=np.float64)
            p = np.asarray(buffer[ok][start:end, :3], dtype=np.float64)
            n = end - start
            if n:  # every frame anchors one window; its actions are the clipped frames around it
                idx = np.clip(np.arange(n)[:, None] + offsets[None], 0, n - 1)
                rel = a[idx] - p[:, None]
                lo, hi = np.minimum(lo, rel.min(axis=(0, 1))), np.maximum(hi, rel.max(axis=(0, 1)))
            start = end
        out[ak] = {"min": lo, "max": hi}
    return out


def _pca_file(pca_path: str, key: str) -> Path:
    p = Path(pca_path)
    if p.is_dir():
        p = p / f"{key}.safetensors"
    if not p.is_file():
        raise FileNotFoundError(f"tactile PCA file for {key!r} not found: {p}")
    return p


def split_episodes(n_episodes: int, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean train/validation masks over episodes (``tactkit.store.get_val_mask``)."""
    from tactkit.store import get_val_mask

    if val_ratio <= 0:
        val = np.zeros(n_episodes, dtype=bool)
    else:
        val = np.asarray(get_val_mask(n_episodes, val_ratio, seed), dtype=bool)
    return ~val, val


class WindowDataset(torch.utils.data.Dataset):
    """Windows of ``horizon`` steps (``tactkit.store.SequenceSampler`` semantics): observation
    keys keep their first ``n_obs_steps`` frames, fast, action and target keys the whole horizon."""

    def __init__(self, data: TrainingData, cfg: PolicyConfig, episode_mask: np.ndarray) -> None:
        from tactkit.store import SequenceSampler

        keys = needed_keys(cfg)
        self.anchors = cfg.action_anchors
        self.anchor_step = cfg.n_obs_steps - 1
        full = set(cfg.fast_keys) | set(cfg.action_keys) | set(cfg.target_keys)
        first_k = {k: cfg.n_obs_steps for k in keys if k not in full}
        self.first_k = first_k
        self.sampler = SequenceSampler(
            data.buffer,
            sequence_length=cfg.horizon,
            pad_before=cfg.n_obs_steps - 1,
            pad_after=cfg.horizon - cfg.n_obs_steps,
            keys=keys,
            key_first_k=first_k,
            episode_mask=episode_mask,
            lazy_keys=[k for k in keys if not isinstance(data.buffer[k], np.ndarray)],  # on disk
        )

    def __len__(self) -> int:
        return len(self.sampler)

    def __getitem__(self, i: int) -> dict[str, Any]:
        out = {}
        for k, v in self.sampler.sample_sequence(i).items():
            if k in self.first_k:  # the sampler leaves frames after the first k unfilled
                v = v[: self.first_k[k]]
            out[k] = torch.from_numpy(np.ascontiguousarray(v))
        for ak, ok in self.anchors.items():  # relative_actions: xyz from the newest observed pose
            out[ak] = out[ak].clone()
            out[ak][:, :3] -= out[ok][self.anchor_step, :3]
        return out
