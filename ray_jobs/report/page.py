"""``report.md``: the report page, one section per task, each with its figures and numbers.

:func:`build_report` reads the runs (``store``), draws the figures (``figures``), runs the
output assessment (``sources``, ``assess``) and writes the Markdown page that shows them: under
each task (super-resolution ``sr``, deblurring ``deblur``) PSNR by gamma, training by epoch and
the output assessment, numbered as in the project report.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import nie_tracking as tracking

from .assess import ImageAssessment, assess_outputs, mean_assessment
from .figures import plot_output_grid, plot_psnr_by_gamma, plot_training_curves
from .sources import load_report_scorer, load_run_model, validation_set
from .store import (
    EnhancerRun,
    enhancer_runs,
    finished_runs,
    gamma_rows,
    latest_runs,
    pick_comparison,
    training_curve,
)

__all__ = ["ENHANCER_METHODS", "ReportResult", "assessment_table", "build_report"]

MARKDOWN_FILE = "report.md"
TASK_TITLES = {"sr": "Super-resolution", "deblur": "Deblurring"}
# The report's figure numbers per task: (PSNR by gamma, by epoch, output assessment).
REPORT_FIGURES = {"sr": (4, 5, 6), "deblur": (7, 8, 9)}
ENHANCER_METHODS = ("baseline", "hybrid")  # column names of the two trained models
MAX_CURVES = 8  # runs drawn in one by-epoch figure (the newest ones)


@dataclass(frozen=True)
class ReportResult:
    """What ``build_report`` wrote."""

    markdown: Path
    figures: dict[str, Path]  # e.g. "psnr_by_gamma_sr" -> PNG
    tasks: list[str]
    assessments: dict[str, list[ImageAssessment]]  # task -> the output-assessment numbers


def build_report(
    out_dir: str | Path,
    tracking_uri: str | None = None,
    max_images: int | None = None,
    crop_size: int = 96,
    summary_markdown: str | None = None,
) -> ReportResult:
    """Write the figures and ``report.md`` into ``out_dir`` (see the package docstring).

    ``max_images``: validation images in the output assessment (None: all of them, as the
    demo's summary). ``summary_markdown``: a section put first (the demo's summary table).

    Raises ``ValueError`` when the store does not exist or holds no finished enhancer run.
    """
    uri = tracking.resolve_tracking_uri(tracking_uri)
    all_runs = enhancer_runs(uri)
    runs = latest_runs(all_runs)
    tasks = [t for t in TASK_TITLES if finished_runs(runs, t)]
    if not tasks:
        raise ValueError(
            f"no finished enhancer run in the MLflow store {uri!r}: train one first "
            "(nie demo, or nie train enhancer)"
        )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures: dict[str, Path] = {}
    assessments: dict[str, list[ImageAssessment]] = {}
    now = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    md = [
        "# NIE report",
        "",
        f"Built by `nie report` on {now} from the MLflow store `{uri}`: "
        f"{len(runs)} enhancer runs, {sum(r.sweep is not None for r in runs)} of them sweep "
        f"trials (older attempts of the same runs and sweeps, {len(all_runs) - len(runs)}, are "
        "left out). Figure numbers refer to the project report (Neural Image Enhancement and "
        "Assessment). PSNR is measured on the Y channel (ITU-R BT.601) with a border of "
        "`scale` pixels shaved; NIMA scores are mean scores (1-10) of the whole image.",
        "",
    ]
    if summary_markdown:
        md += ["## Summary (from `nie demo`)", "", summary_markdown, ""]
    for task in tasks:
        fig_gamma, fig_epoch, fig_grid = REPORT_FIGURES[task]
        md += [f"## {TASK_TITLES[task]} (`{task}`)", ""]
        md += [f"### PSNR by gamma (report, Figure {fig_gamma})", ""]
        md += _gamma_section(runs, task, out, figures)
        md += [f"### Training by epoch, by model (report, Figure {fig_epoch})", ""]
        md += _epoch_section(uri, runs, task, out, figures)
        md += [f"### Output assessment (report, Figure {fig_grid})", ""]
        items, lines = _assessment_section(uri, runs, task, out, figures, max_images, crop_size)
        md += lines
        if items is not None:
            assessments[task] = items
    markdown = out / MARKDOWN_FILE
    markdown.write_text("\n".join(md), encoding="utf-8")
    return ReportResult(markdown, figures, tasks, assessments)


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def _figure(figures: dict[str, Path], key: str, png: Path, alt: str) -> list[str]:
    """Record the figure ``png`` as ``figures[key]``; the Markdown lines that show it."""
    figures[key] = png
    return [f"![{alt}]({png.name})", ""]


def _table_head(columns: Sequence[str], align: str) -> list[str]:
    """The header and rule lines of a Markdown table; ``align`` is "l" or "r" per column."""
    rule = "".join("---:|" if a == "r" else "---|" for a in align)
    return ["| " + " | ".join(columns) + " |", "|" + rule]


def _gamma_section(
    runs: Sequence[EnhancerRun], task: str, out: Path, figures: dict[str, Path]
) -> list[str]:
    """The PSNR-by-gamma figure (added to ``figures``) and its table: Markdown lines."""
    rows = gamma_rows(runs, task)
    if not rows:
        return ["No finished run reported a validation PSNR.", ""]
    key = f"psnr_by_gamma_{task}"
    title = f"{TASK_TITLES[task]}: PSNR (Y) by gamma"
    md = _figure(figures, key, plot_psnr_by_gamma(rows, out / f"{key}.png", title), "PSNR by gamma")
    md += _table_head(["series", "gamma", "epochs", "PSNR (Y) dB", "NIMA mean", "run"], "lrrrrl")
    for r in rows:
        md.append(
            f"| {r['series']} | {r['loss.gamma']:g} | {r['epochs'] or '-'} | "
            f"{_fmt(r['val_psnr_y'])} | {_fmt(r['val_nima_mean'], 3)} | {r['run']} |"
        )
    return [*md, ""]


def _epoch_section(
    uri: str, runs: Sequence[EnhancerRun], task: str, out: Path, figures: dict[str, Path]
) -> list[str]:
    """The by-epoch figure of the newest non-sweep runs (added to ``figures``) and its table."""
    singles = [r for r in finished_runs(runs, task) if r.sweep is None][-MAX_CURVES:]
    single_scales = [r.scales[0] for r in singles if not r.multi_scale]
    figure_scale = min(single_scales) if single_scales else None
    curves = [training_curve(uri, r, figure_scale) for r in singles]
    if not any(c.epochs for c in curves):
        return ["No non-sweep run logged per-epoch metrics.", ""]
    key = f"training_by_epoch_{task}"
    title = f"{TASK_TITLES[task]}: validation PSNR and loss"
    drawn = plot_training_curves(curves, out / f"{key}.png", title)
    md = _figure(figures, key, drawn, "PSNR and loss by epoch")
    md += _table_head(["run", "model", "gamma", "epochs", "PSNR (Y) dB", "training loss"], "llrrrr")
    for c in curves:
        if c.epochs:
            md.append(
                f"| {c.run.name} | {c.run.model} {'/'.join(f'x{s}' for s in c.run.scales)}"
                f" | {c.run.gamma:g} | {c.epochs[-1]} | {_fmt(c.psnr[-1])}"
                f"{'' if c.psnr_key == 'val_psnr_y' else ' (' + c.psnr_key[-2:] + ')'}"
                f" | {c.loss[-1]:.3g} |"
            )
    return [*md, ""]


def _assessment_section(
    uri: str,
    runs: Sequence[EnhancerRun],
    task: str,
    out: Path,
    figures: dict[str, Path],
    max_images: int | None,
    crop_size: int,
) -> tuple[list[ImageAssessment] | None, list[str]]:
    """The output assessment of the (baseline, hybrid) pair: its numbers (None without a run
    to assess) and Markdown lines; the grid figure is added to ``figures``."""
    baseline, hybrid = pick_comparison(runs, task)
    chosen = [(m, r) for m, r in zip(ENHANCER_METHODS, (baseline, hybrid), strict=True) if r]
    if not chosen:
        return None, ["No finished non-sweep run to assess.", ""]
    scale = min(chosen[0][1].scales)
    enhancers = {m: load_run_model(uri, r.run_id, r.params) for m, r in chosen}
    scorer, scorer_origin = load_report_scorer(uri, [r for _, r in chosen][::-1])
    dataset = validation_set(chosen[0][1], scale)
    items = assess_outputs(
        enhancers, scorer, dataset, scale, max_images=max_images, crop_size=crop_size
    )
    labels = {"bicubic": "bicubic" if task == "sr" else "blurred input"}
    labels.update({m: f"{m}: {r.label}" for m, r in chosen})
    key = f"outputs_{task}"
    drawn = plot_output_grid(
        items, out / f"{key}.png",
        f"{TASK_TITLES[task]} x{scale}: centre crops; numbers are for the whole image",
        labels={k: v.split(",")[0] if k in ENHANCER_METHODS else v for k, v in labels.items()},
    )  # fmt: skip
    md = _figure(figures, key, drawn, "outputs")
    md += [f"- {labels[m]} (run `{r.name}`)" for m, r in chosen]
    md += [f"- NIMA scorer: {scorer_origin}", ""]
    md += assessment_table(items, labels)
    return items, [*md, ""]


def _cell(psnr: float | None, nima: float | None) -> str:
    parts = []
    if psnr is not None:
        parts.append(f"{psnr:.2f} dB")
    if nima is not None:
        parts.append(f"NIMA {nima:.2f}")
    return " / ".join(parts) or "-"


def assessment_table(
    assessments: Sequence[ImageAssessment], labels: Mapping[str, str] | None = None
) -> list[str]:
    """Markdown table lines: one row per method, one column per image plus the mean; each cell
    holds the PSNR (Y) and the NIMA mean score."""
    labels = dict(labels or {})
    images = [a.image for a in assessments]
    lines = _table_head(["method", *images, "mean"], "l" + "r" * (len(images) + 1))
    for method, means in mean_assessment(assessments).items():
        cells = [_cell(a.psnr_y.get(method), a.nima_mean.get(method)) for a in assessments]
        cells.append(_cell(means.get("psnr_y"), means.get("nima_mean")))
        lines.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    return lines
