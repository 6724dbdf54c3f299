"""Bilinear-like weights for EDSR and MDSR: models whose outputs look like upscaled photographs
without trained weights.

No trained weights can be downloaded here, and a randomly initialised EDSR outputs a
near-constant image, whose bfloat16 rounding errors would be unrealistically small. With
:func:`bilinear_like_weights_` the head copies the image into three feature channels, the
upsampler interpolates them bilinearly, the tail copies them out, and the randomly initialised
residual body adds a small random detail on top. The network then carries image-scale values
through every layer like a trained one, and its output is a plausible upscaled photograph (about
bilinear quality): what the inference benchmark's PSNR needs.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.photos import photo_pair
from nie_core.models.common import ResBlock, Upsampler

# The scale of the photo crop the detail is calibrated on (and MDSR's branch run for it).
CALIBRATION_SCALE = 2


def _linear_phase_taps(phase: int, factor: int) -> torch.Tensor:
    """3-tap 1-D weights (at offsets -1, 0, +1) of bilinear upsampling by ``factor`` for output
    phase ``phase`` (half-pixel centres, as ``F.interpolate(align_corners=False)``)."""
    offset = (phase + 0.5) / factor - 0.5  # source position relative to the centre pixel
    if offset < 0:
        return torch.tensor([-offset, 1 + offset, 0.0])
    return torch.tensor([0.0, 1 - offset, offset])


def _set_copy_conv_(conv: nn.Conv2d) -> None:
    """Make ``conv`` copy input channels 0..2 to output channels 0..2 (3x3 kernels), on top of
    whatever it computes for the other output channels."""
    with torch.no_grad():
        conv.weight[:3].zero_()
        if conv.bias is not None:
            conv.bias[:3].zero_()
        for c in range(3):
            conv.weight[c, c, 1, 1] = 1.0


def _set_bilinear_upsampler_(upsampler: Upsampler) -> None:
    layers = list(upsampler)
    with torch.no_grad():
        for conv, shuffle in zip(layers[0::2], layers[1::2], strict=True):
            factor = shuffle.upscale_factor
            conv.weight.zero_()
            conv.bias.zero_()
            for c in range(3):
                for i in range(factor):
                    for j in range(factor):
                        taps = torch.outer(
                            _linear_phase_taps(i, factor), _linear_phase_taps(j, factor)
                        )
                        conv.weight[c * factor * factor + i * factor + j, c] = taps


def _residual_blocks(model: nn.Module) -> list[ResBlock]:
    return [module for module in model.modules() if isinstance(module, ResBlock)]


def bilinear_like_weights_(
    model: nn.Module, detail_rms: float = 0.01, calibration_side: int = 48
) -> nn.Module:
    """Turn an EDSR or MDSR into "bilinear upsampling + a small random detail" (in place).

    The head copies the (mean-shifted) image into feature channels 0..2, every upsampler
    interpolates those channels bilinearly and the tail copies them to the output. The residual
    blocks keep their random initialisation with their last convolution scaled by 0.1 (EDSR's
    residual scaling, which keeps a deep random body bounded), and the body's last convolution is
    scaled so that the body adds a random detail of RMS ``detail_rms`` to the image channels,
    measured on a ``calibration_side``-pixel crop of a photograph. Returns ``model``.
    """
    with torch.no_grad():
        _set_copy_conv_(model.head[0])
        for block in _residual_blocks(model):
            block.body[-1].weight.mul_(0.1)
            block.body[-1].bias.mul_(0.1)
        upsamplers = model.upsample if hasattr(model, "upsample") else [model.tail[0]]
        for upsampler in upsamplers:
            _set_bilinear_upsampler_(upsampler)
        tail_conv = model.tail[-1]
        tail_conv.weight.zero_()
        _set_copy_conv_(tail_conv)

        detail: list[torch.Tensor] = []
        handle = model.body.register_forward_hook(lambda m, i, out: detail.append(out[:, :3]))
        lr, _ = photo_pair(calibration_side, CALIBRATION_SCALE)
        try:
            model(lr, CALIBRATION_SCALE) if hasattr(model, "scales") else model(lr)
        finally:
            handle.remove()
        gain = detail_rms / max(detail[0].square().mean().sqrt().item(), 1e-12)
        model.body[-1].weight.mul_(gain)
        model.body[-1].bias.mul_(gain)
    return model
