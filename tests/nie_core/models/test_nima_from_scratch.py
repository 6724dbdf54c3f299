"""A NIMA trained from random weights (no ImageNet weights offline) must separate images in eval
mode. With MnasNet's own BatchNorm momentum (0.0003) the running statistics barely move in a
short run and every image gets the same score; nie_core uses 0.1 when not starting from
ImageNet."""

from __future__ import annotations

import torch

from nie_core.losses import emd_loss
from nie_core.metrics.aesthetic import mean_score
from nie_core.models import create_model


def _dark_and_bright(generator: torch.Generator) -> torch.Tensor:
    images = torch.rand(8, 3, 64, 64, generator=generator)
    images[:4] *= 0.3  # dark: [0, 0.3]
    images[4:] = 0.7 + 0.3 * images[4:]  # bright: [0.7, 1]
    return images


def test_nima_trained_from_scratch_separates_images_in_eval_mode() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    model = create_model("nima", backbone="mnasnet0_5").train()
    targets = torch.zeros(8, 10)
    targets[:4, 1] = 1.0  # dark images are rated 2
    targets[4:, 8] = 1.0  # bright images are rated 9
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(100):
        loss = emd_loss(targets, model(_dark_and_bright(generator)))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    model.eval()
    with torch.no_grad():
        scores = mean_score(model(_dark_and_bright(generator)))
    assert scores[:4].max() < 4.0 and scores[4:].min() > 7.0, scores
