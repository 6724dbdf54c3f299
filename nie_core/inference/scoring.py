"""NIMA scoring: :func:`score` turns a batch of images into score distributions over 1..10."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nie_core.inference.fast_path import FastMode, resolve_fast
from nie_core.inference.running import check_image_batch, eval_mode, model_device, run_forward

__all__ = ["score"]


def score(
    scorer: nn.Module,
    x: torch.Tensor,
    resize: int | None | Literal["auto"] = "auto",
    fast: FastMode = False,
) -> torch.Tensor:
    """NIMA score distributions: (N, 3, H, W) in [0, 1] -> probabilities (N, 10) over the
    buckets 1..10, float32 on ``x``'s device.

    ``resize``: images are resized to ``resize`` x ``resize`` (bilinear with antialiasing, aspect
    ratio not kept), the input size of the NIMA networks (Talebi & Milanfar 2018 feed 224 x 224
    crops); None keeps the size; "auto" uses the scorer's ``input_size`` attribute (224 when it
    has none; None for technical-quality scorers trained on unresized crops, which must see the
    pixels as they are). ``fast`` as in :func:`~nie_core.inference.enhance`; off by default so
    that scores used as metrics do not depend on the machine.
    """
    check_image_batch(x, "x")
    if resize == "auto":
        resize = getattr(scorer, "input_size", 224)
    if resize is not None and resize < 1:
        raise ValueError(f"resize must be a positive size or None, got {resize}")
    device = model_device(scorer)
    use_fast = resolve_fast(fast, device)
    with eval_mode(scorer), torch.inference_mode():
        images = x.to(device=device, dtype=torch.float32)
        if resize is not None and images.shape[-2:] != (resize, resize):
            images = F.interpolate(
                images, size=(resize, resize), mode="bilinear", align_corners=False, antialias=True
            )
        # channels_last in float32 too: MnasNet-NIMA runs about twice as fast on CPU for a batch
        # of 16 (its outputs matched the NCHW ones bit for bit in bench/ measurements).
        images = images.contiguous(memory_format=torch.channels_last)
        probs = run_forward(scorer, images, device=device, fast=use_fast)
    return probs.to(x.device).clone()  # clone outside inference mode -> an ordinary tensor
