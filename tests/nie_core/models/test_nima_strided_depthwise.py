"""NIMA's strided depthwise convolutions leave CPU bfloat16 autocast (a performance fix)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision.models as tvm
from torch import nn

from nie_core.models import create_model
from nie_core.models.nima import StridedDepthwiseConv2d


@pytest.mark.parametrize(
    ("backbone", "builder", "trunk"),
    [("mnasnet1_0", tvm.mnasnet1_0, "layers"), ("mobilenet_v2", tvm.mobilenet_v2, "features")],
)
def test_only_strided_depthwise_convs_are_swapped_and_keys_are_unchanged(
    backbone: str, builder, trunk: str
) -> None:
    model = create_model("nima", backbone=backbone)
    swapped = [m for m in model.modules() if isinstance(m, StridedDepthwiseConv2d)]
    assert len(swapped) == 4  # both backbones halve the resolution 4 times in depthwise convs
    assert all(m.groups == m.in_channels and max(m.stride) == 2 for m in swapped)
    reference = getattr(builder(weights=None), trunk)
    assert set(model.features.state_dict()) == set(reference.state_dict())
    model.features.load_state_dict(reference.state_dict())  # strict: same keys and shapes


def test_runs_in_float32_under_cpu_autocast_and_as_a_conv_otherwise() -> None:
    torch.manual_seed(0)
    conv = StridedDepthwiseConv2d(8, 8, 5, stride=2, padding=2, groups=8)
    x = torch.randn(2, 8, 12, 12).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
    assert out.dtype == torch.float32
    expected = F.conv2d(x.float(), conv.weight, conv.bias, stride=2, padding=2, groups=8)
    torch.testing.assert_close(out, expected)

    plain = nn.Conv2d(8, 8, 5, stride=2, padding=2, groups=8)
    plain.load_state_dict(conv.state_dict())
    x32 = torch.randn(2, 8, 12, 12)
    torch.testing.assert_close(conv(x32), plain(x32), rtol=0, atol=0)


def test_gradients_reach_the_input_through_the_float32_path() -> None:
    torch.manual_seed(0)
    scorer = create_model("nima", backbone="mnasnet0_5").eval().requires_grad_(False)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        probs = scorer(x)
    probs[:, -1].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
