"""Super-resolution inference: :func:`enhance` runs an EDSR- or MDSR-like model on a batch, with
optional seamless tiling, geometric self-ensemble and the fast path."""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch
from torch import nn

from nie_core.inference.ensemble import forward_self_ensemble
from nie_core.inference.fast_path import FastMode, resolve_fast
from nie_core.inference.running import check_image_batch, eval_mode, model_device, run_forward
from nie_core.inference.tiling import forward_tiled, resolve_overlap

__all__ = ["enhance"]


def enhance(
    model: nn.Module,
    x: torch.Tensor,
    scale: int | None = None,
    tile_size: int | None = None,
    tile_overlap: int | None = None,
    self_ensemble: bool = False,
    fast: FastMode = "auto",
) -> torch.Tensor:
    """Run a super-resolution / restoration model: (N, 3, H, W) -> (N, 3, H*s, W*s), float32 in
    [0, 1] (clamped), on ``x``'s device.

    Args:
        model: an EDSR-like model (``forward(x)``, attribute ``scale``) or an MDSR-like one
            (``forward(x, scale)``, attribute ``scales``); both carry ``receptive_radius``.
        x: float images in [0, 1]; they may live on another device than the model (only tiles
            are moved).
        scale: the upscaling factor; required for a multi-scale model with several ``scales``,
            optional (but checked) for a single-scale one.
        tile_size: process the image in tiles of at most ``tile_size`` x ``tile_size`` input
            pixels (plus the overlap on each side); None or a size >= the image disables tiling.
            Tiles are spread evenly, so every tile has about the same size.
        tile_overlap: margin in input pixels added on each side of a tile and thrown away
            afterwards; defaults to ``model.receptive_radius``, with which the tiled output
            equals the untiled one up to float rounding (zero padding at the image border is the
            same in both, because a tile's outer edge there is the image edge).
        self_ensemble: average the outputs for the 8 flips/rotations of the input, each mapped
            back ("geometric self-ensemble", EDSR+ in Lim et al. 2017; 8x the compute).
        fast: True: channels_last + bfloat16 autocast; False: float32 NCHW; "auto": fast when
            :func:`~nie_core.inference.fast_path_supported` says so for the model's device.

    The output is assembled in one preallocated tensor and each tile runs under
    ``torch.inference_mode``, so no autograd graph is kept; the result is an ordinary tensor.
    """
    check_image_batch(x, "x")
    scale, forward = _bind_scale(model, scale)
    overlap = resolve_overlap(model, tile_size, tile_overlap)
    device = model_device(model)
    run_tile = functools.partial(
        run_forward, forward, device=device, fast=resolve_fast(fast, device)
    )

    def forward_into(images: torch.Tensor, images_out: torch.Tensor) -> None:
        forward_tiled(run_tile, images, scale, tile_size, overlap, images_out)

    n, channels, height, width = x.shape
    out_shape = (n, channels, height * scale, width * scale)
    out = torch.empty(out_shape, dtype=torch.float32, device=x.device)
    with eval_mode(model), torch.inference_mode():
        if self_ensemble:
            forward_self_ensemble(forward_into, x, scale, out)
        else:
            forward_into(x, out)
        out.clamp_(0.0, 1.0)
    return out


def _bind_scale(
    model: nn.Module, scale: int | None
) -> tuple[int, Callable[[torch.Tensor], torch.Tensor]]:
    """The upscaling factor to use and a one-argument forward function for it."""
    model_scales = getattr(model, "scales", None)
    if model_scales is not None:  # multi-scale model (MDSR): forward(x, scale)
        model_scales = tuple(model_scales)
        if scale is None:
            if len(model_scales) != 1:
                raise ValueError(f"model serves scales {model_scales}; pass scale=")
            scale = model_scales[0]
        if scale not in model_scales:
            raise ValueError(f"scale {scale!r} is not among the model's scales {model_scales}")
        return scale, functools.partial(model, scale=scale)
    model_scale = getattr(model, "scale", None)
    if not isinstance(model_scale, int):
        raise ValueError(
            f"{type(model).__name__} has neither an int `scale` nor `scales` attribute"
        )
    if scale is not None and scale != model_scale:
        raise ValueError(f"scale {scale!r} requested from a model with fixed scale {model_scale}")
    return model_scale, model
