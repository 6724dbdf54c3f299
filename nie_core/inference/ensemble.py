"""Geometric self-ensemble: the mean of a model's outputs for the 8 flips and rotations of its
input, each mapped back (EDSR+ in Lim et al. 2017; 8x the compute)."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["DIHEDRAL_GROUP", "dihedral", "dihedral_inverse", "forward_self_ensemble"]

# The 8 symmetries of the square as (quarter turns, horizontal flip after turning).
DIHEDRAL_GROUP: tuple[tuple[int, bool], ...] = tuple(
    (rotations, flip) for rotations in range(4) for flip in (False, True)
)


def dihedral(x: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    """``x`` turned by ``rotations`` quarter turns, then flipped horizontally if ``flip``."""
    turned = torch.rot90(x, rotations, dims=(-2, -1))
    return turned.flip(-1) if flip else turned


def dihedral_inverse(y: torch.Tensor, rotations: int, flip: bool) -> torch.Tensor:
    """Undo :func:`dihedral` with the same arguments."""
    if flip:
        y = y.flip(-1)
    return torch.rot90(y, -rotations, dims=(-2, -1))


def forward_self_ensemble(
    forward_into: Callable[[torch.Tensor, torch.Tensor], None],
    x: torch.Tensor,
    scale: int,
    out: torch.Tensor,
) -> None:
    """Fill ``out`` (N, C, H*scale, W*scale) with the mean over :data:`DIHEDRAL_GROUP` of the
    outputs for ``x`` (N, C, H, W); ``forward_into(view, view_out)`` fills one view's output."""
    n, channels = x.shape[:2]
    out.zero_()
    for rotations, flip in DIHEDRAL_GROUP:
        view = dihedral(x, rotations, flip)
        view_shape = (n, channels, view.shape[2] * scale, view.shape[3] * scale)
        view_out = torch.empty(view_shape, dtype=torch.float32, device=x.device)
        forward_into(view, view_out)
        out += dihedral_inverse(view_out, rotations, flip)
    out /= len(DIHEDRAL_GROUP)
