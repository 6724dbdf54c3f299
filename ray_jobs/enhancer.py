"""The enhancer job: EDSR/MDSR super-resolution or deblurring on DIV2K, with Ray Train DDP.

Loss: L1, L2, or the report's hybrid ``L2 + gamma * (10 - mean NIMA score)`` with a frozen NIMA
from a checkpoint of the nima job. MDSR trains one randomly chosen scale per batch, every scale
equally often (the same scale on every worker, so DDP's gradients line up).
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

import nie_tracking as tracking
from nie_core.checkpoint import load_checkpoint, load_model, resolve_checkpoint_path
from nie_core.config import config_from_dict
from nie_core.data.div2k import DIV2K, ImageFolderSR, PairedSRDataset
from nie_core.losses import HybridLoss
from nie_core.models.zoo import ZOO_PREFIX, is_zoo_tag, load_zoo_uri, parse_zoo_uri
from nie_core.training import train_step

from .config import EnhancerJobConfig
from .driver import TrainResult, absolute_path, run_job
from .enhancer_validation import validate
from .epochs import EpochLoop
from .fault_injection import NO_FAULTS, Faults
from .worker import LoopConfig, WorkerEnv, prepare_model, train_loader, unwrap

MDSR_NAMES = ("mdsr", "mdsr_baseline")


# --------------------------------------------------------------------------- naming


def run_tag(cfg: EnhancerJobConfig) -> str:
    """``edsr_baseline-x2-sr-hybrid``: model, scales, task and loss of a job."""
    scales = "".join(str(s) for s in cfg.model.scales)
    loss = "hybrid" if cfg.loss.gamma > 0 else cfg.loss.pixel
    return f"{cfg.model.name}-x{scales}-{cfg.data.task}-{loss}"


def registered_name(cfg: EnhancerJobConfig) -> str:
    """The model-registry name of a job's model, e.g. ``nie-edsr_baseline-x2-sr-hybrid``."""
    return cfg.tracking.registered_name or f"nie-{run_tag(cfg)}"


def resolve(cfg: EnhancerJobConfig) -> EnhancerJobConfig:
    """Fill in the derived defaults (run name, experiment)."""
    run = cfg.run if cfg.run.name else replace(cfg.run, name=run_tag(cfg))
    trk = (
        cfg.tracking
        if cfg.tracking.experiment
        else replace(cfg.tracking, experiment="nie-enhancer")
    )
    # Workers run in Ray's own working folder: relative paths are taken from the driver's.
    data = replace(
        cfg.data,
        root=absolute_path(cfg.data.root),
        valid_root=absolute_path(cfg.data.valid_root),
        cache_dir=absolute_path(cfg.data.cache_dir),
    )
    model = replace(cfg.model, weights=absolute_path(cfg.model.weights))
    loss = replace(cfg.loss, nima_checkpoint=absolute_path(cfg.loss.nima_checkpoint))
    return replace(cfg, run=run, tracking=trk, data=data, model=model, loss=loss)


# --------------------------------------------------------------------------- building blocks


def model_kwargs(cfg: EnhancerJobConfig) -> dict[str, Any]:
    """Keyword arguments of ``create_model`` for the job's model (without weights)."""
    kwargs: dict[str, Any] = {}
    if cfg.model.name in MDSR_NAMES:
        kwargs["scales"] = tuple(cfg.model.scales)
    else:
        kwargs["scale"] = cfg.model.scales[0]
    if cfg.model.n_resblocks is not None:
        kwargs["n_resblocks"] = cfg.model.n_resblocks
    if cfg.model.n_feats is not None:
        kwargs["n_feats"] = cfg.model.n_feats
    return kwargs


def _is_div2k(root: Path, split: str) -> bool:
    return (root / f"DIV2K_{split}_HR").is_dir()


def train_dataset(cfg: EnhancerJobConfig) -> PairedSRDataset:
    """Random paired patches (flips, rotations) from DIV2K or a folder of HR images."""
    d = cfg.data
    common_kw = dict(
        scale=tuple(cfg.model.scales), task=d.task, patch_size=d.patch_size, augment=True,
        repeat=d.repeat, cache_dir=d.cache_dir, blur_sigma=d.blur_sigma,
        blur_kernel=d.blur_kernel, full_image=False,
    )  # fmt: skip
    root = Path(d.root)
    if _is_div2k(root, "train"):
        return DIV2K(root, split="train", **common_kw)
    return ImageFolderSR(root, **common_kw)


def valid_dataset(cfg: EnhancerJobConfig) -> PairedSRDataset:
    """Whole validation images: DIV2K_valid_* under the root, or ``data.valid_root``."""
    d = cfg.data
    common_kw = dict(
        scale=tuple(cfg.model.scales), task=d.task, augment=False, cache_dir=d.cache_dir,
        blur_sigma=d.blur_sigma, blur_kernel=d.blur_kernel, full_image=True,
    )  # fmt: skip
    root = Path(d.valid_root or d.root)
    if _is_div2k(root, "valid"):
        return DIV2K(root, split="valid", **common_kw)
    if d.valid_root is None:
        raise ValueError(
            f"no validation set: {str(root / 'DIV2K_valid_HR')!r} does not exist; "
            "set data.valid_root to a folder of HR images"
        )
    return ImageFolderSR(root, **common_kw)


def load_scorer(cfg: EnhancerJobConfig) -> torch.nn.Module | None:
    """The frozen NIMA of the hybrid loss (and of the validation scores), or None.

    Raises ``ValueError`` when the checkpoint is missing, is not a NIMA checkpoint, or its
    weights do not fit its architecture.
    """
    from nie_core.models import create_model
    from nie_core.models.nima import freeze_scorer

    path = cfg.loss.nima_checkpoint
    if path is None:
        if cfg.loss.gamma > 0 and not cfg.loss.allow_untrained_nima:
            raise ValueError(
                f"loss.gamma={cfg.loss.gamma} needs loss.nima_checkpoint (a checkpoint of "
                "`nie train nima`); set loss.allow_untrained_nima=true to use random weights"
            )
        if cfg.loss.allow_untrained_nima:
            return freeze_scorer(create_model("nima", backbone=cfg.loss.nima_backbone))
        return None
    if path.startswith(ZOO_PREFIX):
        if parse_zoo_uri(path).model != "nima":
            raise ValueError(f"loss.nima_checkpoint {path!r} is not a NIMA in the zoo")
        return freeze_scorer(load_zoo_uri(path))
    try:
        state = load_checkpoint(resolve_checkpoint_path(path))
    except ValueError as error:
        raise ValueError(f"loss.nima_checkpoint: {error}") from error
    if state.get("model_name") != "nima":
        raise ValueError(
            f"loss.nima_checkpoint {path!r} holds a {state.get('model_name')!r} model, not nima"
        )
    return freeze_scorer(load_model(path))


def build_loss(cfg: EnhancerJobConfig, scorer: torch.nn.Module | None) -> HybridLoss:
    """The job's loss from ``cfg.loss`` (the training benchmark builds it here too, so that it
    times the loss the jobs train with). ``scorer``: the frozen NIMA of :func:`load_scorer`;
    it is left out when ``gamma`` is 0."""
    return HybridLoss(
        scorer if cfg.loss.gamma > 0 else None,
        gamma=cfg.loss.gamma,
        pixel=cfg.loss.pixel,
        pixel_range=cfg.loss.pixel_range,
        aesthetic_on=cfg.loss.aesthetic_on,
        aesthetic_patch=cfg.loss.aesthetic_patch,
        guard=cfg.loss.guard,
    )


def check(cfg: EnhancerJobConfig) -> None:
    """Everything that can be checked before a worker starts; raises ``ValueError``."""
    from nie_core.models import list_models

    if cfg.model.name not in list_models():
        raise ValueError(f"unknown model {cfg.model.name!r}; known: {list_models()}")
    scales = tuple(cfg.model.scales)
    if cfg.model.name in MDSR_NAMES:
        if not scales or any(s not in (2, 3, 4) for s in scales):
            raise ValueError(
                f"model.scales for {cfg.model.name} must be within (2, 3, 4), got {scales}"
            )
    elif len(scales) != 1 or scales[0] not in (1, 2, 3, 4):
        raise ValueError(f"model.scales for {cfg.model.name} must be one of 1..4, got {scales}")
    if cfg.loss.gamma < 0:
        raise ValueError(f"loss.gamma must be >= 0, got {cfg.loss.gamma}")
    if not cfg.loss.pixel_range > 0:
        raise ValueError(f"loss.pixel_range must be > 0, got {cfg.loss.pixel_range}")
    weights = cfg.model.weights
    if weights is not None and not is_zoo_tag(weights) and not Path(weights).exists():
        raise ValueError(f"model.weights {weights!r} is neither a file nor a zoo tag")
    if cfg.scaling.num_workers < 1:
        raise ValueError(f"scaling.num_workers must be >= 1, got {cfg.scaling.num_workers}")
    train_dataset(cfg)  # raises for a missing or empty dataset
    valid_dataset(cfg)
    load_scorer(cfg)


# --------------------------------------------------------------------------- the worker loop


def _build_model(cfg: EnhancerJobConfig) -> torch.nn.Module:
    from nie_core.models import create_model

    return create_model(cfg.model.name, weights=cfg.model.weights, **model_kwargs(cfg))


def _scale_schedule(scales: tuple[int, ...], steps: int, seed: int) -> list[int]:
    """Each scale equally often, in a seeded random order shared by all workers."""
    order = [scales[i % len(scales)] for i in range(steps)]
    random.Random(seed).shuffle(order)
    return order


@contextmanager
def warmed_up(optimizer: torch.optim.Optimizer, step: int, warmup_steps: int) -> Iterator[None]:
    """Scale the learning rates by ``(step + 1) / warmup_steps`` for one step (0-based
    ``step``), then put them back (the epoch scheduler owns them); no change after warm-up."""
    factor = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    saved = [group["lr"] for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        group["lr"] *= factor
    try:
        yield
    finally:
        for group, lr in zip(optimizer.param_groups, saved, strict=True):
            group["lr"] = lr


def train_loop(config: dict) -> dict:
    """``train_loop_per_worker`` of the enhancer job (runs on every Ray Train worker)."""
    loop = LoopConfig.from_dict(config)
    cfg = config_from_dict(EnhancerJobConfig, loop.job)
    env = WorkerEnv.setup(cfg.run.seed, cfg.run.fast, cfg.scaling.cpus_per_worker)
    multi = cfg.model.name in MDSR_NAMES
    scales = tuple(cfg.model.scales)

    train_set = train_dataset(cfg)
    loaders = {
        s: train_loader(train_set.with_scale(s) if len(scales) > 1 else train_set, cfg.run)
        for s in scales
    }
    valid_set = valid_dataset(cfg)

    model = prepare_model(_build_model(cfg), env, find_unused_parameters=multi)
    scorer = load_scorer(cfg)
    if scorer is not None:
        scorer = scorer.to(env.device)
        if env.fast:
            scorer = scorer.to(memory_format=torch.channels_last)
    loss_fn = build_loss(cfg, scorer)
    on_gpu = env.device.type == "cuda"
    if on_gpu:
        # Fixed patch shapes: let cuDNN pick the fastest convolution algorithms once.
        torch.backends.cudnn.benchmark = True
    optimizer = torch.optim.Adam(
        model.parameters(),
        lr=cfg.optim.lr,
        betas=cfg.optim.betas,
        eps=cfg.optim.eps,
        weight_decay=cfg.optim.weight_decay,
        fused=True if on_gpu else None,  # one kernel for all parameters (launch-bound models)
    )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=cfg.optim.lr_decay_epochs, gamma=cfg.optim.lr_decay_factor
    )
    too_large = (f"training set ({len(train_set)} patches); lower run.batch_size or raise "
                 "data.repeat")  # fmt: skip
    epochs = EpochLoop.start(loop, env, model, optimizer, scheduler, cfg.run,
                             min(len(loader) for loader in loaders.values()), too_large)  # fmt: skip
    if epochs.resumed_from and env.rank == 0:
        # This attempt continues the same MLflow run (a crash, a lost node, or a rerun): the
        # tag names the step it restarted from; the resumed_from_step metric keeps each one.
        tracking.client(loop.tracking_uri).set_tag(
            loop.mlflow_run_id, "nie.resumed_from_step", str(epochs.resumed_from)
        )

    def batches(epoch: int) -> Iterator[tuple[int, list[torch.Tensor]]]:
        """(scale, (LR, HR)) pairs: each scale equally often, the same order on every worker."""
        iterators = {s: iter(loader) for s, loader in loaders.items()}
        schedule = _scale_schedule(scales, epochs.steps_per_epoch, cfg.run.seed * 1000 + epoch)
        return ((s, next(iterators[s])) for s in schedule)

    def step(batch: tuple[int, list[torch.Tensor]]) -> dict[str, torch.Tensor]:
        scale, (lr_img, hr_img) = batch
        with warmed_up(optimizer, epochs.global_step, cfg.optim.warmup_steps):
            return train_step(model, (env.to_device(lr_img), env.to_device(hr_img)), loss_fn,
                              optimizer, env.autocast(), (scale,) if multi else ())  # fmt: skip

    def validate_now(grid_path: Path | None = None) -> dict[str, float]:
        return validate(unwrap(model), scorer, valid_set, env, cfg.data.max_valid_images,
                        grid_path=grid_path)  # fmt: skip

    metrics: dict[str, float] = {}
    for epoch in epochs.epochs():
        model.train()
        sums = epochs.run_epoch(epoch, loaders.values(), batches, step, validate_now)
        # The grid's folder goes once finish_epoch has logged it (rank 0), on every rank.
        with tempfile.TemporaryDirectory(prefix="nie-grid-") as grids:
            grid = Path(grids) / f"epoch_{epoch + 1:03d}.png"
            val = validate_now(grid if cfg.tracking.log_images else None)
            mean = {k: v / epochs.steps_per_epoch for k, v in sums.items()}
            # Aesthetic terms only when the scorer ran: a logged 0 would read as a perfect score.
            aesthetic = {"train_aesthetic_loss": mean["aesthetic"]} if loss_fn.gamma > 0 else {}
            train = {"train_loss": mean["loss"], **aesthetic, "train_pixel_loss": mean["pixel"]}
            metrics = epochs.finish_epoch(
                epoch, epochs.epoch_metrics(epoch, train, val), "patches_per_s",
                {"model_name": cfg.model.name, "model_kwargs": model_kwargs(cfg)},
                artifacts={grid: "validation"},
            )  # fmt: skip
    return metrics


# --------------------------------------------------------------------------- driver


def train_enhancer(
    cfg: EnhancerJobConfig, callbacks: list | None = None, *, faults: Faults = NO_FAULTS
) -> TrainResult:
    """Train an enhancer on Ray Train and track it in MLflow; see the module docstring.

    Checks the config, data and scorer before starting any worker. Rerunning with the same
    ``run.name`` resumes from the latest checkpoint and continues the same MLflow run.
    ``callbacks``: Ray Train callbacks for the trainer's ``RunConfig`` (e.g. Tune's
    ``TuneReportCallback`` when the job runs as a Tune trial). ``faults``: NIE's tests only.
    """
    cfg = resolve(cfg)
    check(cfg)
    tags = {"nie.job": "enhancer", "nie.model": cfg.model.name, "nie.task": cfg.data.task,
            "nie.gamma": str(cfg.loss.gamma)}  # fmt: skip
    return run_job(cfg, train_loop, registered_name(cfg), tags, callbacks, faults)
