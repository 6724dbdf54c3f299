"""ray_jobs.enhancer_validation on one worker without a Ray cluster: the jobs' validation
measures by the protocol of ``nie eval`` (nie_core.evaluation), outputs rounded to 8 bits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nie_core.data.div2k import ImageFolderSR
from nie_core.data.images import save_image
from nie_core.evaluation import evaluate_images
from nie_core.models import create_model
from ray_jobs.enhancer_validation import validate
from ray_jobs.worker import WorkerEnv


def test_validation_psnr_is_nie_evals_for_the_same_model_and_image(tmp_path) -> None:
    """Issue 21 item 7: validation measured the unrounded float output, ``nie eval`` the 8-bit
    one, so val_psnr_y and the PSNR-Y of ``nie eval`` differed for the same model and image."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:192, 0:208]  # NIQE (in nie eval) needs 192 px
    smooth = 128 + 60 * np.sin(x / 9.0)[..., None] * np.cos(y / 13.0)[..., None]
    image = np.clip(smooth + rng.normal(0, 12, (192, 208, 3)), 0, 255).astype(np.uint8)
    folder = tmp_path / "valid"
    folder.mkdir()
    save_image(folder / "photo.png", image)
    torch.manual_seed(0)
    # Untrained, its outputs lie inside (0, 1) and between the 8-bit levels: rounding matters.
    model = create_model("edsr_baseline", scale=2, n_resblocks=2, n_feats=16).eval()

    env = WorkerEnv(rank=0, world_size=1, device=torch.device("cpu"), fast=False)
    val = validate(model, None, ImageFolderSR(folder, scale=2), env, max_images=None)
    table = evaluate_images([folder / "photo.png"], {"model": model}, scale=2)

    assert val["val_psnr_y"] == pytest.approx(table.values["model"]["psnr_y"][0], abs=1e-9)
    assert val["val_ssim_y"] == pytest.approx(table.values["model"]["ssim_y"][0], abs=1e-9)
    assert val["bicubic_psnr_y"] == pytest.approx(table.values["bicubic"]["psnr_y"][0], abs=1e-9)
