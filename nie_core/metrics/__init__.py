"""Evaluation metrics: PSNR/SSIM/GMSD and artifact energy for enhancement, NIQE, and NIMA's
aesthetic agreement measures."""

from __future__ import annotations

from nie_core.losses.emd import emd_loss as emd
from nie_core.metrics.aesthetic import binary_accuracy, lcc, mean_score, srcc, std_score
from nie_core.metrics.artifacts import artifact_energy
from nie_core.metrics.gmsd import gmsd
from nie_core.metrics.image_quality import psnr_rgb, psnr_y, quantise_8bit, rgb_to_y, ssim_y
from nie_core.metrics.niqe import niqe

__all__ = [
    "quantise_8bit",
    "rgb_to_y",
    "psnr_rgb",
    "psnr_y",
    "ssim_y",
    "gmsd",
    "artifact_energy",
    "niqe",
    "mean_score",
    "std_score",
    "lcc",
    "srcc",
    "binary_accuracy",
    "emd",
]
