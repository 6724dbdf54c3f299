"""GMSD, Gradient Magnitude Similarity Deviation (Xue, Zhang, Mou & Bovik, "Gradient Magnitude
Similarity Deviation: A Highly Efficient Perceptual Image Quality Index", IEEE TIP 23(2), 2014).

A full-reference perceptual measure with no learned weights: the pixel-wise similarity of the
gradient magnitudes of the two images (GMS map), pooled by its standard deviation. Distortions
that change local structure unevenly across the image (blur on edges, noise on flat areas,
added patterns) spread the GMS map and raise GMSD; 0 means identical gradients.

Steps, as in the paper and its authors' MATLAB release (``GMSD.m``), on grey values 0..255:

1. Luma: ITU-R BT.601 ``Y = 0.299 R + 0.587 G + 0.114 B`` on 0..255 (full swing, as MATLAB's
   ``rgb2gray`` that the authors apply to colour images), obtained from the project's studio-
   swing :func:`~nie_core.metrics.image_quality.rgb_to_y` by undoing its 16..235 mapping.
2. 2x2 average filter, then keep every second row and column (for an odd size the missing
   row/column is zero, as ``conv2(..., 'same')`` then ``(1:2:end)`` gives).
3. Gradients with the Prewitt filters divided by 3 (``[1 0 -1]`` over three rows, and its
   transpose), zero padding at the borders (``conv2(..., 'same')``); magnitude
   ``m = sqrt(gx^2 + gy^2)``.
4. ``GMS = (2 m_r m_d + c) / (m_r^2 + m_d^2 + c)`` with ``c = 170`` (the paper's T for 0..255).
5. ``GMSD = std(GMS)`` over the map, sample standard deviation (MATLAB's ``std2``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nie_core.metrics.image_quality import _check_rgb_batch, _shave, rgb_to_y

__all__ = ["gmsd", "luma_255"]

GMSD_C = 170.0  # the paper's constant T, for grey values 0..255
_PREWITT_X = torch.tensor([[1.0, 0.0, -1.0]] * 3) / 3.0


def luma_255(x: torch.Tensor) -> torch.Tensor:
    """Full-swing BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` on the 0..255 scale.

    Args:
        x: (N, 3, H, W) float RGB in [0, 1].

    Returns:
        (N, 1, H, W) in [0, 255], same dtype as ``x``: :func:`rgb_to_y` (studio swing,
        16..235) mapped back to 0..255, which gives exactly the BT.601 weights above.
    """
    return (rgb_to_y(x) * 255.0 - 16.0) * (255.0 / 219.0)


def _check_pair(output: torch.Tensor, reference: torch.Tensor) -> None:
    _check_rgb_batch(output, "output")
    _check_rgb_batch(reference, "reference")
    if output.shape != reference.shape:
        raise ValueError(
            f"output shape {tuple(output.shape)} does not match reference shape "
            f"{tuple(reference.shape)}"
        )


def _gradient_magnitude(y: torch.Tensor) -> torch.Tensor:
    kx = _PREWITT_X.to(dtype=y.dtype, device=y.device)
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)
    grad = F.conv2d(y, kernels, padding=1)  # zero padding, as conv2 'same'
    return grad.square().sum(dim=1, keepdim=True).sqrt()


def _halve(y: torch.Tensor) -> torch.Tensor:
    """2x2 mean then every second pixel; an odd last row/column is averaged with zeros."""
    height, width = y.shape[-2:]
    return F.avg_pool2d(F.pad(y, (0, width % 2, 0, height % 2)), kernel_size=2, stride=2)


def gmsd(output: torch.Tensor, reference: torch.Tensor, shave: int = 0) -> torch.Tensor:
    """GMSD of ``output`` against ``reference`` (Xue et al., IEEE TIP 2014); lower is better.

    Args:
        output, reference: (N, 3, H, W) float RGB in [0, 1], same shape.
        shave: pixels removed from every border first (SR papers use the scale factor); at
            least 4 x 4 pixels must remain.

    Returns:
        (N,) float32, 0 for identical images; the standard deviation of a map in (0, 1], in
        practice below about 0.35 (the paper's databases span roughly 0 to 0.3). Computed in
        float64 without gradient. See the module docstring for the steps and constants.
    """
    _check_pair(output, reference)
    out = _shave(output.detach().to(torch.float64), shave, min_size=4)
    ref = _shave(reference.detach().to(torch.float64), shave, min_size=4)
    m_out = _gradient_magnitude(_halve(luma_255(out)))
    m_ref = _gradient_magnitude(_halve(luma_255(ref)))
    gms = (2.0 * m_out * m_ref + GMSD_C) / (m_out.square() + m_ref.square() + GMSD_C)
    return gms.flatten(1).std(dim=1, correction=1).to(torch.float32)
