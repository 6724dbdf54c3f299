"""How an enhancer is measured while it trains: PSNR, SSIM and NIMA scores of its outputs on
the validation images, beside bicubic upsampling (or the blurred input) as the reference line,
with the images sharded over the Train workers; and the epoch's image grid.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from nie_core.baselines import bicubic_baseline
from nie_core.data.div2k import PairedSRDataset
from nie_core.metrics import psnr_rgb, psnr_y, quantise_8bit, ssim_y

from .worker import WorkerEnv, all_reduce_sum


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    scorer: torch.nn.Module | None,
    dataset: PairedSRDataset,
    env: WorkerEnv,
    max_images: int | None,
    grid_path: Path | None = None,
) -> dict[str, float]:
    """PSNR (Y and RGB, shave = scale), SSIM (Y) and mean NIMA score of the model's outputs,
    and the same for bicubic upsampling as a reference line; images sharded over workers.
    Both are rounded to 8 bits first (``quantise_8bit``), as ``nie eval`` rounds them, so that
    val_psnr_y is the PSNR-Y that ``nie eval`` reports for the same model and image."""
    from nie_core.inference import enhance, score
    from nie_core.metrics import mean_score

    was_training = model.training
    model.eval()
    scales = dataset.scales
    n = len(dataset.hr_files) if max_images is None else min(max_images, len(dataset.hr_files))
    keys = ("psnr_y", "psnr_rgb", "ssim_y", "nima_mean")
    sums: dict[str, float] = {}
    for s in scales:
        view = dataset.with_scale(s) if len(scales) > 1 else dataset
        for i in range(env.rank, n, env.world_size):
            lr, hr = view[i]
            lr, hr = lr[None].to(env.device), hr[None].to(env.device)
            sr = quantise_8bit(enhance(model, lr, scale=s, fast=env.bf16).float())
            bicubic = quantise_8bit(bicubic_baseline(lr, hr.shape[-2:]))  # the input at scale 1
            for name, img in (("val", sr), ("bicubic", bicubic)):
                vals = {
                    "psnr_y": psnr_y(img, hr, shave=s).item(),
                    "psnr_rgb": psnr_rgb(img, hr, shave=s).item(),
                    "ssim_y": ssim_y(img, hr, shave=s).item(),
                }
                if scorer is not None:
                    vals["nima_mean"] = mean_score(score(scorer, img)).item()
                for k, v in vals.items():
                    sums[f"{name}_{k}_x{s}"] = sums.get(f"{name}_{k}_x{s}", 0.0) + v
            sums[f"count_x{s}"] = sums.get(f"count_x{s}", 0.0) + 1
            if grid_path is not None and env.rank == 0 and i == 0 and s == scales[0]:
                save_grid(grid_path, lr, bicubic, sr, hr)
    # The same keys in the same order on every worker, even one that got no image.
    names = [f"count_x{s}" for s in scales] + [
        f"{prefix}_{k}_x{s}"
        for prefix in ("val", "bicubic")
        for k in (keys if scorer is not None else keys[:-1])
        for s in scales
    ]
    reduced = all_reduce_sum([sums.get(k, 0.0) for k in names], env.device)
    totals = dict(zip(names, reduced, strict=True))
    metrics: dict[str, float] = {}
    for prefix in ("val", "bicubic"):
        for k in keys:
            per_scale = []
            for s in scales:
                key = f"{prefix}_{k}_x{s}"
                if key in totals and totals.get(f"count_x{s}", 0) > 0:
                    value = totals[key] / totals[f"count_x{s}"]
                    per_scale.append(value)
                    if len(scales) > 1:
                        metrics[key] = value
            if per_scale:
                metrics[f"{prefix}_{k}"] = sum(per_scale) / len(per_scale)
    if was_training:
        model.train()
    return metrics


def save_grid(
    path: Path, lr: torch.Tensor, bicubic: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor
) -> None:
    """One PNG: input (nearest-upscaled) | bicubic | output | reference, side by side."""
    from nie_core.data.images import save_image

    size = hr.shape[-2:]
    tiles = [F.interpolate(lr, size=size, mode="nearest"), bicubic, sr, hr]
    gap = torch.ones(1, 3, size[0], 4, device=hr.device)
    row = torch.cat([t for tile in tiles for t in (tile.clamp(0, 1), gap)][:-1], dim=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, row[0].cpu())
