"""What both training jobs share: Ray start-up, the trainer, worker set-up, checkpoints, progress.

Driver side: ``ensure_ray``, ``fit``. Worker side (inside ``train_loop_per_worker``):
``WorkerEnv``, ``restore``, ``report``, ``Progress``.
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nie_core.checkpoint import load_checkpoint, save_checkpoint, write_resolved_config
from nie_core.inference import fast_path_supported

from .fault_injection import NO_FAULTS, Faults

CHECKPOINT_FILE = "checkpoint.pt"


# --------------------------------------------------------------------------- driver side


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


def export_best(checkpoint_dir: str, dest: Path) -> Path:
    """Copy the best checkpoint to a stable place (``runs/NAME/best``) that recipes can name.

    Copied into a temporary sibling first and swapped in, so a reader never sees half a copy.
    """
    import shutil

    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint_dir, tmp)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest


def run_dir(run: Any, run_name: str) -> Path:
    """The folder of one named run (Ray Train's checkpoints plus our bookkeeping)."""
    return Path(run.storage_path).resolve() / run_name


# --------------------------------------------------------------------------- worker side


@dataclass
class WorkerEnv:
    """Rank, device and precision settings of one Train worker."""

    rank: int
    world_size: int
    device: torch.device
    fast: bool  # bf16 autocast + channels_last

    @classmethod
    def setup(cls, seed: int, fast_mode: str, cpus_per_worker: float = 1.0) -> WorkerEnv:
        """Seed this worker (``seed + rank``), decide whether the fast path is on, and give
        torch ``cpus_per_worker`` threads on CPU (``$OMP_NUM_THREADS`` wins when set)."""
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        rank, world = ctx.get_world_rank(), ctx.get_world_size()
        random.seed(seed + rank)
        np.random.seed(seed + rank)
        torch.manual_seed(seed + rank)
        device = ray.train.torch.get_device()
        if fast_mode == "on":
            fast = True
        elif fast_mode == "off":
            fast = False
        else:
            fast = fast_path_supported(device)
        if device.type == "cpu":
            # Each worker gets its share of the cores; torch would otherwise oversubscribe.
            # Ray Train does not set OMP_NUM_THREADS for its workers: without this a worker
            # that reserved 2 CPUs computed on one thread.
            reserved = max(1, int(cpus_per_worker))
            cpus = max(1, int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or reserved)
            torch.set_num_threads(cpus)
        return cls(rank, world, device, fast)

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on the fast path, else nothing."""
        if not self.fast:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.fast else x


def restore() -> dict | None:
    """The state in the run's latest checkpoint (after a crash or a rerun), or None."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_checkpoint(Path(d) / CHECKPOINT_FILE)


def resume(model: torch.nn.Module, optimizer: Any, scheduler: Any) -> tuple[int, int]:
    """Load the latest checkpoint (if any) into the model, optimizer and scheduler.

    Returns ``(first epoch to run, global step)``: ``(0, 0)`` on a fresh run.
    """
    state = restore()
    if state is None:
        return 0, 0
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return state["epoch"], state["global_step"]


def report(
    env: WorkerEnv,
    metrics: Mapping[str, float],
    state: dict | None,
    config: Mapping[str, Any],
    extra_files: Mapping[str, Path] | None = None,
) -> None:
    """``ray.train.report`` from every worker; rank 0 attaches a checkpoint of ``state``.

    The checkpoint folder holds ``checkpoint.pt`` (written atomically) and the resolved
    ``config.yaml`` beside it, so any checkpoint can be loaded or rerun on its own.
    """
    import ray.train
    from ray.train import Checkpoint

    if env.rank != 0 or state is None:
        ray.train.report(dict(metrics), checkpoint=None)
        return
    with tempfile.TemporaryDirectory(prefix="nie-ckpt-") as tmp:
        save_checkpoint(Path(tmp) / CHECKPOINT_FILE, state)
        write_resolved_config(tmp, dict(config))
        for name, src in (extra_files or {}).items():
            if Path(src).exists():
                (Path(tmp) / name).write_bytes(Path(src).read_bytes())
        ray.train.report(dict(metrics), checkpoint=Checkpoint.from_directory(tmp))


# What the epoch line shows when present (every metric is in MLflow): the loss, the model
# against bicubic, the scorer's view; the NIMA job's validation EMD and correlations.
PROGRESS_METRICS = ("train_loss", "val_psnr_y", "bicubic_psnr_y", "val_nima_mean",
                    "val_emd", "val_lcc", "val_srcc")  # fmt: skip


class Progress:
    """One line per epoch on rank 0: loss, step rate, samples/s and ETA."""

    def __init__(self, env: WorkerEnv, total_epochs: int, start_epoch: int, enabled: bool = True):
        self.env = env
        self.total_epochs = total_epochs
        self.enabled = enabled and env.rank == 0
        self.t0 = time.monotonic()
        self.start_epoch = start_epoch
        self.epoch_t0 = self.t0

    def start_epoch_timer(self) -> None:
        self.epoch_t0 = time.monotonic()

    def epoch_done(
        self, epoch: int, steps: int, samples: int, metrics: Mapping[str, float]
    ) -> dict:
        """Print the epoch's line; returns the throughput numbers (for logging)."""
        now = time.monotonic()
        dt = max(now - self.epoch_t0, 1e-9)
        done = epoch + 1 - self.start_epoch
        eta = (now - self.t0) / max(done, 1) * (self.total_epochs - epoch - 1)
        rates = {"steps_per_s": steps / dt, "samples_per_s": samples * self.env.world_size / dt}
        if self.enabled:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
            headline = {k: numbers[k] for k in PROGRESS_METRICS if k in numbers} or numbers
            shown = "  ".join(f"{k} {v:.4g}" for k, v in headline.items())
            print(
                f"[nie] epoch {epoch + 1}/{self.total_epochs}  {shown}  "
                f"{rates['steps_per_s']:.2f} steps/s  {rates['samples_per_s']:.1f} samples/s  "
                f"ETA {format_seconds(eta)}",
                file=sys.stderr,
                flush=True,
            )
        return rates


def format_seconds(seconds: float) -> str:
    """``83`` -> ``"1m23s"``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain model inside a DDP wrapper."""
    return model.module if hasattr(model, "module") else model


def all_reduce_sum(values: list[float], device: torch.device) -> list[float]:
    """Sum ``values`` over all workers (identity on one worker)."""
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(t)
    return t.tolist()


# --------------------------------------------------------------------------- one whole job


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


def absolute_path(path: str | None) -> str | None:
    """``path`` made absolute against the driver's current folder (Ray workers run in a folder
    of their own); None, zoo tags ("nie-photos"), zoo URIs and "imagenet" are not paths and
    pass unchanged."""
    from nie_core.models.zoo import ZOO_PREFIX, is_zoo_tag

    if path is None or path == "imagenet" or is_zoo_tag(path) or path.startswith(ZOO_PREFIX):
        return path
    return str(Path(path).resolve())


def best_checkpoint(
    checkpoints: Sequence[tuple[Any, Mapping[str, Any]]], metric: str, mode: str
) -> tuple[Any, Mapping[str, Any]]:
    """The (checkpoint, metrics) pair with the best finite ``metric`` (``mode`` "max" or
    "min"); pairs without it, or with NaN, rank last (the latest of them when none has it).
    Sorting with NaN as a key, as this once did, gives an undefined order."""

    def value(pair: tuple[Any, Mapping[str, Any]]) -> float | None:
        number = pair[1].get(metric)
        if isinstance(number, int | float) and math.isfinite(number):
            return float(number)
        return None

    scored = [pair for pair in checkpoints if value(pair) is not None]
    if not scored:
        return checkpoints[-1]
    pick = max if mode == "max" else min
    return pick(scored, key=lambda pair: value(pair))


def run_job(
    cfg: Any,
    loop: Callable[[dict], Any],
    job_dict: dict,
    registered: str | None,
    tags: Mapping[str, str],
    callbacks: list | None = None,
    faults: Faults = NO_FAULTS,
) -> TrainResult:
    """Open (or resume) the MLflow run, fit on Ray Train, then log and register the best model.

    ``cfg`` is a resolved job config with ``run``, ``scaling`` and ``tracking`` sections.
    ``callbacks`` go to the trainer's ``RunConfig`` (a Tune trial passes its report callback);
    ``faults`` reach the workers as ``loop_config["faults"]`` (NIE's own tests only).
    """
    import nie_tracking as tracking
    from nie_core.checkpoint import load_model

    uri = tracking.resolve_tracking_uri(cfg.tracking.tracking_uri)
    folder = run_dir(cfg.run, cfg.run.name)
    run_id = tracking.start_or_resume_run(
        uri, cfg.tracking.experiment, cfg.run.name, job_dict, folder / "mlflow_run_id",
        parent_run_id=cfg.tracking.parent_run_id, tags=tags,
    )  # fmt: skip
    print(f"[nie] run {cfg.run.name!r}: MLflow run {run_id} at {uri}", file=sys.stderr)
    loop_config = {"job": job_dict, "mlflow_run_id": run_id, "tracking_uri": uri,
                   "run_dir": str(folder), "faults": faults.to_dict()}  # fmt: skip
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
