"""Crops, flips and resizes on uint8 (H, W, C) NumPy images.

Paired transforms (super-resolution) cut and flip the LR and HR images identically, so that LR
pixel (y, x) keeps covering HR pixels (y*s .. y*s+s-1, x*s .. x*s+s-1). The random choices come
from a ``numpy.random.Generator``; ``torch_seeded_rng`` makes one from PyTorch's random state, so
data loading is reproducible under ``torch.manual_seed`` and differs between DataLoader workers
(each worker's torch generator is seeded differently).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

__all__ = [
    "augment_pair",
    "center_crop",
    "paired_random_crop",
    "random_crop",
    "random_hflip",
    "resize",
    "torch_seeded_rng",
]


def torch_seeded_rng() -> np.random.Generator:
    """A NumPy generator seeded from one draw of PyTorch's default generator."""
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


def paired_random_crop(
    lr: np.ndarray, hr: np.ndarray, lr_patch: int, scale: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut an aligned pair of patches: LR (lr_patch, lr_patch, C), HR (lr_patch*s, lr_patch*s, C).

    The LR corner is drawn uniformly; the HR corner is that corner times ``scale``. ``hr`` must
    be at least ``scale`` times the LR size (extra HR rows/columns at the bottom/right are
    ignored).
    """
    lr_h, lr_w = lr.shape[:2]
    hr_h, hr_w = hr.shape[:2]
    if lr_patch < 1:
        raise ValueError(f"lr_patch must be >= 1, got {lr_patch}")
    if hr_h < lr_h * scale or hr_w < lr_w * scale:
        raise ValueError(
            f"HR shape {hr.shape[:2]} is smaller than LR shape {lr.shape[:2]} times scale {scale}"
        )
    if lr_h < lr_patch or lr_w < lr_patch:
        raise ValueError(f"LR image {lr_h}x{lr_w} is smaller than the patch size {lr_patch}")
    top = int(rng.integers(0, lr_h - lr_patch + 1))
    left = int(rng.integers(0, lr_w - lr_patch + 1))
    hr_patch = lr_patch * scale
    lr_crop = lr[top : top + lr_patch, left : left + lr_patch]
    hr_crop = hr[top * scale : top * scale + hr_patch, left * scale : left * scale + hr_patch]
    return lr_crop, hr_crop


def augment_pair(
    lr: np.ndarray, hr: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the same random horizontal flip, vertical flip and 90-degree rotation to both
    images (each with probability 1/2: the 8 symmetries of the square). Returns contiguous
    copies."""
    hflip, vflip, rotate = rng.random(3) < 0.5

    def apply(img: np.ndarray) -> np.ndarray:
        if hflip:
            img = img[:, ::-1]
        if vflip:
            img = img[::-1, :]
        if rotate:
            img = np.rot90(img, k=1, axes=(0, 1))
        return np.ascontiguousarray(img)

    return apply(lr), apply(hr)


def resize(img: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize uint8 (H, W, C) to (size, size) or (height, width) with antialiased bilinear
    resampling (aspect ratio not kept, as in NIMA's AVA pipeline)."""
    height, width = (size, size) if isinstance(size, int) else size
    if height < 1 or width < 1:
        raise ValueError(f"resize size must be positive, got {size}")
    if img.shape[:2] == (height, width):
        return img
    resized = Image.fromarray(np.ascontiguousarray(img)).resize(
        (width, height), resample=Image.Resampling.BILINEAR
    )
    return np.asarray(resized, dtype=np.uint8)


def _check_crop(img: np.ndarray, size: int) -> None:
    if size < 1 or img.shape[0] < size or img.shape[1] < size:
        raise ValueError(f"crop size {size} does not fit an image of shape {img.shape[:2]}")


def random_crop(img: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A uniformly placed (size, size) window of (H, W, C)."""
    _check_crop(img, size)
    top = int(rng.integers(0, img.shape[0] - size + 1))
    left = int(rng.integers(0, img.shape[1] - size + 1))
    return img[top : top + size, left : left + size]


def center_crop(img: np.ndarray, size: int) -> np.ndarray:
    """The central (size, size) window of (H, W, C) (rounding the offset down)."""
    _check_crop(img, size)
    top = (img.shape[0] - size) // 2
    left = (img.shape[1] - size) // 2
    return img[top : top + size, left : left + size]


def random_hflip(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Mirror left-right with probability 1/2."""
    return img[:, ::-1] if rng.random() < 0.5 else img
