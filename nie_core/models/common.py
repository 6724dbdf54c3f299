"""Building blocks shared by EDSR and MDSR (Lim et al., "Enhanced Deep Residual Networks for
Single Image Super-Resolution", CVPRW 2017).

Submodule names follow the layout of the authors' EDSR-PyTorch release (``body.0``/``body.2`` in a
residual block, conv/shuffle pairs in the upsampler) so that their checkpoints map onto these
modules key for key; see :mod:`nie_core.models.official`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import nn

# Per-channel RGB mean of the DIV2K training images in [0, 1], as used by EDSR/MDSR.
DIV2K_RGB_MEAN: tuple[float, float, float] = (0.4488, 0.4371, 0.4040)

# Upscaling factors an :class:`Upsampler` can build: one x3 stage, or x2 stages.
SUPPORTED_SCALES: tuple[int, ...] = (1, 2, 3, 4)


def conv2d(in_channels: int, out_channels: int, kernel_size: int) -> nn.Conv2d:
    """Stride-1 convolution with bias and "same" zero padding (odd ``kernel_size``)."""
    if kernel_size % 2 != 1:
        raise ValueError(f"kernel_size must be odd for same padding, got {kernel_size}")
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


class MeanShift(nn.Module):
    """Adds ``sign * rgb_mean`` to each channel of an (N, 3, H, W) image.

    The mean is a buffer, not a parameter: it moves with ``.to()`` and is saved in the state dict,
    but never trains. ``sign=-1`` centres the input, ``sign=+1`` restores the mean at the output.
    """

    def __init__(self, rgb_mean: Sequence[float] = DIV2K_RGB_MEAN, sign: int = -1) -> None:
        super().__init__()
        if sign not in (-1, 1):
            raise ValueError(f"sign must be -1 or 1, got {sign}")
        if len(rgb_mean) != 3:
            raise ValueError(f"rgb_mean must have 3 values, got {tuple(rgb_mean)}")
        self.sign = sign
        self.register_buffer(
            "rgb_mean", torch.tensor(rgb_mean, dtype=torch.float32).view(1, 3, 1, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.sign * self.rgb_mean


class ResBlock(nn.Module):
    """EDSR residual block without batch norm: ``x + res_scale * conv(relu(conv(x)))``.

    Shape-preserving on (N, n_feats, H, W). ``res_scale`` < 1 (0.1 in the large EDSR) keeps very
    wide networks stable to train (Lim et al. 2017, Sec. 3.2).
    """

    def __init__(self, n_feats: int, kernel_size: int = 3, res_scale: float = 1.0) -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv2d(n_feats, n_feats, kernel_size),
            nn.ReLU(inplace=True),
            conv2d(n_feats, n_feats, kernel_size),
        )
        self.res_scale = res_scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # One fused pass (x + alpha * body) instead of a multiply and an add; the backward pass
        # skips the multiply altogether when res_scale is 1 (the EDSR baseline and MDSR).
        return torch.add(x, self.body(x), alpha=self.res_scale)


class Upsampler(nn.Sequential):
    """Sub-pixel upsampling (Shi et al. 2016): (N, F, H, W) -> (N, F, H*scale, W*scale).

    scale 2 or 3: one conv3x3 F -> F*scale^2 then PixelShuffle(scale); scale 4: two x2 stages;
    scale 1: no layers (identity).
    """

    def __init__(self, scale: int, n_feats: int) -> None:
        if scale not in SUPPORTED_SCALES:
            raise ValueError(f"scale must be one of {SUPPORTED_SCALES}, got {scale!r}")
        factors = {1: [], 2: [2], 3: [3], 4: [2, 2]}[scale]
        layers: list[nn.Module] = []
        for factor in factors:
            layers += [conv2d(n_feats, n_feats * factor**2, 3), nn.PixelShuffle(factor)]
        super().__init__(*layers)
        self.scale = scale

    def receptive_reach(self) -> Fraction:
        """How far (in input pixels) the upsampler's convs see: each 3x3 conv reaches one pixel
        of the grid it runs on, i.e. 1 / (upscaling done before it) input pixels."""
        reach = Fraction(0)
        upscaled_so_far = 1
        for layer in self:
            if isinstance(layer, nn.Conv2d):
                reach += Fraction(layer.kernel_size[0] // 2, upscaled_so_far)
            elif isinstance(layer, nn.PixelShuffle):
                upscaled_so_far *= layer.upscale_factor
        return reach


def conv_reach(module: nn.Module) -> int:
    """Sum of the one-sided reaches (kernel_size // 2) of all convs in ``module``, in pixels of
    the grid those convs run on. Valid for stride-1, undilated convs applied in sequence."""
    return sum(m.kernel_size[0] // 2 for m in module.modules() if isinstance(m, nn.Conv2d))
