"""Artifact energy: fine structure that the output adds where the reference is smooth.

An enhancer trained to please a learned scorer (NIMA in the hybrid loss) can "game" it by
painting faint regular textures (lines, gratings, checkerboards of a few grey levels) over
smooth areas such as sky, walls or out-of-focus background. PSNR and SSIM move little (a
grating of amplitude 3/255 over a whole photograph: PSNR-Y 43 dB, SSIM-Y 0.975, small next to
the errors of SR outputs), GMSD hardly at all (its c = 170 masks gradients of a few grey
levels, and its 2x2 average cancels a period-2 pattern outright), and NIQE, having no
reference, cannot tell added structure from real detail. This measure looks only where the
reference has no fine detail and asks how much more fine detail the output has there:

1. Luma on 0..255 (full-swing BT.601, :func:`nie_core.metrics.gmsd.luma_255`) of both images.
2. High-pass: ``hp = Y - G_sigma * Y`` with a Gaussian of ``sigma = 2`` px (radius 6, reflected
   borders). Its power gain is at least 0.5 for periods of 2 to 8 px (period 2: 0.92, 4: 0.99,
   8: 0.50; 16: 0.07), the scale of the patterns above, and ~0 for broad shading.
3. Tiles of 16 x 16 px (after ``shave``; a partial last row/column of tiles is dropped); per
   tile the mean of ``hp^2``: ``E_out`` and ``E_ref`` (grey levels squared).
4. Smooth tiles: those where the reference's own high-pass RMS ``sqrt(E_ref)`` is below 2 grey
   levels. This keeps flat and gently shaded areas (gradients pass, as their high-pass is ~0)
   and the sensor noise of photographs' smooth areas (RMS about 0.7-1.5 in scikit-image's
   photos), and drops textures and edges (median tile RMS 6-8 on the same photos, of which
   17-26 % of the tiles count as smooth). The threshold is ours, set on those photos.
5. Per smooth tile ``10 log10((E_out + eps) / (E_ref + eps))`` dB with ``eps = 0.25`` (a
   high-pass RMS of half a grey level: the floor set by 8-bit rounding, which alone gives
   RMS 0.29, so re-quantisation cannot read as structure), clipped below at 0, then averaged
   over the smooth tiles.

Clipping at 0 makes the measure one-sided: an output smoother than the reference (bicubic
removes the reference's grain) scores 0, not a reward; lost detail is for PSNR, SSIM and GMSD
to measure. The calibration (tests/nie_core/metrics/test_artifacts.py): on chelsea, coffee and
astronaut, and a Gaussian-blurred (sigma 4) photograph, bicubic x2..x4 up-sampling of the
bicubic-downscaled reference gives 0.0-0.5 dB, the reference itself exactly 0, and a grating
of amplitude 2-3/255 (period 2, 4 or 6 px) added to the image about 4-8 dB. Limits: an
enhancer that removes the grain of a smooth area and puts a pattern of equal energy in its
place is not caught (the measure compares energy, not spectra); patterns coarser than ~16 px
are mostly ignored; regenerated grain of the reference's strength reads a few tenths of a dB,
as tile energies fluctuate and only the excess counts.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nie_core.metrics.gmsd import _check_pair, luma_255
from nie_core.metrics.image_quality import _shave

__all__ = ["artifact_energy", "SMOOTH_RMS", "TILE", "HIGHPASS_SIGMA", "EPS"]

HIGHPASS_SIGMA = 2.0  # px, Gaussian whose residual is the high-pass
TILE = 16  # px, side of the square tiles
SMOOTH_RMS = 2.0  # grey levels (0..255): reference tiles with a high-pass RMS below are smooth
EPS = 0.25  # grey levels squared: half a grey level of high-pass RMS


def _highpass(y: torch.Tensor) -> torch.Tensor:
    """``y - gaussian(y)`` for (N, 1, H, W), separable, reflected borders."""
    radius = math.ceil(3 * HIGHPASS_SIGMA)
    offsets = torch.arange(-radius, radius + 1, dtype=y.dtype, device=y.device)
    g = torch.exp(-offsets.square() / (2 * HIGHPASS_SIGMA**2))
    g = g / g.sum()
    low = F.pad(y, (radius, radius, radius, radius), mode="reflect")
    low = F.conv2d(F.conv2d(low, g.view(1, 1, 1, -1)), g.view(1, 1, -1, 1))
    return y - low


def _tile_energy(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] -> (N, H // TILE * W // TILE) mean high-pass power."""
    return F.avg_pool2d(_highpass(luma_255(x)).square(), TILE).flatten(1)


def artifact_energy(output: torch.Tensor, reference: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """Excess fine-detail energy of ``output`` on the smooth areas of ``reference``, in dB.

    Args:
        output, reference: (N, 3, H, W) float RGB in [0, 1], same shape.
        shave: pixels removed from every border first (SR evaluation uses the scale factor);
            at least one 16 x 16 tile must remain.

    Returns:
        (N,) float32, >= 0, lower is better: the mean over the reference's smooth 16 x 16 tiles
        of ``max(0, 10 log10((E_out + 0.25) / (E_ref + 0.25)))``, E the tile's mean squared
        high-pass (Y minus its Gaussian blur, sigma 2) on 0..255 luma. 0 for the reference
        itself, and 0 for an image with no smooth tile (a fully textured reference leaves
        nothing to judge). About 3 dB means the smooth areas carry twice the reference's
        fine-detail energy (plus the half-grey-level floor). See the module docstring for the
        design, constants and calibration. Computed in float64 without gradient.
    """
    _check_pair(output, reference)
    out = _shave(output.detach().to(torch.float64), shave, min_size=TILE)
    ref = _shave(reference.detach().to(torch.float64), shave, min_size=TILE)
    e_out, e_ref = _tile_energy(out), _tile_energy(ref)
    smooth = (e_ref < SMOOTH_RMS**2).to(torch.float64)
    excess = (10.0 * torch.log10((e_out + EPS) / (e_ref + EPS))).clamp(min=0.0)
    count = smooth.sum(dim=1)
    mean = (excess * smooth).sum(dim=1) / count.clamp(min=1.0)
    return torch.where(count > 0, mean, torch.zeros_like(mean)).to(torch.float32)
