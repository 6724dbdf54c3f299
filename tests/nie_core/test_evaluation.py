"""The evaluation protocol of ``nie eval`` and the demo summary: which metrics each row gets,
and that the judges catch an enhancer that paints a faint pattern (scorer gaming)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from nie_core.baselines import bicubic_baseline
from nie_core.evaluation import METRIC_TITLES, METRICS, PROTOCOL, evaluate_images


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
