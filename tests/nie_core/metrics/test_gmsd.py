"""GMSD (Xue et al., IEEE TIP 2014) against a separate NumPy/SciPy transcription of the paper's
formula, and its expected behaviour under blur and noise."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data

from nie_core.metrics import gmsd
from nie_core.metrics.gmsd import luma_255


def _gmsd_numpy(output: np.ndarray, reference: np.ndarray, c: float = 170.0) -> float:
    """The paper's steps on HxWx3 float RGB in [0, 1], written independently of the module."""

    def grey(rgb: np.ndarray) -> np.ndarray:  # BT.601 luma on 0..255
        return 255.0 * (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2])

    def gradient_magnitude(rgb: np.ndarray) -> np.ndarray:
        # 2x2 mean of (i, j)..(i+1, j+1), zeros outside, every second pixel (conv2 'same').
        y = ndimage.correlate(grey(rgb), np.full((2, 2), 0.25), mode="constant", origin=-1)
        y = y[::2, ::2]
        gx = ndimage.prewitt(y, axis=1, mode="constant") / 3.0
        gy = ndimage.prewitt(y, axis=0, mode="constant") / 3.0
        return np.hypot(gx, gy)

    m_out, m_ref = gradient_magnitude(output), gradient_magnitude(reference)
    gms = (2 * m_out * m_ref + c) / (m_out**2 + m_ref**2 + c)
    return float(np.std(gms, ddof=1))


def _tensor(*images: np.ndarray) -> torch.Tensor:
    """HxWx3 float arrays in [0, 1] -> (N, 3, H, W) float64."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _photo(name: str, size: int = 128) -> np.ndarray:
    image = getattr(data, name)()
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top : top + size, left : left + size].astype(np.float64) / 255.0


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image + rng.normal(0.0, sigma, image.shape), 0.0, 1.0)


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image, (sigma, sigma, 0), mode="reflect")


PHOTOS = ["astronaut", "chelsea", "coffee"]


def test_identical_images_give_zero() -> None:
    photo = _tensor(_photo("chelsea"))
    value = gmsd(photo, photo.clone())
    assert value.shape == (1,) and value.dtype == torch.float32
    assert value.item() == 0.0


@pytest.mark.parametrize("name", PHOTOS)
def test_matches_a_numpy_transcription_on_photographs(name: str) -> None:
    reference = _photo(name)
    for output in (_blurred(reference, 1.5), _noisy(reference, 0.05), reference[::-1]):
        expected = _gmsd_numpy(output, reference)
        got = gmsd(_tensor(output), _tensor(reference)).item()
        assert got == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize(("height", "width"), [(32, 48), (33, 47)])  # odd: zero-padded row
def test_matches_a_numpy_transcription_on_random_images(height: int, width: int) -> None:
    rng = np.random.default_rng(height)
    reference = rng.random((height, width, 3))
    output = np.clip(reference + rng.normal(0, 0.1, reference.shape), 0, 1)
    got = gmsd(_tensor(output).float(), _tensor(reference).float()).item()
    assert got == pytest.approx(_gmsd_numpy(output, reference), abs=1e-5)


def test_batch_and_shave() -> None:
    reference = _photo("astronaut", 96)
    outputs = [_noisy(reference, 0.03), _blurred(reference, 1.0)]
    values = gmsd(_tensor(*outputs), _tensor(reference, reference), shave=4)
    assert values.shape == (2,)
    for value, output in zip(values, outputs, strict=True):
        assert value.item() == pytest.approx(
            _gmsd_numpy(output[4:-4, 4:-4], reference[4:-4, 4:-4]), abs=1e-5
        )


@pytest.mark.parametrize("name", PHOTOS)
def test_grows_with_blur_and_with_noise(name: str) -> None:
    reference = _photo(name)
    ref = _tensor(reference)
    blur = [gmsd(_tensor(_blurred(reference, s)), ref).item() for s in (0.5, 1.0, 2.0, 4.0)]
    noise = [gmsd(_tensor(_noisy(reference, s)), ref).item() for s in (0.01, 0.03, 0.1, 0.3)]
    assert all(a < b for a, b in zip(blur, blur[1:], strict=False)), blur
    assert all(a < b for a, b in zip(noise, noise[1:], strict=False)), noise
    # The published range: distortions of the paper's databases lie in about [0, 0.35].
    assert 0.0 < min(blur + noise) and max(blur + noise) < 0.35


def test_luma_is_full_swing_bt601() -> None:
    rgb = torch.rand(2, 3, 5, 7, dtype=torch.float64)
    expected = 255 * (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2])
    torch.testing.assert_close(luma_255(rgb)[:, 0], expected)


@pytest.mark.parametrize(
    ("output", "reference", "shave", "message"),
    [
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 18), 0, "does not match"),
        (torch.rand(3, 16, 16), torch.rand(3, 16, 16), 0, "(N, 3, H, W)"),
        (torch.zeros(1, 3, 8, 8, dtype=torch.uint8), torch.rand(1, 3, 8, 8), 0, "float"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), 7, "shave=7"),
        (torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16), -1, "shave"),
    ],
)
def test_bad_input_is_a_value_error(output, reference, shave, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        gmsd(output, reference, shave=shave)
