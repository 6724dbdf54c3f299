"""Evaluating an enhancer on a folder of HR photographs: the protocol behind ``nie eval`` and
the demo's summary table.

Protocol (stated in every table this module writes, see :data:`PROTOCOL`): each HR image is
cropped to a multiple of the scale (bottom/right), optionally centre-cropped to ``crop`` pixels;
its LR input is made on the fly with the project's bicubic (``bicubic_downsample``, Pillow,
antialiased); outputs are clamped and rounded to 8 bits before any metric. Metrics per image:

- PSNR-Y and SSIM-Y (BT.601 luma, ``shave = scale`` pixels at each border), against the HR;
- GMSD (Xue et al. 2014; lower is better), against the HR with ``shave = scale``: structural
  distortion judged by gradient similarity, with no learned weights;
- artifact energy in dB (``nie_core.metrics.artifacts``; lower is better, 0 = none), against the
  HR with ``shave = scale``: fine detail the output adds on the HR's smooth areas, the faint
  patterns an enhancer can paint to game a learned scorer;
- NIQE (Mittal et al. 2013, published MATLAB parameters; lower is better), no reference;
- LR-consistency: PSNR-Y between the LR input and the output downscaled with the same bicubic
  (how well the output explains its input; higher is better, bicubic upsampling is not perfect);
- NIMA mean score of the scorer, when one is given (higher is better).

Rows: ``bicubic`` (torch's bicubic upsampling of the LR), the model, and ``reference`` (the HR
itself; only the no-reference metrics apply). Values are reported as mean and standard deviation
over the images.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from nie_core.baselines import bicubic_baseline
from nie_core.data.degradations import bicubic_downsample, crop_to_multiple
from nie_core.data.images import read_image, to_tensor, to_uint8
from nie_core.inference import enhance, score
from nie_core.metrics import artifact_energy, gmsd, mean_score, psnr_y, quantise_8bit, ssim_y
from nie_core.metrics.artifacts import TILE
from nie_core.metrics.niqe import MIN_SIZE as NIQE_MIN_SIZE
from nie_core.metrics.niqe import niqe

__all__ = [
    "PROTOCOL",
    "METRICS",
    "JUDGE_CROP",
    "EvalTable",
    "evaluate_images",
    "list_images",
    "lr_consistency",
    "output_judges",
    "scorer_ranking",
]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
METRICS = ("psnr_y", "ssim_y", "gmsd", "artifacts", "niqe", "lr_psnr_y", "nima")
METRIC_TITLES = {
    "psnr_y": "PSNR-Y dB",
    "ssim_y": "SSIM-Y",
    "gmsd": "GMSD (lower better)",
    "artifacts": "Artifacts dB (lower better)",
    "niqe": "NIQE (lower better)",
    "lr_psnr_y": "LR-consistency dB",
    "nima": "NIMA mean",
}
PROTOCOL = (
    "LR = project bicubic (Pillow, antialiased) of the HR cropped to a multiple of the scale; "
    "outputs clamped and rounded to 8 bits; PSNR/SSIM on BT.601 Y with shave = scale; "
    "GMSD (Xue et al. 2014, c = 170, on 0..255 luma) with shave = scale; artifacts = dB of "
    "high-pass energy above the HR's on its smooth 16 px tiles (HR high-pass RMS < 2 grey "
    "levels), with shave = scale; "
    "NIQE on luma with the published MATLAB parameters; LR-consistency = PSNR-Y(LR, "
    "bicubic-downscaled output); mean ± standard deviation over images"
)


@dataclass
class EvalTable:
    """Per-row, per-metric values over images: ``values[row][metric] -> [v_image1, ...]``."""

    scale: int
    images: list[str] = field(default_factory=list)
    values: dict[str, dict[str, list[float]]] = field(default_factory=dict)

    def add(self, row: str, metric: str, value: float) -> None:
        self.values.setdefault(row, {}).setdefault(metric, []).append(float(value))

    def summary(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{row: {metric: {"mean", "std", "n"}}}``; std is 0 for a single image."""
        out: dict[str, dict[str, dict[str, float]]] = {}
        for row, metrics in self.values.items():
            for metric, vals in metrics.items():
                finite = [v for v in vals if math.isfinite(v)]
                if not finite:
                    continue
                std = statistics.stdev(finite) if len(finite) > 1 else 0.0
                out.setdefault(row, {})[metric] = {
                    "mean": statistics.fmean(finite),
                    "std": std,
                    "n": len(finite),
                }
        return out

    def markdown(self, title: str = "") -> str:
        """A Markdown table: one row per method, ``mean ± std`` per metric."""
        summary = self.summary()
        metrics = [m for m in METRICS if any(m in r for r in summary.values())]
        lines = [f"**{title}**", ""] if title else []
        lines.append("| method | " + " | ".join(METRIC_TITLES[m] for m in metrics) + " |")
        lines.append("|---|" + "---:|" * len(metrics))
        for row, stats in summary.items():
            cells = []
            for metric in metrics:
                s = stats.get(metric)
                digits = 4 if metric in ("ssim_y", "gmsd") else (3 if metric == "nima" else 2)
                cells.append(f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}" if s else "–")
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        n = len(self.images)
        lines += ["", f"{n} image(s), x{self.scale}. Protocol: {PROTOCOL}."]
        return "\n".join(lines)


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly in ``folder``, sorted; ValueError when there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is not a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {str(folder)!r}")
    return files


def _centre_crop(image: np.ndarray, crop: int | None, scale: int) -> np.ndarray:
    image = crop_to_multiple(image, scale)
    if crop is None:
        return image
    crop = crop - crop % scale
    height, width = image.shape[:2]
    top, left = max(0, (height - crop) // 2), max(0, (width - crop) // 2)
    return image[top : top + crop, left : left + crop]


def lr_consistency(lr: torch.Tensor, output: torch.Tensor, scale: int) -> float:
    """LR-consistency in dB, higher is better: PSNR-Y between the input ``lr`` (1, 3, h, w) and
    the ``output`` (1, 3, h*scale, w*scale), both in [0, 1], downscaled with the project's
    bicubic (``bicubic_downsample``: Pillow, antialiased, on the 8-bit output). How well the
    output explains its input; for ``scale`` 1 (deblurring) the PSNR-Y of output and input."""
    down = to_tensor(bicubic_downsample(to_uint8(output[0]), scale))[None]
    return psnr_y(down, lr).item()


JUDGE_CROP = 512  # output pixels: the most of each side NIQE and artifacts look at (the centre)
LR_PSNR_CAP = 100.0  # dB: output_judges' LR-consistency of an exact fit (PSNR +inf) is this


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def output_judges(
    image: np.ndarray, output: np.ndarray, scale: int, max_side: int = JUDGE_CROP
) -> dict[str, float | list[int] | None]:
    """The judges of one enhanced image that need no ground truth (the service's; NIMA is the
    Scorer's), so that no single learned score decides which output is best:

    - ``lr_psnr_y``: :func:`lr_consistency` of the whole output against ``image`` (at most
      100 dB: an exact fit, +inf, is not a JSON number);
    - ``niqe``: NIQE of the output's centre region (None below NIQE's 192 px, or NaN);
    - ``artifacts``: ``artifact_energy`` of the centre region (``shave = scale``) against the
      bicubic up-sampling of the input (``bicubic_baseline``, rounded to 8 bits like the
      output): smooth areas of the input must stay smooth (None when under 16 px remain);
    - ``region``: ``[left, top, width, height]`` of that centre region in output pixels: at
      most ``max_side`` a side, aligned to the scale (the whole output when it fits), which
      bounds the cost for large images.

    ``image`` is the uint8 (h, w, 3) input, ``output`` the uint8 (h*scale, w*scale, 3) result.
    """
    height, width = image.shape[:2]
    if output.shape[:2] != (height * scale, width * scale):
        raise ValueError(
            f"output of shape {output.shape} is not the {height}x{width} input times {scale}"
        )
    lr, out = to_tensor(image)[None], to_tensor(output)[None]
    side_h, side_w = min(height, max_side // scale), min(width, max_side // scale)
    top, left = (height - side_h) // 2, (width - side_w) // 2
    # The input region plus a margin beyond bicubic's 2-pixel reach: its up-sampling equals
    # that part of the whole input's up-sampling, at a fraction of the cost.
    margin = 4
    y0, y1 = max(0, top - margin), min(height, top + side_h + margin)
    x0, x1 = max(0, left - margin), min(width, left + side_w + margin)
    up = bicubic_baseline(lr[..., y0:y1, x0:x1], ((y1 - y0) * scale, (x1 - x0) * scale))
    rows = slice((top - y0) * scale, (top - y0 + side_h) * scale)
    cols = slice((left - x0) * scale, (left - x0 + side_w) * scale)
    reference = quantise_8bit(up)[..., rows, cols]
    region = out[..., top * scale : (top + side_h) * scale, left * scale : (left + side_w) * scale]
    niqe_value = artifacts = None
    if min(region.shape[-2:]) >= NIQE_MIN_SIZE:
        niqe_value = _finite_or_none(niqe(region[0]))
    if min(region.shape[-2:]) >= TILE + 2 * scale:
        artifacts = _finite_or_none(artifact_energy(region, reference, shave=scale).item())
    return {
        "lr_psnr_y": min(lr_consistency(lr, out, scale), LR_PSNR_CAP),
        "niqe": niqe_value,
        "artifacts": artifacts,
        "region": [left * scale, top * scale, side_w * scale, side_h * scale],
    }


def evaluate_images(
    hr_images: Sequence[np.ndarray | Path],
    models: dict[str, Callable[[torch.Tensor], torch.Tensor] | nn.Module],
    scale: int,
    scorer: nn.Module | None = None,
    crop: int | None = None,
    names: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
    fast: bool = False,
) -> EvalTable:
    """Evaluate ``models`` (row name -> EDSR-like module, or a function LR -> SR, both on
    (1, 3, h, w) float in [0, 1]) on ``hr_images`` (uint8 (H, W, 3) arrays or image paths),
    with bicubic and reference rows added; see the module docstring for the protocol.
    Modules run in float32 unless ``fast`` (bf16 where native), so that the numbers do not
    depend on the machine."""
    table = EvalTable(scale=scale)
    for index, item in enumerate(hr_images):
        name = names[index] if names else (item.name if isinstance(item, Path) else str(index))
        hr_array = _centre_crop(read_image(item) if isinstance(item, Path) else item, crop, scale)
        lr_array = bicubic_downsample(hr_array, scale)
        hr, lr = to_tensor(hr_array)[None], to_tensor(lr_array)[None]
        outputs = {"bicubic": quantise_8bit(bicubic_baseline(lr, hr.shape[-2:]))}
        for row, model in models.items():
            if isinstance(model, nn.Module):
                out = enhance(model, lr, scale=scale, tile_size=256, fast=fast)
            else:
                out = model(lr)
            outputs[row] = quantise_8bit(out)
        outputs["reference"] = hr
        for row, out in outputs.items():
            if row != "reference":
                table.add(row, "psnr_y", psnr_y(out, hr, shave=scale).item())
                table.add(row, "ssim_y", ssim_y(out, hr, shave=scale).item())
                table.add(row, "gmsd", gmsd(out, hr, shave=scale).item())
                table.add(row, "artifacts", artifact_energy(out, hr, shave=scale).item())
                table.add(row, "lr_psnr_y", lr_consistency(lr, out, scale))
            table.add(row, "niqe", niqe(out[0]))
            if scorer is not None:
                table.add(row, "nima", mean_score(score(scorer, out)).item())
        table.images.append(name)
        if progress is not None:
            psnrs = "  ".join(
                f"{row} {table.values[row]['psnr_y'][-1]:.2f}"
                for row in outputs
                if row != "reference"
            )
            progress(f"[{index + 1}/{len(hr_images)}] {name}: PSNR-Y {psnrs}")
    return table


def scorer_ranking(
    scorer: nn.Module,
    hr_images: Sequence[np.ndarray | Path],
    crop: int | None = 384,
    scales: Sequence[int] = (2, 4),
) -> dict[str, object]:
    """How often a scorer ranks the reference above its bicubic down-and-up copies, and a
    smaller scale above a larger one: (reference > x2 > x4 by default).

    Each HR image is centre-cropped to ``crop`` (a multiple of 12 is used) and degraded with
    :func:`nie_core.data.quality_ratings.degrade`. Returns ``{"pairs", "correct", "accuracy",
    "per_image": [{"image", "scores": {"reference": .., "x2": ..}}]}``.
    """
    from nie_core.data.quality_ratings import QualityLevel, degrade

    rng = np.random.default_rng(0)
    per_image, correct, pairs = [], 0, 0
    for index, item in enumerate(hr_images):
        name = item.name if isinstance(item, Path) else str(index)
        hr = _centre_crop(read_image(item) if isinstance(item, Path) else item, crop, 12)
        versions = {"reference": hr}
        for s in scales:
            versions[f"x{s}"] = degrade(hr, QualityLevel(f"bicubic{s}", "bicubic", s, 0.0), rng)
        scores = {
            key: mean_score(score(scorer, to_tensor(img)[None])).item()
            for key, img in versions.items()
        }
        order = list(versions)  # best first
        for i in range(len(order)):
            for j in range(i + 1, len(order)):
                pairs += 1
                correct += int(scores[order[i]] > scores[order[j]])
        per_image.append({"image": name, "scores": scores})
    return {
        "pairs": pairs,
        "correct": correct,
        "accuracy": correct / pairs if pairs else float("nan"),
        "per_image": per_image,
    }
