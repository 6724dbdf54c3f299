"""``nie tune``: Ray Tune sweeps of the enhancer job over gamma, the learning rate and more.

The report picked the hybrid loss's gamma by hand from a small grid. Here the search is a job:

- ``strategy: asha``: one objective (``psnr``, ``nima`` or a weighted sum of metrics), with
  ASHA early stopping on the epochs (Li et al. 2020, "A System for Massively Parallel
  Hyperparameter Tuning").
- ``strategy: pareto``: two objectives, both maximised, with Optuna's multi-objective sampler;
  the sweep's answer is the Pareto front of fidelity (PSNR) against aesthetics (NIMA).
- ``strategy: grid``: every ``{grid: [...]}`` combination, e.g. the report's PSNR-by-gamma figure.

Each trial is a whole ``nie train enhancer`` run (Ray Train V2 ``TorchTrainer.fit()`` inside a
Tune function trainable, metrics passed to Tune by ``TuneReportCallback``), so a trial can be a
multi-worker DDP run. Trials log to their own MLflow runs nested under the sweep's parent run
and register no model. The parent run gets the results table, the Pareto plot, the
PSNR-by-gamma plot and the best config, a YAML file ``nie train enhancer --config`` accepts.

The sweep lives in ``storage_path/name``; rerunning the same command resumes it (Tune restores
the experiment, finished trials are kept, errored and unfinished ones go on from their latest
Ray Train checkpoint).
"""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import ray
import yaml
from ray.tune.integration.ray_train import TuneReportCallback
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

import nie_tracking as tracking
from nie_core.config import ConfigError, config_from_dict, config_to_dict, load_config
from nie_core.models.zoo import ZOO_PREFIX, is_zoo_tag

from .config import EnhancerJobConfig, TuneJobConfig
from .fault_injection import NO_FAULTS, Faults, trial_faults
from .pareto import pareto_mask, weighted_sum

DEFAULT_SPACE: dict[str, dict[str, list]] = {
    "loss.gamma": {"uniform": [0.0, 1.0]},  # report: 0.4 (SR) and 0.1 (deblurring) lie inside
    "optim.lr": {"loguniform": [1e-5, 1e-3]},  # around EDSR's 1e-4
}
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice", "grid")
OBJECTIVE_METRICS = {
    "psnr": "val_psnr_y",
    "nima": "val_nima_mean",
    "ssim": "val_ssim_y",
    "psnr_rgb": "val_psnr_rgb",
}
TABLE_METRICS = (
    "val_psnr_y", "val_nima_mean", "val_ssim_y", "val_psnr_rgb", "bicubic_psnr_y",
    "bicubic_nima_mean", "train_loss",
)  # fmt: skip
OBJECTIVE_KEY = "objective"  # the weighted objective, added to every report of a trial
PATH_KEYS = ("data.root", "data.valid_root", "data.cache_dir", "model.weights",
             "loss.nima_checkpoint")  # fmt: skip

STOP_MARKER = "stopped_early"  # in a trial's run folder once ASHA stopped it
DECISION_TIMEOUT_S = 120.0  # how long a trial waits for ASHA's decision on a report
TRIAL_MEMORY = 256 * 2**20  # bytes reserved for a trial driver actor that takes no CPU
SWEEP_FILE = "nie_sweep.yaml"  # the resolved sweep config, compared on resume
TABLE_FILE = "results.csv"
PARETO_PLOT = "pareto.png"
GAMMA_PLOT = "psnr_by_gamma.png"
BEST_FILE = "best_config.yaml"


# --------------------------------------------------------------------------- the search space


def _flatten_space(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optim": {"lr": {...}}}`` -> ``{"optim.lr": {...}}``. Leaves: ``None``, non-mappings,
    and distribution-shaped mappings (one key, a list value). Later entries win."""
    flat: dict[str, Any] = {}
    for key, value in space.items():
        name = f"{prefix}{key}"
        is_leaf = not isinstance(value, Mapping) or (
            len(value) == 1 and isinstance(next(iter(value.values())), list | tuple)
        )
        if is_leaf:
            flat[name] = value
        else:
            flat.update(_flatten_space(value, name + "."))
    return flat


def _check_distribution(key: str, spec: Any) -> tuple[str, list]:
    """``(kind, values)`` of one space entry; raises ``ValueError`` naming the key."""
    shapes = ", ".join(f"{{{k}: [...]}}" for k in DISTRIBUTIONS)
    if not isinstance(spec, Mapping) or len(spec) != 1:
        raise ValueError(
            f"search space key {key!r}: expected one of {shapes}, got {spec!r} "
            "(fixed values belong under job:)"
        )
    ((kind, values),) = spec.items()
    if kind not in DISTRIBUTIONS:
        raise ValueError(
            f"search space key {key!r}: unknown distribution {kind!r}; known: {list(DISTRIBUTIONS)}"
        )
    if not isinstance(values, list | tuple) or not values:
        raise ValueError(f"search space key {key!r}: {kind} needs a non-empty list, got {values!r}")
    values = list(values)
    if kind in ("uniform", "loguniform", "randint"):
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if len(values) != 2 or not numeric:
            raise ValueError(f"search space key {key!r}: {kind} needs [low, high], got {values}")
        low, high = values
        if kind == "randint" and not all(isinstance(v, int) for v in values):
            raise ValueError(f"search space key {key!r}: randint needs integers, got {values}")
        if low > high or (kind != "randint" and low == high):
            raise ValueError(f"search space key {key!r}: {kind} needs low < high, got {values}")
        if kind == "loguniform" and low <= 0:
            raise ValueError(f"search space key {key!r}: loguniform needs low > 0, got {values}")
    return kind, values


def search_space(cfg: TuneJobConfig) -> dict[str, tuple[str, list]]:
    """The sweep's space as ``{dotted key: (distribution, values)}``: the default gamma/lr space
    updated with ``cfg.space`` (``None`` removes a key).

    Raises ``ValueError`` for a malformed distribution or an empty space.
    """
    merged: dict[str, Any] = dict(DEFAULT_SPACE)
    for key, spec in _flatten_space(cfg.space).items():
        if spec is None:
            merged.pop(key, None)
        else:
            merged[key] = spec
    if not merged:
        raise ValueError(
            "empty search space: every key was removed (space: "
            f"{dict(cfg.space)!r}); name at least one key to sample, e.g. "
            "space.loss.gamma='{uniform: [0, 1]}'"
        )
    return {key: _check_distribution(key, spec) for key, spec in merged.items()}


def _probe_values(kind: str, values: list) -> list:
    """Values a distribution can produce that are worth type-checking (its ends, its options)."""
    if kind in ("uniform", "loguniform"):
        return [float(values[0]), float(values[1])]
    return list(values)


def set_dotted(tree: dict[str, Any], key: str, value: Any) -> None:
    """``set_dotted(d, "loss.gamma", 0.4)`` sets ``d["loss"]["gamma"]`` (sections created)."""
    parts = key.split(".")
    node = tree
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ValueError(f"{'.'.join(parts[: depth + 1])!r} is {child!r}, not a section")
        node = child
    node[parts[-1]] = value


def check_space_keys(space: Mapping[str, tuple[str, list]], job: EnhancerJobConfig) -> None:
    """Every key must be a field of ``EnhancerJobConfig`` that the sweep does not own, and every
    value the distribution can produce must fit the field's type; raises ``ValueError``."""
    base = config_to_dict(job)
    for key, (kind, values) in space.items():
        if key in ("run.name", "run.storage_path") or key.split(".")[0] == "tracking":
            raise ValueError(f"search space key {key!r} is set by the sweep itself")
        for value in _probe_values(kind, values):
            probe = copy.deepcopy(base)
            try:
                set_dotted(probe, key, value)
                config_from_dict(EnhancerJobConfig, probe)
            except (ConfigError, ValueError) as error:
                raise ValueError(f"search space key {key!r} ({kind} {values}): {error}") from None


def _tune_domain(kind: str, values: list) -> Any:
    from ray import tune

    if kind == "uniform":
        return tune.uniform(float(values[0]), float(values[1]))
    if kind == "loguniform":
        return tune.loguniform(float(values[0]), float(values[1]))
    if kind == "randint":
        return tune.randint(values[0], values[1] + 1)  # Tune's upper bound is exclusive
    if kind == "choice":
        return tune.choice(values)
    return tune.grid_search(values)


# --------------------------------------------------------------------------- objectives


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


def _describe_objective(weights: Mapping[str, float]) -> str:
    return " + ".join(f"{w:g}*{m}" if w != 1 else m for m, w in weights.items())


# --------------------------------------------------------------------------- config checks


def resolve(cfg: TuneJobConfig) -> TuneJobConfig:
    """Fill in the derived defaults: the sweep name and the number of samples (8, or one pass
    over the grid when the space has grid values). Raises ``ValueError`` for a bad space."""
    name = cfg.name
    if not name:
        scales = "".join(str(s) for s in cfg.job.model.scales)
        name = f"tune-{cfg.strategy}-{cfg.job.model.name}-x{scales}-{cfg.job.data.task}"
    samples = cfg.num_samples
    if samples is None:  # grid values define the trials themselves: one pass over the grid
        has_grid = any(kind == "grid" for kind, _ in search_space(cfg).values())
        samples = 1 if has_grid else 8
    return replace(cfg, name=name, num_samples=samples)


def _scorer_configured(job: EnhancerJobConfig) -> bool:
    return job.loss.nima_checkpoint is not None or job.loss.allow_untrained_nima


def check(cfg: TuneJobConfig) -> dict[str, tuple[str, list]]:
    """Everything that can be checked before a trial starts; returns the search space.

    Raises ``ValueError`` for an empty space, unknown or mistyped keys, unknown objectives,
    objectives no trial would report (NIMA without a scorer), and bad sweep settings.
    """
    from .enhancer import check as check_job

    space = search_space(cfg)
    check_space_keys(space, cfg.job)
    if cfg.strategy == "grid":
        random_keys = [k for k, (kind, _) in space.items() if kind != "grid"]
        if random_keys:
            raise ValueError(
                f"strategy 'grid' needs {{grid: [...]}} for every space key; {random_keys} are "
                "sampled at random (give them grid values, or drop them with KEY: null)"
            )
    if cfg.strategy == "pareto":
        grid_keys = [k for k, (kind, _) in space.items() if kind == "grid"]
        if grid_keys:
            raise ValueError(
                f"strategy 'pareto' samples with Optuna, which takes no grid values: {grid_keys}; "
                "use {choice: [...]} instead"
            )
        if len(set(map(objective_metric, cfg.pareto_objectives))) != 2:
            raise ValueError(
                f"pareto_objectives must name two different metrics, got {cfg.pareto_objectives}"
            )
    needed = set(objective_weights(cfg.objective))
    if cfg.strategy == "pareto":
        needed |= {objective_metric(name) for name in cfg.pareto_objectives}
    if "val_nima_mean" in needed and not _scorer_configured(cfg.job):
        raise ValueError(
            "objective 'nima' (val_nima_mean) is reported by no trial: the job has no NIMA "
            "scorer; set job.loss.nima_checkpoint (or job.loss.allow_untrained_nima=true)"
        )
    for name, value, low in (
        ("num_samples", cfg.num_samples, 1),
        ("max_concurrent_trials", cfg.max_concurrent_trials, 1),
        ("asha_grace_epochs", cfg.asha_grace_epochs, 1),
        ("asha_reduction_factor", cfg.asha_reduction_factor, 2),
    ):
        if value is not None and value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if cfg.trial_cpus < 0:
        raise ValueError(f"trial_cpus must be >= 0, got {cfg.trial_cpus}")
    if cfg.strategy == "asha" and cfg.asha_grace_epochs > cfg.job.run.epochs:
        raise ValueError(
            f"asha_grace_epochs ({cfg.asha_grace_epochs}) exceeds job.run.epochs "
            f"({cfg.job.run.epochs})"
        )
    # The data, the scorer and the gamma/scorer pairing, at the far end of every distribution.
    probe = config_to_dict(cfg.job)
    far_end = {k: max(_probe_values(kind, v), key=_sort_key) for k, (kind, v) in space.items()}
    for key, value in far_end.items():
        set_dotted(probe, key, value)
    try:
        check_job(config_from_dict(EnhancerJobConfig, probe))
    except ValueError as error:
        shown = ", ".join(f"{k}={v}" for k, v in far_end.items())
        raise ValueError(f"a trial with {shown} would fail: {error}") from None
    return space


def _sort_key(value: Any) -> tuple[int, Any]:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (1, value)
    return (0, str(value))


def _check_same_sweep(sweep_dir: Path, cfg: TuneJobConfig) -> None:
    """A rerun must ask for the same sweep: Tune cannot change a sweep's space on resume."""
    stored_file = sweep_dir / SWEEP_FILE
    current = config_to_dict(cfg)
    if not stored_file.exists():
        sweep_dir.mkdir(parents=True, exist_ok=True)
        stored_file.write_text(yaml.safe_dump(current, sort_keys=False), encoding="utf-8")
        return
    stored = yaml.safe_load(stored_file.read_text(encoding="utf-8")) or {}
    try:  # in today's form (keys an older version saved, and has since removed, drop out)
        stored = config_to_dict(config_from_dict(TuneJobConfig, stored))
    except ConfigError:
        pass  # compared as written: the difference names the keys
    old, new = tracking.flatten(stored), tracking.flatten(current)
    changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise ValueError(
            f"sweep {cfg.name!r} in {str(sweep_dir)!r} was started with other settings "
            f"(changed: {', '.join(changed)}); rerun it unchanged to resume, or give the sweep a new name"
        )


# --------------------------------------------------------------------------- the trial


class ObjectiveReportCallback(TuneReportCallback):
    """Ray Train callback of a trial: passes every report to Tune with the weighted objective
    added, and carries out ASHA's stop decisions itself (see :class:`CooperativeASHA`).

    Runs in the trial's Train controller; must be created inside the Tune trial.
    """

    def __init__(
        self, weights: Mapping[str, float], decisions_dir: str | None, stop_marker: str
    ) -> None:
        super().__init__()
        self.weights = dict(weights)
        self.decisions_dir = decisions_dir
        self.stop_marker = stop_marker
        self.stopping = False

    def after_report(self, run_context: Any, metrics: list[dict], checkpoint: Any) -> None:
        if self.stopping:  # an epoch that ended while the abort was on its way: not for Tune
            return
        first = dict(metrics[0])
        value = weighted_sum(first, self.weights)
        if value is not None:
            first[OBJECTIVE_KEY] = value
        super().after_report(run_context, [first, *metrics[1:]], checkpoint)
        if self.decisions_dir is None or first.get("epoch") is None:
            return
        decision = _wait_for_decision(Path(self.decisions_dir) / f"epoch_{int(first['epoch'])}")
        if decision == "stop":
            self.stopping = True
            Path(self.stop_marker).write_text(str(first["epoch"]), encoding="utf-8")
            # The controller's own graceful abort (what Ctrl-C does to `nie train`): it shuts
            # the workers down and frees their placement group, then ends the controller.
            ray.get_runtime_context().current_actor.abort.remote()


def _wait_for_decision(path: Path, timeout_s: float = DECISION_TIMEOUT_S) -> str:
    """The scheduler's decision for one report, or "continue" if none comes in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text(encoding="utf-8").strip()
        time.sleep(0.1)
    return "continue"


class CooperativeASHA(ASHAScheduler):
    """ASHA (Li et al. 2020) whose stop decisions the trials carry out themselves.

    Tune stops a trial by ending its actor, which leaves the trial's Ray Train worker group and
    placement group behind when Ray's state API is out of reach (a local Ray without dashboard,
    several Ray instances on one machine): the CPUs stay taken and later trials wait forever.
    So each decision is written to ``decisions_dir/trial_<id>/epoch_<n>`` and Tune is told to
    continue; the trial's :class:`ObjectiveReportCallback` waits for the decision and, on
    "stop", aborts its own Train run gracefully, so the trial ends on its own.
    """

    def __init__(self, decisions_dir: str, max_t: int, **asha_kwargs: Any) -> None:
        super().__init__(max_t=max_t, stop_last_trials=False, **asha_kwargs)
        self.decisions_dir = decisions_dir
        self.last_epoch = max_t

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        decision = super().on_trial_result(tune_controller, trial, result)
        epoch = result.get("epoch")
        if epoch is not None:
            folder = Path(self.decisions_dir) / f"trial_{trial.trial_id}"
            folder.mkdir(parents=True, exist_ok=True)
            # A trial at its last epoch has finished: ASHA's top rung only ranks it.
            stop = decision == TrialScheduler.STOP and epoch < self.last_epoch
            text = "stop" if stop else "continue"
            tmp = folder / f".epoch_{int(epoch)}.tmp"
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, folder / f"epoch_{int(epoch)}")
        return TrialScheduler.CONTINUE


def trial_job(sweep: Mapping[str, Any], params: Mapping[str, Any], trial_name: str) -> dict:
    """The enhancer job of one trial, as a config dict: the base job, the sampled ``params``,
    absolute paths, and the run/tracking settings of a nested, unregistered trial run."""
    job = copy.deepcopy(sweep["job"])
    for key, value in params.items():
        set_dotted(job, key, value)
    base_dir = Path(sweep["cwd"])
    for key in PATH_KEYS:
        section, name = key.split(".")
        value = job[section].get(name)
        shipped = is_zoo_tag(value) or str(value).startswith(ZOO_PREFIX)  # not files
        if value is not None and not shipped and not Path(value).is_absolute():
            job[section][name] = str(base_dir / value)
    job["run"].update(name=trial_name, storage_path=sweep["train_dir"])
    job["tracking"].update(
        tracking_uri=sweep["tracking_uri"],
        experiment=sweep["experiment"],
        parent_run_id=sweep["parent_run_id"],
        register=False,
    )
    return job


def run_trial(params: dict, sweep: dict) -> None:
    """The Tune function trainable: one ``nie train enhancer`` run with the sampled ``params``.

    Rerun after an error or an interrupted sweep, it resumes its Ray Train run and its MLflow
    run (both are found by the trial's name).
    """
    from ray import tune

    from .enhancer import train_enhancer

    trial_name = f"trial_{tune.get_context().get_trial_id()}"
    job = trial_job(sweep, params, trial_name)
    slots = Path(sweep["sweep_dir"]) / "injected_failures"
    faults = trial_faults(Faults.from_dict(sweep["faults"]), slots, trial_name)
    if faults.fail_after_step is not None:
        job["run"]["max_failures"] = 0  # the crash reaches Tune, which retries the trial
    cfg = config_from_dict(EnhancerJobConfig, job)
    run_folder = Path(sweep["train_dir"]) / trial_name
    stop_marker = run_folder / STOP_MARKER
    decisions = sweep["decisions_dir"]
    callback = ObjectiveReportCallback(
        sweep["weights"],
        decisions_dir=None if decisions is None else str(Path(decisions) / trial_name),
        stop_marker=str(stop_marker),
    )
    try:
        train_enhancer(cfg, callbacks=[callback], faults=faults)
    except Exception:
        if not stop_marker.exists():
            raise
        # Stopped early by ASHA: the aborted Train run is the expected end of this trial.


def _trial_dirname(trial: Any) -> str:
    return f"trial_{trial.trial_id}"


# --------------------------------------------------------------------------- the driver


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
    finished = [r for r in rows if r["status"] == "FINISHED"]
    mask = pareto_mask([tuple(r.get(m) for m in pareto_metrics) for r in finished])
    for row, on_front in zip(finished, mask, strict=True):
        row["on_front"] = on_front
    return rows


def best_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The finished row with the largest objective (None when no finished row reports it)."""
    candidates = [r for r in rows if r["status"] == "FINISHED" and r[OBJECTIVE_KEY] is not None]
    return max(candidates, key=lambda r: r[OBJECTIVE_KEY], default=None)


def write_table(rows: Sequence[Mapping[str, Any]], path: Path) -> Path:
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


def write_best_config(
    cfg: TuneJobConfig, row: Mapping[str, Any], space_keys: Sequence[str], path: Path
) -> Path:
    """The best trial's job as a YAML file that ``nie train enhancer --config`` accepts as is:
    the sweep's base job with the trial's params, under the run name ``<sweep>-best``."""
    job = config_to_dict(cfg.job)
    for key in space_keys:
        set_dotted(job, key, row[key])
    job["run"].update(name=f"{cfg.name}-best")
    job["tracking"]["parent_run_id"] = None
    best = config_from_dict(EnhancerJobConfig, job)  # checks that it loads back
    header = (
        f"# Best trial {row['trial']} of sweep {cfg.name!r} "
        f"(objective {_describe_objective(objective_weights(cfg.objective))} = "
        f"{row[OBJECTIVE_KEY]:.4f}).\n"
        f"# Train it: nie train enhancer --config {path.name}\n"
    )
    body = yaml.safe_dump(config_to_dict(best), sort_keys=False, default_flow_style=False)
    path.write_text(header + body, encoding="utf-8")
    return path


def _tuner(cfg: TuneJobConfig, space: Mapping[str, tuple[str, list]], sweep: dict, path: Path):
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
    param_space = {key: _tune_domain(kind, values) for key, (kind, values) in space.items()}
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


def _write_plots(
    rows: Sequence[Mapping[str, Any]], space_keys: Sequence[str], pareto_metrics: tuple[str, str],
    sweep_dir: Path,
) -> tuple[Path | None, Path | None]:  # fmt: skip
    from .plots import plot_metric_by_param, plot_pareto

    finished = [r for r in rows if r["status"] == "FINISHED"]
    shown = [r for r in rows if all(r.get(m) is not None for m in pareto_metrics)]
    pareto_plot = gamma_plot = None
    if shown:
        x, y = pareto_metrics
        pareto_plot = plot_pareto(
            shown, sweep_dir / PARETO_PLOT, x=x, y=y,
            color_by="loss.gamma" if "loss.gamma" in space_keys else None,
            front_by="on_front", label_by=None,
            title=f"{len(finished)} finished trials; ringed: Pareto front",
        )  # fmt: skip
    with_psnr = [r for r in finished if r.get("val_psnr_y") is not None]
    if "loss.gamma" in space_keys and with_psnr:
        bicubic = [r["bicubic_psnr_y"] for r in with_psnr if r.get("bicubic_psnr_y") is not None]
        gamma_plot = plot_metric_by_param(
            with_psnr, sweep_dir / GAMMA_PLOT, param="loss.gamma", metric="val_psnr_y",
            reference=sum(bicubic) / len(bicubic) if bicubic else None,
            reference_label="bicubic", title="PSNR (Y) by gamma",
        )  # fmt: skip
    return pareto_plot, gamma_plot


def run_tune(cfg: TuneJobConfig, *, faults: Faults = NO_FAULTS) -> TuneResult:
    """Run (or resume) a sweep; see the module docstring.

    Checks the space, the objectives and the job before starting any trial. Returns when every
    trial has ended; trials that failed are listed in ``TuneResult.errored`` (rerunning the same
    config resumes them). Raises ``ValueError`` when no trial reports the objective.
    ``faults``: NIE's tests only (crash the first trials once).
    """
    from .common import ensure_ray

    cfg = resolve(cfg)
    space = check(cfg)
    weights = objective_weights(cfg.objective)
    pareto_metrics = tuple(objective_metric(n) for n in cfg.pareto_objectives)
    sweep_dir = Path(cfg.storage_path).resolve() / cfg.name
    train_dir = sweep_dir / "train"
    _check_same_sweep(sweep_dir, cfg)

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
    table = write_table(rows, sweep_dir / TABLE_FILE)
    pareto_plot, gamma_plot = _write_plots(rows, list(space), pareto_metrics, sweep_dir)
    best = best_row(rows)
    best_config = None
    if best is not None:
        best_config = write_best_config(cfg, best, list(space), sweep_dir / BEST_FILE)

    c = tracking.client(uri)
    for path in (table, pareto_plot, gamma_plot, best_config):
        if path is not None:
            c.log_artifact(parent, str(path))
    errored = [r["trial"] for r in rows if r["status"] == "ERROR"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("FINISHED", "STOPPED", "ERROR")}
    summary = {f"trials_{s.lower()}": n for s, n in counts.items()}
    summary["pareto_front_size"] = sum(bool(r["on_front"]) for r in rows)
    if best is not None:
        summary["best_objective"] = best[OBJECTIVE_KEY]
        summary.update({f"best_{m}": best[m] for m in TABLE_METRICS if best.get(m) is not None})
        c.set_tag(parent, "nie.best_trial", best["trial"])
    tracking.log_metrics(uri, parent, summary, step=0)
    tracking.finish_run(uri, parent, status="FAILED" if errored else "FINISHED")
    if best is None and not errored:
        raise ValueError(
            f"no finished trial reported the objective {_describe_objective(weights)}; see {table}"
        )
    return TuneResult(
        name=cfg.name,
        sweep_dir=str(sweep_dir),
        mlflow_run_id=parent,
        tracking_uri=uri,
        rows=rows,
        front=[r["trial"] for r in rows if r["on_front"]],
        best_trial=None if best is None else best["trial"],
        best_config=None if best_config is None else str(best_config),
        table=str(table),
        pareto_plot=None if pareto_plot is None else str(pareto_plot),
        gamma_plot=None if gamma_plot is None else str(gamma_plot),
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
