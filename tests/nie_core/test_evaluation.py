"""The evaluation protocol of ``nie eval`` and the demo summary: which metrics each row gets,
and that the judges catch an enhancer that paints a faint pattern (scorer gaming)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from nie_core.baselines import bicubic_baseline
from nie_core.data.degradations import bicubic_downsample
from nie_core.data.images import to_tensor, to_uint8
from nie_core.evaluation import (
    METRIC_TITLES,
    METRICS,
    PROTOCOL,
    evaluate_images,
    lr_consistency,
    output_judges,
)
from nie_core.metrics import artifact_energy
from nie_core.metrics.niqe import niqe


def _gaming(lr: torch.Tensor) -> torch.Tensor:
    """Bicubic x2 plus alternating rows of +-3/255: what a scorer-gaming enhancer might add."""
    out = bicubic_baseline(lr, (lr.shape[-2] * 2, lr.shape[-1] * 2))
    rows = torch.arange(out.shape[-2], dtype=out.dtype).remainder(2).mul(2).sub(1)
    return out + (3 / 255) * rows.view(1, 1, -1, 1)


@pytest.fixture(scope="module")
def table():
    """Two 192 px crops (NIQE needs 192 px) with smooth areas: coffee's saucer, the cat's fur."""
    images = [np.ascontiguousarray(data.coffee()[150:342, 200:392]),
              np.ascontiguousarray(data.chelsea()[0:192, 0:192])]  # fmt: skip
    return evaluate_images(images, {"gaming": _gaming}, scale=2, names=["cup", "cat"])


def test_every_row_gets_the_metrics_that_apply(table) -> None:
    summary = table.summary()
    assert list(summary) == ["bicubic", "gaming", "reference"]
    full_reference = {"psnr_y", "ssim_y", "gmsd", "artifacts", "lr_psnr_y", "niqe"}
    assert set(summary["bicubic"]) == set(summary["gaming"]) == full_reference
    assert set(summary["reference"]) == {"niqe"}  # no scorer given; no reference to compare
    assert all(s["n"] == 2 for row in ("bicubic", "gaming") for s in summary[row].values())


def test_artifacts_catch_the_painted_pattern_that_psnr_and_gmsd_miss(table) -> None:
    summary = table.summary()
    bicubic, gaming = summary["bicubic"], summary["gaming"]
    assert 0 <= bicubic["artifacts"]["mean"] < 1.0
    assert gaming["artifacts"]["mean"] > bicubic["artifacts"]["mean"] + 3.0  # ~9.3 dB
    # PSNR moves by under a dB, and GMSD not at all: its 2x2 average cancels a period-2 pattern.
    assert bicubic["psnr_y"]["mean"] - gaming["psnr_y"]["mean"] < 1.0
    assert 0 < bicubic["gmsd"]["mean"] < 0.35
    assert gaming["gmsd"]["mean"] == pytest.approx(bicubic["gmsd"]["mean"], abs=1e-4)


def test_the_table_names_the_new_judges_and_their_protocol(table) -> None:
    assert METRICS.index("gmsd") < METRICS.index("niqe") and set(METRICS) == set(METRIC_TITLES)
    text = table.markdown("x2")
    for needed in ("GMSD (lower better)", "Artifacts dB (lower better)", "SSIM-Y", "NIQE"):
        assert needed in text, needed
    assert "GMSD (Xue et al. 2014, c = 170" in PROTOCOL and "artifacts = dB" in PROTOCOL
    reference_line = next(line for line in text.splitlines() if line.startswith("| reference"))
    assert reference_line.count("–") == 5  # PSNR, SSIM, GMSD, artifacts, LR-consistency


# --------------------------------------------------------------------------- the service's judges


def _x2(lr_array: np.ndarray, gaming: bool = False) -> np.ndarray:
    """The bicubic x2 of an LR image as uint8, with the painted rows of ``_gaming`` if asked."""
    lr = to_tensor(lr_array)[None]
    out = _gaming(lr) if gaming else bicubic_baseline(lr, (lr.shape[-2] * 2, lr.shape[-1] * 2))
    return to_uint8(out[0])


def test_output_judges_see_the_painted_pattern_against_the_inputs_bicubic() -> None:
    lr = bicubic_downsample(np.ascontiguousarray(data.chelsea()), 2)  # 150 x 225
    plain, painted = output_judges(lr, _x2(lr), 2), output_judges(lr, _x2(lr, True), 2)
    assert plain["region"] == painted["region"] == [0, 0, 450, 300]  # fits: the whole output
    assert plain["artifacts"] == 0.0  # the reference itself, rounded alike
    assert painted["artifacts"] > 3.0
    assert painted["niqe"] > plain["niqe"] + 0.5
    # The same LR-consistency as the evaluation table's (one function for both).
    table = evaluate_images([np.ascontiguousarray(data.chelsea())], {}, scale=2)
    assert plain["lr_psnr_y"] == pytest.approx(table.values["bicubic"]["lr_psnr_y"][0])


def test_output_judges_measure_a_bounded_centre_region_of_large_outputs() -> None:
    lr = bicubic_downsample(np.ascontiguousarray(data.chelsea()), 2)
    painted = _x2(lr, gaming=True)
    judged = output_judges(lr, painted, 2, max_side=256)
    left, top, width, height = judged["region"]
    assert (width, height) == (256, 256) and (left, top) == (96, 22)  # centred, even
    # The region's reference is that region of the whole input's bicubic x2 (the margin
    # makes the up-sampling of the input's part equal to it).
    full = to_tensor(_x2(lr))[None][..., top : top + height, left : left + width]
    region = to_tensor(painted)[None][..., top : top + height, left : left + width]
    expected = artifact_energy(region, full, shave=2).item()
    assert judged["artifacts"] == pytest.approx(expected, abs=1e-6)
    assert judged["niqe"] == pytest.approx(niqe(region[0]))
    whole = lr_consistency(to_tensor(lr)[None], to_tensor(painted)[None], 2)
    assert judged["lr_psnr_y"] == pytest.approx(whole)  # on the whole output


def test_output_judges_of_small_or_mismatched_images() -> None:
    lr = np.ascontiguousarray(data.coffee()[100:148, 200:264])  # 48 x 64 -> 96 x 128
    judged = output_judges(lr, _x2(lr), 2)
    assert judged["niqe"] is None  # under NIQE's 192 px
    assert judged["artifacts"] == 0.0 and judged["lr_psnr_y"] > 30
    tiny = output_judges(lr[:8, :8], _x2(lr[:8, :8]), 2)  # 16 px: no tile after the shave
    assert tiny["artifacts"] is None and tiny["niqe"] is None
    exact = output_judges(lr, lr, 1)  # deblurring's identity: an exact fit
    assert exact["lr_psnr_y"] == 100.0 and exact["artifacts"] == 0.0
    with pytest.raises(ValueError, match="not the 48x64 input times 2"):
        output_judges(lr, lr, 2)
