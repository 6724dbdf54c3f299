"""The photographs the benchmarks compute on: scikit-image's bundled ones, and LR/HR pairs cut
from them."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def photo(name: str = "astronaut.png") -> Any:
    """One of scikit-image's bundled photographs as uint8 (H, W, 3) RGB."""
    from importlib import resources

    from nie_core.data.images import read_image

    return read_image(str(resources.files("skimage.data") / name))


def photo_pair(lr_side: int, scale: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR (1, 3, s, s), HR (1, 3, scale*s, scale*s)): a centre crop of scikit-image's astronaut
    photo (resized with Pillow when the crop would exceed it) and its bicubic downsampling."""
    from PIL import Image

    from nie_core.data.degradations import bicubic_downsample
    from nie_core.data.images import to_tensor

    image = photo("astronaut.png")
    side = lr_side * scale
    if side > min(image.shape[:2]):
        image = np.asarray(Image.fromarray(image).resize((side, side), Image.Resampling.LANCZOS))
    top = (image.shape[0] - side) // 2
    left = (image.shape[1] - side) // 2
    hr = np.ascontiguousarray(image[top : top + side, left : left + side])
    lr = bicubic_downsample(hr, scale)
    return to_tensor(lr)[None], to_tensor(hr)[None]
