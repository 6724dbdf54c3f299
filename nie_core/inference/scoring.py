"""NIMA scoring: :func:`score` turns a batch of images into score distributions over 1..10,
:func:`score_images` a list of images of any sizes.

Both prepare the images as the scorer itself declares (its
:class:`~nie_core.models.nima.ScorerInput`, applied by
:func:`~nie_core.models.nima.prepare_scorer_input`, the function the hybrid loss uses too), so
every caller (``nie score``, ``nie eval``, training validation, the service) gives the same
number for the same image and scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal

import torch
from torch import nn

from nie_core.inference.fast_path import FastMode, resolve_fast
from nie_core.inference.running import check_image_batch, eval_mode, model_device, run_forward
from nie_core.models.nima import NUM_BUCKETS, ScorerInput, prepare_scorer_input, scorer_input

__all__ = ["ScorerInput", "prepare_scorer_input", "score", "score_images", "scorer_input"]


def score(
    scorer: nn.Module,
    x: torch.Tensor,
    resize: int | None | Literal["auto"] = "auto",
    fast: FastMode = False,
) -> torch.Tensor:
    """NIMA score distributions: (N, 3, H, W) in [0, 1] -> probabilities (N, 10) over the
    buckets 1..10, float32 on ``x``'s device.

    The images are prepared as the scorer declares (:func:`prepare_scorer_input`; for a NIMA:
    resized to ``input_size`` x ``input_size``, bilinear with antialiasing, aspect ratio not
    kept, or with ``input_size`` None scored as they are, upsampled only when the shorter side
    is below 64). ``resize``: "auto" (what every product caller uses) takes the scorer's own
    input handling; an int or None replaces its size (benchmarks at a fixed size). ``fast`` as
    in :func:`~nie_core.inference.enhance`; off by default so that scores used as metrics do not
    depend on the machine.
    """
    check_image_batch(x, "x")
    if resize == "auto":
        spec = scorer_input(scorer)
    elif resize is None or (
        isinstance(resize, int) and not isinstance(resize, bool) and resize > 0
    ):
        spec = replace(scorer_input(scorer), size=resize)
    else:
        raise ValueError(f"resize must be a positive size, None or 'auto', got {resize}")
    device = model_device(scorer)
    use_fast = resolve_fast(fast, device)
    with eval_mode(scorer), torch.inference_mode():
        images = spec.apply(x.to(device=device, dtype=torch.float32))
        # channels_last in float32 too: MnasNet-NIMA runs about twice as fast on CPU for a batch
        # of 16 (its outputs matched the NCHW ones bit for bit in bench/ measurements).
        images = images.contiguous(memory_format=torch.channels_last)
        probs = run_forward(scorer, images, device=device, fast=use_fast)
    return probs.to(x.device).clone()  # clone outside inference mode -> an ordinary tensor


def score_images(
    scorer: nn.Module, images: Sequence[torch.Tensor], fast: FastMode = False
) -> torch.Tensor:
    """Score images of any sizes, each (3, H, W) in [0, 1] -> probabilities (len(images), 10),
    in order, float32 on the CPU: what :func:`score` gives for each image alone.

    Each image is prepared with :func:`prepare_scorer_input`; those that then have the same size
    go through the scorer in one forward pass (all of them for a scorer with a fixed input size).
    """
    for image in images:
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__
            raise ValueError(f"each image must be a (3, H, W) tensor, got {shape}")
    groups: dict[tuple[int, ...], list[int]] = {}
    prepared: list[torch.Tensor] = []
    with torch.no_grad():
        for index, image in enumerate(images):
            ready = prepare_scorer_input(scorer, image.unsqueeze(0).float())
            prepared.append(ready)
            groups.setdefault(tuple(ready.shape[-2:]), []).append(index)
    probs = torch.empty(len(prepared), NUM_BUCKETS)
    for indices in groups.values():
        # Already prepared, so score() leaves the sizes as they are.
        batch = torch.cat([prepared[i] for i in indices])
        probs[indices] = score(scorer, batch, fast=fast).cpu()
    return probs
