"""The output assessment: every method on the same validation images, measured.

:func:`assess_outputs` runs bicubic upsampling (or the blurred input), the trained enhancers and
the reference through PSNR (Y) and a NIMA scorer (Talebi & Milanfar 2018) and keeps the same
centre crop of each output; :func:`mean_assessment` averages over the images, and
:func:`format_summary_table` is the plain-text table of those means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["ImageAssessment", "assess_outputs", "format_summary_table", "mean_assessment"]


@dataclass(frozen=True)
class ImageAssessment:
    """One validation image through every method.

    ``psnr_y``: method -> PSNR (Y channel, border of ``scale`` pixels shaved) in dB;
    ``nima_mean``: method -> NIMA mean score in [1, 10] of the whole image (also for
    ``"reference"``; empty without a scorer); ``crops``: method -> uint8 (c, c, 3) crop of the
    same region of every output.
    """

    image: str
    psnr_y: dict[str, float]
    nima_mean: dict[str, float]
    crops: dict[str, np.ndarray] = field(repr=False)


def _center_crop(image: torch.Tensor, size: int) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> uint8 (s, s, 3) from the centre, s = min(size, H, W)."""
    from nie_core.data.images import to_uint8

    _, _, height, width = image.shape
    side = min(size, height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return to_uint8(image[0, :, top : top + side, left : left + side].cpu())


def assess_outputs(
    enhancers: Mapping[str, nn.Module],
    scorer: nn.Module | None,
    dataset: Any,
    scale: int,
    max_images: int | None = None,
    crop_size: int = 96,
    tile_size: int | None = 256,
) -> list[ImageAssessment]:
    """Run every enhancer on the validation images of ``dataset`` and measure the outputs.

    ``dataset``: whole-image pairs ``(lr (3,h,w), hr (3,h*s,w*s))`` in [0, 1] with ``names``
    (``nie_core.data.div2k``), at ``scale``. The methods are ``"bicubic"`` (bicubic upsampling
    of the input; the input itself at scale 1), then ``enhancers`` in their order, then
    ``"reference"`` (the HR image; no PSNR). Outputs are computed in float32 (no bf16), so the
    numbers do not depend on the CPU.
    """
    from nie_core.baselines import bicubic_baseline
    from nie_core.inference import enhance, score
    from nie_core.metrics import mean_score, psnr_y

    names = list(getattr(dataset, "names", []))
    count = len(names) if names else len(dataset)
    if max_images is not None:
        count = min(count, max_images)
    results = []
    for index in range(count):
        lr, hr = dataset[index]
        lr, hr = lr[None], hr[None]
        outputs: dict[str, torch.Tensor] = {}
        outputs["bicubic"] = bicubic_baseline(lr, hr.shape[-2:])  # the input itself at scale 1
        for method, model in enhancers.items():
            outputs[method] = enhance(model, lr, scale=scale, tile_size=tile_size, fast=False)
        outputs["reference"] = hr
        psnr = {
            method: float(psnr_y(image, hr, shave=scale)[0])
            for method, image in outputs.items()
            if method != "reference"
        }
        nima = {}
        if scorer is not None:
            nima = {m: float(mean_score(score(scorer, img))[0]) for m, img in outputs.items()}
        crops = {method: _center_crop(image, crop_size) for method, image in outputs.items()}
        name = names[index] if names else str(index)
        results.append(ImageAssessment(name, psnr, nima, crops))
    return results


def mean_assessment(assessments: Sequence[ImageAssessment]) -> dict[str, dict[str, float]]:
    """method -> {"psnr_y": mean dB, "nima_mean": mean score} over the images (keys missing
    where a number was not measured)."""
    out: dict[str, dict[str, float]] = {}
    if not assessments:
        return out
    for method in assessments[0].crops:
        row = {}
        for key in ("psnr_y", "nima_mean"):
            values = [getattr(a, key)[method] for a in assessments if method in getattr(a, key)]
            if values:
                row[key] = sum(values) / len(values)
        out[method] = row
    return out


def format_summary_table(
    assessments: Sequence[ImageAssessment], labels: Mapping[str, str] | None = None
) -> str:
    """A plain-text table: one row per method with its mean PSNR (Y) and mean NIMA score over
    the images. ``labels`` renames methods (e.g. ``{"baseline": "EDSR (L2)"}``)."""
    labels = dict(labels or {})
    means = mean_assessment(assessments)
    rows = [(labels.get(m, m), v) for m, v in means.items()]
    width = max([len("method")] + [len(name) for name, _ in rows])
    lines = [
        f"{'method':<{width}}  {'PSNR (Y) dB':>11}  {'NIMA mean':>9}",
        f"{'-' * width}  {'-' * 11}  {'-' * 9}",
    ]
    for name, values in rows:
        psnr = f"{values['psnr_y']:.2f}" if "psnr_y" in values else "-"
        nima = f"{values['nima_mean']:.3f}" if "nima_mean" in values else "-"
        lines.append(f"{name:<{width}}  {psnr:>11}  {nima:>9}")
    lines.append(f"(mean over {len(assessments)} validation image(s))")
    return "\n".join(lines)
