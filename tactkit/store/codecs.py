"""Compression for episode streams.

Camera frames go through :class:`JpegCodec`, a Zarr 3 array-to-bytes codec backed by
imagecodecs' libjpeg-turbo (one frame per chunk, ~8-15x on camera frames at quality 90).
Everything else is lossless: Zstandard through Blosc with byte shuffle.

The codec is registered under the name ``tactkit.jpeg`` when this module is imported
(:mod:`tactkit.store` imports it), so any process that imports tactkit can read the arrays.
Importing it also registers imagecodecs' numcodecs codecs (``imagecodecs_jpeg2k``,
``imagecodecs_jpegxl``, ``imagecodecs_webp``, ...), the image compressors diffusion_policy,
UMI and RDP write their replay buffers with, so those buffers open without their code.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import imagecodecs
import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.codecs import BloscCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

if TYPE_CHECKING:
    from typing import Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

JPEG_CODEC_NAME = "tactkit.jpeg"

#: Encoding runs in a worker thread only for chunks above this many bytes; small frames are
#: cheaper to encode inline than to hand to a thread.
_THREAD_MIN_BYTES = 64 * 1024


@dataclass(frozen=True)
class JpegCodec(ArrayBytesCodec):
    """Lossy JPEG for uint8 image chunks shaped ``(frames, H, W, C)`` with C in (1, 3).

    Each chunk is normally one frame. Chunks holding several frames are stacked vertically
    into one image (H*frames x W) before encoding, so any chunk shape round-trips.
    """

    is_fixed_size = False
    quality: int = 90

    def __init__(self, *, quality: int = 90) -> None:
        quality = int(quality)
        if not 1 <= quality <= 100:
            raise ValueError(f"JPEG quality must be in 1..100, got {quality}")
        object.__setattr__(self, "quality", quality)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _, config = parse_named_configuration(data, JPEG_CODEC_NAME, require_configuration=False)
        return cls(**(config or {}))

    def to_dict(self) -> dict[str, Any]:
        return {"name": JPEG_CODEC_NAME, "configuration": {"quality": self.quality}}

    def validate(self, *, shape: tuple[int, ...], dtype: Any, chunk_grid: Any) -> None:
        native = dtype.to_native_dtype() if hasattr(dtype, "to_native_dtype") else np.dtype(dtype)
        if native != np.uint8:
            raise ValueError(f"{JPEG_CODEC_NAME} needs uint8 data, got {native}")
        if len(shape) != 4 or shape[-1] not in (1, 3):
            raise ValueError(f"{JPEG_CODEC_NAME} needs (frames, H, W, C in 1|3) arrays, got {shape}")

    def _encode_np(self, arr: np.ndarray) -> bytes:
        f, h, w, c = arr.shape
        img = arr.reshape(f * h, w, c)
        if c == 1:
            img = img[..., 0]
        return bytes(imagecodecs.jpeg8_encode(np.ascontiguousarray(img), level=self.quality))

    @staticmethod
    def _decode_np(data: bytes, shape: tuple[int, ...]) -> np.ndarray:
        return np.asarray(imagecodecs.jpeg8_decode(data)).reshape(shape)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        data = chunk_bytes.to_bytes()
        if len(data) >= _THREAD_MIN_BYTES // 8:
            arr = await asyncio.to_thread(self._decode_np, data, chunk_spec.shape)
        else:
            arr = self._decode_np(data, chunk_spec.shape)
        return chunk_spec.prototype.nd_buffer.from_ndarray_like(arr)

    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        arr = np.asarray(chunk_array.as_ndarray_like())
        if arr.nbytes >= _THREAD_MIN_BYTES:
            out = await asyncio.to_thread(self._encode_np, arr)
        else:
            out = self._encode_np(arr)
        return chunk_spec.prototype.buffer.from_bytes(out)

    def compute_encoded_size(self, input_byte_length: int, _chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("JPEG output size is variable")


register_codec(JPEG_CODEC_NAME, JpegCodec)


def register_image_codecs() -> None:
    """Register imagecodecs' numcodecs codecs (Jpeg2k, JpegXL, WebP, PNG, ...) by their
    ``imagecodecs_*`` ids, the ids diffusion_policy/UMI/RDP buffers name in their metadata."""
    import imagecodecs.numcodecs

    imagecodecs.numcodecs.register_codecs(verbose=False)


register_image_codecs()


def lossless_compressor(itemsize: int) -> BloscCodec:
    """Zstd level 3 with byte shuffle: lossless, fast, ~2-6x on sensor streams."""
    return BloscCodec(cname="zstd", clevel=3, shuffle="shuffle", typesize=max(1, itemsize))
