"""The fixed rules that turn differences into words, so that a sentence never claims more than
the numbers show.

* **Difference in standard deviations.** ``d = (mean_a - mean_b) / sqrt((sd_a**2 + sd_b**2) / 2)``
  with the standard deviations over images that the tables print. ``|d| < 0.2``: "about the
  same"; ``< 0.5``: "slightly" higher/lower; ``< 0.8``: higher/lower; otherwise "clearly".
  A judge rates one output *better* only when ``d`` is at least 0.2 in its better direction
  (NIQE: lower is better).
* **Trends over a sweep**: a metric "rises" or "falls" only when every step goes that way.
* **Benchmark targets**: "cannot be met on this machine" only when the benchmark's own ceiling
  row is on the wrong side of the limit; "met narrowly" when within 5 % of the limit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .sources import EvalTable, SourceError, Stat

# Thresholds of the rules above.
SAME, SLIGHT, PLAIN = 0.2, 0.5, 0.8
NARROW_MARGIN = 0.05


def effect(a: Stat, b: Stat) -> float:
    """Difference of the means over the pooled standard deviation (``d`` above)."""
    pooled = math.sqrt((a.sd**2 + b.sd**2) / 2)
    if pooled == 0:
        return 0.0 if a.mean == b.mean else math.copysign(math.inf, a.mean - b.mean)
    return (a.mean - b.mean) / pooled


def size_word(d: float) -> str:
    """'about the same', 'slightly higher', 'lower', 'clearly higher', ... for a given d."""
    size = abs(d)
    if size < SAME:
        return "about the same"
    prefix = "slightly " if size < SLIGHT else "" if size < PLAIN else "clearly "
    return prefix + ("higher" if d > 0 else "lower")


def verdict(d: float, lower_better: bool) -> str:
    """'better', 'worse' or 'same' for the first of the two compared outputs."""
    oriented = -d if lower_better else d
    return "better" if oriented >= SAME else "worse" if oriented <= -SAME else "same"


@dataclass(frozen=True)
class Metric:
    """How a column of the results tables is named in sentences."""

    name: str
    unit: str
    lower_better: bool = False


METRICS = {
    "PSNR-Y": Metric("PSNR-Y", " dB"),
    "SSIM-Y": Metric("SSIM-Y", ""),
    "NIQE": Metric("NIQE", "", lower_better=True),
    "LR-consistency": Metric("LR-consistency", " dB"),
    "NIMA": Metric("NIMA", ""),
    "GMSD": Metric("GMSD", "", lower_better=True),
    "Artifacts": Metric("artifacts", " dB", lower_better=True),
}


def metric_of(column: str) -> Metric:
    """The metric a table column holds (its header starts with the metric's name)."""
    for prefix, metric in METRICS.items():
        if column.startswith(prefix):
            return metric
    raise SourceError(f"unknown column {column!r}")


def column_of(table: EvalTable, name: str) -> str:
    """The column of ``table`` that holds the metric called ``name``."""
    return next(c for c in table.columns if metric_of(c).name == name)


def compare(a: Stat, b: Stat, metric: Metric) -> str:
    """``PSNR-Y slightly higher (+1.55 dB, d = +0.49)``: a against b, worded by the rules."""
    d = effect(a, b)
    note = "; lower is better" if metric.lower_better else ""
    diff = a.fmt(a.mean - b.mean, sign=True)
    return f"{metric.name} {size_word(d)} ({diff}{metric.unit}, d = {d:+.2f}{note})"


def trend(values: list[float]) -> str:
    """'rises at every step', 'falls at every step' or 'does not move one way'."""
    steps = [b - a for a, b in zip(values, values[1:], strict=False)]
    if steps and all(s > 0 for s in steps):
        return "rises at every step"
    if steps and all(s < 0 for s in steps):
        return "falls at every step"
    return "does not move one way at every step"


def ceiling_verdict(value: float, target: dict[str, Any], what: str) -> str:
    """Whether a benchmark's ceiling ``value`` rules its ``target`` out on this machine."""
    below = value < target["limit"] if target["op"] == ">=" else value > target["limit"]
    verdict_ = (
        "short of the limit, so this target cannot be met on this machine"
        if below
        else "not short of the limit, so this machine does not rule the target out"
    )
    return f"Ceiling ({what}): {value:.2f}x, {verdict_}."


def join(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]
