"""On the driver: connect to Ray, fit a job on Ray Train DDP workers and keep what it leaves.

:func:`run_job` is one whole training job: open (or resume) its MLflow run, :func:`fit` the
worker loop, then export and register the best checkpoint (:mod:`ray_jobs.best`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .best import best_checkpoint, export_best
from .fault_injection import NO_FAULTS, Faults
from .worker import LoopConfig


def ensure_ray(num_cpus: int | None = None, include_dashboard: bool = False) -> None:
    """Connect to Ray: the cluster in ``$RAY_ADDRESS`` (``ray job submit`` sets it) if any,
    else an embedded local one (with its dashboard when ``include_dashboard``, as ``nie demo``
    asks). A no-op when this process is already connected."""
    import ray

    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    # Ray Train patches print() on its workers to log each line as well, so every progress
    # line reached the driver twice; Train propagates this variable to the workers.
    os.environ.setdefault("RAY_TRAIN_ENABLE_PRINT_PATCH", "0")
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=include_dashboard, log_to_driver=True)


def scaling_config(scaling: Any):
    """Ray ``ScalingConfig`` from ``ScalingSettings``; GPUs are used when the cluster has them."""
    import ray
    from ray.train import ScalingConfig

    use_gpu = scaling.use_gpu
    if use_gpu is None:
        use_gpu = ray.cluster_resources().get("GPU", 0) >= 1
    resources = {"CPU": scaling.cpus_per_worker}
    if use_gpu:
        resources["GPU"] = scaling.gpus_per_worker
    return ScalingConfig(
        num_workers=scaling.num_workers,
        use_gpu=use_gpu,
        resources_per_worker=resources,
        # SPREAD puts the workers on different nodes where it can (PACK: as few as possible).
        placement_strategy=scaling.placement_strategy,
    )


def fit(
    loop: Callable[[dict], Any],
    loop_config: dict,
    run: Any,
    scaling: Any,
    run_name: str,
    callbacks: list | None = None,
):
    """Run ``loop`` on DDP workers with Ray Train and return the ``Result``.

    The run lives in ``run.storage_path/run_name``: fitting again with the same name resumes
    from its latest checkpoint (Ray Train V2 restores runs by (storage_path, name)).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    sc = scaling_config(scaling)
    trainer = TorchTrainer(
        loop,
        train_loop_config=loop_config,
        torch_config=TorchConfig(backend="nccl" if sc.use_gpu else "gloo"),
        scaling_config=sc,
        run_config=RunConfig(
            name=run_name,
            storage_path=str(Path(run.storage_path).resolve()),
            failure_config=FailureConfig(max_failures=run.max_failures),
            checkpoint_config=CheckpointConfig(
                num_to_keep=run.keep_checkpoints,
                checkpoint_score_attribute=run.checkpoint_metric,
                checkpoint_score_order=run.checkpoint_mode,
            ),
            callbacks=callbacks or None,
        ),
    )
    return trainer.fit()


def run_dir(run: Any, run_name: str) -> Path:
    """The folder of one named run (Ray Train's checkpoints plus our bookkeeping)."""
    return Path(run.storage_path).resolve() / run_name


def absolute_path(path: str | None) -> str | None:
    """``path`` made absolute against the driver's current folder (Ray workers run in a folder
    of their own); None, zoo tags ("nie-photos"), zoo URIs and "imagenet" are not paths and
    pass unchanged."""
    from nie_core.models.zoo import ZOO_PREFIX, is_zoo_tag

    if path is None or path == "imagenet" or is_zoo_tag(path) or path.startswith(ZOO_PREFIX):
        return path
    return str(Path(path).resolve())


@dataclass(frozen=True)
class TrainResult:
    """What a finished job leaves behind."""

    run_name: str
    mlflow_run_id: str
    tracking_uri: str
    checkpoint_dir: str  # the best checkpoint by run.checkpoint_metric
    metrics: dict[str, float]  # that checkpoint's metrics
    registered_name: str | None  # model-registry name (None: not registered)
    registered_version: str | None


def run_job(
    cfg: Any,
    loop: Callable[[dict], Any],
    registered_name: str,
    tags: Mapping[str, str],
    callbacks: list | None = None,
    faults: Faults = NO_FAULTS,
) -> TrainResult:
    """Open (or resume) the MLflow run, fit on Ray Train, then log and register the best model.

    ``cfg`` is a resolved job config with ``run``, ``scaling`` and ``tracking`` sections; the
    best model is registered as ``registered_name`` when ``cfg.tracking.register``.
    ``callbacks`` go to the trainer's ``RunConfig`` (a Tune trial passes its report callback);
    ``faults`` reach the workers as ``loop_config["faults"]`` (NIE's own tests only).
    """
    import nie_tracking as tracking
    from nie_core.checkpoint import load_model
    from nie_core.config import config_to_dict

    job_dict = config_to_dict(cfg)
    registered = registered_name if cfg.tracking.register else None

    uri = tracking.resolve_tracking_uri(cfg.tracking.tracking_uri)
    folder = run_dir(cfg.run, cfg.run.name)
    run_id = tracking.start_or_resume_run(
        uri, cfg.tracking.experiment, cfg.run.name, job_dict, folder / "mlflow_run_id",
        parent_run_id=cfg.tracking.parent_run_id, tags=tags,
    )  # fmt: skip
    print(f"[nie] run {cfg.run.name!r}: MLflow run {run_id} at {uri}", file=sys.stderr)
    loop_config = LoopConfig(job_dict, run_id, uri, folder, faults).to_dict()
    try:  # connecting to Ray is inside: a run whose cluster cannot be reached is FAILED too
        ensure_ray()
        result = fit(loop, loop_config, cfg.run, cfg.scaling, cfg.run.name, callbacks)
    except BaseException:
        tracking.finish_run(uri, run_id, status="FAILED")
        raise
    if result.error is not None:
        tracking.finish_run(uri, run_id, status="FAILED")
        raise RuntimeError(f"training run {cfg.run.name!r} failed: {result.error}")
    best = result.best_checkpoints
    if best:
        checkpoint, metrics = best_checkpoint(
            best, cfg.run.checkpoint_metric, cfg.run.checkpoint_mode
        )
    else:
        checkpoint, metrics = result.checkpoint, dict(result.metrics or {})
    if checkpoint is None:
        tracking.finish_run(uri, run_id, status="FAILED")
        raise RuntimeError(f"training run {cfg.run.name!r} reported no checkpoint")
    best_dir = export_best(checkpoint.path, folder / "best")
    version = None
    if registered is not None:
        model = load_model(best_dir)
        version = tracking.log_and_register_model(
            uri, run_id, model, registered, alias=cfg.tracking.alias, input_example=None
        )
        print(f"[nie] registered models:/{registered}/{version}", file=sys.stderr)
    tracking.finish_run(uri, run_id)
    return TrainResult(
        run_name=cfg.run.name,
        mlflow_run_id=run_id,
        tracking_uri=uri,
        checkpoint_dir=str(best_dir),
        metrics={k: v for k, v in metrics.items() if isinstance(v, int | float)},
        registered_name=registered,
        registered_version=version,
    )
