"""Inside a Ray Train worker: what each job's ``train_loop_per_worker`` sets up and hands back.

The loop config the driver sends (:class:`LoopConfig`), the worker's rank, device and precision
(:class:`WorkerEnv`), its data loader and DDP model, resuming from the run's latest checkpoint
(:func:`resume`), and reporting metrics with a checkpoint (:func:`report`).
"""

from __future__ import annotations

import os
import random
import tempfile
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nie_core.checkpoint import (
    CHECKPOINT_FILENAME,
    load_checkpoint,
    save_checkpoint,
    write_resolved_config,
)
from nie_core.inference import fast_path_supported
from nie_core.training import fast_autocast

from .fault_injection import Faults

CHECKPOINT_FILE = CHECKPOINT_FILENAME  # what Ray Train checkpoints hold, as nie_core names it


@dataclass(frozen=True)
class LoopConfig:
    """The ``train_loop_config`` the driver gives every worker of a job."""

    job: dict  # the resolved job config, as a dict
    mlflow_run_id: str
    tracking_uri: str
    run_dir: Path  # the run's folder (checkpoints, the MLflow run id, fault markers)
    faults: Faults  # NIE's own tests only

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "mlflow_run_id": self.mlflow_run_id,
                "tracking_uri": self.tracking_uri, "run_dir": str(self.run_dir),
                "faults": self.faults.to_dict()}  # fmt: skip

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> LoopConfig:
        return cls(
            job=config["job"],
            mlflow_run_id=config["mlflow_run_id"],
            tracking_uri=config["tracking_uri"],
            run_dir=Path(config["run_dir"]),
            faults=Faults.from_dict(config.get("faults")),
        )


def precision(fast_mode: str, device: torch.device | str) -> tuple[bool, bool]:
    """``(channels_last, bf16 autocast)`` of a worker for ``run.fast``: "on" both, "off"
    neither, "auto" both where the fast path is native (``fast_path_supported``).
    ``bench/quality_parity.py`` compares fine-tunes on the fast path with float32."""
    if fast_mode == "on":
        return True, True
    if fast_mode == "off":
        return False, False
    native = fast_path_supported(device)
    return native, native


@dataclass
class WorkerEnv:
    """Rank, device and precision settings of one Train worker."""

    rank: int
    world_size: int
    device: torch.device
    fast: bool  # channels_last model and batches
    bf16: bool = False  # bf16 autocast of the forward pass

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
        fast, bf16 = precision(fast_mode, device)
        if device.type == "cpu":
            # Each worker gets its share of the cores; torch would otherwise oversubscribe.
            # Ray Train does not set OMP_NUM_THREADS for its workers: without this a worker
            # that reserved 2 CPUs computed on one thread.
            reserved = max(1, int(cpus_per_worker))
            cpus = max(1, int(os.environ.get("OMP_NUM_THREADS", "0") or 0) or reserved)
            torch.set_num_threads(cpus)
        return cls(rank, world, device, fast, bf16)

    def autocast(self) -> AbstractContextManager:
        """bf16 autocast on the fast path, else nothing (float32)."""
        return fast_autocast(self.device, self.bf16)

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last) if self.fast else x


def train_loader(dataset: Any, run: Any) -> Any:
    """A shuffling, batch-dropping loader of ``dataset`` (``run``: the job's ``RunSettings``),
    sharded over the workers by Ray Train."""
    import ray.train.torch
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=run.batch_size, shuffle=True, drop_last=True,
                        num_workers=run.num_data_workers)  # fmt: skip
    return ray.train.torch.prepare_data_loader(loader)


def prepare_model(
    model: torch.nn.Module, env: WorkerEnv, find_unused_parameters: bool = False
) -> torch.nn.Module:
    """``model`` in channels_last on the fast path, on the worker's device, wrapped in DDP.
    ``find_unused_parameters``: for MDSR, whose step uses one scale's branches only."""
    import ray.train.torch

    if env.fast:
        model = model.to(memory_format=torch.channels_last)
    kwargs = {"find_unused_parameters": True} if find_unused_parameters else None
    return ray.train.torch.prepare_model(model, parallel_strategy_kwargs=kwargs)


def restore() -> dict | None:
    """The state in the run's latest checkpoint (after a crash or a rerun), or None."""
    import ray.train

    ckpt = ray.train.get_checkpoint()
    if ckpt is None:
        return None
    with ckpt.as_directory() as d:
        return load_checkpoint(Path(d) / CHECKPOINT_FILE)


@dataclass(frozen=True)
class Resumed:
    """Where a worker's loop starts: all zeros on a fresh run."""

    epoch: int  # the first epoch to run
    global_step: int
    train_seconds: float  # wall time of the training loop over all earlier attempts


def resume(model: torch.nn.Module, optimizer: Any, scheduler: Any) -> Resumed:
    """Load the latest checkpoint (if any) into the model, optimizer and scheduler."""
    state = restore()
    if state is None:
        return Resumed(0, 0, 0.0)
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    return Resumed(state["epoch"], state["global_step"], float(state.get("train_seconds", 0.0)))


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
