"""One trial of a sweep: the Tune function trainable that runs ``nie train enhancer`` with the
sampled params, in a Tune trial process of its own.

Tune pickles :func:`run_trial` by reference, as ``ray_jobs.tune.trial.run_trial``, and imports
it in the trial's process; ``sweep`` (given with ``tune.with_parameters``) is a plain dict of
what every trial shares.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nie_core.config import config_from_dict
from nie_core.models.zoo import ZOO_PREFIX, is_zoo_tag

from ..config import EnhancerJobConfig
from ..fault_injection import Faults, trial_faults
from .space import with_params
from .stopping import STOP_MARKER, ObjectiveReportCallback, name_of_trial

PATH_KEYS = ("data.root", "data.valid_root", "data.cache_dir", "model.weights",
             "loss.nima_checkpoint")  # fmt: skip


def trial_job(sweep: Mapping[str, Any], params: Mapping[str, Any], trial_name: str) -> dict:
    """The enhancer job of one trial, as a config dict: the base job, the sampled ``params``,
    absolute paths, and the run/tracking settings of a nested, unregistered trial run."""
    job = with_params(sweep["job"], params)
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

    from ..enhancer import train_enhancer

    name = name_of_trial(tune.get_context().get_trial_id())
    job = trial_job(sweep, params, name)
    slots = Path(sweep["sweep_dir"]) / "injected_failures"
    faults = trial_faults(Faults.from_dict(sweep["faults"]), slots, name)
    if faults.fail_after_step is not None:
        job["run"]["max_failures"] = 0  # the crash reaches Tune, which retries the trial
    cfg = config_from_dict(EnhancerJobConfig, job)
    stop_marker = Path(sweep["train_dir"]) / name / STOP_MARKER
    decisions = sweep["decisions_dir"]
    callback = ObjectiveReportCallback(
        sweep["weights"],
        decisions_dir=None if decisions is None else str(Path(decisions) / name),
        stop_marker=str(stop_marker),
    )
    try:
        train_enhancer(cfg, callbacks=[callback], faults=faults)
    except Exception:
        if not stop_marker.exists():
            raise
        # Stopped early by ASHA: the aborted Train run is the expected end of this trial.
