"""Replay buffers as diffusion_policy, UMI and RDP write them (shared by store and policy tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import zarr

#: the compressor configs diffusion_policy's and UMI's own codec classes write into .zarray
DP_JPEG2K = {"id": "imagecodecs_jpeg2k", "level": 50, "codecformat": None, "colorspace": None, "tile": None,
             "reversible": None, "bitspersample": None, "resolutions": None, "numthreads": None, "verbose": 0}
UMI_JPEGXL = {"id": "imagecodecs_jpegxl", "level": 99, "effort": None, "distance": None, "lossless": True,
              "decodingspeed": None, "photometric": None, "planar": None, "usecontainer": None, "index": None,
              "keeporientation": None, "numthreads": 1}


def camera(n: int, h: int = 24, w: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth camera-like frames (a gradient and a moving bar)."""
    y, x = np.mgrid[0:h, 0:w]
    out = np.empty((n, h, w, 3), np.uint8)
    for i in range(n):
        out[i, ..., 0] = x * 200 // w + 2 * i
        out[i, ..., 1] = y * 255 // h
        out[i, ..., 2] = np.where(np.abs(x - (i * 3 + seed) % w) < 3, 220, 40)
    return out


def random_values(rng: np.random.Generator, spec, n: int) -> np.ndarray:
    """``n`` random samples of a store ``StreamSpec``: bytes for images, unit quaternions for poses."""
    from tactkit.store import POSE_NAMES

    if spec.is_image:
        return rng.integers(0, 255, (n, *spec.shape), dtype=np.uint8)
    if spec.names == POSE_NAMES:
        q = rng.normal(size=(n, 4))
        return np.c_[rng.normal(size=(n, 3)), q / np.linalg.norm(q, axis=1, keepdims=True)]
    return rng.normal(size=(n, *spec.shape)).astype(spec.dtype)


def write_buffer(path: Path, arrays: dict[str, np.ndarray], ends: list[int], compressors: dict[str, dict]) -> None:
    """A zarr-2 buffer; images compressed with imagecodecs' codecs, then the .zarray compressor
    entry rewritten to exactly what diffusion_policy/UMI write."""
    import imagecodecs.numcodecs as icn

    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    data = root.create_group("data")
    for k, v in arrays.items():
        if k in compressors:
            cfg = compressors[k]
            codec = icn.Jpeg2k(level=cfg["level"]) if cfg["id"] == "imagecodecs_jpeg2k" else icn.Jpegxl(level=cfg["level"], lossless=True)
            data.create_array(k, data=v, chunks=(1, *v.shape[1:]), compressors=codec)
        else:
            data.create_array(k, data=v, chunks=(max(1, len(v)), *v.shape[1:]))
    root.create_group("meta").create_array("episode_ends", data=np.asarray(ends, np.int64), chunks=(len(ends),))
    for k, cfg in compressors.items():
        meta = path / "data" / k / ".zarray"
        z = json.loads(meta.read_text())
        z["compressor"] = cfg
        meta.write_text(json.dumps(z))
