"""Image degradations on uint8 (H, W, 3) RGB arrays.

- ``bicubic_downsample``: the low-resolution input of super-resolution. DIV2K's LR images were
  made with MATLAB's ``imresize`` (bicubic, antialiased); Pillow's ``BICUBIC`` resize, which also
  widens its kernel when shrinking, is the closest readily available match. As is usual in SR,
  the HR image is first cropped to a multiple of the scale (bottom and right rows/columns
  dropped), so that LR * scale lines up exactly with the HR image.
- ``gaussian_blur``: the input of the deblurring task (the report blurs the LR images with a
  Gaussian).
- ``add_gaussian_noise``, ``jpeg_compress``, ``reduce_contrast``: further controlled
  degradations, used to make the synthetic aesthetic ratings of the sample data.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = [
    "add_gaussian_noise",
    "bicubic_downsample",
    "crop_to_multiple",
    "gaussian_blur",
    "gaussian_kernel1d",
    "jpeg_compress",
    "reduce_contrast",
]


def _check_uint8_image(img: np.ndarray, name: str = "img") -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3:
        raise ValueError(
            f"{name} must be a uint8 (H, W, C) array, got {type(img).__name__} with dtype "
            f"{getattr(img, 'dtype', None)} and shape {getattr(img, 'shape', None)}"
        )


def crop_to_multiple(img: np.ndarray, scale: int) -> np.ndarray:
    """Crop (H, W, C) to (H - H % scale, W - W % scale), keeping the top-left corner."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    height, width = img.shape[:2]
    return img[: height - height % scale, : width - width % scale]


def bicubic_downsample(img: np.ndarray, scale: int) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H // scale, W // scale, 3) by Pillow bicubic resampling.

    The input is cropped to a multiple of ``scale`` first (see module docstring).
    """
    _check_uint8_image(img)
    if not isinstance(scale, int | np.integer) or scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale!r}")
    hr = crop_to_multiple(img, int(scale))
    height, width = hr.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"image of shape {img.shape} is smaller than the scale {scale}")
    if scale == 1:
        return hr.copy()
    small = Image.fromarray(np.ascontiguousarray(hr)).resize(
        (width // scale, height // scale), resample=Image.Resampling.BICUBIC
    )
    return np.asarray(small, dtype=np.uint8).copy()


def gaussian_kernel1d(sigma: float, kernel_size: int) -> np.ndarray:
    """Normalised 1-D Gaussian weights exp(-x^2 / (2 sigma^2)), x = -(k-1)/2 .. (k-1)/2."""
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd integer, got {kernel_size}")
    offsets = np.arange(kernel_size, dtype=np.float64) - (kernel_size - 1) / 2
    weights = np.exp(-(offsets**2) / (2.0 * sigma**2))
    return weights / weights.sum()


def gaussian_blur(img: np.ndarray, sigma: float, kernel_size: int) -> np.ndarray:
    """Separable Gaussian blur of uint8 (H, W, C) -> uint8 (H, W, C).

    ``kernel_size`` (odd) taps per axis with standard deviation ``sigma`` pixels; borders are
    mirrored without repeating the edge pixel (NumPy "reflect", OpenCV's default).
    """
    _check_uint8_image(img)
    weights = gaussian_kernel1d(sigma, kernel_size).astype(np.float32)
    radius = kernel_size // 2
    out = img.astype(np.float32)
    for axis in (0, 1):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="reflect")
        length = out.shape[axis]
        acc = np.zeros_like(out)
        for tap, weight in enumerate(weights):
            window = [slice(None)] * out.ndim
            window[axis] = slice(tap, tap + length)
            acc += weight * padded[tuple(window)]
        out = acc
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def add_gaussian_noise(img: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Add i.i.d. Gaussian noise with standard deviation ``sigma`` (in 0..255 levels)."""
    _check_uint8_image(img)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, size=img.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def jpeg_compress(img: np.ndarray, quality: int) -> np.ndarray:
    """Round-trip through a JPEG encoder at ``quality`` (1..95)."""
    _check_uint8_image(img)
    if not 1 <= quality <= 95:
        raise ValueError(f"quality must be in 1..95, got {quality}")
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.uint8).copy()


def reduce_contrast(img: np.ndarray, factor: float) -> np.ndarray:
    """Blend towards the image's mean grey: ``mean + factor * (img - mean)``, factor in [0, 1]."""
    _check_uint8_image(img)
    if not 0.0 <= factor <= 1.0:
        raise ValueError(f"factor must be in [0, 1], got {factor}")
    pixels = img.astype(np.float32)
    mean = pixels.mean()
    return np.clip(np.rint(mean + factor * (pixels - mean)), 0, 255).astype(np.uint8)
