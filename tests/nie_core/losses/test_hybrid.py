from __future__ import annotations

import pytest
import torch
from torch import nn

from nie_core.losses import HybridLoss, LossParts


class TinyScorer(nn.Module):
    """Stand-in for NIMA: conv -> ReLU -> dropout -> global average pool -> linear -> softmax."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(p=0.5)
        self.head = nn.Linear(8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.dropout(torch.relu(self.conv(x))).mean(dim=(2, 3))
        return torch.softmax(self.head(features), dim=1)


class BrightnessScorer(nn.Module):
    """Puts mass b on score 10 and 1 - b on score 1, b = mean brightness: mean score 1 + 9b.

    Records the spatial size and number of the images it is given.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        brightness = x.mean(dim=(1, 2, 3)).unsqueeze(1)
        middle = torch.zeros(x.shape[0], 8, dtype=x.dtype)
        return torch.cat([1.0 - brightness, middle, brightness], dim=1)


def test_pixel_terms_and_total_by_hand() -> None:
    output = torch.full((2, 3, 64, 64), 0.5)
    reference = torch.full((2, 3, 64, 64), 0.25)
    # brightness 0.5 -> mean score 1 + 9 * 0.5 = 5.5 -> aesthetic 10 - 5.5 = 4.5
    l2 = HybridLoss(BrightnessScorer(), gamma=0.2, pixel="l2", pixel_range=1.0)(output, reference)
    assert isinstance(l2, LossParts) and l2.scored
    assert l2.pixel.item() == pytest.approx(0.0625)  # 0.25 ** 2
    assert l2.aesthetic.item() == pytest.approx(4.5)
    assert l2.nima_mean.item() == pytest.approx(5.5)
    assert l2.total.item() == pytest.approx(0.0625 + 0.2 * 4.5)

    l1 = HybridLoss(BrightnessScorer(), gamma=0.2, pixel="l1", pixel_range=1.0)(output, reference)
    assert l1.pixel.item() == pytest.approx(0.25)
    assert l1.total.item() == pytest.approx(0.25 + 0.2 * 4.5)


def test_pixel_error_defaults_to_8bit_units() -> None:
    """The report's EDSR-PyTorch measured L2 on [0, 255] images; gamma is on that scale."""
    output = torch.full((1, 3, 64, 64), 0.5)
    reference = torch.full((1, 3, 64, 64), 0.25)
    l2 = HybridLoss(BrightnessScorer(), gamma=0.4)(output, reference)
    assert l2.pixel.item() == pytest.approx(63.75**2)  # (0.25 * 255) ** 2
    assert l2.total.item() == pytest.approx(63.75**2 + 0.4 * 4.5)
    l1 = HybridLoss(None, pixel="l1")(output, reference)
    assert l1.pixel.item() == pytest.approx(63.75)


def test_patch_mode_averages_tiles_and_ignores_remainder() -> None:
    # 64 x 150 output, tiles of 64: two tiles (brightness 0.2 and 0.6) plus 22 unscored columns
    # of brightness 1.0. Tile scores 2.8 and 6.4 -> mean 4.6 -> aesthetic 5.4.
    output = torch.empty(1, 3, 64, 150)
    output[..., :64] = 0.2
    output[..., 64:128] = 0.6
    output[..., 128:] = 1.0
    scorer = BrightnessScorer()
    parts = HybridLoss(scorer, gamma=1.0, aesthetic_on="patch", aesthetic_patch=64)(output, output)
    assert parts.nima_mean.item() == pytest.approx(4.6)
    assert parts.aesthetic.item() == pytest.approx(5.4)
    assert parts.total.item() == pytest.approx(5.4)  # pixel term is 0
    assert scorer.seen == [(2, 3, 64, 64)]

    whole = HybridLoss(BrightnessScorer(), gamma=1.0, aesthetic_on="image")(output, output)
    brightness = (64 * 0.2 + 64 * 0.6 + 22 * 1.0) / 150
    assert whole.nima_mean.item() == pytest.approx(1 + 9 * brightness)


def test_patch_mode_scores_each_sample_separately() -> None:
    output = torch.cat([torch.full((1, 3, 128, 64), 0.0), torch.full((1, 3, 128, 64), 1.0)])
    loss = HybridLoss(BrightnessScorer(), gamma=1.0, aesthetic_on="patch", aesthetic_patch=64)
    scores = loss.mean_scores(output)
    torch.testing.assert_close(scores, torch.tensor([1.0, 10.0]))


def test_small_outputs_are_upsampled_to_min_scorer_size() -> None:
    output = torch.full((1, 3, 32, 48), 0.3)
    scorer = BrightnessScorer()
    parts = HybridLoss(scorer, gamma=1.0)(output, output)
    assert scorer.seen == [(1, 3, 64, 96)]
    assert parts.nima_mean.item() == pytest.approx(1 + 9 * 0.3)

    unscaled = BrightnessScorer()
    HybridLoss(unscaled, gamma=1.0, min_scorer_size=0)(output, output)
    assert unscaled.seen == [(1, 3, 32, 48)]


def test_output_smaller_than_a_tile_raises() -> None:
    loss = HybridLoss(BrightnessScorer(), gamma=1.0, aesthetic_on="patch", aesthetic_patch=64)
    with pytest.raises(ValueError, match="aesthetic_patch=64"):
        loss(torch.rand(1, 3, 48, 96), torch.rand(1, 3, 48, 96))


def test_gradient_reaches_output_but_not_scorer_weights() -> None:
    scorer = TinyScorer()
    assert all(p.requires_grad for p in scorer.parameters())
    loss = HybridLoss(scorer, gamma=0.5)
    assert not any(p.requires_grad for p in scorer.parameters())

    generator = torch.Generator().manual_seed(0)
    reference = torch.rand(2, 3, 64, 64, generator=generator)
    output = torch.rand(2, 3, 64, 64, generator=generator, requires_grad=True)
    loss(output, reference).total.backward()
    assert all(p.grad is None for p in scorer.parameters())
    assert output.grad is not None and torch.isfinite(output.grad).all()

    pixel_only = output.detach().clone().requires_grad_(True)
    HybridLoss(None, gamma=0.0)(pixel_only, reference).total.backward()
    # The aesthetic term changes the gradient: it really flows through the scorer.
    assert not torch.allclose(output.grad, pixel_only.grad)


def test_scorer_stays_in_eval_mode() -> None:
    scorer = TinyScorer()
    loss = HybridLoss(scorer, gamma=1.0).train()
    assert loss.training and not scorer.training
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    # Dropout in the scorer would make repeated scores differ if it were in training mode.
    torch.testing.assert_close(loss.mean_scores(x), loss.mean_scores(x))


def test_gamma_zero_does_not_run_scorer() -> None:
    scorer = BrightnessScorer()
    output, reference = torch.full((1, 3, 64, 64), 0.5), torch.zeros(1, 3, 64, 64)
    parts = HybridLoss(scorer, gamma=0.0, pixel_range=1.0)(output, reference)
    assert scorer.seen == []
    assert not parts.scored
    assert parts.total.item() == pytest.approx(0.25)
    assert parts.aesthetic.item() == 0.0 and parts.nima_mean.item() == 0.0

    logged = HybridLoss(scorer, gamma=0.0, pixel_range=1.0, score_when_unweighted=True)(
        output, reference
    )
    assert logged.scored and scorer.seen == [(1, 3, 64, 64)]
    assert logged.nima_mean.item() == pytest.approx(5.5)
    assert logged.total.item() == pytest.approx(0.25)


def test_gamma_zero_without_scorer() -> None:
    parts = HybridLoss(None)(torch.ones(1, 3, 8, 8), torch.zeros(1, 3, 8, 8))
    assert parts.total.item() == pytest.approx(255.0**2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scorer": None, "gamma": -0.1}, "gamma"),
        ({"scorer": None, "gamma": float("nan")}, "gamma"),
        ({"scorer": None, "gamma": 0.1}, "scorer=None"),
        ({"scorer": None, "score_when_unweighted": True}, "scorer=None"),
        ({"scorer": None, "pixel": "l3"}, "l3"),
        ({"scorer": None, "pixel_range": 0.0}, "pixel_range"),
        ({"scorer": None, "pixel_range": float("inf")}, "pixel_range"),
        ({"scorer": None, "aesthetic_on": "tile"}, "tile"),
        ({"scorer": None, "aesthetic_patch": 0}, "aesthetic_patch"),
        ({"scorer": None, "min_scorer_size": -1}, "min_scorer_size"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HybridLoss(**kwargs)


def test_bad_shapes_raise() -> None:
    loss = HybridLoss(BrightnessScorer(), gamma=1.0)
    with pytest.raises(ValueError, match="reference shape"):
        loss(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 32))
    with pytest.raises(ValueError, match="output must have shape"):
        loss(torch.rand(1, 1, 64, 64), torch.rand(1, 1, 64, 64))


def test_scorer_with_wrong_output_shape_raises() -> None:
    class FiveBuckets(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.full((x.shape[0], 5), 0.2)

    with pytest.raises(ValueError, match=r"\(1, 10\)"):
        HybridLoss(FiveBuckets(), gamma=1.0)(torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64))


def test_scores_and_loss_stay_float32_under_bf16_autocast() -> None:
    """The scorer's trunk may run in bf16, but its head, the mean score and the loss must not:
    a bf16 mean score moves in steps of 1/32 and quantises the aesthetic gradient."""
    from nie_core.models import create_model

    torch.manual_seed(0)
    scorer = create_model("nima", backbone="mnasnet0_5", dropout=0.0)
    loss_fn = HybridLoss(scorer, gamma=0.4)
    output = torch.rand(4, 3, 64, 64, requires_grad=True)
    reference = torch.rand(4, 3, 64, 64)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        probs = scorer(output)
        scores = loss_fn.mean_scores(output)
        parts = loss_fn(output, reference)
    assert probs.dtype == torch.float32
    assert scores.dtype == torch.float32
    for value in (parts.total, parts.pixel, parts.aesthetic, parts.nima_mean):
        assert value.dtype == torch.float32
    # Scores of different images differ by less than bf16's step near 5 (1/32) and are not
    # rounded onto that grid.
    steps = scores.detach() * 32
    assert not torch.allclose(steps, steps.round(), atol=1e-4)
    parts.total.backward()
    assert output.grad is not None and output.grad.dtype == torch.float32
