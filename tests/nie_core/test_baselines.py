"""nie_core.baselines: the bicubic baseline of every 'vs bicubic' number."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nie_core.baselines import bicubic_baseline


def test_upsamples_with_pytorch_bicubic_and_clamps() -> None:
    lr = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0))
    lr[0, 0, 0, 0], lr[0, 0, 0, 1] = 0.0, 1.0  # a sharp edge overshoots under bicubic
    out = bicubic_baseline(lr, (10, 14))
    raw = F.interpolate(lr, size=(10, 14), mode="bicubic", align_corners=False)
    assert out.shape == (2, 3, 10, 14)
    assert raw.min() < 0 or raw.max() > 1  # the clamp matters on this input
    torch.testing.assert_close(out, raw.clamp(0, 1), rtol=0, atol=0)


def test_same_size_is_the_clamped_input() -> None:
    lr = torch.linspace(-0.5, 1.5, 3 * 4 * 4).reshape(1, 3, 4, 4)
    out = bicubic_baseline(lr, (4, 4))
    torch.testing.assert_close(out, lr.clamp(0, 1), rtol=0, atol=0)
    assert out.data_ptr() != lr.data_ptr()
