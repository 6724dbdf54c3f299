"""Pareto fronts and weighted objectives of sweep results (pure functions, no Ray).

A point is a sequence of objective values, e.g. ``(psnr_y, nima_mean)`` of one trial. Point
``a`` dominates ``b`` when it is at least as good in every objective and strictly better in one
(Pareto dominance); the front is the set of points that no other point dominates. Points with a
missing (``None``) or NaN value take no part: they are never on the front and dominate nothing.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

Point = Sequence[float | None]


def _directions(maximize: bool | Sequence[bool], dims: int) -> list[bool]:
    if isinstance(maximize, bool):
        return [maximize] * dims
    directions = [bool(m) for m in maximize]
    if len(directions) != dims:
        raise ValueError(f"maximize has {len(directions)} entries for {dims} objectives")
    return directions


def finite_number(value: object) -> float | None:
    """``value`` as a finite float, or None (missing, NaN, infinite, text, bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _is_complete(point: Point) -> bool:
    return all(v is not None and not math.isnan(float(v)) for v in point)


def dominates(a: Point, b: Point, maximize: bool | Sequence[bool] = True) -> bool:
    """Whether ``a`` Pareto-dominates ``b``: no worse in every objective, better in one.

    ``maximize`` is one flag for all objectives or one per objective. Equal points do not
    dominate each other; a point with a missing or NaN value dominates nothing and is dominated
    by nothing.
    """
    if len(a) != len(b):
        raise ValueError(f"points have different lengths: {len(a)} and {len(b)}")
    directions = _directions(maximize, len(a))
    if not (_is_complete(a) and _is_complete(b)):
        return False
    strictly_better = False
    for x, y, up in zip(a, b, directions, strict=True):
        x, y = (float(x), float(y)) if up else (-float(x), -float(y))
        if x < y:
            return False
        if x > y:
            strictly_better = True
    return strictly_better


def pareto_mask(points: Sequence[Point], maximize: bool | Sequence[bool] = True) -> list[bool]:
    """For each point, whether it is on the Pareto front (O(n^2) pairwise comparison).

    Ties: identical points are all on the front when nothing else dominates them.
    """
    if not points:
        return []
    dims = len(points[0])
    if dims == 0:
        raise ValueError("points have no objectives")
    for i, p in enumerate(points):
        if len(p) != dims:
            raise ValueError(f"point {i} has {len(p)} objectives, point 0 has {dims}")
    _directions(maximize, dims)  # raises for a wrong number of flags
    mask = []
    for i, p in enumerate(points):
        on_front = _is_complete(p) and not any(
            dominates(q, p, maximize) for j, q in enumerate(points) if j != i
        )
        mask.append(on_front)
    return mask


def pareto_front(points: Sequence[Point], maximize: bool | Sequence[bool] = True) -> list[int]:
    """Indices (in input order) of the points on the Pareto front; see :func:`pareto_mask`."""
    return [i for i, on_front in enumerate(pareto_mask(points, maximize)) if on_front]


def weighted_sum(metrics: Mapping[str, object], weights: Mapping[str, float]) -> float | None:
    """``sum(weights[k] * metrics[k])``, or None when a weighted metric is missing or not a
    finite number (so a trial that did not report it never wins)."""
    if not weights:
        raise ValueError("weights is empty: name at least one metric")
    total = 0.0
    for name, weight in weights.items():
        value = finite_number(metrics.get(name))
        if value is None:
            return None
        total += float(weight) * value
    return total
