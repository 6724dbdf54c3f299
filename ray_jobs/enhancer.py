"""The enhancer job: EDSR/MDSR super-resolution or deblurring on DIV2K, with Ray Train DDP.

Loss: L1, L2, or the report's hybrid ``L2 + gamma * (10 - mean NIMA score)`` with a frozen NIMA
from a checkpoint of the nima job. MDSR trains one randomly chosen scale per batch, every scale
equally often (the same scale on every worker, so DDP's gradients line up).
"""

from __future__ import annotations

import random
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

import nie_tracking as tracking
from nie_core.checkpoint import load_checkpoint, load_model
from nie_core.config import config_from_dict, config_to_dict
from nie_core.data.div2k import DIV2K, ImageFolderSR, PairedSRDataset
from nie_core.losses import HybridLoss
from nie_core.metrics import psnr_rgb, psnr_y, ssim_y
from nie_core.models.zoo import ZOO_PREFIX, is_zoo_tag, load_zoo_uri, parse_zoo_uri

from . import common
from .config import EnhancerJobConfig
from .fault_injection import NO_FAULTS, Faults, crash_once_at_step

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
        root=common.absolute_path(cfg.data.root),
        valid_root=common.absolute_path(cfg.data.valid_root),
        cache_dir=common.absolute_path(cfg.data.cache_dir),
    )
    model = replace(cfg.model, weights=common.absolute_path(cfg.model.weights))
    loss = replace(cfg.loss, nima_checkpoint=common.absolute_path(cfg.loss.nima_checkpoint))
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
    state = load_checkpoint(_checkpoint_file(path))
    if state.get("model_name") != "nima":
        raise ValueError(
            f"loss.nima_checkpoint {path!r} holds a {state.get('model_name')!r} model, not nima"
        )
    return freeze_scorer(load_model(path))


def _checkpoint_file(path: str) -> Path:
    p = Path(path)
    if p.is_dir():
        p = p / common.CHECKPOINT_FILE
    if not p.is_file():
        raise ValueError(f"checkpoint {path!r} does not exist")
    return p


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


def _forward(model: torch.nn.Module, x: torch.Tensor, scale: int, multi: bool) -> torch.Tensor:
    return model(x, scale) if multi else model(x)


@torch.no_grad()
def validate(
    model: torch.nn.Module,
    scorer: torch.nn.Module | None,
    dataset: PairedSRDataset,
    env: common.WorkerEnv,
    max_images: int | None,
    grid_path: Path | None = None,
) -> dict[str, float]:
    """PSNR (Y and RGB, shave = scale), SSIM (Y) and mean NIMA score of the model's outputs,
    and the same for bicubic upsampling as a reference line; images sharded over workers."""
    from nie_core.inference import enhance, score
    from nie_core.metrics import mean_score

    was_training = model.training
    model.eval()
    scales = dataset.scales
    n = len(dataset.hr_files) if max_images is None else min(max_images, len(dataset.hr_files))
    keys = ("psnr_y", "psnr_rgb", "ssim_y", "nima_mean")
    sums: dict[str, float] = {}
    for s in scales:
        view = dataset.with_scale(s) if len(scales) > 1 else dataset
        for i in range(env.rank, n, env.world_size):
            lr, hr = view[i]
            lr, hr = lr[None].to(env.device), hr[None].to(env.device)
            sr = enhance(model, lr, scale=s, fast=env.fast).float()
            if s == 1:
                bicubic = lr.clone()
            else:
                bicubic = F.interpolate(lr, size=hr.shape[-2:], mode="bicubic", align_corners=False)
                bicubic = bicubic.clamp(0, 1)
            for name, img in (("val", sr), ("bicubic", bicubic)):
                vals = {
                    "psnr_y": psnr_y(img, hr, shave=s).item(),
                    "psnr_rgb": psnr_rgb(img, hr, shave=s).item(),
                    "ssim_y": ssim_y(img, hr, shave=s).item(),
                }
                if scorer is not None:
                    vals["nima_mean"] = mean_score(score(scorer, img)).item()
                for k, v in vals.items():
                    sums[f"{name}_{k}_x{s}"] = sums.get(f"{name}_{k}_x{s}", 0.0) + v
            sums[f"count_x{s}"] = sums.get(f"count_x{s}", 0.0) + 1
            if grid_path is not None and env.rank == 0 and i == 0 and s == scales[0]:
                save_grid(grid_path, lr, bicubic, sr, hr)
    # The same keys in the same order on every worker, even one that got no image.
    names = [f"count_x{s}" for s in scales] + [
        f"{prefix}_{k}_x{s}"
        for prefix in ("val", "bicubic")
        for k in (keys if scorer is not None else keys[:-1])
        for s in scales
    ]
    reduced = common.all_reduce_sum([sums.get(k, 0.0) for k in names], env.device)
    totals = dict(zip(names, reduced, strict=True))
    metrics: dict[str, float] = {}
    for prefix in ("val", "bicubic"):
        for k in keys:
            per_scale = []
            for s in scales:
                key = f"{prefix}_{k}_x{s}"
                if key in totals and totals.get(f"count_x{s}", 0) > 0:
                    value = totals[key] / totals[f"count_x{s}"]
                    per_scale.append(value)
                    if len(scales) > 1:
                        metrics[key] = value
            if per_scale:
                metrics[f"{prefix}_{k}"] = sum(per_scale) / len(per_scale)
    if was_training:
        model.train()
    return metrics


def save_grid(
    path: Path, lr: torch.Tensor, bicubic: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor
) -> None:
    """One PNG: input (nearest-upscaled) | bicubic | output | reference, side by side."""
    from nie_core.data.images import save_image

    size = hr.shape[-2:]
    tiles = [F.interpolate(lr, size=size, mode="nearest"), bicubic, sr, hr]
    gap = torch.ones(1, 3, size[0], 4, device=hr.device)
    row = torch.cat([t for tile in tiles for t in (tile.clamp(0, 1), gap)][:-1], dim=-1)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(path, row[0].cpu())


def train_loop(config: dict) -> dict:
    """``train_loop_per_worker`` of the enhancer job (runs on every Ray Train worker)."""
    import ray.train.torch
    from torch.utils.data import DataLoader

    cfg = config_from_dict(EnhancerJobConfig, config["job"])
    faults = Faults.from_dict(config.get("faults"))
    run_id, uri, run_folder = (
        config["mlflow_run_id"],
        config["tracking_uri"],
        Path(config["run_dir"]),
    )
    env = common.WorkerEnv.setup(cfg.run.seed, cfg.run.fast, cfg.scaling.cpus_per_worker)
    multi = cfg.model.name in MDSR_NAMES
    scales = tuple(cfg.model.scales)

    train_set = train_dataset(cfg)
    loaders = {}
    for s in scales:
        view = train_set.with_scale(s) if len(scales) > 1 else train_set
        loader = DataLoader(
            view,
            batch_size=cfg.run.batch_size,
            shuffle=True,
            drop_last=True,
            num_workers=cfg.run.num_data_workers,
        )
        loaders[s] = ray.train.torch.prepare_data_loader(loader)
    valid_set = valid_dataset(cfg)

    model = _build_model(cfg)
    if env.fast:
        model = model.to(memory_format=torch.channels_last)
    model = ray.train.torch.prepare_model(
        model, parallel_strategy_kwargs={"find_unused_parameters": True} if multi else None
    )
    scorer = load_scorer(cfg)
    if scorer is not None:
        scorer = scorer.to(env.device)
        if env.fast:
            scorer = scorer.to(memory_format=torch.channels_last)
    loss_fn = HybridLoss(
        scorer if cfg.loss.gamma > 0 else None,
        gamma=cfg.loss.gamma,
        pixel=cfg.loss.pixel,
        pixel_range=cfg.loss.pixel_range,
        aesthetic_on=cfg.loss.aesthetic_on,
        aesthetic_patch=cfg.loss.aesthetic_patch,
    )
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

    start_epoch, global_step = common.resume(model, optimizer, scheduler)
    resumed_from = global_step
    if resumed_from and env.rank == 0:
        # This attempt continues the same MLflow run (a crash, a lost node, or a rerun): the
        # tag names the step it restarted from; the resumed_from_step metric keeps each one.
        tracking.client(uri).set_tag(run_id, "nie.resumed_from_step", str(resumed_from))
    # Wall time of the training loop over all attempts (model cards and `nie zoo export`).
    train_seconds = float((common.restore() or {}).get("train_seconds", 0.0))

    steps_per_epoch = min(len(loader) for loader in loaders.values())
    if cfg.run.steps_per_epoch is not None:
        steps_per_epoch = min(steps_per_epoch, cfg.run.steps_per_epoch)
    if steps_per_epoch < 1:
        raise ValueError(
            f"batch_size {cfg.run.batch_size} x {env.world_size} workers is larger than the "
            f"training set ({len(train_set)} patches); lower run.batch_size or raise data.repeat"
        )
    progress = common.Progress(env, cfg.run.epochs, start_epoch, cfg.run.progress)
    job_dict = config["job"]
    metrics: dict[str, float] = {}
    for epoch in range(start_epoch, cfg.run.epochs):
        model.train()
        for loader in loaders.values():
            if hasattr(loader, "sampler") and hasattr(loader.sampler, "set_epoch"):
                loader.sampler.set_epoch(epoch)
        iterators = {s: iter(loader) for s, loader in loaders.items()}
        schedule = _scale_schedule(scales, steps_per_epoch, cfg.run.seed * 1000 + epoch)
        progress.start_epoch_timer()
        epoch_start = time.monotonic()
        sums = {"loss": 0.0, "pixel": 0.0, "aesthetic": 0.0}
        for step_scale in schedule:
            lr_img, hr_img = next(iterators[step_scale])
            lr_img, hr_img = env.to_device(lr_img), env.to_device(hr_img)
            with env.autocast():
                out = _forward(model, lr_img, step_scale, multi)
                parts = loss_fn(out.float(), hr_img.float())
            optimizer.zero_grad(set_to_none=True)
            parts.total.backward()
            optimizer.step()
            global_step += 1
            # Summed on the device: an .item() per step would wait for the GPU every step.
            sums["loss"] += parts.total.detach()
            sums["pixel"] += parts.pixel.detach()
            sums["aesthetic"] += parts.aesthetic.detach()
            crash_once_at_step(env.rank, global_step, faults, run_folder)
            every = cfg.run.validate_every_steps
            if every and global_step % every == 0 and global_step % steps_per_epoch != 0:
                mid = validate(
                    common.unwrap(model), scorer, valid_set, env, cfg.data.max_valid_images
                )
                if env.rank == 0:
                    tracking.log_metrics(uri, run_id, mid, step=global_step)
        scheduler.step()
        sums = {k: float(v) for k, v in sums.items()}  # one device sync per epoch
        train_seconds += time.monotonic() - epoch_start
        grid = Path(tempfile.mkdtemp(prefix="nie-grid-")) / f"epoch_{epoch + 1:03d}.png"
        val = validate(
            common.unwrap(model),
            scorer,
            valid_set,
            env,
            cfg.data.max_valid_images,
            grid_path=grid if cfg.tracking.log_images else None,
        )
        # Aesthetic terms only when the scorer ran: a logged 0 would read as a perfect score.
        aesthetic = (
            {"train_aesthetic_loss": sums["aesthetic"] / steps_per_epoch}
            if loss_fn.gamma > 0
            else {}
        )
        metrics = {
            "train_loss": sums["loss"] / steps_per_epoch,
            **aesthetic,
            "train_pixel_loss": sums["pixel"] / steps_per_epoch,
            **val,
            "lr": scheduler.get_last_lr()[0],
            "epoch": epoch + 1,
            "global_step": global_step,
            "resumed_from_step": resumed_from,
        }
        metrics.update(
            progress.epoch_done(
                epoch, steps_per_epoch, steps_per_epoch * cfg.run.batch_size, metrics
            )
        )
        metrics["patches_per_s"] = metrics.pop("samples_per_s")
        if env.rank == 0:
            tracking.log_metrics(uri, run_id, metrics, step=global_step)
            if grid.exists():
                tracking.client(uri).log_artifact(run_id, str(grid), artifact_path="validation")
        state = {
            "model_name": cfg.model.name,
            "model_kwargs": model_kwargs(cfg),
            "model": common.unwrap(model).state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": epoch + 1,
            "global_step": global_step,
            "train_seconds": train_seconds,
            "metrics": {k: float(v) for k, v in metrics.items()},
            "config": job_dict,
        }
        common.report(env, metrics, state, job_dict)
    return metrics


# --------------------------------------------------------------------------- driver


def train_enhancer(
    cfg: EnhancerJobConfig, callbacks: list | None = None, *, faults: Faults = NO_FAULTS
) -> common.TrainResult:
    """Train an enhancer on Ray Train and track it in MLflow; see the module docstring.

    Checks the config, data and scorer before starting any worker. Rerunning with the same
    ``run.name`` resumes from the latest checkpoint and continues the same MLflow run.
    ``callbacks``: Ray Train callbacks for the trainer's ``RunConfig`` (e.g. Tune's
    ``TuneReportCallback`` when the job runs as a Tune trial). ``faults``: NIE's tests only.
    """
    cfg = resolve(cfg)
    check(cfg)
    return common.run_job(
        cfg=cfg,
        loop=train_loop,
        job_dict=config_to_dict(cfg),
        registered=registered_name(cfg) if cfg.tracking.register else None,
        tags={
            "nie.job": "enhancer",
            "nie.model": cfg.model.name,
            "nie.task": cfg.data.task,
            "nie.gamma": str(cfg.loss.gamma),
        },
        callbacks=callbacks,
        faults=faults,
    )
