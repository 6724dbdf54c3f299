"""The epoch loop both training jobs run on every worker, around ``nie_core.training.train_step``.

One epoch (:meth:`EpochLoop.run_epoch`): the samplers are set to the epoch, each batch goes
through the job's step, the loss terms are summed on the device (one sync per epoch), and after
every step come fault injection (a crash or a pause) and, every ``run.validate_every_steps``
steps, a mid-epoch validation; then the scheduler steps. :meth:`EpochLoop.finish_epoch` prints
the epoch line, logs the metrics to MLflow and reports a checkpoint to Ray Train.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import nie_tracking as tracking

from .fault_injection import crash_once_at_step, pause_once_at_step
from .progress import Progress
from .worker import LoopConfig, WorkerEnv, report, resume, unwrap


@dataclass
class EpochLoop:
    """One worker's way through the epochs: the counters it keeps and the steps it takes."""

    loop: LoopConfig
    env: WorkerEnv
    model: torch.nn.Module  # as trained (DDP-wrapped)
    optimizer: Any
    scheduler: Any  # stepped once per epoch
    steps_per_epoch: int
    batch_size: int  # per worker
    progress: Progress
    start_epoch: int = 0
    global_step: int = 0
    resumed_from: int = 0  # the global step this attempt started from
    train_seconds: float = 0.0  # wall time of the training loop over all attempts
    validate_every: int | None = None
    epoch_lr: float | None = None  # the learning rate the last epoch trained with

    @classmethod
    def start(
        cls, loop: LoopConfig, env: WorkerEnv, model: torch.nn.Module, optimizer: Any,
        scheduler: Any, run: Any, available_steps: int, too_large: str,
    ) -> EpochLoop:  # fmt: skip
        """Resume from the run's latest checkpoint (if any) and count the steps of an epoch:
        ``available_steps`` (batches per worker), capped at ``run.steps_per_epoch``. Raises
        ``ValueError`` when that is 0: the batch is larger than the data (``too_large`` names
        the data and the remedy)."""
        resumed = resume(model, optimizer, scheduler)
        steps = available_steps
        if run.steps_per_epoch is not None:
            steps = min(steps, run.steps_per_epoch)
        if steps < 1:
            raise ValueError(
                f"batch_size {run.batch_size} x {env.world_size} workers is larger than the "
                + too_large
            )
        progress = Progress(env, run.epochs, resumed.epoch, run.progress)
        return cls(loop, env, model, optimizer, scheduler, steps, run.batch_size, progress,
                   resumed.epoch, resumed.global_step, resumed.global_step,
                   resumed.train_seconds, run.validate_every_steps)  # fmt: skip

    def epochs(self) -> range:
        """The epochs left to run."""
        return range(self.start_epoch, self.progress.total_epochs)

    def run_epoch(
        self,
        epoch: int,
        loaders: Iterable[Any],
        batches: Callable[[int], Iterable[Any]],
        step: Callable[[Any], Mapping[str, torch.Tensor]],
        validate: Callable[[], Mapping[str, float]] | None = None,
    ) -> dict[str, float]:
        """Train one epoch; returns the sums of the step's loss terms over it.

        ``loaders``: whose samplers get ``set_epoch(epoch)`` first. ``batches(epoch)``: this
        epoch's batches, ``steps_per_epoch`` of them (called before the epoch's timer starts).
        ``step(batch)``: one training step -> its detached loss terms (``train_step``).
        ``validate()``: the mid-epoch validation, logged at the global step (never at an
        epoch's end, where the job validates anyway).
        """
        for loader in loaders:
            if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
        epoch_batches = batches(epoch)
        # Read before the scheduler steps at the epoch's end: the lr logged is the one trained with.
        self.epoch_lr = self.scheduler.get_last_lr()[0]
        self.progress.start_epoch_timer()
        epoch_start = time.monotonic()
        sums: dict[str, Any] = {}
        for batch in epoch_batches:
            terms = step(batch)
            self.global_step += 1
            # Summed on the device: an .item() per step would wait for the GPU every step.
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value
            crash_once_at_step(self.env.rank, self.global_step, self.loop.faults,
                               self.loop.run_dir)  # fmt: skip
            pause_once_at_step(self.env.rank, self.global_step, self.loop.faults,
                               self.loop.run_dir)  # fmt: skip
            if validate is not None and self._validates_now():
                mid = validate()
                if self.env.rank == 0:
                    self._log(mid)
        self.scheduler.step()
        totals = {name: float(value) for name, value in sums.items()}  # one device sync
        self.train_seconds += time.monotonic() - epoch_start
        return totals

    def _validates_now(self) -> bool:
        every, step = self.validate_every, self.global_step
        return bool(every) and step % every == 0 and step % self.steps_per_epoch != 0

    def epoch_metrics(
        self,
        epoch: int,
        train: Mapping[str, float],
        val: Mapping[str, float],
        extra: Mapping[str, float] | None = None,
    ) -> dict[str, float]:
        """The epoch's metrics: the training losses, the validation, then the counters (``lr``:
        the epoch's own, not the next one's that the scheduler already holds)."""
        lr = self.epoch_lr if self.epoch_lr is not None else self.scheduler.get_last_lr()[0]
        return {**train, **val, "lr": lr, "epoch": epoch + 1, "global_step": self.global_step,
                "resumed_from_step": self.resumed_from, **(extra or {})}  # fmt: skip

    def finish_epoch(
        self,
        epoch: int,
        metrics: dict[str, float],
        samples_name: str,
        checkpoint: Mapping[str, Any],
        artifacts: Mapping[Path, str] | None = None,
    ) -> dict[str, float]:
        """Print the epoch line, log ``metrics`` with the throughput (samples/s renamed
        ``samples_name``) and the existing ``artifacts`` (file -> artifact folder) on rank 0,
        and report a checkpoint: ``checkpoint`` (model name and kwargs) plus the model,
        optimizer, scheduler and counters. Returns the metrics as logged."""
        steps = self.steps_per_epoch
        metrics.update(self.progress.epoch_done(epoch, steps, steps * self.batch_size, metrics))
        metrics[samples_name] = metrics.pop("samples_per_s")
        if self.env.rank == 0:
            self._log(metrics)
            for path, folder in (artifacts or {}).items():
                if path.exists():
                    tracking.client(self.loop.tracking_uri).log_artifact(
                        self.loop.mlflow_run_id, str(path), artifact_path=folder
                    )
        state = {
            **checkpoint,
            "model": unwrap(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch + 1,
            "global_step": self.global_step,
            "train_seconds": self.train_seconds,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "config": self.loop.job,
        }
        report(self.env, metrics, state, self.loop.job)
        return metrics

    def _log(self, metrics: Mapping[str, float]) -> None:
        tracking.log_metrics(
            self.loop.tracking_uri, self.loop.mlflow_run_id, metrics, step=self.global_step
        )
