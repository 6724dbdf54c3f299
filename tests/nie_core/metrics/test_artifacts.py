"""Artifact energy: faint periodic patterns on smooth areas are flagged; bicubic up-sampling of
the downscaled reference and the reference itself are not."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data

from nie_core.baselines import bicubic_baseline
from nie_core.data.degradations import bicubic_downsample, crop_to_multiple
from nie_core.data.images import to_tensor
from nie_core.metrics import artifact_energy

PHOTOS = ["chelsea", "coffee", "astronaut", "blurred"]


@functools.cache
def _photo(name: str) -> np.ndarray:
    """uint8 HxWx3, cropped to a multiple of 12; "blurred" is chelsea out of focus (sigma 4)."""
    if name == "blurred":
        smooth = ndimage.gaussian_filter(data.chelsea().astype(np.float64), (4, 4, 0))
        return crop_to_multiple(np.clip(np.round(smooth), 0, 255).astype(np.uint8), 12)
    return crop_to_multiple(getattr(data, name)(), 12)


def _t(image: np.ndarray) -> torch.Tensor:
    return to_tensor(np.ascontiguousarray(image))[None]


def _pattern(shape: tuple[int, ...], kind: str, amplitude: float) -> np.ndarray:
    """A grey-level pattern (H, W, 1): vertical grating of period 4, alternating rows (period 2)
    or a diagonal grating of period 6."""
    rows, cols = np.mgrid[: shape[0], : shape[1]].astype(np.float64)
    wave = {
        "grating4": np.sin(2 * np.pi * cols / 4),
        "lines2": (-1.0) ** rows,
        "diagonal6": np.sin(2 * np.pi * (rows + cols) / 6),
    }[kind]
    return amplitude * wave[..., None]


def _add(image: np.ndarray, pattern: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """``image + pattern`` (where ``mask``), rounded back to uint8."""
    if mask is not None:
        pattern = pattern * mask[..., None]
    return np.clip(np.round(image + pattern), 0, 255).astype(np.uint8)


def _bicubic(image: np.ndarray, scale: int) -> torch.Tensor:
    """The evaluation's bicubic row: 8-bit bicubic up-sampling of the downscaled image."""
    lr = _t(bicubic_downsample(image, scale))
    return torch.round(bicubic_baseline(lr, image.shape[:2]) * 255) / 255


@pytest.mark.parametrize("name", PHOTOS)
def test_the_reference_itself_scores_zero(name: str) -> None:
    reference = _t(_photo(name))
    assert artifact_energy(reference, reference.clone()).tolist() == [0.0]
    assert artifact_energy(reference, reference, shave=4).tolist() == [0.0]


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_bicubic_upsampling_is_not_flagged(name: str, scale: int) -> None:
    image = _photo(name)
    value = artifact_energy(_bicubic(image, scale), _t(image), shave=scale).item()
    assert 0.0 <= value < 1.0, value  # 0.0-0.5 dB measured


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize(("kind", "amplitude"), [("grating4", 3), ("lines2", 2), ("diagonal6", 2)])
def test_faint_periodic_patterns_are_flagged(name: str, kind: str, amplitude: float) -> None:
    image = _photo(name)
    output = _add(image, _pattern(image.shape, kind, amplitude))
    value = artifact_energy(_t(output), _t(image), shave=2).item()
    bicubic = artifact_energy(_bicubic(image, 2), _t(image), shave=2).item()
    assert value > 3.0 and value > bicubic + 3.0, (value, bicubic)  # 3.5-9 dB measured


@pytest.mark.parametrize("name", ["chelsea", "coffee", "astronaut"])
def test_a_pattern_only_on_the_smooth_areas_is_flagged(name: str) -> None:
    """The pattern goes where the photo's 9x9 local standard deviation of luma (computed here
    with SciPy) is below 3 grey levels; the rest of the photo is untouched."""
    image = _photo(name)
    grey = image.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    mean = ndimage.uniform_filter(grey, 9)
    local_std = np.sqrt(np.maximum(ndimage.uniform_filter(grey**2, 9) - mean**2, 0.0))
    mask = (local_std < 3.0).astype(np.float64)
    assert 0.05 < mask.mean() < 0.8
    output = _add(image, _pattern(image.shape, "grating4", 3), mask)
    assert artifact_energy(_t(output), _t(image), shave=2).item() > 2.0


def test_grows_with_the_amplitude_of_the_pattern() -> None:
    image = _photo("blurred")
    values = [
        artifact_energy(_t(_add(image, _pattern(image.shape, "grating4", a))), _t(image)).item()
        for a in (1, 2, 4, 8)
    ]
    assert all(a < b for a, b in zip(values, values[1:], strict=False)), values


def test_flat_reference() -> None:
    flat = torch.full((1, 3, 48, 64), 128 / 255)
    assert artifact_energy(flat, flat).item() == 0.0
    lines = _add(np.full((48, 64, 3), 128, np.uint8), _pattern((48, 64), "lines2", 2))
    assert artifact_energy(_t(lines), flat).item() > 10.0  # 4 grey levels^2 over the 0.25 floor


def test_no_smooth_tile_gives_zero() -> None:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    patterned = _add(texture, _pattern(texture.shape, "lines2", 4))
    assert artifact_energy(_t(patterned), _t(texture)).item() == 0.0


def test_batch_shape_dtype_and_shave() -> None:
    image = _photo("blurred")[:96, :96]
    band = np.zeros(image.shape[:2])
    band[:4] = band[-4:] = band[:, :4] = band[:, -4:] = 1.0  # pattern only in the border band
    outputs = [image, _add(image, _pattern(image.shape, "lines2", 3), band)]
    output, reference = torch.cat([_t(o) for o in outputs]), torch.cat([_t(image)] * 2)
    values = artifact_energy(output, reference)
    assert values.shape == (2,) and values.dtype == torch.float32
    assert values[0].item() == 0.0 and values[1].item() > 0.0
    single = artifact_energy(output[1:], reference[1:])
    assert single.item() == pytest.approx(values[1].item())
    assert artifact_energy(output, reference, shave=4).tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("output", "reference", "shave", "message"),
    [
        (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 30), 0, "does not match"),
        (torch.rand(3, 32, 32), torch.rand(3, 32, 32), 0, "(N, 3, H, W)"),
        (torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.rand(1, 3, 32, 32), 0, "float"),
        (torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), 9, "shave=9"),
        (torch.rand(1, 3, 12, 40), torch.rand(1, 3, 12, 40), 0, "less than 16 px"),
    ],
)
def test_bad_input_is_a_value_error(output, reference, shave, message) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        artifact_energy(output, reference, shave=shave)
