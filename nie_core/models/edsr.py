"""EDSR: Enhanced Deep Residual Network for single-image super-resolution (Lim et al., CVPRW 2017).

Input and output are RGB images in [0, 1], (N, 3, H, W) -> (N, 3, H*scale, W*scale). ``scale=1``
turns the network into a same-size restoration model (e.g. deblurring): no upsampler is built.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import nn

from nie_core.models._registry import register_model
from nie_core.models.common import (
    DIV2K_RGB_MEAN,
    SUPPORTED_SCALES,
    MeanShift,
    ResBlock,
    Upsampler,
    conv2d,
    conv_reach,
)
from nie_core.models.official import build_sr_model


class EDSR(nn.Module):
    """head (conv3x3) -> body (ResBlocks, conv3x3) + global skip -> tail (upsampler, conv3x3).

    Mean shift: the DIV2K RGB mean is subtracted before the head and added back after the tail.

    Attributes:
        scale: upscaling factor, one of 1, 2, 3, 4.
        receptive_radius: how far (in input pixels) an input pixel can influence outputs: the
            3x3 convs on the input grid plus the tail's convs measured in input pixels, rounded
            up. Tiles overlapping by this much stitch into the untiled output exactly.
    """

    def __init__(
        self,
        scale: int = 2,
        n_resblocks: int = 16,
        n_feats: int = 64,
        res_scale: float = 1.0,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
        if n_resblocks < 0:
            raise ValueError(f"n_resblocks must be >= 0, got {n_resblocks}")
        if n_feats < 1:
            raise ValueError(f"n_feats must be >= 1, got {n_feats}")
        self.scale = scale
        self.sub_mean = MeanShift(rgb_mean, sign=-1)
        self.head = nn.Sequential(conv2d(3, n_feats, 3))
        self.body = nn.Sequential(
            *[ResBlock(n_feats, 3, res_scale) for _ in range(n_resblocks)],
            conv2d(n_feats, n_feats, 3),
        )
        self.tail = nn.Sequential(Upsampler(scale, n_feats), conv2d(n_feats, 3, 3))
        self.add_mean = MeanShift(rgb_mean, sign=1)

        upsampler: Upsampler = self.tail[0]
        reach = Fraction(conv_reach(self.head) + conv_reach(self.body))
        reach += upsampler.receptive_reach() + Fraction(1, scale)  # final conv on the output grid
        self.receptive_radius: int = math.ceil(reach)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H*scale, W*scale), roughly [0, 1] (not clamped)."""
        features = self.head(self.sub_mean(x))
        features = features + self.body(features)
        return self.add_mean(self.tail(features))


_EDSR_OPTIONS = ("n_resblocks", "n_feats", "res_scale", "rgb_mean")


@register_model("edsr_baseline")
def edsr_baseline(
    *, scale: int = 2, weights: str | os.PathLike[str] | None = None, **overrides: object
) -> EDSR:
    """EDSR baseline: 16 residual blocks, 64 features, res_scale 1 (1.37M/1.55M/1.52M parameters
    at x2/x3/x4). ``weights``: None, a file saved by this project, or an official EDSR-PyTorch
    checkpoint (e.g. ``edsr_baseline_x2-1bc95232.pt``). ``overrides`` replace any of
    n_resblocks, n_feats, res_scale, rgb_mean."""
    # Lim et al. 2017, Table 1 ("baseline"): B=16, F=64, no residual scaling.
    defaults = {"n_resblocks": 16, "n_feats": 64, "res_scale": 1.0}
    return build_sr_model(EDSR, _EDSR_OPTIONS, weights, overrides, scale=scale, **defaults)


@register_model("edsr")
def edsr(
    *, scale: int = 2, weights: str | os.PathLike[str] | None = None, **overrides: object
) -> EDSR:
    """Full EDSR: 32 residual blocks, 256 features, res_scale 0.1 (40.7M/43.7M/43.1M parameters
    at x2/x3/x4). ``weights`` and ``overrides`` as in :func:`edsr_baseline`."""
    # Lim et al. 2017, Table 1 ("EDSR"): B=32, F=256, residual scaling 0.1.
    defaults = {"n_resblocks": 32, "n_feats": 256, "res_scale": 0.1}
    return build_sr_model(EDSR, _EDSR_OPTIONS, weights, overrides, scale=scale, **defaults)
