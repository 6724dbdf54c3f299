from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from nie_core.metrics import psnr_rgb, psnr_y, rgb_to_y, ssim_y


def _photo_pair(name: str, seed: int, noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """A 40x56 crop of a scikit-image photograph (float64 HxWx3 in [0, 1]) and a noisy copy."""
    photo = getattr(data, name)()[100:140, 120:176].astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    noisy = np.clip(photo + rng.normal(0.0, noise, photo.shape), 0.0, 1.0)
    return noisy, photo


def _batch(*images: np.ndarray) -> torch.Tensor:
    """HxWx3 arrays -> (N, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()


PHOTOS = ["astronaut", "chelsea", "coffee"]


def test_rgb_to_y_matches_skimage_rgb2ycbcr() -> None:
    photo = data.astronaut()[200:232, 200:248].astype(np.float64) / 255.0
    expected = color.rgb2ycbcr(photo)[..., 0] / 255.0
    y = rgb_to_y(_batch(photo).double())
    assert y.shape == (1, 1, 32, 48)
    np.testing.assert_allclose(y[0, 0].numpy(), expected, atol=1e-12)


def test_rgb_to_y_range_endpoints() -> None:
    black_white = torch.stack([torch.zeros(3, 1, 1), torch.ones(3, 1, 1)])
    torch.testing.assert_close(rgb_to_y(black_white).flatten(), torch.tensor([16 / 255, 235 / 255]))


def test_psnr_by_hand() -> None:
    hr = torch.zeros(1, 3, 8, 8)
    sr = torch.full((1, 3, 8, 8), 0.1)
    # MSE = 0.01 -> 10 log10(1 / 0.01) = 20 dB
    assert psnr_rgb(sr, hr).item() == pytest.approx(20.0, abs=1e-5)
    # A grey offset of 0.1 moves Y by 0.1 * (65.481 + 128.553 + 24.966) / 255 = 0.1 * 219 / 255
    assert psnr_y(sr, hr).item() == pytest.approx(-20 * math.log10(21.9 / 255), abs=1e-5)


def test_psnr_rgb_matches_skimage_per_image() -> None:
    pairs = [_photo_pair(name, seed) for seed, name in enumerate(PHOTOS)]
    sr = _batch(*(noisy for noisy, _ in pairs))
    hr = _batch(*(clean for _, clean in pairs))
    ours = psnr_rgb(sr, hr)
    assert ours.shape == (3,) and ours.dtype == torch.float64
    for value, (noisy, clean) in zip(ours.tolist(), pairs, strict=True):
        # the tensors are float32, so compare with the float32-rounded arrays
        expected = peak_signal_noise_ratio(
            clean.astype(np.float32), noisy.astype(np.float32), data_range=1.0
        )
        assert value == pytest.approx(expected, abs=1e-6)


def test_psnr_y_with_shave_matches_skimage() -> None:
    noisy, clean = _photo_pair("astronaut", seed=4)
    shave = 3
    expected = peak_signal_noise_ratio(
        color.rgb2ycbcr(clean.astype(np.float32))[shave:-shave, shave:-shave, 0],
        color.rgb2ycbcr(noisy.astype(np.float32))[shave:-shave, shave:-shave, 0],
        data_range=255.0,
    )
    ours = psnr_y(_batch(noisy), _batch(clean), shave=shave).item()
    assert ours == pytest.approx(expected, abs=1e-5)
    assert ours != pytest.approx(psnr_y(_batch(noisy), _batch(clean)).item(), abs=1e-3)


def test_round_8bit_matches_skimage_on_uint8() -> None:
    noisy, clean = _photo_pair("coffee", seed=5, noise=0.02)
    noisy_u8 = np.round(noisy * 255).astype(np.uint8)
    clean_u8 = np.round(clean * 255).astype(np.uint8)
    sr, hr = _batch(noisy), _batch(clean)

    expected_rgb = peak_signal_noise_ratio(clean_u8, noisy_u8, data_range=255)
    assert psnr_rgb(sr, hr, round_8bit=True).item() == pytest.approx(expected_rgb, abs=1e-6)

    # skimage converts uint8 to float before the colour conversion, so Y is not rounded again
    expected_y = peak_signal_noise_ratio(
        color.rgb2ycbcr(clean_u8)[2:-2, 2:-2, 0],
        color.rgb2ycbcr(noisy_u8)[2:-2, 2:-2, 0],
        data_range=255.0,
    )
    ours_y = psnr_y(sr, hr, shave=2, round_8bit=True).item()
    assert ours_y == pytest.approx(expected_y, abs=1e-6)
    assert ours_y != pytest.approx(psnr_y(sr, hr, shave=2).item(), abs=1e-4)


def test_identical_images_give_infinite_psnr() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    assert torch.isinf(psnr_rgb(x, x)).all() and torch.isinf(psnr_y(x, x)).all()


@pytest.mark.parametrize(("name", "shave"), [("astronaut", 0), ("chelsea", 2), ("coffee", 4)])
def test_ssim_y_matches_skimage(name: str, shave: int) -> None:
    noisy, clean = _photo_pair(name, seed=7, noise=0.08)
    y_noisy = color.rgb2ycbcr(noisy.astype(np.float32))[..., 0] / 255.0
    y_clean = color.rgb2ycbcr(clean.astype(np.float32))[..., 0] / 255.0
    if shave:
        y_noisy = y_noisy[shave:-shave, shave:-shave]
        y_clean = y_clean[shave:-shave, shave:-shave]
    expected = structural_similarity(
        y_clean,
        y_noisy,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    ours = ssim_y(_batch(noisy), _batch(clean), shave=shave)
    assert ours.shape == (1,)
    assert ours.item() == pytest.approx(expected, abs=1e-6)
    assert 0.0 < ours.item() < 0.99


def test_ssim_y_identical_is_one_and_batch_is_per_image() -> None:
    pairs = [_photo_pair(name, seed) for seed, name in enumerate(PHOTOS)]
    sr = _batch(*(noisy for noisy, _ in pairs))
    hr = _batch(*(clean for _, clean in pairs))
    torch.testing.assert_close(ssim_y(hr, hr), torch.ones(3, dtype=torch.float64))
    batched = ssim_y(sr, hr)
    singles = torch.cat([ssim_y(sr[i : i + 1], hr[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(batched, singles)
    assert len(set(batched.tolist())) == 3


def test_ssim_needs_an_11px_window_after_shaving() -> None:
    x = torch.rand(1, 3, 16, 16)
    assert ssim_y(x, x, shave=2).shape == (1,)  # 12 px left
    with pytest.raises(ValueError, match="shave=3"):
        ssim_y(x, x, shave=3)  # 10 px left


@pytest.mark.parametrize("metric", [psnr_rgb, psnr_y, ssim_y])
def test_bad_inputs_raise(metric) -> None:
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="does not match"):
        metric(x, torch.rand(1, 3, 16, 15))
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        metric(torch.rand(3, 16, 16), torch.rand(3, 16, 16))
    with pytest.raises(ValueError, match="shave"):
        metric(x, x, shave=-1)
    with pytest.raises(ValueError, match="float"):
        metric(
            torch.zeros(1, 3, 16, 16, dtype=torch.uint8),
            torch.zeros(1, 3, 16, 16, dtype=torch.uint8),
        )
