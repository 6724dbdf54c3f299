"""Typed configs of the training jobs; the YAML recipes in ``ray_jobs/recipes/`` mirror them.

Every default carries a comment saying where it comes from. Load with
``load_config(EnhancerJobConfig, "recipe.yaml", ["loss.gamma=0.4"])`` (``nie_core.config``):
unknown keys and wrong types are errors that name the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from nie_core.losses.guards import GamingGuard

from .fault_injection import REMOVED as _TESTS_ONLY

RECIPES = Path(__file__).resolve().parent / "recipes"  # the bundled YAML recipes

# --------------------------------------------------------------------------- shared pieces


@dataclass(frozen=True)
class ScalingSettings:
    num_workers: int = 2  # DDP workers; 2 fills this project's 2-core laptop baseline
    cpus_per_worker: float = 1.0  # CPUs reserved per worker (fractions let Tune pack trials)
    use_gpu: bool | None = None  # None: use GPUs when the cluster has them (nccl), else gloo
    gpus_per_worker: float = 1.0  # only read when GPUs are used
    # Ray placement of the workers: PACK onto as few nodes as possible, SPREAD over nodes.
    placement_strategy: Literal["PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD"] = "PACK"


@dataclass(frozen=True)
class RunSettings:
    name: str = ""  # run name; rerunning with the same name resumes. "" derives one
    storage_path: str = "runs"  # where Ray Train keeps checkpoints (shared FS/S3 on a cluster)
    epochs: int = 10  # passes over the (repeated) training set
    batch_size: int = 16  # per worker; EDSR paper: 16 patches of 48x48
    steps_per_epoch: int | None = None  # cap on steps per epoch (None: the whole loader)
    validate_every_steps: int | None = None  # also validate mid-epoch (None: end of epoch only)
    keep_checkpoints: int = 2  # best-k checkpoints kept by checkpoint_metric
    checkpoint_metric: str = "val_psnr_y"  # metric ranking checkpoints
    checkpoint_mode: Literal["max", "min"] = "max"  # whether bigger is better for that metric
    max_failures: int = 0  # worker crashes survived by restarting from the last checkpoint
    seed: int = 0  # base seed; worker r uses seed + r
    # bf16 autocast + channels_last: "auto" where native (bench/quality_parity.py compares its
    # fine-tunes with float32), "on" always, "off" never (float32 NCHW)
    fast: Literal["auto", "on", "off"] = "auto"
    num_data_workers: int = 0  # DataLoader processes per Train worker (0: load in-process)
    progress: bool = True  # print a progress line per epoch (step rate, ETA)
    REMOVED_KEYS: ClassVar[dict[str, str]] = {"fail_after_step": _TESTS_ONLY}


@dataclass(frozen=True)
class TrackingSettings:
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db
    experiment: str = ""  # MLflow experiment; "" picks nie-enhancer / nie-nima
    register: bool = True  # log the final model and register it in the model registry
    registered_name: str | None = None  # None derives e.g. nie-edsr_baseline-x2-sr-hybrid
    alias: str = "latest-run"  # registry alias set on the new version ("@alias" URIs)
    log_images: bool = True  # PNG grid (input | bicubic | output | reference) per validation
    parent_run_id: str | None = None  # nest this run under a parent (set by Tune sweeps)


# --------------------------------------------------------------------------- enhancer


@dataclass(frozen=True)
class EnhancerModelSettings:
    name: Literal["edsr_baseline", "edsr", "mdsr_baseline", "mdsr"] = "edsr_baseline"
    scales: tuple[int, ...] = (2,)  # EDSR: one scale; MDSR: trained one random scale per batch
    # start from our checkpoint, an official EDSR-PyTorch file, or zoo weights ("nie-photos")
    weights: str | None = None
    n_resblocks: int | None = None  # override the preset's depth (tiny models in tests)
    n_feats: int | None = None  # override the preset's width


@dataclass(frozen=True)
class EnhancerDataSettings:
    root: str = "data/sample/DIV2K"  # DIV2K layout, or a folder of HR images
    valid_root: str | None = None  # validation folder; None: DIV2K_valid_* under root
    task: Literal["sr", "deblur"] = "sr"  # deblur blurs the LR input (report, section 4.2)
    patch_size: int = 48  # LR patch side (EDSR paper: 48, so HR is 96 at x2)
    repeat: int = 20  # random patches per image per epoch (DIV2K has only 800 images)
    cache_dir: str | None = ".nie_cache"  # decoded-image binary cache (report: "binary files")
    blur_sigma: float = 1.6  # Gaussian blur of the deblurring task
    blur_kernel: int = 9  # blur kernel side (odd)
    max_valid_images: int | None = 10  # validate on the first N validation images (None: all)


@dataclass(frozen=True)
class LossSettings:
    pixel: Literal["l2", "l1"] = "l2"  # report: L2
    # Pixel error in 8-bit units, as the report's EDSR-PyTorch (rgb_range 255) measured it, so
    # gamma has the report's scale; 1.0 would let gamma 0.4 swamp the L2 term ~1000x.
    pixel_range: float = 255.0
    gamma: float = 0.0  # weight of (10 - NIMA mean); report: 0.4 for SR, 0.1 for deblurring
    # the frozen scorer (needed when gamma > 0): a nima-job checkpoint, or the zoo's
    # technical-quality NIMA "zoo:nima@nie-quality"
    nima_checkpoint: str | None = None
    allow_untrained_nima: bool = False  # explicit opt-in to a random-weight scorer (tests)
    nima_backbone: str = "mnasnet1_0"  # backbone of the untrained scorer only
    aesthetic_on: Literal["image", "patch"] = "image"  # score each output whole or per patch
    aesthetic_patch: int = 64  # patch side for aesthetic_on=patch
    # remedies against scorer gaming (random views / scales for the scorer, edge anchor, gamma
    # warm-up; nie_core.losses.guards); the defaults are the report's plain loss
    guard: GamingGuard = field(default_factory=GamingGuard)


@dataclass(frozen=True)
class OptimSettings:
    lr: float = 1e-4  # EDSR and the report: Adam, 1e-4
    betas: tuple[float, float] = (0.9, 0.999)  # EDSR paper
    eps: float = 1e-8  # Adam epsilon
    weight_decay: float = 0.0  # report: no weight decay
    lr_decay_epochs: int = 200  # step decay period (EDSR halves every 2e5 iterations)
    lr_decay_factor: float = 0.5  # multiplier at each decay step
    # linear learning-rate warm-up over the first steps: Adam's first updates move every weight
    # by about lr whatever its gradient, which knocks a converged (zoo) model off its optimum
    warmup_steps: int = 0


@dataclass(frozen=True)
class EnhancerJobConfig:
    model: EnhancerModelSettings = field(default_factory=EnhancerModelSettings)
    data: EnhancerDataSettings = field(default_factory=EnhancerDataSettings)
    loss: LossSettings = field(default_factory=LossSettings)
    optim: OptimSettings = field(default_factory=OptimSettings)
    run: RunSettings = field(default_factory=RunSettings)
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)


# --------------------------------------------------------------------------- nima


@dataclass(frozen=True)
class NimaModelSettings:
    backbone: str = "mnasnet1_0"  # report: MnasNet; also mnasnet0_5, mobilenet_v2
    # None, "imagenet" (torchvision cache), a checkpoint path, or a zoo NIMA to fine-tune
    # ("zoo:nima@nie-quality": the demo's scorer hardening)
    weights: str | None = None
    dropout: float = 0.75  # NIMA paper
    # side the scorer resizes images to when scoring; None scores them as they are (a
    # technical-quality scorer trained on unresized crops must see the pixels unchanged)
    input_size: int | None = 224
    # parameter-name prefixes to train (e.g. ["features._blocks.15", "head"]); every other
    # parameter and BatchNorm statistic keeps its initial (ImageNet) value. Empty: train all
    train_only: tuple[str, ...] = ()


@dataclass(frozen=True)
class NimaDataSettings:
    root: str = "data/sample/AVA"  # holds AVA.txt and images/
    csv: str | None = None  # generic CSV (path + ten counts) instead of AVA.txt
    split_file: str | None = None  # official test-id list; None: seeded 80/20 split
    val_fraction: float = 0.2  # report: 80/20
    resize: int = 256  # NIMA paper: resize to 256x256
    crop: int = 224  # then random crop (report used 192)
    max_valid_images: int | None = None  # cap on validation images (None: all)


@dataclass(frozen=True)
class NimaOptimSettings:
    lr: float = 1e-4  # report: Adam 1e-4
    backbone_lr: float | None = None  # separate backbone lr (None: same as lr)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam defaults
    weight_decay: float = 0.0  # no decay
    lr_decay: float = 0.95  # exponential decay per epoch (report: "exponential decay")


@dataclass(frozen=True)
class NimaJobConfig:
    model: NimaModelSettings = field(default_factory=NimaModelSettings)
    data: NimaDataSettings = field(default_factory=NimaDataSettings)
    optim: NimaOptimSettings = field(default_factory=NimaOptimSettings)
    run: RunSettings = field(
        default_factory=lambda: RunSettings(
            batch_size=32, checkpoint_metric="val_emd", checkpoint_mode="min"
        )
    )
    scaling: ScalingSettings = field(default_factory=ScalingSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)


# --------------------------------------------------------------------------- tune


@dataclass(frozen=True)
class TuneJobConfig:
    """A Ray Tune sweep whose trials are enhancer jobs (``nie tune``).

    ``space`` maps dotted ``EnhancerJobConfig`` keys to one distribution each:
    ``{uniform: [lo, hi]}``, ``{loguniform: [lo, hi]}``, ``{randint: [lo, hi]}`` (inclusive),
    ``{choice: [a, b, ...]}`` or ``{grid: [a, b, ...]}``. It is merged over the default space
    (``loss.gamma`` uniform on [0, 1], ``optim.lr`` log-uniform on [1e-5, 1e-3]); ``null`` drops
    a default key. Objectives name a metric: ``psnr`` (val_psnr_y), ``nima`` (val_nima_mean),
    ``ssim`` (val_ssim_y), ``psnr_rgb`` (val_psnr_rgb) or one of those metric names; all are
    maximised.
    """

    job: EnhancerJobConfig = field(default_factory=EnhancerJobConfig)  # every trial's base config
    # dotted key (or section) -> distribution (or {field: distribution}); merged over the default
    space: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    strategy: Literal["asha", "pareto", "grid"] = "asha"  # ASHA | Optuna multi-objective | grid
    objective: str | dict[str, float] = "psnr"  # asha/grid, and the best config: a weighted sum
    pareto_objectives: tuple[str, str] = ("psnr", "nima")  # fidelity vs aesthetics, both maximised
    num_samples: int | None = None  # trials (None: 8); with grid values: passes over the grid (1)
    max_concurrent_trials: int = 2  # 2 trials of 1 CPU fill the 2-core baseline
    trial_cpus: float = 0.0  # CPUs of each trial's driver actor (its Train workers use scaling)
    asha_grace_epochs: int = 1  # ASHA: epochs every trial runs before it can be stopped
    asha_reduction_factor: int = 2  # ASHA: keep 1/factor of the trials at each rung
    seed: int = 0  # seed of Optuna's sampler
    name: str = ""  # sweep name; rerunning with the same name resumes. "" derives one
    storage_path: str = "runs/tune"  # the sweep lives in storage_path/name
    experiment: str = "nie-tune"  # MLflow experiment of the parent run and its trial runs
    REMOVED_KEYS: ClassVar[dict[str, str]] = {"fail_first_trials": _TESTS_ONLY}
