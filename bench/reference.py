"""The reference the CUDA benchmark compares NIE with: a super-resolution network and training
loop written the plain way EDSR-style code trains (float32, NCHW, L1 loss, Adam, eager).

Written for this benchmark (not copied from any project): the same layer shapes as NIE's EDSR
(so the FLOPs agree, see tests/bench), without any of NIE's speed measures: no channels_last, no
autocast, no fused residual add, the optimiser with torch's defaults.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

_DIV2K_MEAN = (0.4488, 0.4371, 0.4040)


class PlainResidualUnit(nn.Module):
    """conv, ReLU, conv; the result scaled and added to the input."""

    def __init__(self, width: int, scaling: float) -> None:
        super().__init__()
        self.first = nn.Conv2d(width, width, 3, padding=1)
        self.second = nn.Conv2d(width, width, 3, padding=1)
        self.scaling = scaling

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.second(F.relu(self.first(x))) * self.scaling


class PlainSR(nn.Module):
    """Entry conv, ``units`` residual units and a conv with a skip over them, sub-pixel
    upsampling (x2/x3 in one stage, x4 in two x2 stages), exit conv; the RGB mean is removed
    before and restored after."""

    def __init__(self, factor: int, units: int, width: int, scaling: float) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(_DIV2K_MEAN).view(1, 3, 1, 1))
        self.entry = nn.Conv2d(3, width, 3, padding=1)
        self.units = nn.ModuleList(PlainResidualUnit(width, scaling) for _ in range(units))
        self.merge = nn.Conv2d(width, width, 3, padding=1)
        stages = [2, 2] if factor == 4 else [factor]
        upsampling: list[nn.Module] = []
        for stage in stages:
            upsampling += [nn.Conv2d(width, width * stage * stage, 3, padding=1)]
            upsampling += [nn.PixelShuffle(stage)]
        self.upsampling = nn.Sequential(*upsampling)
        self.exit = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.entry(x - self.mean)
        deep = shallow
        for unit in self.units:
            deep = unit(deep)
        deep = self.merge(deep) + shallow
        return self.exit(self.upsampling(deep)) + self.mean


# NIE's model names -> (units, width, scaling) of the same shapes.
SHAPES = {"edsr_baseline": (16, 64, 1.0), "edsr": (32, 256, 0.1)}


def reference_model(name: str, factor: int, **shape: int | float) -> PlainSR:
    """The plain network shaped like NIE's ``name`` (``n_resblocks``/``n_feats`` override)."""
    units, width, scaling = SHAPES[name]
    return PlainSR(
        factor, int(shape.get("n_resblocks", units)), int(shape.get("n_feats", width)), scaling
    )


def reference_train_step(
    model: nn.Module, lr_batch: torch.Tensor, hr_batch: torch.Tensor
) -> Callable[[], float]:
    """One plain training step per call: float32 NCHW forward, L1 loss, backward, Adam (torch's
    defaults, lr 1e-4), and the loss read back for logging as such loops do every step."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)

    def step() -> float:
        optimizer.zero_grad()
        loss = F.l1_loss(model(lr_batch), hr_batch)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def reference_infer(model: nn.Module, x: torch.Tensor, half: bool) -> Callable[[], torch.Tensor]:
    """Plain inference per call: the model in eval mode under no_grad, in float32 or float16
    (weights and input converted once, the output back to float32 and clamped)."""
    model = model.eval()
    if half:
        model, x = model.half(), x.half()

    def run() -> torch.Tensor:
        with torch.no_grad():
            return model(x).float().clamp_(0, 1)

    return run
