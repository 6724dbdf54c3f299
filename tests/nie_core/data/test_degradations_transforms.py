from __future__ import annotations

import numpy as np
import pytest

from nie_core.data.degradations import (
    add_gaussian_noise,
    bicubic_downsample,
    crop_to_multiple,
    gaussian_blur,
    gaussian_kernel1d,
    jpeg_compress,
    reduce_contrast,
)
from nie_core.data.transforms import (
    augment_pair,
    center_crop,
    paired_random_crop,
    random_crop,
    resize,
)


def nearest_upsample(img: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def random_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_downsample_crops_to_a_multiple_first(scale):
    hr = random_image(50, 37)
    lr = bicubic_downsample(hr, scale)
    assert lr.shape == (50 // scale, 37 // scale, 3) and lr.dtype == np.uint8
    assert crop_to_multiple(hr, scale).shape == (50 // scale * scale, 37 // scale * scale, 3)
    # The dropped bottom/right rows do not influence the result.
    np.testing.assert_array_equal(bicubic_downsample(crop_to_multiple(hr, scale), scale), lr)


def test_bicubic_downsample_keeps_constants_and_averages_blocks():
    flat = np.full((24, 24, 3), 77, dtype=np.uint8)
    np.testing.assert_array_equal(bicubic_downsample(flat, 4), np.full((6, 6, 3), 77))
    stripes = np.zeros((24, 24, 3), dtype=np.uint8)
    stripes[:, ::2] = 200  # finest vertical stripes average to about 100
    assert abs(float(bicubic_downsample(stripes, 2)[2:-2, 2:-2].mean()) - 100) < 3
    with pytest.raises(ValueError, match="scale"):
        bicubic_downsample(flat, 0)


def test_gaussian_kernel_and_blur_impulse_response():
    weights = gaussian_kernel1d(1.0, 7)
    assert weights.shape == (7,) and abs(weights.sum() - 1) < 1e-12
    np.testing.assert_allclose(weights[3] / weights[4], np.exp(0.5))

    impulse = np.zeros((21, 21, 3), dtype=np.uint8)
    impulse[10, 10] = 255
    blurred = gaussian_blur(impulse, sigma=1.0, kernel_size=7).astype(np.float64)
    expected = 255 * np.outer(weights, weights)
    np.testing.assert_allclose(blurred[7:14, 7:14, 0], expected, atol=0.51)
    assert blurred[:7].max() == 0 and blurred[:, 14:].max() == 0  # 7 taps: radius 3
    np.testing.assert_array_equal(blurred[:, :, 0], blurred[:, :, 2])


def test_gaussian_blur_preserves_constants_and_smooths_noise():
    flat = np.full((9, 11, 3), 123, dtype=np.uint8)
    np.testing.assert_array_equal(gaussian_blur(flat, 2.0, 9), flat)
    noise = random_image(40, 40)
    assert gaussian_blur(noise, 1.5, 9).std() < 0.5 * noise.std()
    with pytest.raises(ValueError, match="kernel_size"):
        gaussian_blur(flat, 1.0, 6)
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(flat, 0.0, 7)


def test_other_degradations_move_away_from_the_original():
    img = random_image(32, 32, seed=5)
    rng = np.random.default_rng(0)
    noisy = add_gaussian_noise(img, 20.0, rng)
    assert 10 < np.abs(noisy.astype(int) - img).mean() < 25
    flat_contrast = reduce_contrast(img, 0.0)
    assert flat_contrast.max() - flat_contrast.min() <= 1
    np.testing.assert_array_equal(reduce_contrast(img, 1.0), img)
    smooth = gaussian_blur(img, 3.0, 13)
    err_low = np.abs(jpeg_compress(smooth, 5).astype(int) - smooth).mean()
    err_high = np.abs(jpeg_compress(smooth, 95).astype(int) - smooth).mean()
    assert err_low > err_high
    with pytest.raises(ValueError, match="quality"):
        jpeg_compress(img, 0)


@pytest.mark.parametrize("scale", [1, 2, 3, 4])
def test_crop_and_augment_keep_pairs_aligned(scale):
    lr = random_image(20, 26, seed=scale)
    hr = nearest_upsample(lr, scale)
    seen = set()
    for seed in range(40):
        rng = np.random.default_rng(seed)
        lr_patch, hr_patch = paired_random_crop(lr, hr, 6, scale, rng)
        assert lr_patch.shape == (6, 6, 3) and hr_patch.shape == (6 * scale, 6 * scale, 3)
        np.testing.assert_array_equal(nearest_upsample(lr_patch, scale), hr_patch)
        lr_aug, hr_aug = augment_pair(lr_patch, hr_patch, rng)
        np.testing.assert_array_equal(nearest_upsample(lr_aug, scale), hr_aug)
        assert lr_aug.flags.c_contiguous and hr_aug.flags.c_contiguous
        seen.add(lr_aug.tobytes())
    assert len(seen) > 20  # crops and symmetries actually vary


def test_augment_pair_reaches_all_eight_symmetries():
    lr = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    outcomes = {augment_pair(lr, lr, np.random.default_rng(s))[0].tobytes() for s in range(200)}
    assert len(outcomes) == 8


def test_paired_crop_rejects_mismatched_or_small_inputs():
    lr = random_image(10, 10)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="smaller than LR"):
        paired_random_crop(lr, random_image(15, 20), 4, 2, rng)
    with pytest.raises(ValueError, match="patch size"):
        paired_random_crop(lr, nearest_upsample(lr, 2), 11, 2, rng)


def test_resize_and_crops():
    img = random_image(30, 50)
    assert resize(img, 16).shape == (16, 16, 3)
    assert resize(img, (12, 20)).shape == (12, 20, 3)
    np.testing.assert_array_equal(center_crop(img, 10), img[10:20, 20:30])
    window = random_crop(img, 10, np.random.default_rng(0))
    assert window.shape == (10, 10, 3)
    with pytest.raises(ValueError, match="crop size"):
        center_crop(img, 31)
