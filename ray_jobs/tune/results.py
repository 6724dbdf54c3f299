"""What a sweep leaves in its folder: the results table (a row per trial), the Pareto and
PSNR-by-gamma plots, and the best trial's job as a config file."""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from nie_core.config import config_from_dict, config_to_dict

from ..config import EnhancerJobConfig, TuneJobConfig
from ..pareto import pareto_mask, weighted_sum
from .objectives import OBJECTIVE_KEY, describe_objective, objective_weights
from .space import with_params

TABLE_METRICS = (
    "val_psnr_y", "val_nima_mean", "val_ssim_y", "val_psnr_rgb", "bicubic_psnr_y",
    "bicubic_nima_mean", "train_loss",
)  # fmt: skip
TABLE_FILE = "results.csv"
PARETO_PLOT = "pareto.png"
GAMMA_PLOT = "psnr_by_gamma.png"
BEST_FILE = "best_config.yaml"

Row = Mapping[str, Any]


class SweepFiles(NamedTuple):
    """The files :func:`write_results` wrote in the sweep folder (None: nothing to show)."""

    table: Path
    pareto_plot: Path | None
    gamma_plot: Path | None
    best_config: Path | None


def _status(result: Any, epochs: int) -> str:
    if result.error is not None:
        return "ERROR"
    done = (result.metrics or {}).get("epoch")
    if done is None:
        return "UNFINISHED"
    return "FINISHED" if done >= epochs else "STOPPED"


def _trial_params(result: Any, keys: Sequence[str]) -> dict[str, Any]:
    params = result.config
    if not params:  # errored before its first report: Tune's params.json still has them
        params_file = Path(result.path) / "params.json"
        params = json.loads(params_file.read_text()) if params_file.exists() else {}
    return {k: params.get(k) for k in keys}


def finished(rows: Sequence[Row]) -> list[Row]:
    """The rows of trials that ran all their epochs."""
    return [r for r in rows if r["status"] == "FINISHED"]


def collect_rows(
    results: Any,
    space_keys: Sequence[str],
    weights: Mapping[str, float],
    pareto_metrics: tuple[str, str],
    epochs: int,
    train_dir: Path,
) -> list[dict[str, Any]]:
    """The results table: trial, status, epochs, the sampled params, the objective, the final
    validation metrics, ``on_front`` and the trial's MLflow run id; sorted by trial name."""
    rows = []
    for result in results:
        trial = Path(result.path).name
        metrics = result.metrics or {}
        run_id_file = train_dir / trial / "mlflow_run_id"
        row = {
            "trial": trial,
            "status": _status(result, epochs),
            "epochs": metrics.get("epoch"),
            **_trial_params(result, space_keys),
            OBJECTIVE_KEY: weighted_sum(metrics, weights),
            **{m: metrics.get(m) for m in TABLE_METRICS},
            "on_front": False,
            "mlflow_run_id": run_id_file.read_text().strip() if run_id_file.exists() else None,
        }
        rows.append(row)
    rows.sort(key=lambda r: r["trial"])
    done = finished(rows)
    mask = pareto_mask([tuple(r.get(m) for m in pareto_metrics) for r in done])
    for row, on_front in zip(done, mask, strict=True):
        row["on_front"] = on_front
    return rows


def best_row(rows: Sequence[Row]) -> Row | None:
    """The finished row with the largest objective (None when no finished row reports it)."""
    candidates = [r for r in finished(rows) if r[OBJECTIVE_KEY] is not None]
    return max(candidates, key=lambda r: r[OBJECTIVE_KEY], default=None)


def write_table(rows: Sequence[Row], path: Path) -> Path:
    """The results table as CSV (empty cells for missing values)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})
    return path


def write_best_config(cfg: TuneJobConfig, row: Row, space_keys: Sequence[str], path: Path) -> Path:
    """The best trial's job as a YAML file that ``nie train enhancer --config`` accepts as is:
    the sweep's base job with the trial's params, under the run name ``<sweep>-best``."""
    job = with_params(config_to_dict(cfg.job), {key: row[key] for key in space_keys})
    job["run"].update(name=f"{cfg.name}-best")
    job["tracking"]["parent_run_id"] = None
    best = config_from_dict(EnhancerJobConfig, job)  # checks that it loads back
    header = (
        f"# Best trial {row['trial']} of sweep {cfg.name!r} "
        f"(objective {describe_objective(objective_weights(cfg.objective))} = "
        f"{row[OBJECTIVE_KEY]:.4f}).\n"
        f"# Train it: nie train enhancer --config {path.name}\n"
    )
    body = yaml.safe_dump(config_to_dict(best), sort_keys=False, default_flow_style=False)
    path.write_text(header + body, encoding="utf-8")
    return path


def write_plots(
    rows: Sequence[Row], space_keys: Sequence[str], pareto_metrics: tuple[str, str],
    sweep_dir: Path,
) -> tuple[Path | None, Path | None]:  # fmt: skip
    """The Pareto plot of every trial that reported both ``pareto_metrics``, and the PSNR by
    gamma of the finished trials when gamma is swept; None for a plot with nothing to show."""
    from ..plots import plot_metric_by_param, plot_pareto

    done = finished(rows)
    shown = [r for r in rows if all(r.get(m) is not None for m in pareto_metrics)]
    pareto_plot = gamma_plot = None
    if shown:
        x, y = pareto_metrics
        pareto_plot = plot_pareto(
            shown, sweep_dir / PARETO_PLOT, x=x, y=y,
            color_by="loss.gamma" if "loss.gamma" in space_keys else None,
            front_by="on_front", label_by=None,
            title=f"{len(done)} finished trials; ringed: Pareto front",
        )  # fmt: skip
    with_psnr = [r for r in done if r.get("val_psnr_y") is not None]
    if "loss.gamma" in space_keys and with_psnr:
        bicubic = [r["bicubic_psnr_y"] for r in with_psnr if r.get("bicubic_psnr_y") is not None]
        gamma_plot = plot_metric_by_param(
            with_psnr, sweep_dir / GAMMA_PLOT, param="loss.gamma", metric="val_psnr_y",
            reference=sum(bicubic) / len(bicubic) if bicubic else None,
            reference_label="bicubic", title="PSNR (Y) by gamma",
        )  # fmt: skip
    return pareto_plot, gamma_plot


def write_results(
    cfg: TuneJobConfig, rows: Sequence[Row], space_keys: Sequence[str],
    pareto_metrics: tuple[str, str], sweep_dir: Path,
) -> SweepFiles:  # fmt: skip
    """The table, the plots and (when a finished trial reports the objective) the best config,
    under their fixed names in ``sweep_dir``."""
    table = write_table(rows, sweep_dir / TABLE_FILE)
    pareto_plot, gamma_plot = write_plots(rows, space_keys, pareto_metrics, sweep_dir)
    best = best_row(rows)
    best_config = None
    if best is not None:
        best_config = write_best_config(cfg, best, space_keys, sweep_dir / BEST_FILE)
    return SweepFiles(table, pareto_plot, gamma_plot, best_config)
