"""Hybrid enhancement loss: pixel fidelity plus a NIMA aesthetic term.

From the project report (after Talebi & Milanfar, "Learned perceptual image enhancement",
ICCP 2018):

    l(W) = f(x_r, c_W(x)) + gamma * (10 - sum_{i=1}^{10} i * p_i),

where ``c_W(x)`` is the enhancement network's output, ``x_r`` the reference, ``f`` the L2 (mean
squared error) or L1 (mean absolute error) pixel loss, and ``p`` the score distribution that a
frozen aesthetic scorer (NIMA) predicts for the output. ``10 - mean score`` is 0 for a perfect
score and 9 for the worst, so minimising it pushes the mean score up.

Units: the report trained with EDSR-PyTorch, whose images are in [0, 255] (``rgb_range=255``), so
its L2 term is in 8-bit units. Images here are in [0, 1]; the pixel term is multiplied by
``pixel_range ** 2`` (L2) or ``pixel_range`` (L1), 255 by default, so that gamma keeps the
report's weight. On [0, 1] units the L2 term of a good x2 output (~1e-3) would be ~1000x smaller
than ``0.4 * (10 - 5.5)`` and the aesthetic term would swamp it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from nie_core.losses.guards import (
    GamingGuard,
    detail_only,
    edge_fidelity,
    random_views,
    smooth_area_error,
)
from nie_core.metrics.aesthetic import mean_score

__all__ = ["LossParts", "HybridLoss"]

MAX_SCORE = 10.0
NUM_SCORE_BUCKETS = 10


@dataclass(frozen=True)
class LossParts:
    """The terms of :class:`HybridLoss` for one batch; all are 0-dim tensors.

    Attributes:
        total: ``pixel + gamma * aesthetic``; the value to backpropagate.
        pixel: mean squared (L2) or mean absolute (L1) error over all elements, in
            ``pixel_range`` units (8-bit units by default).
        aesthetic: batch mean of ``10 - mean_score`` of the output, in [0, 9].
        nima_mean: batch mean of the scorer's mean score, in [1, 10]; detached (for logging).
        scored: False when the scorer was not run (``gamma == 0`` and ``score_when_unweighted``
            off); ``aesthetic`` and ``nima_mean`` are then zeros and should not be logged.
        edge: the guard's edge anchor (8-bit units squared), 0 when its weight is 0.
    """

    total: torch.Tensor
    pixel: torch.Tensor
    aesthetic: torch.Tensor
    nima_mean: torch.Tensor
    scored: bool = True
    edge: torch.Tensor | None = None


def _int_at_least(value: int, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


class HybridLoss(nn.Module):
    """``f(reference, output) + gamma * (10 - NIMA mean score of output)`` (see module docstring).

    Args:
        scorer: module mapping (M, 3, h, w) images in [0, 1] to (M, 10) probabilities over the
            scores 1..10 (e.g. ``create_model("nima", ...)``). It is frozen here: put in eval mode
            (and kept there by :meth:`train`) with ``requires_grad`` turned off on its
            parameters, so gradients reach the output image but never the scorer's weights.
            It is registered as a submodule, so ``loss.to(device)`` moves it too.
            May be None when ``gamma == 0``.
        gamma: weight of the aesthetic term, >= 0. With ``gamma == 0`` the scorer is not run
            unless ``score_when_unweighted`` is set, which saves a forward and backward pass.
        pixel: "l2" (mean squared error) or "l1" (mean absolute error).
        pixel_range: value range the pixel error is measured in: the [0, 1] error is scaled by
            ``pixel_range ** 2`` (L2) or ``pixel_range`` (L1). 255 matches the report's
            EDSR-PyTorch training (``rgb_range=255``) and so its gamma values; 1 measures the
            error on [0, 1]. Must be > 0.
        aesthetic_on: "image" scores each output image as a whole; "patch" cuts each output into
            non-overlapping ``aesthetic_patch`` x ``aesthetic_patch`` tiles from the top-left
            corner, scores every tile and averages the tiles' mean scores per image. Rows and
            columns left over at the right and bottom edges are not scored.
        aesthetic_patch: tile side in pixels for ``aesthetic_on="patch"``.
        min_scorer_size: images (or tiles) whose shorter side is below this are bilinearly
            upsampled, keeping the aspect ratio, so the shorter side equals it before scoring.
            NIMA's backbones downsample 32x, so 64 px gives them a 2x2 final feature map. 0
            disables the upsampling.
        score_when_unweighted: with ``gamma == 0``, still run the scorer (without gradient) so
            that ``aesthetic`` and ``nima_mean`` can be logged.
        guard: remedies against scorer gaming (:class:`~nie_core.losses.guards.GamingGuard`):
            random views and scales of the output for the scorer and gamma warm-up, both in
            training mode only, and an edge anchor added to the total in both modes. The
            default is the report's plain loss.

    ``forward(output, reference)`` takes two (N, 3, H, W) tensors (the output is expected in
    [0, 1] but is not clamped, so out-of-range pixels keep their gradient) and returns
    :class:`LossParts`.
    """

    def __init__(
        self,
        scorer: nn.Module | None,
        gamma: float = 0.0,
        pixel: Literal["l2", "l1"] = "l2",
        pixel_range: float = 255.0,
        aesthetic_on: Literal["image", "patch"] = "image",
        aesthetic_patch: int = 64,
        min_scorer_size: int = 64,
        score_when_unweighted: bool = False,
        guard: GamingGuard | None = None,
    ) -> None:
        super().__init__()
        gamma = float(gamma)
        if not math.isfinite(gamma) or gamma < 0.0:
            raise ValueError(f"gamma must be a finite number >= 0, got {gamma!r}")
        if scorer is None and (gamma > 0.0 or score_when_unweighted):
            reason = f"gamma={gamma!r}" if gamma > 0.0 else "score_when_unweighted=True"
            raise ValueError(f"{reason} needs an aesthetic scorer, got scorer=None")
        if pixel not in ("l2", "l1"):
            raise ValueError(f"pixel must be 'l2' or 'l1', got {pixel!r}")
        pixel_range = float(pixel_range)
        if not math.isfinite(pixel_range) or pixel_range <= 0.0:
            raise ValueError(f"pixel_range must be a finite number > 0, got {pixel_range!r}")
        if aesthetic_on not in ("image", "patch"):
            raise ValueError(f"aesthetic_on must be 'image' or 'patch', got {aesthetic_on!r}")

        self.gamma = gamma
        self.pixel = pixel
        self.pixel_range = pixel_range
        self.aesthetic_on = aesthetic_on
        self.aesthetic_patch = _int_at_least(aesthetic_patch, "aesthetic_patch", 1)
        self.min_scorer_size = _int_at_least(min_scorer_size, "min_scorer_size", 0)
        self.score_when_unweighted = bool(score_when_unweighted)
        self.guard = guard if guard is not None else GamingGuard()
        self.steps_taken = 0  # training-mode forward passes so far (gamma warm-up)
        self.scorer = scorer
        if scorer is not None:
            scorer.eval()
            scorer.requires_grad_(False)

    def train(self, mode: bool = True) -> HybridLoss:
        """Set training mode on this module but keep the scorer in eval mode."""
        super().train(mode)
        if self.scorer is not None:
            self.scorer.eval()
        return self

    def forward(self, output: torch.Tensor, reference: torch.Tensor) -> LossParts:
        if output.ndim != 4 or output.shape[1] != 3:
            raise ValueError(f"output must have shape (N, 3, H, W), got {tuple(output.shape)}")
        if reference.shape != output.shape:
            raise ValueError(
                f"reference shape {tuple(reference.shape)} does not match output shape "
                f"{tuple(output.shape)}"
            )
        # Losses in float32, also when called under autocast: only the scorer's convolutional
        # trunk may run in bf16 (its head, softmax and mean score are float32, see NIMA).
        with torch.autocast(output.device.type, enabled=False):
            out32, ref32 = output.float(), reference.float()
            if self.pixel == "l2":
                pixel_loss = F.mse_loss(out32, ref32) * self.pixel_range**2
            else:
                pixel_loss = F.l1_loss(out32, ref32) * self.pixel_range

        fidelity = pixel_loss
        edge = None
        units = (self.pixel_range / 255.0) ** 2  # the anchors' 8-bit units, as the pixel term
        if self.guard.edge_weight > 0.0:
            edge = edge_fidelity(output, reference) * units
            fidelity = pixel_loss + self.guard.edge_weight * edge
        if self.guard.smooth_weight > 0.0:
            smooth = smooth_area_error(output, reference) * units
            fidelity = fidelity + self.guard.smooth_weight * smooth
        gamma = self.gamma
        if self.training:
            gamma *= self.guard.gamma_factor(self.steps_taken)
            self.steps_taken += 1
        if self.gamma > 0.0:
            scores = self._guarded_scores(output)
        elif self.score_when_unweighted:
            with torch.no_grad():
                scores = self.mean_scores(output)
        else:
            zero = pixel_loss.new_zeros(()).detach()
            return LossParts(fidelity, pixel_loss, zero, zero, scored=False, edge=edge)

        aesthetic = (MAX_SCORE - scores.float()).mean()
        total = fidelity + gamma * aesthetic if self.gamma > 0.0 else fidelity
        return LossParts(total, pixel_loss, aesthetic, scores.mean().detach(), True, edge)

    def _guarded_scores(self, output: torch.Tensor) -> torch.Tensor:
        """Mean scores (N,) of ``output`` for the aesthetic term: in training mode with a guard
        that transforms, the mean over the guard's random views and scales; else
        :meth:`mean_scores` of the output as it is."""
        output = detail_only(output, self.guard.lowpass_factor)
        if not (self.training and self.guard.transforms):
            return self.mean_scores(output)
        views = random_views(output, self.guard, max(self.min_scorer_size, 1))
        return torch.stack([self.mean_scores(view) for view in views]).mean(dim=0)

    def mean_scores(self, images: torch.Tensor) -> torch.Tensor:
        """NIMA mean score per image, (N, 3, H, W) -> (N,) in [1, 10], following
        ``aesthetic_on``. Differentiable with respect to ``images``.

        Raises ValueError when the scorer is missing, when an image is smaller than one tile in
        patch mode, or when the scorer does not return (M, 10) probabilities.
        """
        if self.scorer is None:
            raise ValueError("this HybridLoss has no scorer (scorer=None)")
        if self.aesthetic_on == "image":
            return self._score(images)

        tile = self.aesthetic_patch
        batch, channels, height, width = images.shape
        rows, cols = height // tile, width // tile
        if rows == 0 or cols == 0:
            raise ValueError(
                f"output of {height}x{width} px is smaller than aesthetic_patch={tile}; "
                "use a smaller aesthetic_patch or aesthetic_on='image'"
            )
        tiles = (
            images[..., : rows * tile, : cols * tile]
            .unfold(2, tile, tile)
            .unfold(3, tile, tile)  # (N, C, rows, cols, tile, tile)
            .permute(0, 2, 3, 1, 4, 5)
            .reshape(batch * rows * cols, channels, tile, tile)
        )
        return self._score(tiles).view(batch, rows * cols).mean(dim=1)

    def _score(self, images: torch.Tensor) -> torch.Tensor:
        """Run the scorer on (M, 3, h, w) images, prepared as it declares (resized to its input
        size, or upsampled when the shorter side is below ``min_scorer_size``): -> (M,) scores."""
        from nie_core.models.nima import prepare_scorer_input

        images = prepare_scorer_input(self.scorer, images, min_size=self.min_scorer_size)
        probs = self.scorer(images)
        if probs.ndim != 2 or probs.shape != (images.shape[0], NUM_SCORE_BUCKETS):
            raise ValueError(
                f"scorer must return ({images.shape[0]}, {NUM_SCORE_BUCKETS}) probabilities, "
                f"got {tuple(probs.shape)}"
            )
        return mean_score(probs)
