"""NIQE (nie_core.metrics.niqe) against MATLAB reference numbers, an independent port, and the
behaviour the paper describes.

No NIQE score computed by the authors' MATLAB code was found for an image that can be had
offline here, so the end-to-end numbers are checked against mmeval's port (OpenMMLab's copy of
BasicSR's, which matches MATLAB R2021a on baboon.png to 3e-7), while the pieces that MATLAB
published numbers exist for are checked against those exactly.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import time

import numpy as np
import pytest
import torch
from scipy.special import gamma
from skimage import data, filters

from nie_core.metrics import niqe

niqe_module = importlib.import_module("nie_core.metrics.niqe")  # the name `niqe` is the function

# MATLAB reference results quoted in the test block of GNU Octave's image package,
# inst/imresize.m (2022 rewrite, C. Kaufmann): "Test bicubic interpolations against some
# reference results from matlab", for imresize(uint8(IN), scale, "bicubic") with MATLAB's
# default antialiasing.
_OCTAVE_IN = [
    [116, 227, 153, 69, 146, 194, 59, 130, 139, 106],
    [2, 47, 137, 249, 90, 75, 16, 24, 158, 44],
    [155, 68, 46, 84, 166, 156, 69, 204, 32, 152],
    [71, 221, 137, 230, 210, 153, 192, 115, 30, 118],
    [107, 143, 108, 52, 51, 73, 101, 21, 175, 90],
    [54, 158, 143, 77, 26, 168, 113, 229, 165, 225],
    [9, 47, 133, 135, 130, 207, 236, 43, 19, 73],
    [129, 60, 59, 243, 64, 181, 249, 56, 32, 86],
]
_MATLAB_HALF = [
    [105, 140, 126, 81, 109],
    [110, 134, 153, 114, 93],
    [108, 108, 94, 127, 146],
    [67, 126, 162, 149, 62],
]
_MATLAB_THIRD = [[115, 135, 97, 101], [113, 119, 124, 125], [81, 157, 118, 64]]


def _crop(name: str) -> np.ndarray:
    """A 288x384 uint8 RGB crop of a scikit-image photograph (12 whole NIQE patches)."""
    return getattr(data, name)()[:288, :384]


def _tensor(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) array in [0, 1] (or uint8) -> (3, H, W) float64 tensor in [0, 1]."""
    x = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))


def _as_matlab_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255)


@pytest.mark.parametrize(("scale", "expected"), [(0.5, _MATLAB_HALF), (1 / 3, _MATLAB_THIRD)])
def test_imresize_matches_matlab_reference_results(scale: float, expected: list) -> None:
    # For uint8 input MATLAB resizes rows first, then columns, rounding to uint8 after each
    # pass; done the same way the published outputs are reproduced exactly.
    image = np.array(_OCTAVE_IN, dtype=np.float64)
    rows = _as_matlab_uint8(niqe_module._resize_axis0(image, scale))
    out = _as_matlab_uint8(niqe_module._resize_axis0(rows.T, scale).T)
    np.testing.assert_array_equal(out, np.array(expected))
    assert niqe_module._matlab_imresize(image, scale).shape == np.array(expected).shape


def test_imresize_half_keeps_a_linear_ramp_away_from_the_borders() -> None:
    ramp = np.tile(np.arange(1.0, 41.0), (40, 1))  # f(column) = column, 1-based as MATLAB
    out = niqe_module._matlab_imresize(ramp, 0.5)
    assert out.shape == (20, 20)
    # Output pixel k (1-based) sits at input 2k - 0.5; the symmetric 8-tap kernel keeps lines.
    np.testing.assert_allclose(out[:, 2:-2], np.tile(2.0 * np.arange(3, 19) - 0.5, (20, 1)))


def test_gaussian_window_and_gray_weights_are_matlabs() -> None:
    # fspecial('gaussian', 7, 7/6) as exported from MATLAB into the pristine-model file.
    mu, _ = niqe_module._pristine_model()  # also checks the file can be found
    path = importlib.util.find_spec("mmeval").submodule_search_locations[0]
    with np.load(f"{path}/extra_data/niqe_pris_params.npz") as params:
        window = params["gaussian_window"]
    g = niqe_module._GAUSS_1D
    np.testing.assert_allclose(np.outer(g, g), window, rtol=0, atol=1e-15)
    assert mu.shape == (36,)
    # MATLAB's rgb2gray documents Y = 0.2989 R + 0.5870 G + 0.1140 B.
    np.testing.assert_allclose(niqe_module._RGB2GRAY, [0.2989, 0.5870, 0.1140], atol=5e-5)


def test_gamma_ratio_table() -> None:
    grid, ratio = niqe_module._GAMMA_GRID, niqe_module._R_GAMMA
    assert grid.shape == (9801,) and grid[0] == 0.2 and grid[-1] == 10.0
    assert np.all(np.diff(ratio) > 0)  # what the nearest-point search relies on
    # r(a) = G(2/a)^2 / (G(1/a) G(3/a)): 1/2 for the Laplacian (a=1), 2/pi for the Gaussian.
    assert ratio[800] == pytest.approx(0.5, abs=1e-14)
    assert ratio[1800] == pytest.approx(2 / math.pi, abs=1e-14)


def test_aggd_fit_recovers_known_distributions() -> None:
    rng = np.random.default_rng(0)
    gauss = rng.normal(0.0, 2.0, 200_000)
    laplace = rng.laplace(0.0, 1.0, 200_000)
    halves = np.abs(rng.normal(0.0, 1.0, 200_000))
    skewed = np.where(rng.random(200_000) < 0.25, -halves, 3.0 * halves)  # sigma 1 left, 3 right
    alpha, left, right = niqe_module._aggd_fit(np.stack([gauss, laplace, skewed]))
    np.testing.assert_allclose(alpha, [2.0, 1.0, 2.0], atol=0.03)
    # For a = 2 the scale is sigma * sqrt(2); for the Laplacian with b = 1 it is b.
    np.testing.assert_allclose(left, [2.0 * math.sqrt(2), 1.0, math.sqrt(2)], rtol=0.02)
    np.testing.assert_allclose(right, [2.0 * math.sqrt(2), 1.0, 3.0 * math.sqrt(2)], rtol=0.02)


def test_aggd_fit_matches_matlab_brute_force_search() -> None:
    rng = np.random.default_rng(1)
    rows = rng.standard_t(df=rng.uniform(2, 30, size=(50, 1)), size=(50, 500))
    rows[:, :100] *= rng.uniform(0.2, 5.0, size=(50, 1))  # varied asymmetry
    rows[0] = np.abs(rows[0])  # no negative sample: MATLAB gets NaN scales and min's index 1
    alpha, left, right = niqe_module._aggd_fit(rows)
    for row, a, bl, br in zip(rows, alpha, left, right, strict=True):
        lstd = np.sqrt(np.mean(row[row < 0] ** 2)) if np.any(row < 0) else np.nan
        rstd = np.sqrt(np.mean(row[row > 0] ** 2))
        g = lstd / rstd
        r_hat = np.mean(np.abs(row)) ** 2 / np.mean(row**2)
        r_norm = r_hat * (g**3 + 1) * (g + 1) / (g**2 + 1) ** 2
        cost = (niqe_module._R_GAMMA - r_norm) ** 2
        expected = niqe_module._GAMMA_GRID[0 if np.isnan(r_norm) else np.nanargmin(cost)]
        assert a == expected
        scale = np.sqrt(gamma(1 / a) / gamma(3 / a))
        np.testing.assert_allclose([bl, br], [lstd * scale, rstd * scale], equal_nan=True)
    assert alpha[0] == 0.2 and np.isnan(left[0])


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee"])
def test_niqe_matches_mmeval_port(name: str) -> None:
    # mmeval reads gray from float32 OpenCV and resizes in float32; on these photographs that
    # moves the score by < 1e-6 (images with exactly flat areas can differ by ~1e-3: zeros in
    # the MSCN map count in neither AGGD side, tiny nonzero values do).
    mmeval_niqe = pytest.importorskip("mmeval.metrics.niqe")
    photo = _crop(name)
    gray = niqe_module._to_gray_255(photo)
    metric = mmeval_niqe.NaturalImageQualityEvaluator(input_order="HWC", convert_to="gray")
    rgb = np.repeat(gray[..., None], 3, axis=2)  # equal channels: OpenCV's gray is the same
    args = (metric.mu_pris_param, metric.cov_pris_param, metric.gaussian_window)
    expected = float(metric.compute_niqe(rgb, "rgb", *args))
    assert niqe(photo) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("name", ["astronaut", "chelsea"])
def test_pristine_photos_score_low_and_distortions_raise_the_score(name: str) -> None:
    photo = _crop(name).astype(np.float64) / 255.0
    clean = niqe(_tensor(photo))
    assert 2.0 < clean < 5.0
    blurred = [niqe(_tensor(filters.gaussian(photo, sigma=s, channel_axis=-1))) for s in (1, 2, 4)]
    assert clean < blurred[0] < blurred[1] < blurred[2]
    rng = np.random.default_rng(0)
    noisy = [
        niqe(_tensor(np.clip(photo + rng.normal(0, s / 255, photo.shape), 0, 1)))
        for s in (5, 15, 40)
    ]
    assert clean < noisy[0] < noisy[1] < noisy[2]
    # x4 MATLAB-bicubic down and up again, the usual SR baseline, is far less natural.
    down_up = np.stack(
        [
            niqe_module._matlab_imresize(niqe_module._matlab_imresize(photo[..., c], 0.25), 4.0)
            for c in range(3)
        ],
        axis=-1,
    )
    assert niqe(_tensor(np.clip(down_up, 0, 1))) > clean + 2.0


def test_input_forms_agree_and_results_are_deterministic() -> None:
    photo = _crop("chelsea")
    score = niqe(photo)
    assert isinstance(score, float)
    assert niqe(photo) == score
    tensor = _tensor(photo)
    assert niqe(tensor) == score
    assert niqe(tensor.float()) == score  # float32 quantises to the same 8-bit image
    assert niqe(tensor[None]) == score
    gray = niqe_module._to_gray_255(photo).astype(np.uint8)
    assert niqe(gray) == score
    assert niqe(np.repeat(gray[..., None], 3, axis=2)) == score  # rgb2gray of equal channels
    assert niqe(photo, crop_border=8) == niqe(photo[8:-8, 8:-8])


def test_flat_image_gives_nan() -> None:
    assert math.isnan(niqe(np.full((192, 192), 128, dtype=np.uint8)))


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [
        (np.zeros((191, 400, 3), np.uint8), {}, "192x192"),
        (np.zeros((200, 200), np.uint8), {"crop_border": 5}, "192x192"),
        (torch.zeros(1, 191, 200), {}, r"\(3, H, W\)"),
        (torch.zeros(2, 3, 200, 200), {}, r"\(3, H, W\)"),
        (torch.zeros(3, 200, 200, dtype=torch.uint8), {}, "float"),
        (np.zeros((200, 200, 3)), {}, "uint8"),
        (np.zeros((200, 200, 4), np.uint8), {}, r"\(H, W, 3\)"),
        ([[0]], {}, "torch.Tensor or numpy.ndarray"),
        (np.zeros((200, 200), np.uint8), {"crop_border": -1}, "crop_border"),
        (np.zeros((200, 200), np.uint8), {"crop_border": True}, "crop_border"),
    ],
)
def test_bad_inputs_raise(image: object, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        niqe(image, **kwargs)  # type: ignore[arg-type]


def test_missing_parameter_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    niqe_module._pristine_model.cache_clear()
    monkeypatch.setattr(niqe_module.importlib.util, "find_spec", lambda name: None)
    try:
        with pytest.raises(FileNotFoundError, match="mmeval"):
            niqe(_crop("coffee"))
    finally:
        niqe_module._pristine_model.cache_clear()


def test_384px_image_takes_well_under_a_second() -> None:
    image = data.astronaut()[:384, :384]
    niqe(image)  # parameters loaded and cached
    start = time.perf_counter()
    niqe(image)
    assert time.perf_counter() - start < 0.5
