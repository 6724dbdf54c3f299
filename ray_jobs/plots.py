"""Figures of sweep results: the PSNR/NIMA Pareto plot and a metric-by-parameter plot.

Both take a table as a list of row mappings or a pandas ``DataFrame`` (column names such as
``val_psnr_y`` and ``loss.gamma``) and write a PNG. Matplotlib is used through its object API
with the Agg canvas, so nothing here touches pyplot's global state or needs a display.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from .pareto import finite_number, pareto_mask

AXIS_LABELS = {
    "val_psnr_y": "PSNR (Y) [dB]",
    "val_psnr_rgb": "PSNR (RGB) [dB]",
    "val_ssim_y": "SSIM (Y)",
    "val_nima_mean": "mean NIMA score (1-10)",
    "loss.gamma": "gamma (weight of the aesthetic loss)",
    "optim.lr": "learning rate",
}


def records(table: Any) -> list[dict[str, Any]]:
    """The rows of ``table`` (a sequence of mappings or a pandas ``DataFrame``) as dicts."""
    if hasattr(table, "to_dict") and hasattr(table, "columns"):
        return [dict(row) for row in table.to_dict("records")]
    return [dict(row) for row in table]


def _truthy(value: Any) -> bool:
    """A boolean cell, also as read back from CSV (``"True"``, ``"false"``, ``"1"``, ``""``)."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value) and not (isinstance(value, float) and math.isnan(value))


def _label(key: str) -> str:
    return AXIS_LABELS.get(key, key)


def new_figure(size: tuple[float, float]):
    """A matplotlib ``Figure`` of ``size`` inches on the Agg canvas (pyplot is not touched)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (a PNG), creating its folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return path


def plot_pareto(
    table: Any,
    path: str | os.PathLike[str],
    x: str = "val_psnr_y",
    y: str = "val_nima_mean",
    color_by: str | None = "loss.gamma",
    maximize: tuple[bool, bool] = (True, True),
    front_by: str | None = None,
    label_by: str | None = None,
    title: str | None = None,
) -> Path:
    """Scatter ``y`` against ``x``, one point per row coloured by ``color_by``, with the Pareto
    front ringed and joined by a step line.

    The front is the rows whose boolean column ``front_by`` is true, or, when ``front_by`` is
    None, the front of the plotted points in the directions ``maximize`` (see
    :mod:`ray_jobs.pareto`). Rows without finite ``x`` and ``y`` are left out. ``label_by``
    names a column written next to each front point (e.g. the trial id). Raises ``ValueError``
    when no row has both values.
    """
    rows = [r for r in records(table) if finite_number(r.get(x)) is not None]
    rows = [r for r in rows if finite_number(r.get(y)) is not None]
    if not rows:
        raise ValueError(f"no row has numeric values of both {x!r} and {y!r}")
    xs = [finite_number(r[x]) for r in rows]
    ys = [finite_number(r[y]) for r in rows]
    if front_by is None:
        on_front = pareto_mask(list(zip(xs, ys, strict=True)), maximize=list(maximize))
    else:
        on_front = [_truthy(r.get(front_by)) for r in rows]

    fig = new_figure((6.4, 4.8))
    ax = fig.add_subplot()
    colors = [finite_number(r.get(color_by)) for r in rows] if color_by else []
    if color_by and all(c is not None for c in colors):
        points = ax.scatter(xs, ys, c=colors, cmap="viridis", s=40, zorder=2)
        fig.colorbar(points, ax=ax, label=_label(color_by))
    else:
        ax.scatter(xs, ys, color="tab:blue", s=40, zorder=2)
    front = sorted((xs[i], ys[i], i) for i in range(len(rows)) if on_front[i])
    fx, fy = [p[0] for p in front], [p[1] for p in front]
    ax.scatter(fx, fy, s=140, facecolors="none", edgecolors="tab:red", linewidths=1.5,
               label=f"Pareto front ({len(front)} of {len(rows)})", zorder=3)  # fmt: skip
    if len(front) > 1:
        # The boundary of the region the front dominates: between two front points it runs at
        # the level of the point further in x's good direction.
        ax.step(fx, fy, where="pre" if maximize[0] else "post",
                color="tab:red", linewidth=1, alpha=0.7, zorder=1)  # fmt: skip
    if label_by:
        for px, py, i in front:
            ax.annotate(str(rows[i].get(label_by, "")), (px, py), textcoords="offset points",
                        xytext=(5, 5), fontsize=7)  # fmt: skip
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    ax.set_title(title or "Fidelity vs aesthetics")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)


def plot_metric_by_param(
    table: Any,
    path: str | os.PathLike[str],
    param: str = "loss.gamma",
    metric: str = "val_psnr_y",
    group_by: str | None = None,
    reference: float | None = None,
    reference_label: str = "reference",
    log_x: bool = False,
    title: str | None = None,
) -> Path:
    """``metric`` against ``param``: every row as a dot, and a line through the mean at each
    ``param`` value (one line per value of ``group_by`` if given), e.g. the report's PSNR by
    gamma. ``reference`` draws a dashed horizontal line (e.g. bicubic PSNR).

    Rows without finite ``param`` and ``metric`` values are left out; raises ``ValueError`` when
    none is left.
    """
    rows = [r for r in records(table) if finite_number(r.get(param)) is not None]
    rows = [r for r in rows if finite_number(r.get(metric)) is not None]
    if not rows:
        raise ValueError(f"no row has numeric values of both {param!r} and {metric!r}")
    groups: dict[Any, list[tuple[float, float]]] = {}
    for r in rows:
        key = r.get(group_by) if group_by else None
        groups.setdefault(key, []).append((finite_number(r[param]), finite_number(r[metric])))

    fig = new_figure((6.4, 4.2))
    ax = fig.add_subplot()
    for key, pairs in sorted(groups.items(), key=lambda kv: str(kv[0])):
        label = f"{group_by}={key}" if group_by else "mean"
        by_x: dict[float, list[float]] = {}
        for px, py in pairs:
            by_x.setdefault(px, []).append(py)
        line_x = sorted(by_x)
        line_y = [sum(by_x[v]) / len(by_x[v]) for v in line_x]
        (line,) = ax.plot(line_x, line_y, marker="o", linewidth=1.5, label=label, zorder=2)
        ax.scatter([p[0] for p in pairs], [p[1] for p in pairs], s=14, alpha=0.5,
                   color=line.get_color(), zorder=1)  # fmt: skip
    if reference is not None:
        ax.axhline(reference, linestyle="--", color="grey", linewidth=1, label=reference_label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(_label(param))
    ax.set_ylabel(_label(metric))
    ax.set_title(title or f"{_label(metric)} by {param}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return save_figure(fig, path)
