"""Remedies against scorer gaming in the hybrid loss: what the frozen scorer sees during training,
and a fidelity anchor besides L2.

A no-reference scorer used as a loss can be "gamed": the enhancer learns faint, regular patterns
that raise the score without looking better (Kashkarov et al., arXiv 2405.20392; Antsiferova et
al., AAAI 2024). Such patterns are tied to one alignment of the output with the scorer's strided
convolutions and to one scale. The remedies here, each measured in ``docs/results/
hybrid_ablation.md`` (``python -m tools.hybrid_ablation``):

- **expectation over transformations** (Athalye et al., ICML 2018): the scorer sees ``views``
  random views of each output (a random crop of ``view_crop`` of each side, so the stride phase
  moves; a random horizontal flip; a random sub-pixel translation by bilinear resampling), and
  the aesthetic term is their mean score;
- **multi-scale scoring**: each view is also scored after an antialiased downscale by each of
  ``scales`` (a pattern near the output's Nyquist frequency vanishes there);
- **an edge anchor**: the mean squared difference of the outputs' and references' luma
  gradient magnitudes (forward differences), weighted by ``edge_weight`` in the pixel term's
  units.
  It penalises gradients where the reference has none (patterns on smooth areas) and missing
  ones at its edges, whatever their phase;
- **gamma warm-up**: the aesthetic weight grows linearly from 0 over ``warmup_steps`` training
  steps, so that the fidelity terms settle first.

The defaults switch every remedy off (the report's plain loss).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nie_core.metrics.gmsd import luma_255

__all__ = ["GamingGuard", "edge_fidelity", "random_views"]


@dataclass(frozen=True)
class GamingGuard:
    """The hybrid loss's remedies against scorer gaming (see the module docstring)."""

    views: int = 1  # random views scored per output (expectation over transformations)
    view_crop: float = 1.0  # side of a view as a fraction of the output's (1: the whole output)
    flip: bool = False  # random horizontal flip of each view
    subpixel: bool = False  # random translation by up to half a pixel (bilinear) of each view
    scales: tuple[float, ...] = (1.0,)  # each view is also scored downscaled by these factors
    edge_weight: float = 0.0  # weight of the gradient-magnitude anchor (pixel-term units)
    # keep the scorer's gradient out of the image as seen at 1/factor of its size (set it to the
    # SR scale: the aesthetic term may only edit detail the input does not fix); 0: off
    lowpass_factor: int = 0
    smooth_weight: float = 0.0  # weight of the high-pass error on the reference's smooth areas
    warmup_steps: int = 0  # training steps over which gamma grows from 0 to its value

    def __post_init__(self) -> None:
        if isinstance(self.views, bool) or not isinstance(self.views, int) or self.views < 1:
            raise ValueError(f"views must be an integer >= 1, got {self.views!r}")
        if not 0.0 < float(self.view_crop) <= 1.0:
            raise ValueError(f"view_crop must be in (0, 1], got {self.view_crop!r}")
        if not self.scales or any(not 0.0 < float(s) <= 1.0 for s in self.scales):
            raise ValueError(f"scales must be factors in (0, 1], got {self.scales!r}")
        if not math.isfinite(float(self.edge_weight)) or self.edge_weight < 0:
            raise ValueError(f"edge_weight must be a finite number >= 0, got {self.edge_weight!r}")
        if isinstance(self.lowpass_factor, bool) or self.lowpass_factor < 0:
            raise ValueError(f"lowpass_factor must be an integer >= 0, got {self.lowpass_factor!r}")
        if not math.isfinite(float(self.smooth_weight)) or self.smooth_weight < 0:
            raise ValueError(
                f"smooth_weight must be a finite number >= 0, got {self.smooth_weight!r}"
            )
        if isinstance(self.warmup_steps, bool) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an integer >= 0, got {self.warmup_steps!r}")

    @property
    def transforms(self) -> bool:
        """Whether training views differ from the output as it is."""
        return (
            self.views > 1 or self.view_crop < 1.0 or self.flip or self.subpixel
            or tuple(self.scales) != (1.0,)
        )  # fmt: skip

    def gamma_factor(self, step: int) -> float:
        """The fraction of gamma in force at training ``step`` (0-based)."""
        if self.warmup_steps == 0:
            return 1.0
        return min(1.0, (step + 1) / self.warmup_steps)


def _translate(images: torch.Tensor, dy: float, dx: float) -> torch.Tensor:
    """Shift (M, 3, h, w) images by (dy, dx) pixels with bilinear resampling, borders repeated."""
    height, width = images.shape[-2:]
    theta = torch.tensor(
        [[1.0, 0.0, -2.0 * dx / width], [0.0, 1.0, -2.0 * dy / height]],
        dtype=images.dtype,
        device=images.device,
    ).expand(images.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_views(
    images: torch.Tensor,
    guard: GamingGuard,
    min_side: int,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """The views the scorer sees of ``images`` (M, 3, h, w) during training: ``guard.views``
    random views, each followed by its downscaled copies (``guard.scales`` other than 1); a list
    of (M, 3, h', w') tensors, differentiable with respect to ``images``. Views are never cut
    below ``min_side`` pixels (the scorer's smallest input). One draw per view serves the batch.
    """
    height, width = images.shape[-2:]
    views: list[torch.Tensor] = []

    def draw(high: int) -> int:
        return int(torch.randint(0, high + 1, (1,), generator=generator))

    def uniform() -> float:
        return float(torch.rand((), generator=generator)) - 0.5

    for _ in range(guard.views):
        crop_h = min(height, max(min_side, round(height * guard.view_crop)))
        crop_w = min(width, max(min_side, round(width * guard.view_crop)))
        top, left = draw(height - crop_h), draw(width - crop_w)
        view = images[..., top : top + crop_h, left : left + crop_w]
        if guard.flip and draw(1):
            view = view.flip(-1)
        if guard.subpixel:
            view = _translate(view, uniform(), uniform())
        for factor in guard.scales:
            if factor == 1.0:
                views.append(view)
                continue
            size = (max(min_side, round(crop_h * factor)), max(min_side, round(crop_w * factor)))
            views.append(_shrink(view, size))
    return views


def _forward_gradient_magnitude(y: torch.Tensor) -> torch.Tensor:
    """``sqrt(dx^2 + dy^2 + 1e-6)`` of (N, 1, H, W) with forward differences, on the
    (H - 1) x (W - 1) grid both exist; the 1e-6 keeps it differentiable on flat areas."""
    dx = y[..., :-1, 1:] - y[..., :-1, :-1]
    dy = y[..., 1:, :-1] - y[..., :-1, :-1]
    return (dx.square() + dy.square() + 1e-6).sqrt()


def edge_fidelity(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared difference of the luma gradient magnitudes of ``output`` and ``reference``
    (N, 3, H, W) in [0, 1]: forward differences of the 0..255 BT.601 luma, at full resolution
    (central differences such as GMSD's Prewitt filters cannot see a pattern of period 2, the
    finest a gamed output can paint). A 0-dim float32 tensor in 8-bit units squared,
    differentiable with respect to ``output``."""
    with torch.autocast(output.device.type, enabled=False):
        m_out = _forward_gradient_magnitude(luma_255(output.float()))
        m_ref = _forward_gradient_magnitude(luma_255(reference.float()))
        return F.mse_loss(m_out, m_ref)


def _shrink(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Differentiable antialiased bicubic downscale of (N, 3, h, w) to ``size``, pixels not
    clamped (the loss needs their gradient): the one downscale of the views and the low-pass."""
    return F.interpolate(images, size=size, mode="bicubic", align_corners=False, antialias=True)


def lowpass(images: torch.Tensor, factor: int) -> torch.Tensor:
    """``images`` (N, 3, H, W) as seen at 1/``factor`` of their size, brought back: antialiased
    bicubic down by ``factor`` then bicubic up to (H, W). Differentiable."""
    height, width = images.shape[-2:]
    small = (max(1, round(height / factor)), max(1, round(width / factor)))
    # back up with plain bicubic (as nie_core.baselines, but unclamped: the gradient must flow)
    return F.interpolate(_shrink(images, small), size=(height, width), mode="bicubic",
                         align_corners=False)  # fmt: skip


def detail_only(images: torch.Tensor, factor: int) -> torch.Tensor:
    """The same values as ``images``, but a gradient flows only into their detail (what
    :func:`lowpass` removes): the low-pass part is detached. With ``factor`` the SR scale, the
    scorer can no longer move what the LR input fixes (brightness, contrast, colour, layout);
    those follow the fidelity terms alone."""
    if factor <= 1:
        return images
    low = lowpass(images, factor)
    return images - low + low.detach()


def _highpass_luma(x: torch.Tensor) -> torch.Tensor:
    """0..255 BT.601 luma minus its 3x3 mean (reflected borders): (N, 1, H, W)."""
    y = luma_255(x)
    return y - F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="reflect"), 3, stride=1)


def smooth_area_error(output: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean squared high-pass error of the luma (8-bit units squared), weighted towards the
    reference's smooth areas: weight ``exp(-(s / 2)^2)`` with ``s`` the reference's local (5x5)
    high-pass RMS in grey levels, so that structure the output adds where the reference is
    smooth (the patterns of a gamed scorer) costs more than errors in texture. A 0-dim float32
    tensor, differentiable with respect to ``output``."""
    with torch.autocast(output.device.type, enabled=False):
        hp_out = _highpass_luma(output.float())
        hp_ref = _highpass_luma(reference.float())
        local = F.avg_pool2d(F.pad(hp_ref.square(), (2, 2, 2, 2), mode="reflect"), 5, stride=1)
        weight = torch.exp(-local / 4.0)  # exp(-(rms / 2)^2)
        return (weight * (hp_out - hp_ref).square()).mean()
