"""The report's three figures, drawn on matplotlib's Agg canvas as ``ray_jobs.plots`` draws.

:func:`plot_psnr_by_gamma` (PSNR by the weight of the aesthetic loss), :func:`plot_training_curves`
(validation PSNR and training loss by epoch, one line per run) and :func:`plot_output_grid`
(the same crop of each method's output, with its numbers); each writes one PNG and returns its
path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ray_jobs.plots import new_figure, plot_metric_by_param, save_figure

from .assess import ImageAssessment
from .store import TrainingCurve

__all__ = ["plot_output_grid", "plot_psnr_by_gamma", "plot_training_curves"]


def plot_psnr_by_gamma(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """The PSNR-by-gamma figure (``ray_jobs.plots.plot_metric_by_param``), one line per series,
    with bicubic upsampling at the most common scale as a dashed line."""
    counts: dict[tuple[int, ...], int] = {}
    for r in rows:
        counts[r["scales"]] = counts.get(r["scales"], 0) + 1
    scales = max(counts, key=counts.get)
    bicubic = [
        r["bicubic_psnr_y"]
        for r in rows
        if r["scales"] == scales and r.get("bicubic_psnr_y") is not None
    ]
    return plot_metric_by_param(
        rows, path, param="loss.gamma", metric="val_psnr_y", group_by="series",
        reference=sum(bicubic) / len(bicubic) if bicubic else None,
        reference_label="bicubic " + "/".join(f"x{s}" for s in scales), title=title,
    )  # fmt: skip


def plot_training_curves(curves: Sequence[TrainingCurve], path: Path, title: str) -> Path:
    """Three panels against the epoch: validation PSNR (Y), the training loss, and its pixel
    (L2) part, one line per run (solid for EDSR, dashed for MDSR). Raises ``ValueError`` when no
    curve has a point."""
    drawn = [c for c in curves if c.epochs]
    if not drawn:
        raise ValueError("no run has per-epoch validation PSNR and training loss")
    fig = new_figure((13.0, 4.2))
    ax_psnr, ax_loss, ax_pixel = fig.subplots(1, 3)
    for curve in drawn:
        suffix = f" ({curve.psnr_key.rsplit('_', 1)[-1]})" if curve.psnr_key != "val_psnr_y" else ""
        label = f"{curve.run.label}{suffix} [{curve.run.name}]"
        style = "--" if curve.run.multi_scale else "-"
        (line,) = ax_psnr.plot(curve.epochs, curve.psnr, style, marker="o", label=label)
        ax_loss.plot(curve.epochs, curve.loss, style, marker="o", color=line.get_color())
        ax_pixel.plot(curve.epochs, curve.pixel_loss, style, marker="o", color=line.get_color())
    ax_psnr.set_ylabel("validation PSNR (Y) [dB]")
    ax_loss.set_ylabel("training loss (pixel + gamma * (10 - NIMA))")
    ax_pixel.set_ylabel("its pixel part (L2)")
    for ax in (ax_loss, ax_pixel):
        ax.set_yscale("log")
    for ax in (ax_psnr, ax_loss, ax_pixel):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=7, ncols=2)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=110)


def plot_output_grid(
    assessments: Sequence[ImageAssessment],
    path: Path,
    title: str,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Rows: images; columns: methods. Each cell shows the same centre crop, titled with the
    method, the PSNR (Y) and the NIMA mean score of the whole output."""
    if not assessments:
        raise ValueError("no images to show in the output grid")
    labels = dict(labels or {})
    methods = list(assessments[0].crops)
    fig = new_figure((2.3 * len(methods), 2.5 * len(assessments) + 0.4))
    axes = np.atleast_2d(fig.subplots(len(assessments), len(methods), squeeze=False))
    for row, item in enumerate(assessments):
        for col, method in enumerate(methods):
            ax = axes[row, col]
            ax.imshow(item.crops[method], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            lines = [labels.get(method, method)]
            numbers = []
            if method in item.psnr_y:
                numbers.append(f"{item.psnr_y[method]:.2f} dB")
            if method in item.nima_mean:
                numbers.append(f"NIMA {item.nima_mean[method]:.2f}")
            if numbers:
                lines.append(", ".join(numbers))
            ax.set_title("\n".join(lines), fontsize=8)
            if col == 0:
                ax.set_ylabel(item.image, fontsize=8)
    fig.suptitle(title)
    return save_figure(fig, path, dpi=110)
