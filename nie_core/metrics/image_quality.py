"""Full-reference image quality: PSNR (RGB and Y) and SSIM (Y), as reported in SR papers.

Conventions shared by every function here:

- Inputs are float tensors of shape (N, 3, H, W), RGB, values in [0, 1]; ``sr`` is the restored
  image, ``hr`` the reference. The results are per image, shape (N,), in float64, and carry no
  gradient (these are evaluation metrics).
- ``shave`` removes that many pixels from every border before measuring. Super-resolution papers
  (EDSR, RCAN, ...) shave ``scale`` pixels, so callers pass ``shave=scale``.
- The Y channel is ITU-R BT.601 luma with studio swing, exactly as MATLAB's ``rgb2ycbcr``
  computes it: ``Y = 16 + 65.481 R + 128.553 G + 24.966 B`` for R, G, B in [0, 1], giving
  Y in [16, 235]; here it is divided by 255, so Y lies in [16/255, 235/255].
- The peak value is 1 for both RGB and Y (255 on the 8-bit scale), so Y-PSNR equals the number
  computed by the common MATLAB and Python SR evaluation scripts.
- A restored image is measured as saved, on 8 bits: callers pass ``quantise_8bit(sr)`` (``nie
  eval`` and the jobs' validation both do, so that their numbers agree).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["quantise_8bit", "rgb_to_y", "psnr_rgb", "psnr_y", "ssim_y"]

# MATLAB rgb2ycbcr, Y row, for R, G, B in [0, 1] and Y on the 0..255 scale.
_Y_OFFSET = 16.0
_Y_WEIGHTS = (65.481, 128.553, 24.966)

# SSIM constants of Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error
# visibility to structural similarity", IEEE TIP 2004: 11x11 Gaussian window with sigma 1.5,
# K1 = 0.01, K2 = 0.03, dynamic range L = 1 here.
_SSIM_WINDOW = 11
_SSIM_SIGMA = 1.5
_SSIM_C1 = (0.01 * 1.0) ** 2
_SSIM_C2 = (0.03 * 1.0) ** 2


def quantise_8bit(x: torch.Tensor) -> torch.Tensor:
    """``x`` clamped to [0, 1] and rounded to the nearest of the 256 levels of 8 bits, still as
    floats in [0, 1]: the image a user gets once the output is saved as a PNG."""
    return torch.round(x.clamp(0, 1) * 255.0) / 255.0


def _check_rgb_batch(x: torch.Tensor, name: str) -> None:
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")


def _check_pair(sr: torch.Tensor, hr: torch.Tensor) -> None:
    _check_rgb_batch(sr, "sr")
    _check_rgb_batch(hr, "hr")
    if sr.shape != hr.shape:
        raise ValueError(f"sr shape {tuple(sr.shape)} does not match hr shape {tuple(hr.shape)}")


def _shave(x: torch.Tensor, shave: int, min_size: int = 1) -> torch.Tensor:
    if isinstance(shave, bool) or not isinstance(shave, int) or shave < 0:
        raise ValueError(f"shave must be an integer >= 0, got {shave!r}")
    height, width = x.shape[-2:]
    if min(height, width) - 2 * shave < min_size:
        raise ValueError(
            f"shave={shave} leaves less than {min_size} px of a {height}x{width} image"
        )
    if shave == 0:
        return x
    return x[..., shave:-shave, shave:-shave]


def _quantise_8bit(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest of the 256 levels k/255 (values outside [0, 1] are clipped)."""
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


def _prepare(sr: torch.Tensor, hr: torch.Tensor, round_8bit: bool) -> tuple[torch.Tensor, ...]:
    _check_pair(sr, hr)
    sr = sr.detach().to(torch.float64)
    hr = hr.detach().to(torch.float64)
    if round_8bit:
        sr, hr = _quantise_8bit(sr), _quantise_8bit(hr)
    return sr, hr


def rgb_to_y(x: torch.Tensor) -> torch.Tensor:
    """ITU-R BT.601 luma as MATLAB's ``rgb2ycbcr`` (Y row), rescaled to [0, 1].

    Args:
        x: (N, 3, H, W) RGB in [0, 1].

    Returns:
        (N, 1, H, W), ``(16 + 65.481 R + 128.553 G + 24.966 B) / 255``, in [16/255, 235/255]
        for inputs in [0, 1]. Same dtype as ``x``; differentiable.
    """
    _check_rgb_batch(x, "x")
    weights = torch.tensor(_Y_WEIGHTS, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x * weights).sum(dim=1, keepdim=True) + _Y_OFFSET) / 255.0


def _psnr(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """PSNR in dB per image for values whose peak is 1; +inf where the images are equal."""
    mse = (sr - hr).square().flatten(1).mean(dim=1)
    return -10.0 * torch.log10(mse)


def psnr_rgb(
    sr: torch.Tensor, hr: torch.Tensor, shave: int = 0, round_8bit: bool = False
) -> torch.Tensor:
    """PSNR over all three RGB channels, ``10 log10(1 / MSE)`` dB, peak value 1.

    Args:
        sr, hr: (N, 3, H, W) RGB in [0, 1].
        shave: pixels removed from every border first (SR papers use the scale factor).
        round_8bit: first quantise both images to 8 bits (``round(255 x) / 255`` after clipping
            to [0, 1]), as if they had been saved as 8-bit images; EDSR's evaluation does this.

    Returns:
        (N,) float64 PSNR in dB; +inf where the two images are identical.
    """
    sr, hr = _prepare(sr, hr, round_8bit)
    return _psnr(_shave(sr, shave), _shave(hr, shave))


def psnr_y(
    sr: torch.Tensor, hr: torch.Tensor, shave: int = 0, round_8bit: bool = False
) -> torch.Tensor:
    """PSNR on the BT.601 Y channel (see :func:`rgb_to_y`), peak value 1 (255 on 8 bits).

    Arguments as for :func:`psnr_rgb`; ``round_8bit`` quantises the RGB inputs to 8 bits before
    the conversion, and Y itself is then computed in floating point and not rounded again.

    Returns:
        (N,) float64 PSNR in dB; +inf where the two Y channels are identical.
    """
    sr, hr = _prepare(sr, hr, round_8bit)
    return _psnr(_shave(rgb_to_y(sr), shave), _shave(rgb_to_y(hr), shave))


def _gaussian_window(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The 1-D normalised Gaussian of length 11, sigma 1.5, shape (11,)."""
    offsets = torch.arange(_SSIM_WINDOW, dtype=dtype, device=device) - (_SSIM_WINDOW - 1) / 2
    window = torch.exp(-offsets.square() / (2.0 * _SSIM_SIGMA**2))
    return window / window.sum()


def _filter_valid(x: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable Gaussian filtering of (N, 1, H, W) without padding: (N, 1, H-10, W-10)."""
    x = F.conv2d(x, window.view(1, 1, 1, -1))
    return F.conv2d(x, window.view(1, 1, -1, 1))


def ssim_y(sr: torch.Tensor, hr: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """Mean SSIM on the BT.601 Y channel (Wang et al., IEEE TIP 2004).

    Local statistics use an 11x11 Gaussian window with sigma 1.5 and population (not sample)
    variances; ``K1 = 0.01``, ``K2 = 0.03`` with dynamic range 1. The SSIM map is computed only
    where the window fits entirely inside the (shaved) image, i.e. on an (H-10) x (W-10) grid, as
    the reference MATLAB ``ssim_index`` does, and averaged.

    Args:
        sr, hr: (N, 3, H, W) RGB in [0, 1]; after shaving each side must be at least 11 px.
        shave: pixels removed from every border first (SR papers use the scale factor).

    Returns:
        (N,) float64 SSIM, at most 1 (1 for identical images).
    """
    sr, hr = _prepare(sr, hr, round_8bit=False)
    y_sr = _shave(rgb_to_y(sr), shave, min_size=_SSIM_WINDOW)
    y_hr = _shave(rgb_to_y(hr), shave, min_size=_SSIM_WINDOW)
    window = _gaussian_window(y_sr.dtype, y_sr.device)

    mu_sr = _filter_valid(y_sr, window)
    mu_hr = _filter_valid(y_hr, window)
    var_sr = _filter_valid(y_sr * y_sr, window) - mu_sr.square()
    var_hr = _filter_valid(y_hr * y_hr, window) - mu_hr.square()
    cov = _filter_valid(y_sr * y_hr, window) - mu_sr * mu_hr

    luminance = (2.0 * mu_sr * mu_hr + _SSIM_C1) / (mu_sr.square() + mu_hr.square() + _SSIM_C1)
    structure = (2.0 * cov + _SSIM_C2) / (var_sr + var_hr + _SSIM_C2)
    return (luminance * structure).flatten(1).mean(dim=1)
