"""MDSR: multi-scale deep super-resolution network (Lim et al., CVPRW 2017, Sec. 3.3).

One network serves several upscaling factors: a shared head and body, plus per-scale
pre-processing (two 5x5 residual blocks) and per-scale upsamplers. Input and output are RGB images
in [0, 1]; ``forward(x, scale)`` picks the branch.
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
    MeanShift,
    ResBlock,
    Upsampler,
    conv2d,
    conv_reach,
)
from nie_core.models.official import build_sr_model

MDSR_SCALES: tuple[int, ...] = (2, 3, 4)


class MDSR(nn.Module):
    """head (conv3x3) -> pre_process[scale] (2 ResBlocks, 5x5) -> body (ResBlocks, conv3x3) +
    skip -> upsample[scale] -> tail (conv3x3), with the DIV2K mean shifted out and back in.

    Branch ``i`` of ``pre_process`` and ``upsample`` belongs to ``scales[i]``. A forward pass uses
    one branch only, so the others get no gradient that step.

    Attributes:
        scales: the upscaling factors this network has branches for.
        receptive_radius: the largest receptive radius over all scales, in input pixels (the
            convs on the input grid plus the upsampler's and tail's convs in input pixels,
            rounded up).
    """

    def __init__(
        self,
        scales: Sequence[int] = MDSR_SCALES,
        n_resblocks: int = 80,
        n_feats: int = 64,
        rgb_mean: Sequence[float] = DIV2K_RGB_MEAN,
    ) -> None:
        super().__init__()
        scales = tuple(int(s) for s in scales)
        if not scales or len(set(scales)) != len(scales):
            raise ValueError(f"scales must be non-empty and without repeats, got {scales}")
        bad = [s for s in scales if s not in MDSR_SCALES]
        if bad:
            raise ValueError(f"MDSR scales must be among {MDSR_SCALES}, got {bad}")
        if n_resblocks < 0:
            raise ValueError(f"n_resblocks must be >= 0, got {n_resblocks}")
        self.scales: tuple[int, ...] = scales
        self.sub_mean = MeanShift(rgb_mean, sign=-1)
        self.head = nn.Sequential(conv2d(3, n_feats, 3))
        self.pre_process = nn.ModuleList(
            nn.Sequential(ResBlock(n_feats, 5), ResBlock(n_feats, 5)) for _ in scales
        )
        self.body = nn.Sequential(
            *[ResBlock(n_feats, 3) for _ in range(n_resblocks)],
            conv2d(n_feats, n_feats, 3),
        )
        self.upsample = nn.ModuleList(Upsampler(s, n_feats) for s in scales)
        self.tail = nn.Sequential(conv2d(n_feats, 3, 3))
        self.add_mean = MeanShift(rgb_mean, sign=1)

        shared = conv_reach(self.head) + conv_reach(self.body)
        self.receptive_radius: int = max(
            math.ceil(
                shared
                + conv_reach(pre)
                + upsampler.receptive_reach()
                + Fraction(conv_reach(self.tail), scale)
            )
            for scale, pre, upsampler in zip(scales, self.pre_process, self.upsample, strict=True)
        )

    def forward(self, x: torch.Tensor, scale: int) -> torch.Tensor:
        """(N, 3, H, W) in [0, 1] -> (N, 3, H*scale, W*scale), roughly [0, 1] (not clamped)."""
        if scale not in self.scales:
            raise ValueError(f"this MDSR has branches for scales {self.scales}, got {scale!r}")
        branch = self.scales.index(scale)
        features = self.pre_process[branch](self.head(self.sub_mean(x)))
        features = features + self.body(features)
        return self.add_mean(self.tail(self.upsample[branch](features)))


_MDSR_OPTIONS = ("n_resblocks", "n_feats", "rgb_mean")


@register_model("mdsr")
def mdsr(
    *,
    scales: Sequence[int] = MDSR_SCALES,
    weights: str | os.PathLike[str] | None = None,
    **overrides: object,
) -> MDSR:
    """Full MDSR: 80 shared residual blocks, 64 features (about 7.95M parameters for x2/x3/x4).
    ``weights``: None, a file saved by this project, or an official EDSR-PyTorch checkpoint
    (whose branches are for x2, x3, x4). ``overrides``: n_resblocks, n_feats, rgb_mean."""
    # Lim et al. 2017, Sec. 3.3 / Table 1 ("MDSR"): B=80, F=64.
    defaults = {"n_resblocks": 80, "n_feats": 64}
    return build_sr_model(MDSR, _MDSR_OPTIONS, weights, overrides, scales=scales, **defaults)


@register_model("mdsr_baseline")
def mdsr_baseline(
    *,
    scales: Sequence[int] = MDSR_SCALES,
    weights: str | os.PathLike[str] | None = None,
    **overrides: object,
) -> MDSR:
    """MDSR baseline: 16 shared residual blocks, 64 features. ``weights`` and ``overrides`` as in
    :func:`mdsr`."""
    # Lim et al. 2017, Table 1 ("baseline" multi-scale): B=16, F=64.
    defaults = {"n_resblocks": 16, "n_feats": 64}
    return build_sr_model(MDSR, _MDSR_OPTIONS, weights, overrides, scales=scales, **defaults)
