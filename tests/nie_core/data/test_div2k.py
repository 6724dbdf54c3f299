from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nie_core.data.degradations import bicubic_downsample, gaussian_blur
from nie_core.data.div2k import DIV2K, ImageFolderSR
from nie_core.data.images import to_tensor


def random_image(height: int, width: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def nearest_upsample(img: np.ndarray, scale: int) -> np.ndarray:
    return np.repeat(np.repeat(img, scale, axis=0), scale, axis=1)


def save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def make_div2k(
    root: Path, split: str = "train", stems=("0001", "0002"), lr_scales=(2,), size=(48, 60)
) -> dict[str, dict]:
    """DIV2K layout whose HR images are nearest upsamplings (x2) of random LR images, so that
    HR and its X2 LR are exactly aligned; other LR scales are plain bicubic."""
    images: dict[str, dict] = {}
    for index, stem in enumerate(stems):
        small = random_image(size[0] // 2, size[1] // 2, seed=index)
        hr = nearest_upsample(small, 2)
        save(root / f"DIV2K_{split}_HR" / f"{stem}.png", hr)
        images[stem] = {"hr": hr}
        for scale in lr_scales:
            lr = small if scale == 2 else bicubic_downsample(hr, scale)
            save(root / f"DIV2K_{split}_LR_bicubic" / f"X{scale}" / f"{stem}x{scale}.png", lr)
            images[stem][scale] = lr
    return images


def as_uint8(t: torch.Tensor) -> np.ndarray:
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def test_reads_distributed_lr_files(tmp_path):
    images = make_div2k(tmp_path, "valid", stems=("0801", "0802"))
    dataset = DIV2K(tmp_path, split="valid", scale=2, full_image=True)
    assert len(dataset) == 2 and dataset.names == ["0801", "0802"]
    assert dataset.generated_lr_scales == ()
    lr, hr = dataset[1]
    assert lr.shape == (3, 24, 30) and hr.shape == (3, 48, 60)
    assert lr.dtype == torch.float32 and 0.0 <= lr.min() and hr.max() <= 1.0
    np.testing.assert_array_equal(as_uint8(lr), images["0802"][2])
    np.testing.assert_array_equal(as_uint8(hr), images["0802"]["hr"])


def test_missing_lr_folder_falls_back_to_bicubic(tmp_path):
    images = make_div2k(tmp_path, lr_scales=(2,), size=(50, 62))  # HR 50x62: not a multiple of 4
    dataset = DIV2K(tmp_path, scale=(2, 4), full_image=True)
    assert dataset.generated_lr_scales == (4,)
    lr, hr = dataset.with_scale(4)[0]
    expected_hr = images["0001"]["hr"][:48, :60]
    assert lr.shape == (3, 12, 15) and hr.shape == (3, 48, 60)
    np.testing.assert_array_equal(as_uint8(lr), bicubic_downsample(expected_hr, 4))
    np.testing.assert_array_equal(as_uint8(hr), expected_hr)
    lr2, _ = dataset.with_scale(2)[0]
    np.testing.assert_array_equal(as_uint8(lr2), images["0001"][2])


def test_multi_scale_dataset_requires_a_view(tmp_path):
    make_div2k(tmp_path, lr_scales=(2, 3))
    dataset = DIV2K(tmp_path, scale=(2, 3, 4), patch_size=8)
    assert dataset.scale == (2, 3, 4) and len(dataset) == 2
    with pytest.raises(ValueError, match="with_scale"):
        dataset[0]
    with pytest.raises(ValueError, match="5"):
        dataset.with_scale(5)
    for scale in (2, 3, 4):
        view = dataset.with_scale(scale)
        assert view.scale == scale
        lr, hr = view[0]
        assert lr.shape == (3, 8, 8) and hr.shape == (3, 8 * scale, 8 * scale)
    assert dataset.scales == (2, 3, 4)  # views do not change the original


def test_training_patches_stay_aligned(tmp_path):
    make_div2k(tmp_path, stems=("0001",), size=(40, 52))
    dataset = DIV2K(tmp_path, scale=2, patch_size=6, augment=True, repeat=5)
    assert len(dataset) == 5
    torch.manual_seed(0)
    patches = set()
    for index in range(len(dataset)):
        for _ in range(4):
            lr, hr = dataset[index]
            assert lr.shape == (3, 6, 6) and hr.shape == (3, 12, 12)
            np.testing.assert_array_equal(nearest_upsample(as_uint8(lr), 2), as_uint8(hr))
            patches.add(as_uint8(lr).tobytes())
    assert len(patches) > 10
    # Reproducible under torch.manual_seed.
    torch.manual_seed(123)
    first = [dataset[0][0] for _ in range(3)]
    torch.manual_seed(123)
    second = [dataset[0][0] for _ in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not torch.equal(first[0], first[1])


def test_deblur_inputs(tmp_path):
    images = make_div2k(tmp_path, lr_scales=(2,))
    same_size = DIV2K(
        tmp_path, scale=1, task="deblur", full_image=True, blur_sigma=1.5, blur_kernel=9
    )
    blurred, target = same_size[0]
    hr = images["0001"]["hr"]
    assert blurred.shape == target.shape == (3, 48, 60)
    np.testing.assert_array_equal(as_uint8(blurred), gaussian_blur(hr, 1.5, 9))
    np.testing.assert_array_equal(as_uint8(target), hr)

    with_sr = DIV2K(tmp_path, scale=2, task="deblur", full_image=True)
    blurred_lr, target = with_sr[0]
    np.testing.assert_array_equal(as_uint8(blurred_lr), gaussian_blur(images["0001"][2], 1.0, 7))
    np.testing.assert_array_equal(as_uint8(target), hr)

    with pytest.raises(ValueError, match="deblur"):
        DIV2K(tmp_path, scale=1, task="sr")
    with pytest.raises(ValueError, match="blur_kernel"):
        DIV2K(tmp_path, scale=1, task="deblur", blur_kernel=4)


def test_cache_gives_identical_items(tmp_path):
    make_div2k(tmp_path / "div2k", lr_scales=(2,))
    cache_dir = tmp_path / "cache"
    plain = DIV2K(tmp_path / "div2k", scale=(2, 4), task="deblur", full_image=True)
    cached = DIV2K(
        tmp_path / "div2k", scale=(2, 4), task="deblur", full_image=True, cache_dir=cache_dir
    )
    for scale in (2, 4):
        for index in range(2):
            for a, b in zip(
                plain.with_scale(scale)[index], cached.with_scale(scale)[index], strict=True
            ):
                assert torch.equal(a, b)
    files = sorted(p.name for p in cache_dir.glob("*.npy"))
    assert len(files) == 2 * 3  # per image: HR, blurred X2 file, blurred generated X4
    assert sum(".x4-blur" in name for name in files) == 2


def test_layout_errors_name_the_path(tmp_path):
    with pytest.raises(ValueError, match="nowhere"):
        DIV2K(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="DIV2K_valid_HR"):
        DIV2K(tmp_path, split="valid")
    (tmp_path / "DIV2K_train_HR").mkdir()
    with pytest.raises(ValueError, match="no .png"):
        DIV2K(tmp_path)
    make_div2k(tmp_path, stems=("0001", "0002"))
    (tmp_path / "DIV2K_train_LR_bicubic" / "X2" / "0002x2.png").unlink()
    with pytest.raises(ValueError, match="0002x2.png"):
        DIV2K(tmp_path, scale=2)
    with pytest.raises(ValueError, match="split"):
        DIV2K(tmp_path, split="test")


def test_image_folder_sr(tmp_path):
    folder = tmp_path / "Set5"
    baby = random_image(30, 40, seed=7)
    bird = random_image(27, 33, seed=8)
    save(folder / "baby.png", baby)
    Image.fromarray(bird).save(folder / "bird.bmp")
    (folder / "readme.txt").write_text("not an image")
    dataset = ImageFolderSR(folder, scale=3)
    assert len(dataset) == 2 and dataset.names == ["baby", "bird"]
    lr, hr = dataset[1]
    assert lr.shape == (3, 9, 11) and hr.shape == (3, 27, 33)
    np.testing.assert_array_equal(as_uint8(lr), bicubic_downsample(bird, 3))
    assert torch.equal(hr, to_tensor(bird))

    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        ImageFolderSR(tmp_path / "empty", scale=2)
    with pytest.raises(ValueError, match="missing"):
        ImageFolderSR(tmp_path / "missing", scale=2)
