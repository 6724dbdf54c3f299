"""The enhancer runs of an MLflow store, and which of them each part of the report shows.

Everything the report reads from MLflow is read here: the runs with their params and latest
metrics (:func:`enhancer_runs`) and per-epoch metric histories (:func:`training_curve`). The
selections are pure functions of the runs: the newest attempts (:func:`latest_runs`), the rows of
the PSNR-by-gamma figure (:func:`gamma_rows`) and the pair of the output assessment
(:func:`pick_comparison`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import nie_tracking as tracking

__all__ = [
    "EnhancerRun",
    "TrainingCurve",
    "enhancer_runs",
    "finished_runs",
    "gamma_rows",
    "latest_runs",
    "param_value",
    "pick_comparison",
    "training_curve",
]


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
        value = param_value(self.params.get("model.scales", "[2]"))
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


def param_value(text: str | None) -> Any:
    """A param logged as ``str(value)`` back as a value (``"None"`` -> None, ``"[2]"`` -> [2])."""
    import yaml

    if text is None or text == "None":
        return None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


# --------------------------------------------------------------------------- reading the store


def enhancer_runs(uri: str) -> list[EnhancerRun]:
    """Every enhancer run in the store (any experiment), oldest first.

    Raises ``ValueError`` when ``uri`` is a local SQLite store that does not exist (asking MLflow
    would create an empty one).
    """
    if tracking.missing_sqlite_store(uri) is not None:
        raise ValueError(
            f"no MLflow store at {uri!r}: train something first (nie demo, nie train ...) or "
            "pass --tracking-uri"
        )
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


# --------------------------------------------------------------------------- choosing runs


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


def finished_runs(runs: Sequence[EnhancerRun], task: str) -> list[EnhancerRun]:
    """The runs of ``task`` that finished, in their order."""
    return [r for r in runs if r.status == "FINISHED" and r.task == task]


def gamma_rows(runs: Sequence[EnhancerRun], task: str) -> list[dict[str, Any]]:
    """One row per finished run of ``task`` with a final PSNR: series (the sweep, or "single
    runs", per model), gamma, PSNR, NIMA, epochs and run name."""
    rows = []
    for run in finished_runs(runs, task):
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


def pick_comparison(
    runs: Sequence[EnhancerRun], task: str
) -> tuple[EnhancerRun | None, EnhancerRun | None]:
    """The (baseline, hybrid) pair of the output assessment: finished, non-sweep runs of
    ``task`` of one model and scale set, the newest with gamma = 0 and the newest with
    gamma > 0. Prefers a group holding both, then EDSR over MDSR, then the newest group."""
    groups: dict[tuple[str, tuple[int, ...]], list[EnhancerRun]] = {}
    for run in finished_runs(runs, task):
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
