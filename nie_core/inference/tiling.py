"""Seamless tiling: a large image run through a model tile by tile, with the same result.

Every tile is run with a margin of the model's receptive radius, so the part of the tile that
is kept sees exactly the pixels it would see in the whole image; the margins are thrown away.
Tiles are spread evenly, so every tile has about the same size.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = ["forward_tiled", "resolve_overlap", "tile_spans"]


def resolve_overlap(model: nn.Module, tile_size: int | None, tile_overlap: int | None) -> int:
    """The margin to use: ``tile_overlap`` if given, else the model's ``receptive_radius`` (0 for
    a model without one when there is no tiling). Checks ``tile_size`` and ``tile_overlap``."""
    if tile_size is not None and (isinstance(tile_size, bool) or tile_size < 1):
        raise ValueError(f"tile_size must be a positive int or None, got {tile_size!r}")
    if tile_overlap is not None:
        if tile_overlap < 0:
            raise ValueError(f"tile_overlap must be >= 0, got {tile_overlap}")
        return tile_overlap
    radius = getattr(model, "receptive_radius", None)
    if radius is None:
        if tile_size is None:
            return 0
        raise ValueError(
            f"{type(model).__name__} has no receptive_radius attribute; pass tile_overlap="
        )
    return int(radius)


def tile_spans(length: int, tile_size: int | None) -> list[tuple[int, int]]:
    """Split ``range(length)`` into the fewest near-equal spans of at most ``tile_size``."""
    if tile_size is None or tile_size >= length:
        return [(0, length)]
    count = math.ceil(length / tile_size)
    bounds = [i * length // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def forward_tiled(
    run_tile: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile_size: int | None,
    overlap: int,
    out: torch.Tensor,
) -> None:
    """Fill ``out`` (N, C, H*scale, W*scale) with the model output for ``x`` (N, C, H, W).

    Each tile covers the core ``[y0, y1) x [x0, x1)`` and is computed from the window grown by
    ``overlap`` on each side, clipped to the image; only the core's output is kept.
    """
    height, width = x.shape[-2:]
    for y0, y1 in tile_spans(height, tile_size):
        top, bottom = max(0, y0 - overlap), min(height, y1 + overlap)
        for x0, x1 in tile_spans(width, tile_size):
            left, right = max(0, x0 - overlap), min(width, x1 + overlap)
            tile_out = run_tile(x[:, :, top:bottom, left:right])
            expected = (x.shape[0], out.shape[1], (bottom - top) * scale, (right - left) * scale)
            if tuple(tile_out.shape) != expected:
                raise ValueError(
                    f"model output has shape {tuple(tile_out.shape)}, expected {expected} "
                    f"for an input of shape {tuple(x[:, :, top:bottom, left:right].shape)} "
                    f"at scale {scale}"
                )
            out[:, :, y0 * scale : y1 * scale, x0 * scale : x1 * scale] = tile_out[
                :,
                :,
                (y0 - top) * scale : (y1 - top) * scale,
                (x0 - left) * scale : (x1 - left) * scale,
            ]
