"""Reading, decoding and writing images as uint8 RGB arrays and float tensors.

Every reader returns a NumPy array of shape (H, W, 3), dtype uint8, RGB. The conversions are:

- grayscale ("1", "L", 16-bit "I;16", 32-bit "I") is replicated to three channels;
- palette images are expanded through their palette;
- images with transparency (RGBA, LA, PA, palette with a transparent entry) are composited on
  a white background. Dropping the alpha channel instead would expose whatever colour the
  encoder left under fully transparent pixels (often black or noise), which is not what a
  viewer shows;
- 16-bit samples are scaled to 8 bits with ``round(v * 255 / 65535)`` (Pillow's own ``convert``
  clips them at 255 instead). 16-bit RGB(A) PNGs are reduced to their high byte by Pillow's
  decoder, which is ``floor(v / 256)``: also a scaling, never a clip;
- the EXIF orientation tag is applied (``ImageOps.exif_transpose``), so a portrait photo taken
  with a rotated camera comes out upright.

``decode_image`` is for bytes from outside (an HTTP upload): it refuses an image whose header
declares more than ``max_pixels`` pixels before any pixel is decoded (``Image.open`` only reads
the header), so a small file that expands to gigabytes (a decompression bomb) costs nothing.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

__all__ = [
    "ImageDecodeError",
    "ImageTooLargeError",
    "decode_image",
    "encode_png",
    "pil_to_rgb_array",
    "read_image",
    "save_image",
    "to_tensor",
    "to_uint8",
]

# What Pillow raises for malformed data besides OSError (which covers UnidentifiedImageError
# and "image file is truncated").
_DECODER_ERRORS = (OSError, SyntaxError, ValueError, struct.error, EOFError, IndexError)


class ImageDecodeError(ValueError):
    """The data is not an image Pillow can read, or the file is truncated or corrupt."""


class ImageTooLargeError(ValueError):
    """The image declares more pixels than allowed (a possible decompression bomb)."""


def _pixel_limit(max_pixels: int | None) -> int | None:
    """The tighter of ``max_pixels`` and Pillow's own ``Image.MAX_IMAGE_PIXELS`` (where Pillow
    starts warning about decompression bombs); None when neither limits anything."""
    limits = [limit for limit in (max_pixels, Image.MAX_IMAGE_PIXELS) if limit is not None]
    return min(limits) if limits else None


def _check_pixel_count(img: Image.Image, max_pixels: int | None, source: str) -> None:
    width, height = img.size
    limit = _pixel_limit(max_pixels)
    if limit is not None and width * height > limit:
        raise ImageTooLargeError(
            f"{source}: image of {width}x{height} = {width * height} pixels exceeds the limit "
            f"of {limit} pixels"
        )


def _scale_to_uint8(values: np.ndarray, max_value: float) -> np.ndarray:
    scaled = np.clip(values.astype(np.float64), 0.0, max_value) * (255.0 / max_value)
    return np.rint(scaled).astype(np.uint8)


def pil_to_rgb_array(img: Image.Image) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to a uint8 (H, W, 3) RGB array.

    Conversions as in the module docstring (transparency composited on white, 16-bit scaled,
    grayscale replicated). The EXIF orientation is *not* applied here; see ``read_image``.
    """
    mode = img.mode
    if mode.startswith("I;16"):
        gray = _scale_to_uint8(np.asarray(img).astype(np.uint16), 65535.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "I":
        # 32-bit integer images come from 16-bit sources (PNG, TIFF) in practice.
        gray = _scale_to_uint8(np.asarray(img), 65535.0)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if mode == "F":
        # Floating point images are taken to hold values in [0, 1].
        gray = _scale_to_uint8(np.asarray(img), 1.0)
        return np.repeat(gray[:, :, None], 3, axis=2)

    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode in ("P", "L", "RGB") and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"), dtype=np.uint8)
    if mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)


def _open_and_convert(
    source: str | io.BytesIO, name: str, max_pixels: int | None, draft_size: tuple[int, int] | None
) -> np.ndarray:
    try:
        with Image.open(source) as img:
            # Image.open has read the header only: refuse oversized images before decoding.
            _check_pixel_count(img, max_pixels, name)
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", draft_size)
            img.load()  # force the full decode here, where errors are caught
            upright = ImageOps.exif_transpose(img)
            return pil_to_rgb_array(upright)
    except ImageTooLargeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        # DecompressionBombWarning is raised only when warnings are configured as errors.
        raise ImageTooLargeError(f"{name}: {err}") from err
    except _DECODER_ERRORS as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ImageDecodeError(f"{name}: cannot decode image ({err})") from err


def read_image(
    path: str | os.PathLike[str],
    max_pixels: int | None = None,
    draft_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read an image file as uint8 (H, W, 3) RGB, upright according to its EXIF orientation.

    ``max_pixels`` refuses larger images (``ImageTooLargeError``) before decoding. With
    ``draft_size=(w, h)``, JPEGs are decoded at a reduced DCT scale that is still at least that
    large (much faster for big photos that are resized anyway). Raises ``FileNotFoundError`` for a
    missing file and ``ImageDecodeError`` for a corrupt or truncated one.
    """
    path = os.fspath(path)
    return _open_and_convert(path, path, max_pixels, draft_size)


def decode_image(data: bytes, max_pixels: int | None) -> np.ndarray:
    """Decode untrusted image bytes (e.g. an upload) to uint8 (H, W, 3) RGB.

    The pixel count from the header is checked against ``max_pixels`` (and Pillow's
    ``Image.MAX_IMAGE_PIXELS``) before decoding: ``ImageTooLargeError``. Bytes that are not an
    image, or a truncated or corrupt image: ``ImageDecodeError``. Both subclass ``ValueError``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ImageDecodeError(f"expected image bytes, got {type(data).__name__}")
    if len(data) == 0:
        raise ImageDecodeError("empty image data (0 bytes)")
    if max_pixels is not None and max_pixels <= 0:
        raise ValueError(f"max_pixels must be positive or None, got {max_pixels}")
    return _open_and_convert(io.BytesIO(bytes(data)), "uploaded image", max_pixels, None)


PNG_COMPRESS_LEVEL = 3  # zlib level of encode_png: see its docstring


def encode_png(image: np.ndarray, compress_level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """uint8 (H, W, 3) RGB -> PNG bytes (lossless at any level).

    Level 3 rather than zlib's default 6: on a 512 x 512 photo it encodes about 3.5x faster
    (27 against 93 ms here) for a file about 7% larger, which matters when the encoding sits in
    a request's latency.
    """
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(
            f"encode_png expects a uint8 (H, W, 3) array, got {type(image).__name__} with "
            f"dtype {getattr(image, 'dtype', None)} and shape {getattr(image, 'shape', None)}"
        )
    if not 0 <= compress_level <= 9:
        raise ValueError(f"compress_level must be in 0..9, got {compress_level}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(
        buffer, format="PNG", compress_level=compress_level
    )
    return buffer.getvalue()


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) array -> float32 tensor (3, H, W) with values in [0, 1]."""
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise ValueError(
            f"to_tensor expects a uint8 numpy array, got {type(img).__name__} "
            f"with dtype {getattr(img, 'dtype', None)}"
        )
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"to_tensor expects shape (H, W, 3), got {img.shape}")
    # A fresh float32 copy: also safe for read-only (memory-mapped) inputs.
    chw = np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
    return torch.from_numpy(chw).div_(255.0)


_UINT8_BLOCK_ROWS = 512  # rows converted at a time by to_uint8


def to_uint8(t: torch.Tensor) -> np.ndarray:
    """Float tensor (3, H, W) (or (1, 3, H, W)) in [0, 1] -> uint8 (H, W, 3), clamped and
    rounded to the nearest level."""
    if t.ndim == 4 and t.shape[0] == 1:
        t = t[0]
    if t.ndim != 3 or t.shape[0] != 3:
        raise ValueError(f"to_uint8 expects shape (3, H, W), got {tuple(t.shape)}")
    t = t.detach()
    height, width = t.shape[1:]
    out = np.empty((height, width, 3), dtype=np.uint8)
    # A block of rows at a time: converting an 8192 x 8192 output at once would hold two more
    # float32 copies of it (about 1.6 GB) on top of the output itself.
    for top in range(0, height, _UINT8_BLOCK_ROWS):
        block = t[:, top : top + _UINT8_BLOCK_ROWS].to("cpu", torch.float32)
        levels = block.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
        out[top : top + levels.shape[1]] = levels.permute(1, 2, 0).numpy()
    return out


def save_image(
    path: str | os.PathLike[str], image: torch.Tensor | np.ndarray, **save_kwargs
) -> None:
    """Write a (3, H, W) float tensor in [0, 1] or a uint8 (H, W, 3) array to ``path``.

    The format follows the file extension; ``save_kwargs`` go to ``PIL.Image.save`` (for example
    ``quality=90`` for JPEG). Parent folders are created.
    """
    if isinstance(image, torch.Tensor):
        array = to_uint8(image)
    elif (
        isinstance(image, np.ndarray)
        and image.dtype == np.uint8
        and image.ndim == 3
        and (image.shape[2] == 3)
    ):
        array = image
    else:
        raise ValueError(
            f"save_image expects a (3, H, W) tensor or a uint8 (H, W, 3) array, got "
            f"{type(image).__name__} with shape {getattr(image, 'shape', None)}"
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(array)).save(path, **save_kwargs)
