"""The hybrid loss's remedies against scorer gaming (nie_core.losses.guards)."""

from __future__ import annotations

import math

import pytest
import torch

from nie_core.losses import HybridLoss
from nie_core.losses.guards import GamingGuard, edge_fidelity, random_views
from tests.nie_core.losses.test_hybrid import BrightnessScorer


def _smooth(size: int = 96) -> torch.Tensor:
    """A smooth (1, 3, size, size) image: a diagonal ramp."""
    ramp = torch.linspace(0.2, 0.8, size)
    return ((ramp[None, :] + ramp[:, None]) / 2).expand(1, 3, size, size).clone()


def _lines(size: int = 96, amplitude: float = 3 / 255) -> torch.Tensor:
    """Alternating horizontal lines of +-amplitude: the pattern of a gamed output."""
    rows = torch.arange(size) % 2 * 2.0 - 1.0
    return (amplitude * rows[:, None]).expand(1, 3, size, size)


def test_default_guard_changes_nothing() -> None:
    guard = GamingGuard()
    assert not guard.transforms
    assert guard.gamma_factor(0) == 1.0
    image = torch.rand(2, 3, 80, 64)
    (view,) = random_views(image, guard, min_side=64)
    assert torch.equal(view, image)


def test_views_are_crops_flips_shifts_and_scales_of_the_output() -> None:
    guard = GamingGuard(views=3, view_crop=0.75, flip=True, subpixel=True, scales=(1.0, 0.5))
    image = torch.rand(2, 3, 128, 96, requires_grad=True)
    generator = torch.Generator().manual_seed(0)
    views = random_views(image, guard, min_side=32, generator=generator)
    assert [tuple(v.shape) for v in views] == [(2, 3, 96, 72), (2, 3, 48, 36)] * 3
    sum(v.sum() for v in views).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0
    # never below the scorer's smallest side
    small = random_views(torch.rand(1, 3, 64, 64), guard, min_side=64)
    assert all(min(v.shape[-2:]) == 64 for v in small)


def test_a_half_pixel_shift_removes_a_nyquist_pattern() -> None:
    """Why sub-pixel views help: a line pattern at the output's Nyquist frequency, the kind a
    gamed model paints, averages away when the view moves by half a pixel."""
    from nie_core.losses.guards import _translate

    pattern = _lines(64, amplitude=0.1) + 0.5
    shifted = _translate(pattern, 0.5, 0.0)[..., 2:-2, 2:-2]
    assert pattern.std() > 0.09
    assert shifted.std() < 1e-3


def test_edge_fidelity_is_zero_for_the_reference_and_penalises_patterns_and_blur() -> None:
    reference = _smooth()
    assert edge_fidelity(reference, reference).item() == pytest.approx(0.0, abs=1e-6)
    patterned = edge_fidelity(reference + _lines(), reference).item()
    assert patterned > 1.0  # gradients of ~2 grey levels where the reference has ~0.9
    noise = torch.rand(1, 3, 96, 96)
    blurred = torch.nn.functional.avg_pool2d(noise, 3, stride=1, padding=1)
    assert edge_fidelity(blurred, noise).item() > 10.0
    out = (reference + _lines()).requires_grad_(True)
    edge_fidelity(out, reference).backward()
    assert torch.isfinite(out.grad).all() and out.grad.abs().sum() > 0
    flat = torch.full((1, 3, 32, 32), 0.5, requires_grad=True)
    edge_fidelity(flat, flat.detach()).backward()
    assert torch.isfinite(flat.grad).all()  # the eps keeps sqrt differentiable on flat areas


def test_guard_settings_are_checked() -> None:
    for bad in (dict(views=0), dict(view_crop=0.0), dict(view_crop=1.5), dict(scales=()),
                dict(scales=(2.0,)), dict(edge_weight=-1.0), dict(edge_weight=math.inf),
                dict(warmup_steps=-1)):  # fmt: skip
        with pytest.raises(ValueError, match=next(iter(bad))):
            GamingGuard(**bad)


def test_warm_up_ramps_gamma_over_training_steps_only() -> None:
    guard = GamingGuard(warmup_steps=4)
    assert [guard.gamma_factor(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    scorer = BrightnessScorer()
    loss = HybridLoss(scorer, gamma=1.0, pixel_range=1.0, guard=guard)
    image = torch.full((1, 3, 64, 64), 0.5)
    aesthetic = 10.0 - (1.0 + 9.0 * 0.5)
    loss.train()
    totals = [loss(image, image).total.item() for _ in range(5)]
    assert totals == pytest.approx([aesthetic * f for f in (0.25, 0.5, 0.75, 1.0, 1.0)])
    loss.eval()
    assert loss(image, image).total.item() == pytest.approx(aesthetic)  # eval: full gamma


def test_views_are_scored_in_training_and_the_whole_output_in_eval() -> None:
    scorer = BrightnessScorer()
    guard = GamingGuard(views=2, view_crop=0.5, scales=(1.0, 0.5))
    loss = HybridLoss(scorer, gamma=1.0, guard=guard, min_scorer_size=16)
    image = torch.rand(2, 3, 96, 96)
    loss.train()
    loss(image, image)
    assert scorer.seen == [(2, 3, 48, 48), (2, 3, 24, 24)] * 2
    scorer.seen.clear()
    loss.eval()
    loss(image, image)
    assert scorer.seen == [(2, 3, 96, 96)]


def test_edge_anchor_joins_the_total_in_pixel_units() -> None:
    reference = _smooth()
    output = reference + _lines()
    plain = HybridLoss(None, pixel_range=255.0)
    anchored = HybridLoss(None, pixel_range=255.0, guard=GamingGuard(edge_weight=2.0))
    parts = anchored(output, reference)
    assert parts.edge is not None
    expected = plain(output, reference).total + 2.0 * edge_fidelity(output, reference)
    assert parts.total.item() == pytest.approx(expected.item(), rel=1e-5)


def test_detail_only_keeps_values_and_stops_the_gradient_of_the_low_pass() -> None:
    from nie_core.losses.guards import detail_only, lowpass

    image = torch.rand(1, 3, 64, 64, requires_grad=True)
    view = detail_only(image, 2)
    assert torch.allclose(view, image, atol=1e-6)
    # a brightness change is all low-pass: the scorer's gradient cannot make it
    view.mean().backward()
    plain = 1 / image.numel()  # the gradient of a brightness change without the guard
    assert image.grad[..., 4:-4, 4:-4].abs().max() < 0.01 * plain  # borders aside
    assert image.grad.abs().mean() < 0.05 * plain
    image.grad = None
    detail_only(image, 0).mean().backward()
    assert torch.allclose(image.grad, torch.full_like(image, 1 / image.numel()))
    assert lowpass(torch.full((1, 3, 32, 32), 0.3), 2).sub(0.3).abs().max() < 1e-6


def test_smooth_area_error_weighs_patterns_on_smooth_areas_over_texture_errors() -> None:
    from nie_core.losses.guards import smooth_area_error

    smooth = _smooth(96)
    texture = torch.rand(1, 3, 96, 96)
    assert smooth_area_error(smooth, smooth).item() == pytest.approx(0.0, abs=1e-8)
    on_smooth = smooth_area_error(smooth + _lines(), smooth).item()
    on_texture = smooth_area_error(texture + _lines(), texture).item()
    assert on_smooth > 1.0 and on_smooth > 20 * on_texture
    out = (smooth + _lines()).requires_grad_(True)
    smooth_area_error(out, smooth).backward()
    assert torch.isfinite(out.grad).all()
    parts = HybridLoss(None, guard=GamingGuard(smooth_weight=3.0))(smooth + _lines(), smooth)
    plain = HybridLoss(None)(smooth + _lines(), smooth)
    assert parts.total.item() == pytest.approx(plain.total.item() + 3.0 * on_smooth, rel=1e-4)
