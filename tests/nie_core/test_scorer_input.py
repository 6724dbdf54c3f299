"""The scorer's input handling comes from the model (issue 20 item 5): ``ScorerInput`` on the
NIMA, applied by ``prepare_scorer_input``, is the one path of ``score``, ``score_images`` (the
service's) and the hybrid loss."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nie_core.inference import ScorerInput, prepare_scorer_input, score, score_images
from nie_core.losses import HybridLoss
from nie_core.models import create_model
from nie_core.models.nima import MIN_INPUT_SIDE, scorer_input


class Recording(nn.Module):
    """Records the sizes it sees; a softmax over 10 buckets of the mean colour."""

    def __init__(self, declared: ScorerInput | None = None) -> None:
        super().__init__()
        if declared is not None:
            self.scorer_input = declared
        self.fc = nn.Linear(3, 10)
        self.seen: list[tuple[int, ...]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen.append(tuple(x.shape))
        return torch.softmax(self.fc(x.mean(dim=(2, 3))), dim=1)


@pytest.fixture(scope="module")
def nimas() -> dict[str, nn.Module]:
    torch.manual_seed(0)
    models = {
        "unresized": create_model("nima", backbone="mnasnet0_5", input_size=None).eval(),
        "224": create_model("nima", backbone="mnasnet0_5", input_size=224).eval(),
    }
    with torch.no_grad():  # as tests/conftest.py's save_tiny: random scores that differ
        for model in models.values():
            model.head[-1].weight.mul_(1e8)
    return models


def test_nima_declares_its_input(nimas) -> None:
    assert scorer_input(nimas["unresized"]) == ScorerInput(None, MIN_INPUT_SIDE, "bilinear")
    assert scorer_input(nimas["224"]) == ScorerInput(224, MIN_INPUT_SIDE, "bilinear")
    assert nimas["unresized"].input_size is None and nimas["224"].input_size == 224
    # Undeclared modules: as they are; a bare input_size attribute still counts.
    assert scorer_input(nn.Identity()) == ScorerInput()
    legacy = nn.Identity()
    legacy.input_size = 128
    assert scorer_input(legacy).size == 128


def test_unresized_scorer_keeps_images_above_the_minimum_side(nimas) -> None:
    model = nimas["unresized"]
    x = torch.rand(2, 3, 120, 160)
    assert prepare_scorer_input(model, x) is x
    small = torch.rand(1, 3, 48, 64)
    assert prepare_scorer_input(model, small).shape == (1, 3, 64, 85)  # aspect ratio kept
    assert prepare_scorer_input(model, small, min_size=0) is small  # the hybrid's override
    assert prepare_scorer_input(model, small, min_size=96).shape == (1, 3, 96, 128)


def test_sized_scorer_resizes_every_image(nimas) -> None:
    model = nimas["224"]
    for h, w in ((120, 160), (48, 64), (384, 512), (224, 224)):
        assert prepare_scorer_input(model, torch.rand(1, 3, h, w)).shape == (1, 3, 224, 224)
    x = torch.rand(1, 3, 224, 224)
    assert prepare_scorer_input(model, x) is x


def test_preparation_is_differentiable_and_antialiased() -> None:
    x = torch.rand(1, 3, 48, 64, requires_grad=True)
    prepare_scorer_input(Recording(ScorerInput(None, 64)), x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    board = ((torch.arange(672)[:, None] + torch.arange(672)[None, :]) % 2).float()
    shrunk = prepare_scorer_input(Recording(ScorerInput(224)), board.expand(1, 3, 672, 672))
    assert shrunk.std() < 0.05  # antialiased: a one-pixel checkerboard averages to grey


@pytest.mark.parametrize(
    ("bad", "match"),
    [({"size": 0}, "size"), ({"min_size": -1}, "min_size"), ({"mode": "nearest"}, "mode")],
)
def test_scorer_input_rejects_bad_values(bad: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ScorerInput(**bad)


@pytest.mark.parametrize("kind", ["unresized", "224"])
def test_score_and_the_service_path_use_it(nimas, kind: str, monkeypatch) -> None:
    model = nimas[kind]
    images = [torch.rand(3, h, w) for h, w in ((72, 96), (48, 64), (100, 70))]
    images.append(torch.rand(3, 72, 96))  # shares a forward pass with the first
    with torch.no_grad():
        expected = [model(prepare_scorer_input(model, im[None]))[0] for im in images]
    # score(), one image at a time (nie score, nie eval, training validation)
    for image, want in zip(images, expected, strict=True):
        torch.testing.assert_close(score(model, image[None])[0], want, atol=1e-5, rtol=0)
    # score_images(), the service's batches of mixed sizes
    applied: list[tuple[int, ...]] = []
    original = ScorerInput.apply

    def spy(self: ScorerInput, x: torch.Tensor) -> torch.Tensor:
        applied.append(tuple(x.shape[-2:]))
        return original(self, x)

    monkeypatch.setattr(ScorerInput, "apply", spy)
    together = score_images(model, images)
    torch.testing.assert_close(together, torch.stack(expected), atol=1e-5, rtol=0)
    assert [tuple(im.shape[-2:]) for im in images] == applied[: len(images)]


def test_score_follows_the_declaration_and_resize_overrides_it() -> None:
    scorer = Recording(ScorerInput(None, 64))
    score(scorer, torch.rand(1, 3, 48, 64))
    score(scorer, torch.rand(1, 3, 120, 160))
    score(scorer, torch.rand(1, 3, 120, 160), resize=100)
    assert scorer.seen == [(1, 3, 64, 85), (1, 3, 120, 160), (1, 3, 100, 100)]


def test_hybrid_loss_prepares_through_the_same_function() -> None:
    sized = Recording(ScorerInput(224))
    HybridLoss(sized, gamma=1.0)(torch.rand(2, 3, 96, 96), torch.rand(2, 3, 96, 96))
    assert sized.seen == [(2, 3, 224, 224)]
    unresized = Recording(ScorerInput(None, MIN_INPUT_SIDE))
    loss = HybridLoss(unresized, gamma=1.0)  # min_scorer_size 64
    loss(torch.rand(1, 3, 32, 48), torch.rand(1, 3, 32, 48))
    HybridLoss(unresized, gamma=1.0, min_scorer_size=0)(
        torch.rand(1, 3, 32, 48), torch.zeros(1, 3, 32, 48)
    )
    assert unresized.seen == [(1, 3, 64, 96), (1, 3, 32, 48)]
