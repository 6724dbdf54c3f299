"""What a sweep maximises: objective names, the metrics behind them, and weighted objectives.

An objective is a name (``psnr``), a reported metric (``val_psnr_y``) or a mapping of either to
weights (``{psnr: 1, nima: 2}``); its value for one report is the weighted sum of the metrics
(:func:`ray_jobs.pareto.weighted_sum`), added to every report as :data:`OBJECTIVE_KEY`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

OBJECTIVE_METRICS = {
    "psnr": "val_psnr_y",
    "nima": "val_nima_mean",
    "ssim": "val_ssim_y",
    "psnr_rgb": "val_psnr_rgb",
}
OBJECTIVE_KEY = "objective"  # the weighted objective, added to every report of a trial


def objective_metric(name: str) -> str:
    """The reported metric behind an objective name (``psnr`` -> ``val_psnr_y``)."""
    if name in OBJECTIVE_METRICS:
        return OBJECTIVE_METRICS[name]
    if name in OBJECTIVE_METRICS.values():
        return name
    known = ", ".join(f"{k} ({v})" for k, v in OBJECTIVE_METRICS.items())
    raise ValueError(f"unknown objective {name!r}; known: {known}, or those metric names")


def objective_weights(objective: str | Mapping[str, float]) -> dict[str, float]:
    """``"psnr"`` -> ``{"val_psnr_y": 1.0}``; ``{psnr: 1, nima: 2}`` -> weights by metric."""
    if isinstance(objective, str):
        return {objective_metric(objective): 1.0}
    if not objective:
        raise ValueError("objective is an empty mapping: name at least one metric and its weight")
    weights: dict[str, float] = {}
    for name, weight in objective.items():
        if not math.isfinite(float(weight)):
            raise ValueError(f"objective weight of {name!r} must be finite, got {weight}")
        weights[objective_metric(name)] = float(weight)
    return weights


def describe_objective(weights: Mapping[str, float]) -> str:
    """``{"val_psnr_y": 1, "val_nima_mean": 2}`` -> ``"val_psnr_y + 2*val_nima_mean"``."""
    return " + ".join(f"{w:g}*{m}" if w != 1 else m for m, w in weights.items())
