"""Stand-in models shared by tests in several packages."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class NearestX2(nn.Module):
    """A parameter-free x2 enhancer: nearest-neighbour upsampling, which commutes with flips
    and rotations."""

    scale = 2
    receptive_radius = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=2, mode="nearest")


def interpolating_edsr(pattern: float = 0.0, n_feats: int = 16, n_resblocks: int = 2) -> nn.Module:
    """An EDSR-baseline x2 (a real ``edsr_baseline``, so it saves and serves as a checkpoint)
    whose weights make it bilinear x2 upsampling (``align_corners=False``; image borders see
    the zero-padded mean colour), plus, with ``pattern`` != 0, a checkerboard of +-``pattern``
    (period 2 px) over the whole output: the faint pattern a scorer-gaming enhancer paints.

    The head copies the centred RGB into features 0-2, the body adds nothing (its last conv is
    zero), the upsampler's conv holds the bilinear weights of each of the 4 sub-pixel positions
    (and the pattern as its bias) and the last conv copies channels 0-2 out."""
    from nie_core.models import create_model

    model = create_model("edsr_baseline", scale=2, n_feats=n_feats, n_resblocks=n_resblocks)
    # Bilinear x2: output 2i+a reads input i-1, i, i+1 with these weights.
    taps = {0: (0.25, 0.75, 0.0), 1: (0.0, 0.75, 0.25)}
    with torch.no_grad():
        for param in model.parameters():
            param.zero_()
        head, upsample, last = model.head[0], model.tail[0][0], model.tail[1]
        for c in range(3):
            head.weight[c, c, 1, 1] = 1.0
            last.weight[c, c, 1, 1] = 1.0
            for a in (0, 1):
                for b in (0, 1):
                    channel = c * 4 + a * 2 + b  # PixelShuffle(2): sub-pixel (a, b) of colour c
                    upsample.weight[channel, c] = torch.outer(
                        torch.tensor(taps[a]), torch.tensor(taps[b])
                    )
                    upsample.bias[channel] = pattern if (a + b) % 2 == 0 else -pattern
    return model.eval()
