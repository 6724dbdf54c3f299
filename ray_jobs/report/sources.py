"""What the output assessment runs on: the chosen runs' models, a NIMA scorer and the runs'
validation images.

A run's model comes from its best checkpoint (``runs/NAME/best``) when that is on this machine,
else from the model version the run registered; loading itself is ``nie_tracking.loading``'s.
The NIMA scorer is the one the hybrid run was trained with, else the newest NIMA run's model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

import nie_tracking as tracking
from nie_core.checkpoint import CHECKPOINT_FILENAME
from nie_tracking.loading import (
    ModelUnavailableError,
    load_enhancer,
    load_scorer,
    registered_run_model,
)

from .store import EnhancerRun, param_value

__all__ = ["load_report_scorer", "load_run_model", "run_model_source", "validation_set"]


def _best_checkpoint_dir(params: Mapping[str, str]) -> Path | None:
    """``run.storage_path/run.name/best`` of a job's flattened config, if it holds a checkpoint."""
    storage, name = params.get("run.storage_path"), params.get("run.name")
    if not storage or not name:
        return None
    best = Path(storage).resolve() / name / "best"
    return best if (best / CHECKPOINT_FILENAME).is_file() else None


def run_model_source(uri: str, run_id: str, params: Mapping[str, str]) -> str:
    """The model source (``nie_tracking.loading``) of a run: its best checkpoint if it is on this
    machine, else the newest model version the run registered. ``ValueError`` when neither
    exists."""
    best = _best_checkpoint_dir(params)
    if best is not None:
        return str(best)
    try:
        return registered_run_model(run_id, uri)
    except ModelUnavailableError as error:
        raise ValueError(
            f"run {run_id} has neither a best checkpoint on this machine nor a registered model"
        ) from error


def load_run_model(uri: str, run_id: str, params: Mapping[str, str]) -> nn.Module:
    """An enhancer run's model in eval mode on the CPU (see :func:`run_model_source`).
    ``ValueError`` when the run left none."""
    return load_enhancer(run_model_source(uri, run_id, params), tracking_uri=uri).module


def load_report_scorer(uri: str, runs: Sequence[EnhancerRun]) -> tuple[nn.Module | None, str]:
    """The NIMA scorer of the output assessment and where it came from: the checkpoint a run
    was trained with (``loss.nima_checkpoint``), else the newest finished NIMA run's model."""
    from nie_core.models.nima import freeze_scorer
    from nie_core.models.zoo import ZOO_PREFIX

    for run in runs:
        path = param_value(run.params.get("loss.nima_checkpoint"))
        if isinstance(path, str) and (path.startswith(ZOO_PREFIX) or Path(path).exists()):
            return freeze_scorer(load_scorer(path, tracking_uri=uri).module), path
    client = tracking.client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    nima_runs = client.search_runs(
        experiments, filter_string="tags.`nie.job` = 'nima' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5,
    )  # fmt: skip
    for nima in nima_runs:
        try:
            source = run_model_source(uri, nima.info.run_id, nima.data.params)
        except ValueError:
            continue
        model = load_scorer(source, tracking_uri=uri).module
        return freeze_scorer(model), f"NIMA run {nima.info.run_name}"
    return None, "none"


def validation_set(run: EnhancerRun, scale: int) -> Any:
    """The run's validation images at ``scale``, built as the enhancer job builds them."""
    from nie_core.config import load_config
    from ray_jobs.config import EnhancerJobConfig
    from ray_jobs.enhancer import valid_dataset

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
