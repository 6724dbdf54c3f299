"""The sweep driver: builds (or restores) the Tuner, runs every trial under the sweep's MLflow
parent run, and records the outcome there; also the ``nie tune`` command's handler."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nie_tracking as tracking
from nie_core.config import config_to_dict, load_config

from ..config import TuneJobConfig
from ..fault_injection import NO_FAULTS, Faults
from .checks import check, check_same_sweep, resolve
from .objectives import OBJECTIVE_KEY, describe_objective, objective_metric, objective_weights
from .results import TABLE_METRICS, SweepFiles, best_row, collect_rows, write_results
from .space import Space, tune_domain
from .stopping import CooperativeASHA, name_of_trial
from .trial import run_trial

TRIAL_MEMORY = 256 * 2**20  # bytes reserved for a trial driver actor that takes no CPU


@dataclass(frozen=True)
class TuneResult:
    """What a sweep leaves behind (files in ``sweep_dir``, also artifacts of the parent run)."""

    name: str
    sweep_dir: str
    mlflow_run_id: str  # the parent run
    tracking_uri: str
    rows: list[dict[str, Any]]  # the results table, one row per trial
    front: list[str]  # trials on the Pareto front of pareto_objectives (finished trials only)
    best_trial: str | None  # the finished trial with the largest objective
    best_config: str | None  # its job as a YAML file for `nie train enhancer --config`
    table: str
    pareto_plot: str | None
    gamma_plot: str | None
    errored: list[str]  # trials that failed; rerun the same command to resume them
    resumed: bool  # whether this call resumed an earlier attempt


def _trial_dirname(trial: Any) -> str:
    return name_of_trial(trial.trial_id)


def _tuner(cfg: TuneJobConfig, space: Space, sweep: dict, path: Path):
    """A new ``Tuner`` for the sweep, or the restored one when ``path`` holds an earlier attempt."""
    from ray import tune

    # Ray places an actor only against some resource: a trial driver without CPUs (it mostly
    # waits on its Train workers) reserves the memory it holds instead.
    resources = {"CPU": cfg.trial_cpus} if cfg.trial_cpus > 0 else {"memory": TRIAL_MEMORY}
    trainable = tune.with_resources(tune.with_parameters(run_trial, sweep=sweep), resources)
    if tune.Tuner.can_restore(str(path)):
        return tune.Tuner.restore(str(path), trainable=trainable, resume_errored=True), True

    common = dict(
        num_samples=cfg.num_samples,
        max_concurrent_trials=cfg.max_concurrent_trials,
        trial_name_creator=_trial_dirname,
        trial_dirname_creator=_trial_dirname,
    )
    if cfg.strategy == "asha":
        scheduler = CooperativeASHA(
            sweep["decisions_dir"],
            time_attr="epoch",
            max_t=cfg.job.run.epochs,
            grace_period=cfg.asha_grace_epochs,
            reduction_factor=cfg.asha_reduction_factor,
        )
        tune_config = tune.TuneConfig(
            metric=OBJECTIVE_KEY, mode="max", scheduler=scheduler, **common
        )
    elif cfg.strategy == "pareto":
        from ray.tune.search.optuna import OptunaSearch

        metrics = [objective_metric(name) for name in cfg.pareto_objectives]
        search = OptunaSearch(metric=metrics, mode=["max", "max"], seed=cfg.seed)
        tune_config = tune.TuneConfig(search_alg=search, **common)
    else:
        tune_config = tune.TuneConfig(**common)
    run_config = tune.RunConfig(
        name=cfg.name,
        storage_path=str(path.parent),
        failure_config=tune.FailureConfig(max_failures=0),
        verbose=1,
    )
    param_space = {key: tune_domain(kind, values) for key, (kind, values) in space.items()}
    return tune.Tuner(
        trainable, param_space=param_space, tune_config=tune_config, run_config=run_config
    ), False


def _close_stopped_runs(uri: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """Trial runs that ASHA stopped were cut off mid-run: mark them KILLED (not RUNNING)."""
    c = tracking.client(uri)
    for row in rows:
        run_id = row["mlflow_run_id"]
        if row["status"] != "STOPPED" or run_id is None:
            continue
        if c.get_run(run_id).info.status != "KILLED":
            c.set_tag(run_id, "nie.stopped_early", "true")
            tracking.finish_run(uri, run_id, status="KILLED")


def _log_outcome(
    uri: str, parent: str, rows: Sequence[Mapping[str, Any]], best: Mapping[str, Any] | None,
    files: SweepFiles, errored: Sequence[str],
) -> None:  # fmt: skip
    """The sweep's files as artifacts, its counts and best metrics, and its end, on the parent
    run (FAILED when a trial errored)."""
    c = tracking.client(uri)
    for path in files:
        if path is not None:
            c.log_artifact(parent, str(path))
    counts = {s: sum(r["status"] == s for r in rows) for s in ("FINISHED", "STOPPED", "ERROR")}
    summary = {f"trials_{s.lower()}": n for s, n in counts.items()}
    summary["pareto_front_size"] = sum(bool(r["on_front"]) for r in rows)
    if best is not None:
        summary["best_objective"] = best[OBJECTIVE_KEY]
        summary.update({f"best_{m}": best[m] for m in TABLE_METRICS if best.get(m) is not None})
        c.set_tag(parent, "nie.best_trial", best["trial"])
    tracking.log_metrics(uri, parent, summary, step=0)
    tracking.finish_run(uri, parent, status="FAILED" if errored else "FINISHED")


def _str_or_none(path: Path | None) -> str | None:
    return None if path is None else str(path)


def run_tune(cfg: TuneJobConfig, *, faults: Faults = NO_FAULTS) -> TuneResult:
    """Run (or resume) a sweep; see :mod:`ray_jobs.tune`.

    Checks the space, the objectives and the job before starting any trial. Returns when every
    trial has ended; trials that failed are listed in ``TuneResult.errored`` (rerunning the same
    config resumes them). Raises ``ValueError`` when no trial reports the objective.
    ``faults``: NIE's tests only (crash the first trials once).
    """
    from ..driver import ensure_ray

    cfg = resolve(cfg)
    space = check(cfg)
    weights = objective_weights(cfg.objective)
    pareto_metrics = tuple(objective_metric(n) for n in cfg.pareto_objectives)
    sweep_dir = Path(cfg.storage_path).resolve() / cfg.name
    train_dir = sweep_dir / "train"
    check_same_sweep(sweep_dir, cfg)

    uri = tracking.resolve_tracking_uri(cfg.job.tracking.tracking_uri)
    parent = tracking.start_or_resume_run(
        uri, cfg.experiment, cfg.name, config_to_dict(cfg), sweep_dir / "mlflow_run_id",
        tags={"nie.job": "tune", "nie.strategy": cfg.strategy},
    )  # fmt: skip
    print(f"[nie] sweep {cfg.name!r}: MLflow parent run {parent} at {uri}", file=sys.stderr)
    sweep = {
        "job": config_to_dict(cfg.job),
        "cwd": os.getcwd(),
        "sweep_dir": str(sweep_dir),
        "train_dir": str(train_dir),
        "tracking_uri": uri,
        "experiment": cfg.experiment,
        "parent_run_id": parent,
        "weights": weights,
        "faults": faults.to_dict(),
        "decisions_dir": str(sweep_dir / "asha_decisions") if cfg.strategy == "asha" else None,
    }
    try:
        ensure_ray()
        tuner, resumed = _tuner(cfg, space, sweep, sweep_dir)
        if resumed:
            print(f"[nie] resuming sweep {cfg.name!r} from {sweep_dir}", file=sys.stderr)
        results = tuner.fit()
        rows = collect_rows(
            results, list(space), weights, pareto_metrics, cfg.job.run.epochs, train_dir
        )
    except BaseException:
        tracking.finish_run(uri, parent, status="FAILED")
        raise
    _close_stopped_runs(uri, rows)
    files = write_results(cfg, rows, list(space), pareto_metrics, sweep_dir)
    best = best_row(rows)
    errored = [r["trial"] for r in rows if r["status"] == "ERROR"]
    _log_outcome(uri, parent, rows, best, files, errored)
    if best is None and not errored:
        raise ValueError(
            f"no finished trial reported the objective {describe_objective(weights)}; "
            f"see {files.table}"
        )
    return TuneResult(
        name=cfg.name,
        sweep_dir=str(sweep_dir),
        mlflow_run_id=parent,
        tracking_uri=uri,
        rows=rows,
        front=[r["trial"] for r in rows if r["on_front"]],
        best_trial=None if best is None else best["trial"],
        best_config=_str_or_none(files.best_config),
        table=str(files.table),
        pareto_plot=_str_or_none(files.pareto_plot),
        gamma_plot=_str_or_none(files.gamma_plot),
        errored=errored,
        resumed=resumed,
    )


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie tune``: prints the summary as JSON; exit status 1 if trials failed."""
    result = run_tune(load_config(TuneJobConfig, args.config, args.overrides))
    summary = {k: v for k, v in result.__dict__.items() if k != "rows"}
    print(json.dumps(summary, indent=1, default=str))
    print(f"[nie] results table: {result.table}", file=sys.stderr)
    if result.best_config:
        print(f"[nie] train the best: nie train enhancer --config {result.best_config}",
              file=sys.stderr)  # fmt: skip
    if result.errored:
        print(
            f"[nie] {len(result.errored)} trial(s) failed ({', '.join(result.errored)}); rerun "
            "the same command to resume them",
            file=sys.stderr,
        )
        return 1
    return 0
