"""The baseline every enhancer is measured against: bicubic upsampling of its input (for
deblurring, where the output has the input's size, the input itself).

Used by training validation, the report and ``nie eval`` so that "vs bicubic" means one thing.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bicubic_baseline(lr: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``lr`` (N, 3, h, w), float RGB in [0, 1], bicubically resized to ``size`` (H, W)
    (PyTorch's bicubic, ``align_corners=False``, a = -0.75) and clamped to [0, 1]. When ``size``
    is ``lr``'s own size the result is a clamped copy of ``lr``."""
    if tuple(lr.shape[-2:]) == tuple(size):
        return lr.clamp(0, 1)
    return F.interpolate(lr, size=tuple(size), mode="bicubic", align_corners=False).clamp(0, 1)
