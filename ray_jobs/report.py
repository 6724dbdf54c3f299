"""``nie report``: the report's figures, rebuilt from the runs in an MLflow store.

For each task found (super-resolution ``sr``, deblurring ``deblur``) it writes three PNGs and
one Markdown page (``report.md``) that shows them with their numbers:

- PSNR (Y) by gamma, the weight of the aesthetic loss (the report's Figures 4 and 7): every
  finished enhancer run, sweep trials grouped by sweep, bicubic as a dashed line;
- validation PSNR (Y) and training loss by epoch, one line per (non-sweep) enhancer run labelled
  by its model, e.g. EDSR against MDSR (Figures 5 and 8);
- the output assessment (Figures 6 and 9): the same crops of validation images from bicubic
  upsampling (or the blurred input), the baseline model (gamma = 0) and the hybrid model
  (gamma > 0), next to the reference, each with its PSNR (Y) and NIMA mean score (Talebi &
  Milanfar 2018) of the whole image.

Models are loaded from a run's best checkpoint (``runs/NAME/best``) when it is on this machine,
else from the model version the run registered. The NIMA scorer is the one the hybrid run was
trained with, else the newest NIMA run's model. :func:`assess_outputs` is also what
``nie demo`` prints its summary table from.
"""

from __future__ import annotations

import argparse
import datetime
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

import nie_tracking as tracking

__all__ = [
    "ENHANCER_METHODS",
    "EnhancerRun",
    "ImageAssessment",
    "ReportResult",
    "assess_outputs",
    "assessment_table",
    "build_report",
    "enhancer_runs",
    "format_summary_table",
    "load_run_model",
    "mean_assessment",
    "pick_comparison",
    "plot_output_grid",
    "plot_training_curves",
    "run_cli",
]

MARKDOWN_FILE = "report.md"
TASK_TITLES = {"sr": "Super-resolution", "deblur": "Deblurring"}
# The report's figure numbers per task: (PSNR by gamma, by epoch, output assessment).
REPORT_FIGURES = {"sr": (4, 5, 6), "deblur": (7, 8, 9)}
ENHANCER_METHODS = ("baseline", "hybrid")  # column names of the two trained models
MAX_CURVES = 8  # runs drawn in one by-epoch figure (the newest ones)


# --------------------------------------------------------------------------- runs in the store


@dataclass(frozen=True)
class EnhancerRun:
    """One enhancer run of the MLflow store, with the settings the figures group by."""

    run_id: str
    name: str
    status: str  # MLflow's run status: FINISHED, RUNNING, FAILED, KILLED
    start_time: int  # ms since the epoch
    params: dict[str, str]  # the job config, flattened (``tracking.flatten``)
    metrics: dict[str, float]  # latest value of each metric
    sweep: str | None  # name of the sweep (parent run) this run is a trial of, else None
    parent_run_id: str | None = None  # that sweep's MLflow run

    @property
    def model(self) -> str:
        return self.params.get("model.name", "?")

    @property
    def task(self) -> str:
        return self.params.get("data.task", "sr")

    @property
    def gamma(self) -> float:
        return _float(self.params.get("loss.gamma"), 0.0)

    @property
    def scales(self) -> tuple[int, ...]:
        value = _param_value(self.params.get("model.scales", "[2]"))
        return tuple(int(s) for s in value) if isinstance(value, list) else (int(value),)

    @property
    def multi_scale(self) -> bool:
        return self.model.startswith("mdsr")

    @property
    def epochs(self) -> int | None:
        value = self.metrics.get("epoch")
        return None if value is None else int(value)

    @property
    def label(self) -> str:
        """``edsr_baseline x2, gamma 0.4``: what a legend shows."""
        scales = "/".join(f"x{s}" for s in self.scales)
        return f"{self.model} {scales}, gamma {self.gamma:g}"


def _float(text: str | None, default: float) -> float:
    try:
        return float(text) if text is not None else default
    except ValueError:
        return default


def _param_value(text: str | None) -> Any:
    """A param logged as ``str(value)`` back as a value (``"None"`` -> None, ``"[2]"`` -> [2])."""
    import yaml

    if text is None or text == "None":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def check_store(uri: str) -> None:
    """``ValueError`` when a local SQLite store does not exist (MLflow would create one)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not Path(uri[len(prefix) :]).is_file():
        raise ValueError(
            f"no MLflow store at {uri!r}: train something first (nie demo, nie train ...) or "
            "pass --tracking-uri"
        )


def enhancer_runs(uri: str) -> list[EnhancerRun]:
    """Every enhancer run in the store (any experiment), oldest first."""
    check_store(uri)
    client = tracking.client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    runs, token = [], None
    while True:
        page = client.search_runs(
            experiments, filter_string="tags.`nie.job` = 'enhancer'", max_results=1000,
            page_token=token,
        )  # fmt: skip
        runs += list(page)
        token = page.token
        if not token:
            break
    names = {r.info.run_id: r.info.run_name for r in runs}
    out = []
    for r in runs:
        parent = r.data.tags.get("mlflow.parentRunId")
        sweep = None
        if parent:
            sweep = names.get(parent) or _run_name(client, parent)
        out.append(
            EnhancerRun(
                run_id=r.info.run_id,
                name=r.info.run_name or r.info.run_id,
                status=r.info.status,
                start_time=int(r.info.start_time or 0),
                params=dict(r.data.params),
                metrics={k: float(v) for k, v in r.data.metrics.items()},
                sweep=sweep,
                parent_run_id=parent or None,
            )
        )
    return sorted(out, key=lambda run: run.start_time)


def _run_name(client: Any, run_id: str) -> str:
    try:
        return client.get_run(run_id).info.run_name or run_id
    except Exception:  # a parent in another store or deleted
        return run_id


def latest_runs(runs: Sequence[EnhancerRun]) -> list[EnhancerRun]:
    """Only the newest attempt of everything: the newest run of each name outside sweeps, and
    the trials of the newest sweep of each sweep name (a retrained job or a rerun sweep replaces
    the older one). Keeps the order of ``runs``."""
    newest_single: dict[str, EnhancerRun] = {}
    sweep_parents: dict[str, dict[str, int]] = {}
    for run in runs:
        if run.sweep is None:
            if (
                run.name not in newest_single
                or run.start_time >= newest_single[run.name].start_time
            ):
                newest_single[run.name] = run
        else:
            parents = sweep_parents.setdefault(run.sweep, {})
            key = run.parent_run_id or ""
            parents[key] = max(parents.get(key, 0), run.start_time)
    newest_parent = {name: max(p, key=p.get) for name, p in sweep_parents.items()}
    return [
        run
        for run in runs
        if (run.sweep is None and newest_single[run.name] is run)
        or (run.sweep is not None and (run.parent_run_id or "") == newest_parent[run.sweep])
    ]


def _finished(runs: Sequence[EnhancerRun], task: str) -> list[EnhancerRun]:
    return [r for r in runs if r.status == "FINISHED" and r.task == task]


# --------------------------------------------------------------------------- PSNR by gamma


def gamma_rows(runs: Sequence[EnhancerRun], task: str) -> list[dict[str, Any]]:
    """One row per finished run of ``task`` with a final PSNR: series (the sweep, or "single
    runs", per model), gamma, PSNR, NIMA, epochs and run name."""
    rows = []
    for run in _finished(runs, task):
        if "val_psnr_y" not in run.metrics:
            continue
        series = f"sweep {run.sweep}" if run.sweep else "single runs"
        rows.append(
            {
                "series": f"{run.model}: {series}",
                "loss.gamma": run.gamma,
                "val_psnr_y": run.metrics["val_psnr_y"],
                "val_nima_mean": run.metrics.get("val_nima_mean"),
                "bicubic_psnr_y": run.metrics.get("bicubic_psnr_y"),
                "epochs": run.epochs,
                "scales": run.scales,
                "run": run.name,
            }
        )
    return sorted(rows, key=lambda r: (r["series"], r["loss.gamma"], r["run"]))


def plot_psnr_by_gamma(rows: Sequence[Mapping[str, Any]], path: Path, title: str) -> Path:
    """The PSNR-by-gamma figure (``ray_jobs.plots.plot_metric_by_param``), one line per series,
    with bicubic upsampling at the most common scale as a dashed line."""
    from .plots import plot_metric_by_param

    counts: dict[tuple[int, ...], int] = {}
    for r in rows:
        counts[r["scales"]] = counts.get(r["scales"], 0) + 1
    scales = max(counts, key=counts.get)
    bicubic = [
        r["bicubic_psnr_y"]
        for r in rows
        if r["scales"] == scales and r.get("bicubic_psnr_y") is not None
    ]
    return plot_metric_by_param(
        rows, path, param="loss.gamma", metric="val_psnr_y", group_by="series",
        reference=sum(bicubic) / len(bicubic) if bicubic else None,
        reference_label="bicubic " + "/".join(f"x{s}" for s in scales), title=title,
    )  # fmt: skip


# --------------------------------------------------------------------------- by epoch


@dataclass(frozen=True)
class TrainingCurve:
    """Per-epoch validation PSNR and training loss of one run."""

    run: EnhancerRun
    psnr_key: str  # the metric drawn, e.g. val_psnr_y or val_psnr_y_x2 for MDSR
    epochs: list[int]
    psnr: list[float]
    loss: list[float]  # the whole training loss
    pixel_loss: list[float]  # its pixel (L2 / L1) part


def training_curve(uri: str, run: EnhancerRun, scale: int | None = None) -> TrainingCurve:
    """The run's metrics at the end of each epoch. For a multi-scale run, ``scale`` picks the
    per-scale PSNR (``val_psnr_y_x{scale}``) so that it compares with single-scale runs."""
    client = tracking.client(uri)
    psnr_key = "val_psnr_y"
    if run.multi_scale and scale is not None and f"val_psnr_y_x{scale}" in run.metrics:
        psnr_key = f"val_psnr_y_x{scale}"
    epoch_at = {m.step: int(m.value) for m in client.get_metric_history(run.run_id, "epoch")}
    psnr = {m.step: m.value for m in client.get_metric_history(run.run_id, psnr_key)}
    loss = {m.step: m.value for m in client.get_metric_history(run.run_id, "train_loss")}
    pixel = {m.step: m.value for m in client.get_metric_history(run.run_id, "train_pixel_loss")}
    steps = sorted(s for s in epoch_at if s in psnr and s in loss)
    return TrainingCurve(
        run, psnr_key, [epoch_at[s] for s in steps], [psnr[s] for s in steps],
        [loss[s] for s in steps], [pixel.get(s, loss[s]) for s in steps],
    )  # fmt: skip


def _new_figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_training_curves(curves: Sequence[TrainingCurve], path: Path, title: str) -> Path:
    """Three panels against the epoch: validation PSNR (Y), the training loss, and its pixel
    (L2) part, one line per run (solid for EDSR, dashed for MDSR). Raises ``ValueError`` when no
    curve has a point."""
    drawn = [c for c in curves if c.epochs]
    if not drawn:
        raise ValueError("no run has per-epoch validation PSNR and training loss")
    fig = _new_figure((13.0, 4.2))
    ax_psnr, ax_loss, ax_pixel = fig.subplots(1, 3)
    for curve in drawn:
        suffix = f" ({curve.psnr_key.rsplit('_', 1)[-1]})" if curve.psnr_key != "val_psnr_y" else ""
        label = f"{curve.run.label}{suffix} [{curve.run.name}]"
        style = "--" if curve.run.multi_scale else "-"
        (line,) = ax_psnr.plot(curve.epochs, curve.psnr, style, marker="o", label=label)
        ax_loss.plot(curve.epochs, curve.loss, style, marker="o", color=line.get_color())
        ax_pixel.plot(curve.epochs, curve.pixel_loss, style, marker="o", color=line.get_color())
    ax_psnr.set_ylabel("validation PSNR (Y) [dB]")
    ax_loss.set_ylabel("training loss (pixel + gamma * (10 - NIMA))")
    ax_pixel.set_ylabel("its pixel part (L2)")
    for ax in (ax_loss, ax_pixel):
        ax.set_yscale("log")
    for ax in (ax_psnr, ax_loss, ax_pixel):
        ax.set_xlabel("epoch")
        ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=7, ncols=2)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------- output assessment


@dataclass(frozen=True)
class ImageAssessment:
    """One validation image through every method.

    ``psnr_y``: method -> PSNR (Y channel, border of ``scale`` pixels shaved) in dB;
    ``nima_mean``: method -> NIMA mean score in [1, 10] of the whole image (also for
    ``"reference"``; empty without a scorer); ``crops``: method -> uint8 (c, c, 3) crop of the
    same region of every output.
    """

    image: str
    psnr_y: dict[str, float]
    nima_mean: dict[str, float]
    crops: dict[str, np.ndarray] = field(repr=False)


def _center_crop(image: torch.Tensor, size: int) -> np.ndarray:
    """(1, 3, H, W) in [0, 1] -> uint8 (s, s, 3) from the centre, s = min(size, H, W)."""
    from nie_core.data.images import to_uint8

    _, _, height, width = image.shape
    side = min(size, height, width)
    top, left = (height - side) // 2, (width - side) // 2
    return to_uint8(image[0, :, top : top + side, left : left + side].cpu())


def assess_outputs(
    enhancers: Mapping[str, nn.Module],
    scorer: nn.Module | None,
    dataset: Any,
    scale: int,
    max_images: int | None = None,
    crop_size: int = 96,
    tile_size: int | None = 256,
) -> list[ImageAssessment]:
    """Run every enhancer on the validation images of ``dataset`` and measure the outputs.

    ``dataset``: whole-image pairs ``(lr (3,h,w), hr (3,h*s,w*s))`` in [0, 1] with ``names``
    (``nie_core.data.div2k``), at ``scale``. The methods are ``"bicubic"`` (bicubic upsampling
    of the input; the input itself at scale 1), then ``enhancers`` in their order, then
    ``"reference"`` (the HR image; no PSNR). Outputs are computed in float32 (no bf16), so the
    numbers do not depend on the CPU.
    """
    from nie_core.inference import enhance, score
    from nie_core.metrics import mean_score, psnr_y

    names = list(getattr(dataset, "names", []))
    count = len(names) if names else len(dataset)
    if max_images is not None:
        count = min(count, max_images)
    results = []
    for index in range(count):
        lr, hr = dataset[index]
        lr, hr = lr[None], hr[None]
        outputs: dict[str, torch.Tensor] = {}
        if scale == 1:
            outputs["bicubic"] = lr.clamp(0, 1)
        else:
            upsampled = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False)
            outputs["bicubic"] = upsampled.clamp(0, 1)
        for method, model in enhancers.items():
            outputs[method] = enhance(model, lr, scale=scale, tile_size=tile_size, fast=False)
        outputs["reference"] = hr
        psnr = {
            method: float(psnr_y(image, hr, shave=scale)[0])
            for method, image in outputs.items()
            if method != "reference"
        }
        nima = {}
        if scorer is not None:
            nima = {m: float(mean_score(score(scorer, img))[0]) for m, img in outputs.items()}
        crops = {method: _center_crop(image, crop_size) for method, image in outputs.items()}
        name = names[index] if names else str(index)
        results.append(ImageAssessment(name, psnr, nima, crops))
    return results


def mean_assessment(assessments: Sequence[ImageAssessment]) -> dict[str, dict[str, float]]:
    """method -> {"psnr_y": mean dB, "nima_mean": mean score} over the images (keys missing
    where a number was not measured)."""
    out: dict[str, dict[str, float]] = {}
    if not assessments:
        return out
    for method in assessments[0].crops:
        row = {}
        for key in ("psnr_y", "nima_mean"):
            values = [getattr(a, key)[method] for a in assessments if method in getattr(a, key)]
            if values:
                row[key] = sum(values) / len(values)
        out[method] = row
    return out


def format_summary_table(
    assessments: Sequence[ImageAssessment], labels: Mapping[str, str] | None = None
) -> str:
    """A plain-text table: one row per method with its mean PSNR (Y) and mean NIMA score over
    the images. ``labels`` renames methods (e.g. ``{"baseline": "EDSR (L2)"}``)."""
    labels = dict(labels or {})
    means = mean_assessment(assessments)
    rows = [(labels.get(m, m), v) for m, v in means.items()]
    width = max([len("method")] + [len(name) for name, _ in rows])
    lines = [
        f"{'method':<{width}}  {'PSNR (Y) dB':>11}  {'NIMA mean':>9}",
        f"{'-' * width}  {'-' * 11}  {'-' * 9}",
    ]
    for name, values in rows:
        psnr = f"{values['psnr_y']:.2f}" if "psnr_y" in values else "-"
        nima = f"{values['nima_mean']:.3f}" if "nima_mean" in values else "-"
        lines.append(f"{name:<{width}}  {psnr:>11}  {nima:>9}")
    lines.append(f"(mean over {len(assessments)} validation image(s))")
    return "\n".join(lines)


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
    lines = [
        "| method | " + " | ".join(a.image for a in assessments) + " | mean |",
        "|---|" + "---:|" * (len(assessments) + 1),
    ]
    for method, means in mean_assessment(assessments).items():
        cells = [_cell(a.psnr_y.get(method), a.nima_mean.get(method)) for a in assessments]
        cells.append(_cell(means.get("psnr_y"), means.get("nima_mean")))
        lines.append(f"| {labels.get(method, method)} | " + " | ".join(cells) + " |")
    return lines


def plot_output_grid(
    assessments: Sequence[ImageAssessment],
    path: Path,
    title: str,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """Rows: images; columns: methods. Each cell shows the same centre crop, titled with the
    method, the PSNR (Y) and the NIMA mean score of the whole output."""
    if not assessments:
        raise ValueError("no images to show in the output grid")
    labels = dict(labels or {})
    methods = list(assessments[0].crops)
    fig = _new_figure((2.3 * len(methods), 2.5 * len(assessments) + 0.4))
    axes = np.atleast_2d(fig.subplots(len(assessments), len(methods), squeeze=False))
    for row, item in enumerate(assessments):
        for col, method in enumerate(methods):
            ax = axes[row, col]
            ax.imshow(item.crops[method], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            lines = [labels.get(method, method)]
            numbers = []
            if method in item.psnr_y:
                numbers.append(f"{item.psnr_y[method]:.2f} dB")
            if method in item.nima_mean:
                numbers.append(f"NIMA {item.nima_mean[method]:.2f}")
            if numbers:
                lines.append(", ".join(numbers))
            ax.set_title("\n".join(lines), fontsize=8)
            if col == 0:
                ax.set_ylabel(item.image, fontsize=8)
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


# --------------------------------------------------------------------------- loading models


def pick_comparison(
    runs: Sequence[EnhancerRun], task: str
) -> tuple[EnhancerRun | None, EnhancerRun | None]:
    """The (baseline, hybrid) pair of the output assessment: finished, non-sweep runs of
    ``task`` of one model and scale set, the newest with gamma = 0 and the newest with
    gamma > 0. Prefers a group holding both, then EDSR over MDSR, then the newest group."""
    groups: dict[tuple[str, tuple[int, ...]], list[EnhancerRun]] = {}
    for run in _finished(runs, task):
        if run.sweep is None:
            groups.setdefault((run.model, run.scales), []).append(run)
    if not groups:
        return None, None

    def rank(item: tuple[tuple[str, tuple[int, ...]], list[EnhancerRun]]) -> tuple:
        (model, _), members = item
        both = any(r.gamma == 0 for r in members) and any(r.gamma > 0 for r in members)
        return (both, not model.startswith("mdsr"), max(r.start_time for r in members))

    _, members = max(groups.items(), key=rank)
    baselines = [r for r in members if r.gamma == 0]
    hybrids = [r for r in members if r.gamma > 0]
    return (baselines[-1] if baselines else None, hybrids[-1] if hybrids else None)


def _best_checkpoint_dir(params: Mapping[str, str]) -> Path | None:
    storage, name = params.get("run.storage_path"), params.get("run.name")
    if not storage or not name:
        return None
    best = Path(storage).resolve() / name / "best"
    return best if (best / "checkpoint.pt").is_file() else None


def load_run_model(uri: str, run_id: str, params: Mapping[str, str]) -> nn.Module:
    """A run's model in eval mode on the CPU: its best checkpoint if it is on this machine,
    else the newest model version the run registered. ``ValueError`` when neither exists."""
    from nie_core.checkpoint import load_model

    best = _best_checkpoint_dir(params)
    if best is not None:
        return load_model(best).cpu().eval()
    client = tracking.client(uri)
    versions = client.search_model_versions(f"run_id = '{run_id}'")
    if versions:
        import mlflow
        import mlflow.pytorch

        newest = max(versions, key=lambda v: int(v.version))
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        model = mlflow.pytorch.load_model(
            f"models:/{newest.name}/{newest.version}", map_location="cpu"
        )
        return model.eval()
    raise ValueError(
        f"run {run_id} has neither a best checkpoint on this machine nor a registered model"
    )


def load_report_scorer(uri: str, runs: Sequence[EnhancerRun]) -> tuple[nn.Module | None, str]:
    """The NIMA scorer of the output assessment and where it came from: the checkpoint a run
    was trained with (``loss.nima_checkpoint``), else the newest finished NIMA run's model."""
    from nie_core.checkpoint import load_model
    from nie_core.models.nima import freeze_scorer

    for run in runs:
        path = _param_value(run.params.get("loss.nima_checkpoint"))
        if isinstance(path, str) and path.startswith("zoo:"):
            from nie_core.models.zoo import load_zoo_uri

            return freeze_scorer(load_zoo_uri(path)), path
        if isinstance(path, str) and Path(path).exists():
            return freeze_scorer(load_model(path).cpu()), path
    client = tracking.client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    nima_runs = client.search_runs(
        experiments, filter_string="tags.`nie.job` = 'nima' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5,
    )  # fmt: skip
    for nima in nima_runs:
        try:
            model = load_run_model(uri, nima.info.run_id, nima.data.params)
        except ValueError:
            continue
        return freeze_scorer(model), f"NIMA run {nima.info.run_name}"
    return None, "none"


def validation_set(run: EnhancerRun, scale: int) -> Any:
    """The run's validation images at ``scale``, built as the enhancer job builds them."""
    from nie_core.config import load_config

    from .config import EnhancerJobConfig
    from .enhancer import valid_dataset

    keys = ("data.root", "data.valid_root", "data.task", "data.blur_sigma", "data.blur_kernel",
            "model.name", "model.scales")  # fmt: skip
    overrides = [
        f"{key}={'null' if run.params[key] == 'None' else run.params[key]}"
        for key in keys
        if key in run.params
    ]
    cfg = load_config(EnhancerJobConfig, None, [*overrides, "data.cache_dir=null"])
    dataset = valid_dataset(cfg)
    return dataset.with_scale(scale) if len(dataset.scales) > 1 else dataset


# --------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class ReportResult:
    """What ``build_report`` wrote."""

    markdown: Path
    figures: dict[str, Path]  # e.g. "psnr_by_gamma_sr" -> PNG
    tasks: list[str]
    assessments: dict[str, list[ImageAssessment]]  # task -> the output-assessment numbers


def _fmt(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def build_report(
    out_dir: str | Path,
    tracking_uri: str | None = None,
    max_images: int | None = None,
    crop_size: int = 96,
    summary_markdown: str | None = None,
) -> ReportResult:
    """Write the figures and ``report.md`` into ``out_dir`` (see the module docstring).

    ``max_images``: validation images in the output assessment (None: all of them, as the
    demo's summary). ``summary_markdown``: a section put first (the demo's summary table).

    Raises ``ValueError`` when the store does not exist or holds no finished enhancer run.
    """
    uri = tracking.resolve_tracking_uri(tracking_uri)
    all_runs = enhancer_runs(uri)
    runs = latest_runs(all_runs)
    tasks = [t for t in TASK_TITLES if _finished(runs, t)]
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

        # PSNR by gamma.
        rows = gamma_rows(runs, task)
        md += [f"### PSNR by gamma (report, Figure {fig_gamma})", ""]
        if rows:
            key = f"psnr_by_gamma_{task}"
            figures[key] = plot_psnr_by_gamma(
                rows, out / f"{key}.png", f"{TASK_TITLES[task]}: PSNR (Y) by gamma"
            )
            md += [f"![PSNR by gamma]({key}.png)", "",
                   "| series | gamma | epochs | PSNR (Y) dB | NIMA mean | run |",
                   "|---|---:|---:|---:|---:|---|"]  # fmt: skip
            for r in rows:
                md.append(
                    f"| {r['series']} | {r['loss.gamma']:g} | {r['epochs'] or '-'} | "
                    f"{_fmt(r['val_psnr_y'])} | {_fmt(r['val_nima_mean'], 3)} | {r['run']} |"
                )
        else:
            md.append("No finished run reported a validation PSNR.")
        md.append("")

        # By epoch.
        singles = [r for r in _finished(runs, task) if r.sweep is None][-MAX_CURVES:]
        single_scales = [r.scales[0] for r in singles if not r.multi_scale]
        figure_scale = min(single_scales) if single_scales else None
        curves = [training_curve(uri, r, figure_scale) for r in singles]
        md += [f"### Training by epoch, by model (report, Figure {fig_epoch})", ""]
        if any(c.epochs for c in curves):
            key = f"training_by_epoch_{task}"
            figures[key] = plot_training_curves(
                curves, out / f"{key}.png", f"{TASK_TITLES[task]}: validation PSNR and loss"
            )
            md += [f"![PSNR and loss by epoch]({key}.png)", "",
                   "| run | model | gamma | epochs | PSNR (Y) dB | training loss |",
                   "|---|---|---:|---:|---:|---:|"]  # fmt: skip
            for c in curves:
                if c.epochs:
                    md.append(
                        f"| {c.run.name} | {c.run.model} {'/'.join(f'x{s}' for s in c.run.scales)}"
                        f" | {c.run.gamma:g} | {c.epochs[-1]} | {_fmt(c.psnr[-1])}"
                        f"{'' if c.psnr_key == 'val_psnr_y' else ' (' + c.psnr_key[-2:] + ')'}"
                        f" | {c.loss[-1]:.3g} |"
                    )
        else:
            md.append("No non-sweep run logged per-epoch metrics.")
        md.append("")

        # Output assessment.
        baseline, hybrid = pick_comparison(runs, task)
        md += [f"### Output assessment (report, Figure {fig_grid})", ""]
        chosen = [(m, r) for m, r in zip(ENHANCER_METHODS, (baseline, hybrid), strict=True) if r]
        if chosen:
            scale = min(chosen[0][1].scales)
            enhancers = {m: load_run_model(uri, r.run_id, r.params) for m, r in chosen}
            scorer, scorer_origin = load_report_scorer(uri, [r for _, r in chosen][::-1])
            dataset = validation_set(chosen[0][1], scale)
            items = assess_outputs(
                enhancers, scorer, dataset, scale, max_images=max_images, crop_size=crop_size
            )
            assessments[task] = items
            labels = {"bicubic": "bicubic" if task == "sr" else "blurred input"}
            labels.update({m: f"{m}: {r.label}" for m, r in chosen})
            key = f"outputs_{task}"
            figures[key] = plot_output_grid(
                items, out / f"{key}.png",
                f"{TASK_TITLES[task]} x{scale}: centre crops; numbers are for the whole image",
                labels={k: v.split(",")[0] if k in ENHANCER_METHODS else v
                        for k, v in labels.items()},
            )  # fmt: skip
            md += [f"![outputs]({key}.png)", ""]
            md += [f"- {labels[m]} (run `{r.name}`)" for m, r in chosen]
            md += [f"- NIMA scorer: {scorer_origin}", ""]
            md += assessment_table(items, labels)
        else:
            md.append("No finished non-sweep run to assess.")
        md.append("")
    markdown = out / MARKDOWN_FILE
    markdown.write_text("\n".join(md), encoding="utf-8")
    return ReportResult(markdown, figures, tasks, assessments)


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie report``: writes the report and prints the files."""
    result = build_report(args.out, args.tracking_uri)
    for path in result.figures.values():
        print(path)
    print(result.markdown)
    print(f"[nie] report: {result.markdown}", file=sys.stderr)
    return 0
