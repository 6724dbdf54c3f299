from __future__ import annotations

import math
import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
import torch
import torchvision.models as tvm

from nie_core.models import BACKBONES, NIMA, create_model, freeze_scorer, mean_score, std_score

pytestmark = pytest.mark.usefixtures("no_downloads")  # see conftest.py


def test_backbones_are_the_documented_ones() -> None:
    assert BACKBONES == ("mnasnet1_0", "mnasnet0_5", "mobilenet_v2", "efficientnet_lite0")


def test_frozen_scorer_passes_gradients_to_pixels_only() -> None:
    torch.manual_seed(0)
    model = freeze_scorer(create_model("nima", backbone="mnasnet0_5"))
    assert not model.training
    x = torch.rand(1, 3, 64, 80, requires_grad=True)
    first = model(x)
    (10 - mean_score(first)).sum().backward()
    assert all(p.grad is None and not p.requires_grad for p in model.parameters())
    assert x.grad is not None and x.grad.abs().sum() > 0
    torch.testing.assert_close(model(x), first)  # eval mode: dropout off, deterministic


def test_mean_and_std_of_known_distributions() -> None:
    one_hot = torch.zeros(1, 10)
    one_hot[0, 6] = 1.0  # all mass on score 7
    uniform = torch.full((1, 10), 0.1)
    two_point = torch.zeros(1, 10)
    two_point[0, [0, 9]] = 0.5  # scores 1 and 10
    probs = torch.cat([one_hot, uniform, two_point])
    torch.testing.assert_close(mean_score(probs), torch.tensor([7.0, 5.5, 5.5]))
    torch.testing.assert_close(std_score(probs), torch.tensor([0.0, math.sqrt(8.25), 4.5]))


def test_score_functions_reject_wrong_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(10,\)"):
        mean_score(torch.rand(10))
    with pytest.raises(ValueError, match=r"\(10,\)"):
        std_score(torch.rand(10))


def test_unknown_backbone_is_named() -> None:
    with pytest.raises(ValueError, match="resnet50"):
        create_model("nima", backbone="resnet50")


def test_bad_weights_argument_is_named() -> None:
    with pytest.raises(ValueError, match="3.5"):
        create_model("nima", weights=3.5)


def test_input_of_wrong_shape_is_rejected() -> None:
    model = create_model("nima", backbone="mnasnet0_5")
    with pytest.raises(ValueError, match=r"\(1, 1, 64, 64\)"):
        model(torch.rand(1, 1, 64, 64))


def test_dropout_out_of_range_is_named() -> None:
    with pytest.raises(ValueError, match="1.5"):
        create_model("nima", dropout=1.5)


def test_weights_for_another_backbone_are_rejected(tmp_path: Path) -> None:
    torch.save(create_model("nima", backbone="mnasnet0_5").state_dict(), tmp_path / "m05.pt")
    with pytest.raises(ValueError, match="shapes do not match"):
        create_model("nima", backbone="mnasnet1_0", weights=tmp_path / "m05.pt")


def _hub_cache_file(torch_home: Path, weights: tvm.WeightsEnum) -> Path:
    """Where torch hub looks for ``weights`` before downloading."""
    return torch_home / "hub" / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def test_imagenet_weights_load_from_the_torch_hub_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(3)
    classifier = tvm.mnasnet1_0()
    cached = _hub_cache_file(tmp_path, tvm.MNASNet1_0_Weights.IMAGENET1K_V1)
    cached.parent.mkdir(parents=True)
    torch.save(classifier.state_dict(), cached)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    model = create_model("nima", weights="imagenet")

    assert isinstance(model, NIMA)
    expected = classifier.layers.state_dict()
    got = model.features.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)


def test_missing_imagenet_weights_say_where_to_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected_path = _hub_cache_file(tmp_path, tvm.MobileNet_V2_Weights.IMAGENET1K_V2)
    with pytest.raises(FileNotFoundError, match="mobilenet_v2") as info:
        create_model("nima", backbone="mobilenet_v2", weights="imagenet")
    assert str(expected_path) in str(info.value)
