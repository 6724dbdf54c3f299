"""The nima job: NIMA (Talebi & Milanfar 2018) on AVA with the squared-EMD loss, on Ray Train.

Adam with exponential learning-rate decay per epoch (as in the report); the backbone may get its
own learning rate. Validation: EMD, Pearson LCC and Spearman SRCC of the mean scores, and the
two-class accuracy at 5.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

import nie_tracking as tracking
from nie_core.config import config_from_dict, config_to_dict
from nie_core.data.ava import AVA
from nie_core.losses import emd_loss
from nie_core.metrics import binary_accuracy, lcc, mean_score, srcc
from nie_core.models.nima import BACKBONES

from . import common
from .config import NimaJobConfig
from .fault_injection import NO_FAULTS, Faults, crash_once_at_step


def resolve(cfg: NimaJobConfig) -> NimaJobConfig:
    """Fill in the derived defaults (run name, experiment)."""
    run = cfg.run if cfg.run.name else replace(cfg.run, name=f"nima-{cfg.model.backbone}")
    trk = cfg.tracking if cfg.tracking.experiment else replace(cfg.tracking, experiment="nie-nima")
    # Workers run in Ray's own working folder: relative paths are taken from the driver's.
    d = cfg.data
    data = replace(
        d,
        root=common.absolute_path(d.root),
        csv=common.absolute_path(d.csv),
        split_file=common.absolute_path(d.split_file),
    )
    model = replace(cfg.model, weights=common.absolute_path(cfg.model.weights))
    return replace(cfg, run=run, tracking=trk, data=data, model=model)


def registered_name(cfg: NimaJobConfig) -> str:
    """The model-registry name, e.g. ``nie-nima-mnasnet1_0``."""
    return cfg.tracking.registered_name or f"nie-nima-{cfg.model.backbone}"


def datasets(cfg: NimaJobConfig) -> tuple[AVA, AVA]:
    """Train (random crop + flip) and validation (centre crop) splits of AVA."""
    d = cfg.data
    kw = dict(split_file=d.split_file, val_fraction=d.val_fraction, seed=cfg.run.seed,
              resize=d.resize, crop=d.crop, csv=d.csv)  # fmt: skip
    return AVA(d.root, split="train", augment=True, **kw), AVA(
        d.root, split="val", augment=False, **kw
    )


def check(cfg: NimaJobConfig) -> None:
    """Everything that can be checked before a worker starts; raises ``ValueError``."""
    if cfg.model.backbone not in BACKBONES:
        raise ValueError(f"unknown NIMA backbone {cfg.model.backbone!r}; known: {list(BACKBONES)}")
    w = cfg.model.weights
    if w is not None and w != "imagenet" and not Path(w).exists():
        raise ValueError(f"model.weights {w!r} does not exist")
    if cfg.scaling.num_workers < 1:
        raise ValueError(f"scaling.num_workers must be >= 1, got {cfg.scaling.num_workers}")
    datasets(cfg)


def _build_model(cfg: NimaJobConfig) -> torch.nn.Module:
    from nie_core.models import create_model

    return create_model("nima", weights=cfg.model.weights, **model_kwargs(cfg))


def model_kwargs(cfg: NimaJobConfig) -> dict[str, Any]:
    """Keyword arguments of ``create_model("nima", ...)`` (without weights)."""
    return {
        "backbone": cfg.model.backbone,
        "dropout": cfg.model.dropout,
        "input_size": cfg.model.input_size,
    }


def train_only(model: torch.nn.Module, prefixes: Sequence[str]) -> None:
    """Freeze every parameter whose name starts with none of ``prefixes`` and put the
    BatchNorm layers outside them in eval mode, so their statistics stay as loaded. Call it
    after every ``model.train()``. No prefixes: everything trains."""
    if not prefixes:
        return
    prefixes = tuple(prefixes)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith(prefixes))
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm) and not name.startswith(
            prefixes
        ):
            module.eval()


def _param_groups(model: torch.nn.Module, cfg: NimaJobConfig) -> list[dict]:
    """Head and backbone parameters, each with its learning rate."""
    head = [p for n, p in model.named_parameters() if n.startswith("head")]
    body = [p for n, p in model.named_parameters() if not n.startswith("head")]
    backbone_lr = cfg.optim.backbone_lr if cfg.optim.backbone_lr is not None else cfg.optim.lr
    groups = [{"params": head, "lr": cfg.optim.lr}, {"params": body, "lr": backbone_lr}]
    return [g for g in groups if g["params"]]


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    dataset: AVA,
    env: common.WorkerEnv,
    max_images: int | None,
    batch_size: int,
) -> dict[str, float]:
    """EMD, LCC, SRCC and accuracy on the validation split (sharded over workers)."""
    model.eval()
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    mine = list(range(env.rank, n, env.world_size))
    emd_sum, pred, target = 0.0, [], []
    for i in range(0, len(mine), batch_size):
        items = [dataset[j] for j in mine[i : i + batch_size]]
        x = env.to_device(torch.stack([img for img, _ in items]))
        y = torch.stack([dist for _, dist in items]).to(env.device)
        with env.autocast():
            p = model(x)
        p = p.float()
        emd_sum += emd_loss(y, p).item() * len(items)
        pred += mean_score(p).tolist()
        target += mean_score(y).tolist()
    # Gather the per-image scores on every worker (to rank correlations over all images).
    size = n
    buf_pred = np.zeros(size)
    buf_target = np.zeros(size)
    buf_pred[mine] = pred
    buf_target[mine] = target
    total = common.all_reduce_sum([emd_sum, *buf_pred.tolist(), *buf_target.tolist()], env.device)
    emd_total, all_pred, all_target = total[0], total[1 : 1 + size], total[1 + size :]
    model.train()
    return {
        "val_emd": emd_total / max(n, 1),
        "val_lcc": lcc(all_pred, all_target),
        "val_srcc": srcc(all_pred, all_target),
        "val_accuracy": binary_accuracy(all_pred, all_target),
        "val_mean_score": float(np.mean(all_pred)),
    }


def train_loop(config: dict) -> dict:
    """``train_loop_per_worker`` of the nima job."""
    import ray.train.torch
    from torch.utils.data import DataLoader

    cfg = config_from_dict(NimaJobConfig, config["job"])
    faults = Faults.from_dict(config.get("faults"))
    run_id, uri, run_folder = (
        config["mlflow_run_id"],
        config["tracking_uri"],
        Path(config["run_dir"]),
    )
    env = common.WorkerEnv.setup(cfg.run.seed, cfg.run.fast, cfg.scaling.cpus_per_worker)
    train_set, valid_set = datasets(cfg)
    loader = DataLoader(
        train_set,
        batch_size=cfg.run.batch_size,
        shuffle=True,
        drop_last=True,
        num_workers=cfg.run.num_data_workers,
    )
    loader = ray.train.torch.prepare_data_loader(loader)

    model = _build_model(cfg)
    train_only(model, cfg.model.train_only)
    if env.fast:
        model = model.to(memory_format=torch.channels_last)
    model = ray.train.torch.prepare_model(model)
    optimizer = torch.optim.Adam(
        _param_groups(common.unwrap(model), cfg),
        betas=cfg.optim.betas,
        weight_decay=cfg.optim.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.optim.lr_decay)

    start_epoch, global_step = common.resume(model, optimizer, scheduler)
    # Wall time of the training loop over all attempts (model cards and `nie zoo export`).
    train_seconds = float((common.restore() or {}).get("train_seconds", 0.0))
    resumed_from = global_step

    steps_per_epoch = len(loader)
    if cfg.run.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.run.steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size {cfg.run.batch_size} x {env.world_size} workers is larger than the "
            f"AVA training split ({len(train_set)} images); lower run.batch_size"
        )
    progress = common.Progress(env, cfg.run.epochs, start_epoch, cfg.run.progress)
    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.run.epochs):
        model.train()
        train_only(common.unwrap(model), cfg.model.train_only)
        if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        progress.start_epoch_timer()
        epoch_start = time.monotonic()
        loss_sum = 0.0
        for step, (images, dists) in enumerate(loader):
            if step >= steps_per_epoch:
                break
            images, dists = env.to_device(images), dists.to(env.device)
            with env.autocast():
                probs = model(images)
            loss = emd_loss(dists, probs.float())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            global_step += 1
            loss_sum += loss.item()
            crash_once_at_step(env.rank, global_step, faults, run_folder)
        scheduler.step()
        train_seconds += time.monotonic() - epoch_start
        val = validate(
            common.unwrap(model), valid_set, env, cfg.data.max_valid_images, cfg.run.batch_size
        )
        metrics = {
            "train_emd": loss_sum / steps_per_epoch,
            **val,
            "lr": scheduler.get_last_lr()[0],
            "epoch": epoch + 1,
            "global_step": global_step,
            "resumed_from_step": resumed_from,
            "unreadable_images": train_set.num_unreadable,
        }
        metrics.update(
            progress.epoch_done(
                epoch, steps_per_epoch, steps_per_epoch * cfg.run.batch_size, metrics
            )
        )
        metrics["images_per_s"] = metrics.pop("samples_per_s")
        if env.rank == 0:
            tracking.log_metrics(uri, run_id, metrics, step=global_step)
        state = {
            "model_name": "nima",
            "model_kwargs": model_kwargs(cfg),
            "model": common.unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch + 1,
            "global_step": global_step,
            "train_seconds": train_seconds,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "config": config["job"],
        }
        common.report(env, metrics, state, config["job"])
    return metrics


def train_nima(cfg: NimaJobConfig, *, faults: Faults = NO_FAULTS) -> common.TrainResult:
    """Train NIMA on Ray Train and track it in MLflow (resumable by ``run.name``).
    ``faults``: NIE's tests only."""
    cfg = resolve(cfg)
    check(cfg)
    return common.run_job(
        cfg=cfg,
        loop=train_loop,
        job_dict=config_to_dict(cfg),
        registered=registered_name(cfg) if cfg.tracking.register else None,
        tags={"nie.job": "nima", "nie.backbone": cfg.model.backbone},
        faults=faults,
    )
