"""Tactile embedding: PCA of marker offsets (RDP's low-dimensional tactile signal).

Reactive Diffusion Policy feeds the fast decoder a ~15-D PCA projection of the 63x2 marker
offset field of each GelSight pad instead of the raw field. :class:`TactilePCA` fits that
projection on recorded offsets and applies it to numpy arrays or torch tensors (on the
tensor's own device, without a host round trip), so the same fitted file serves recording
tools, training and the controller's fast loop.

Saved as one ``.safetensors`` file (mean, components, explained variance; metadata in the
header as JSON), never pickle::

    pca = TactilePCA.fit(offsets, n_components=15)   # offsets [N, 63, 2] or [N, 126]
    z = pca.transform(offsets)                       # [N, 15]
    pca.save("tactile_pca.safetensors")
    pca = TactilePCA.load("tactile_pca.safetensors")

Fit from an episode store with :func:`fit_pca_from_store` or ``tactkit tactile fit-pca STORE``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

FORMAT = "tactkit.tactile_pca/1"


class TactilePCA:
    """Linear projection ``z = (x - mean) @ components.T`` of flattened marker offsets.

    ``components`` are orthonormal rows sorted by explained variance. Inputs may be shaped
    ``[..., M, 2]`` (marker offsets) or ``[..., M*2]`` (flattened, x/y interleaved per marker).
    """

    def __init__(
        self,
        mean: np.ndarray,
        components: np.ndarray,
        explained_variance: np.ndarray,
        total_variance: float,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        mean = np.asarray(mean, dtype=np.float64).reshape(-1)
        components = np.asarray(components, dtype=np.float64)
        if components.ndim != 2 or components.shape[1] != mean.shape[0]:
            raise ValueError(
                f"components must be [k, {mean.shape[0]}] to match mean, got {components.shape}"
            )
        if mean.shape[0] % 2:
            raise ValueError(f"feature size must be M*2 (x, y per marker), got {mean.shape[0]}")
        self.mean = mean
        self.components = components
        self.explained_variance = np.asarray(explained_variance, dtype=np.float64).reshape(-1)
        self.total_variance = float(total_variance)
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._torch_cache: dict[tuple[Any, Any], tuple[Any, Any]] = {}

    # ------------------------------------------------------------------ properties
    @property
    def n_components(self) -> int:
        return int(self.components.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    @property
    def n_markers(self) -> int:
        return self.n_features // 2

    @property
    def explained_variance_ratio(self) -> np.ndarray:
        """Fraction of the training data's total variance each component explains."""
        if self.total_variance <= 0:
            return np.zeros_like(self.explained_variance)
        return self.explained_variance / self.total_variance

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls, offsets: np.ndarray, n_components: int = 15, metadata: dict[str, Any] | None = None
    ) -> TactilePCA:
        """Fit on ``offsets`` shaped ``[N, M, 2]`` or ``[N, M*2]`` (N samples)."""
        x = np.asarray(offsets, dtype=np.float64)
        if x.ndim == 3:
            if x.shape[2] != 2:
                raise ValueError(f"offsets must be [N, M, 2] or [N, M*2], got shape {x.shape}")
            x = x.reshape(x.shape[0], -1)
        elif x.ndim != 2:
            raise ValueError(f"offsets must be [N, M, 2] or [N, M*2], got shape {x.shape}")
        n, d = x.shape
        if d % 2:
            raise ValueError(f"offsets feature size must be M*2, got {d}")
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).any(axis=1).sum())
            raise ValueError(f"offsets contain non-finite values in {bad} of {n} samples")
        if not 1 <= n_components <= min(n, d):
            raise ValueError(
                f"n_components must be in [1, min(samples={n}, features={d})], got {n_components}"
            )
        mean = x.mean(axis=0)
        xc = x - mean
        # Economy SVD: rows of vt are principal axes, s**2/(n-1) their variances.
        _, s, vt = np.linalg.svd(xc, full_matrices=False)
        var = s**2 / max(n - 1, 1)
        comps = vt[:n_components]
        # Deterministic sign: the largest-magnitude loading of each axis is positive.
        idx = np.argmax(np.abs(comps), axis=1)
        comps = comps * np.sign(comps[np.arange(n_components), idx])[:, None]
        meta = {"n_samples": int(n), **(metadata or {})}
        pca = cls(mean, comps, var[:n_components], float(var.sum()), meta)
        log.info(
            "tactile PCA: %d samples x %d features -> %d components, %.1f%% variance explained",
            n, d, n_components, 100 * pca.explained_variance_ratio.sum(),
        )
        return pca

    # ------------------------------------------------------------------ applying
    def _flatten(self, x: Any) -> Any:
        shape = tuple(x.shape)
        if len(shape) >= 2 and shape[-1] == 2 and shape[-2] == self.n_markers:
            return x.reshape(*shape[:-2], self.n_features)
        if len(shape) >= 1 and shape[-1] == self.n_features:
            return x
        raise ValueError(
            f"expected offsets shaped [..., {self.n_markers}, 2] or [..., {self.n_features}], got {shape}"
        )

    def _torch_params(self, like: Any) -> tuple[Any, Any]:
        import torch

        dtype = like.dtype if like.dtype.is_floating_point else torch.float32
        key = (like.device, dtype)
        params = self._torch_cache.get(key)
        if params is None:
            mean = torch.as_tensor(self.mean, dtype=dtype, device=like.device)
            comps = torch.as_tensor(self.components, dtype=dtype, device=like.device)
            params = self._torch_cache[key] = (mean, comps)
        return params

    def transform(self, x: Any) -> Any:
        """Project offsets ``[..., M, 2]`` or ``[..., M*2]`` to ``[..., k]``.

        numpy in, numpy (float32 unless the input is float64) out; a torch tensor stays on its
        device and keeps its floating dtype.
        """
        if _is_tensor(x):
            mean, comps = self._torch_params(x)
            flat = self._flatten(x).to(mean.dtype)
            return (flat - mean) @ comps.T
        arr = np.asarray(x)
        out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
        flat = self._flatten(arr).astype(np.float64, copy=False)
        return ((flat - self.mean) @ self.components.T).astype(out_dtype, copy=False)

    def inverse_transform(self, z: Any, flat: bool = False) -> Any:
        """Reconstruct offsets from ``[..., k]`` codes: ``[..., M, 2]`` (or ``[..., M*2]`` if ``flat``)."""
        if tuple(z.shape)[-1:] != (self.n_components,):
            raise ValueError(f"expected codes shaped [..., {self.n_components}], got {tuple(z.shape)}")
        if _is_tensor(z):
            mean, comps = self._torch_params(z)
            x = z.to(mean.dtype) @ comps + mean
        else:
            arr = np.asarray(z)
            out_dtype = np.float64 if arr.dtype == np.float64 else np.float32
            x = (arr.astype(np.float64) @ self.components + self.mean).astype(out_dtype)
        if flat:
            return x
        return x.reshape(*tuple(x.shape)[:-1], self.n_markers, 2)

    def reconstruction_rmse(self, offsets: np.ndarray) -> float:
        """Root-mean-square error of ``inverse_transform(transform(offsets))`` (same units as input)."""
        x = self._flatten(np.asarray(offsets, dtype=np.float64))
        rec = self.inverse_transform(self.transform(x), flat=True)
        return float(np.sqrt(np.mean((x - rec) ** 2)))

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> Path:
        """Write one ``.safetensors`` file (tensors + JSON metadata in the header)."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {
            "format": FORMAT,
            "total_variance": repr(self.total_variance),
            "metadata": json.dumps(self.metadata, sort_keys=True, default=str),
        }
        save_file(
            {
                "mean": np.ascontiguousarray(self.mean),
                "components": np.ascontiguousarray(self.components),
                "explained_variance": np.ascontiguousarray(self.explained_variance),
            },
            str(path),
            metadata=header,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> TactilePCA:
        """Read a file written by :meth:`save`."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"tactile PCA file not found: {path}")
        with safe_open(str(path), framework="numpy") as f:
            header = f.metadata() or {}
            if header.get("format") != FORMAT:
                raise ValueError(f"{path}: not a tactile PCA file (format={header.get('format')!r})")
            tensors = {k: f.get_tensor(k) for k in ("mean", "components", "explained_variance")}
        return cls(
            tensors["mean"],
            tensors["components"],
            tensors["explained_variance"],
            float(header["total_variance"]),
            json.loads(header.get("metadata", "{}")),
        )

    def __repr__(self) -> str:
        return (
            f"TactilePCA(markers={self.n_markers}, components={self.n_components}, "
            f"explained={self.explained_variance_ratio.sum():.3f})"
        )


def _is_tensor(x: Any) -> bool:
    mod = type(x).__module__
    return mod.startswith("torch") and hasattr(x, "device")


def load_offsets_from_store(
    store_path: str | Path,
    keys: str | list[str] | None = None,
    episodes: list[int] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Marker offsets ``[N, M, 2]`` of stream(s) ``keys`` over the chosen (default: all) episodes.

    ``keys=None`` takes every ``observation.tactile.*.marker_offset`` stream in the store; the
    samples of several keys (e.g. left and right pad) are stacked, so one PCA serves them all.
    """
    from tactkit.store import EpisodeStore

    store = EpisodeStore.open(str(store_path), mode="r")
    if keys is None:
        keys = tactile_keys(store.streams)
        if not keys:
            raise KeyError(
                f"{store_path}: no observation.tactile.*.marker_offset stream; "
                f"streams: {', '.join(sorted(store.streams))}"
            )
    elif isinstance(keys, str):
        keys = [keys]
    for key in keys:
        if key not in store.streams:
            raise KeyError(f"{store_path}: no stream {key!r}; streams: {', '.join(sorted(store.streams))}")
    n_eps = store.num_episodes
    if n_eps == 0:
        raise ValueError(f"{store_path}: store has no committed episodes")
    chunks = []
    for i in episodes if episodes is not None else range(n_eps):
        if not 0 <= i < n_eps:
            raise ValueError(f"episode index {i} out of range (store has {n_eps})")
        ep = store.episode(i)
        for key in keys:
            v = np.asarray(ep.values(key), dtype=np.float32)
            chunks.append(v.reshape(v.shape[0], -1, 2) if v.ndim == 2 else v)
    shapes = {c.shape[1:] for c in chunks}
    if len(shapes) != 1 or next(iter(shapes))[-1:] != (2,) or len(next(iter(shapes))) != 2:
        raise ValueError(f"streams {keys} are not marker offset streams of one shape [M, 2]: {shapes}")
    x = np.concatenate(chunks, axis=0)
    if len(x) == 0:
        raise ValueError(f"{store_path}: streams {keys} hold no samples")
    return x, list(keys)


def tactile_keys(streams: dict[str, Any]) -> list[str]:
    """Marker offset stream keys among ``streams`` (``observation.tactile.*.marker_offset``)."""
    return sorted(k for k in streams if k.startswith("observation.tactile.") and k.endswith("marker_offset"))


def fit_pca_from_store(
    store_path: str | Path,
    key: str | list[str] | None = None,
    n_components: int = 15,
    episodes: list[int] | None = None,
) -> TactilePCA:
    """Fit a :class:`TactilePCA` on marker offset stream(s) of an episode store (all episodes by default)."""
    offsets, keys = load_offsets_from_store(store_path, key, episodes)
    return TactilePCA.fit(
        offsets,
        n_components=n_components,
        metadata={"store": str(store_path), "keys": keys, "episodes": episodes},
    )
