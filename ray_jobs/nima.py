"""The nima job: NIMA (Talebi & Milanfar 2018) on AVA with the squared-EMD loss, on Ray Train.

Adam with exponential learning-rate decay per epoch (as in the report); the backbone may get its
own learning rate. Validation: EMD, Pearson LCC and Spearman SRCC of the mean scores, and the
two-class accuracy at 5.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from nie_core.config import config_from_dict
from nie_core.data.ava import AVA
from nie_core.losses import emd_loss
from nie_core.metrics import binary_accuracy, lcc, mean_score, srcc
from nie_core.models.nima import BACKBONES
from nie_core.models.zoo import ZOO_PREFIX
from nie_core.training import train_step

from .config import NimaJobConfig
from .driver import TrainResult, absolute_path, run_job
from .epochs import EpochLoop
from .fault_injection import NO_FAULTS, Faults
from .worker import LoopConfig, WorkerEnv, all_reduce_sum, prepare_model, train_loader, unwrap


def resolve(cfg: NimaJobConfig) -> NimaJobConfig:
    """Fill in the derived defaults (run name, experiment)."""
    run = cfg.run if cfg.run.name else replace(cfg.run, name=f"nima-{cfg.model.backbone}")
    trk = cfg.tracking if cfg.tracking.experiment else replace(cfg.tracking, experiment="nie-nima")
    # Workers run in Ray's own working folder: relative paths are taken from the driver's.
    d = cfg.data
    data = replace(
        d,
        root=absolute_path(d.root),
        csv=absolute_path(d.csv),
        split_file=absolute_path(d.split_file),
    )
    model = replace(cfg.model, weights=absolute_path(cfg.model.weights))
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
    if w is not None and w.startswith(ZOO_PREFIX):
        _zoo_start(cfg)  # raises for a URI that is not a NIMA of this backbone
    elif w is not None and w != "imagenet" and not Path(w).exists():
        raise ValueError(f"model.weights {w!r} does not exist")
    if cfg.scaling.num_workers < 1:
        raise ValueError(f"scaling.num_workers must be >= 1, got {cfg.scaling.num_workers}")
    datasets(cfg)


def _zoo_start(cfg: NimaJobConfig) -> torch.nn.Module:
    """The zoo NIMA named by ``model.weights`` (``zoo:nima@TAG``), to fine-tune (e.g. the
    demo's scorer hardening); ValueError when it is no NIMA or its backbone or input size
    differ from the config's."""
    from nie_core.models.zoo import load_zoo_uri, parse_zoo_uri

    uri = cfg.model.weights
    entry = parse_zoo_uri(uri)
    if entry.model != "nima":
        raise ValueError(f"model.weights {uri!r} is a {entry.model}, not a NIMA")
    model = load_zoo_uri(uri)
    if (
        entry.kwargs.get("backbone") != cfg.model.backbone
        or model.input_size != cfg.model.input_size
    ):
        raise ValueError(
            f"model.weights {uri!r} is a {entry.kwargs.get('backbone')} NIMA with input_size "
            f"{model.input_size}; set model.backbone and model.input_size to match"
        )
    return model


def _build_model(cfg: NimaJobConfig) -> torch.nn.Module:
    from nie_core.models import create_model

    if cfg.model.weights is not None and cfg.model.weights.startswith(ZOO_PREFIX):
        return _zoo_start(cfg).train()
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
    env: WorkerEnv,
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
    total = all_reduce_sum([emd_sum, *buf_pred.tolist(), *buf_target.tolist()], env.device)
    emd_total, all_pred, all_target = total[0], total[1 : 1 + size], total[1 + size :]
    model.train()
    return {
        "val_emd": emd_total / max(n, 1),
        "val_lcc": lcc(all_pred, all_target),
        "val_srcc": srcc(all_pred, all_target),
        "val_accuracy": binary_accuracy(all_pred, all_target),
        "val_mean_score": float(np.mean(all_pred)),
    }


def _emd(probs: torch.Tensor, dists: torch.Tensor) -> torch.Tensor:
    """The training loss as ``train_step`` calls it: ``loss_fn(output, target)``."""
    return emd_loss(dists, probs)


def train_loop(config: dict) -> dict:
    """``train_loop_per_worker`` of the nima job."""
    loop = LoopConfig.from_dict(config)
    cfg = config_from_dict(NimaJobConfig, loop.job)
    env = WorkerEnv.setup(cfg.run.seed, cfg.run.fast, cfg.scaling.cpus_per_worker)
    train_set, valid_set = datasets(cfg)
    loader = train_loader(train_set, cfg.run)

    model = _build_model(cfg)
    train_only(model, cfg.model.train_only)
    model = prepare_model(model, env)
    optimizer = torch.optim.Adam(
        _param_groups(unwrap(model), cfg),
        betas=cfg.optim.betas,
        weight_decay=cfg.optim.weight_decay,
    )
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.optim.lr_decay)
    too_large = f"AVA training split ({len(train_set)} images); lower run.batch_size"
    epochs = EpochLoop.start(
        loop, env, model, optimizer, scheduler, cfg.run, len(loader), too_large
    )

    def batches(epoch: int) -> Iterator[list[torch.Tensor]]:
        """The loader's first ``steps_per_epoch`` batches."""
        for index, batch in enumerate(loader):
            if index >= epochs.steps_per_epoch:
                break
            yield batch

    def step(batch: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        images, dists = batch
        on_device = (env.to_device(images), dists.to(env.device))
        loss = train_step(model, on_device, _emd, optimizer, env.autocast())["loss"]
        return {"loss": loss.double()}  # train_emd has always been summed in float64

    metrics: dict[str, float] = {}
    for epoch in epochs.epochs():
        model.train()
        train_only(unwrap(model), cfg.model.train_only)
        sums = epochs.run_epoch(epoch, [loader], batches, step)
        val = validate(unwrap(model), valid_set, env, cfg.data.max_valid_images, cfg.run.batch_size)
        metrics = epochs.finish_epoch(
            epoch,
            epochs.epoch_metrics(epoch, {"train_emd": sums["loss"] / epochs.steps_per_epoch}, val,
                                 {"unreadable_images": train_set.num_unreadable}),
            "images_per_s",
            {"model_name": "nima", "model_kwargs": model_kwargs(cfg)},
        )  # fmt: skip
    return metrics


def train_nima(cfg: NimaJobConfig, *, faults: Faults = NO_FAULTS) -> TrainResult:
    """Train NIMA on Ray Train and track it in MLflow (resumable by ``run.name``).
    ``faults``: NIE's tests only."""
    cfg = resolve(cfg)
    check(cfg)
    tags = {"nie.job": "nima", "nie.backbone": cfg.model.backbone}
    return run_job(cfg, train_loop, registered_name(cfg), tags, faults=faults)
