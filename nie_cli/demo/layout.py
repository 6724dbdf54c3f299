"""Where ``nie demo`` puts everything under its working directory, and the job configs of its
stages (the bundled recipes with their paths moved under it; ``--fast``: a few steps)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nie_core.config import config_from_dict, load_config
from ray_jobs.config import RECIPES, EnhancerJobConfig, NimaJobConfig, TuneJobConfig

# The frozen scorer of the hybrid loss, of validation and of the summary: the zoo's NIMA.
SCORER = "zoo:nima@nie-quality"
SCORER_BACKBONE = "efficientnet_lite0"
VALID_CROP = 384  # the summary and validation use centre crops of the validation photographs

# --fast: a few optimizer steps on the bundled sample set, one worker each (tests, smoke runs).
FAST_ENHANCER = (
    "data.patch_size=16", "data.repeat=4", "data.max_valid_images=2", "run.epochs=2",
    "run.steps_per_epoch=2", "run.batch_size=4", "scaling.num_workers=1",
)  # fmt: skip
FAST_SWEEP_GAMMAS = [0.0, 0.4]
FAST_SWEEP = (*(f"job.{o}" for o in FAST_ENHANCER), "job.run.epochs=1")
FAST_NIMA = ("run.epochs=1", "run.batch_size=4", "run.steps_per_epoch=2", "data.resize=96", "data.crop=64",
             "data.max_valid_images=4")  # fmt: skip

# The scorer-hardening rating set (nie data ratings with --rate-outputs): crops of the training
# photographs clean and bicubic-x2, the L2 model's x2 outputs rated as good super-resolution and
# the gaming probe's rated as degraded (nie_core.data.quality_ratings.RatedOutputs).
HARDENING_CROPS_PER_PHOTO = 2
HARDENING_LEVELS = ("clean", "bicubic2")
L2_OUTPUT_SCORE = 6.0  # between clean (7.0) and bicubic x2 (5.4): what x2 SR should reach
GAMED_OUTPUT_SCORE = 4.4  # as bicubic x3: patterns the scorer liked are a degradation


# --------------------------------------------------------------------------- where things go


@dataclass(frozen=True)
class DemoLayout:
    """Everything the demo writes, under one working directory. ``fast`` uses the bundled
    sample set (scikit-image photographs only, nothing fetched) instead of the photo set."""

    workdir: Path
    fast: bool = False

    @property
    def data(self) -> Path:
        return self.workdir / "data" / "sample"

    @property
    def photos(self) -> Path:
        return self.workdir / "data" / "photos"

    @property
    def train_root(self) -> Path:
        """The DIV2K-layout training set."""
        return (self.data if self.fast else self.photos) / "DIV2K"

    @property
    def valid_root(self) -> Path:
        """Folder of HR validation images (centre crops of the validation photographs)."""
        if self.fast:
            return self.data / "DIV2K" / "DIV2K_valid_HR"
        return self.photos / f"valid_crops_{VALID_CROP}"

    @property
    def unseen_root(self) -> Path:
        """The unseen evaluation crops of the held-out photographs (the summary's images)."""
        if self.fast:
            return self.valid_root
        return self.photos / f"unseen_crops_{VALID_CROP}"

    @property
    def hardening(self) -> Path:
        """The scorer-hardening rating set."""
        return self.workdir / "data" / "hardening"

    @property
    def runs(self) -> Path:
        return self.workdir / "runs"

    @property
    def cache(self) -> Path:
        return self.workdir / ".nie_cache"

    @property
    def report(self) -> Path:
        return self.runs / "report"

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.workdir / 'mlflow.db'}"


def _path_overrides(layout: DemoLayout, prefix: str = "", scorer: str = SCORER) -> list[str]:
    """Absolute paths under the working directory (Ray workers do not share our cwd);
    ``scorer``: the hybrid loss's frozen NIMA (the zoo's, or the hardened checkpoint)."""
    return [
        f"{prefix}data.root={layout.train_root}",
        f"{prefix}data.valid_root={layout.valid_root}",
        f"{prefix}data.cache_dir={layout.cache}",
        f"{prefix}tracking.tracking_uri={layout.tracking_uri}",
        f"{prefix}loss.nima_checkpoint={scorer}",
    ]


def enhancer_config(recipe: str, layout: DemoLayout, scorer: str = SCORER) -> EnhancerJobConfig:
    """One of the demo's enhancer jobs (``recipes/<recipe>``) with its paths under the workdir,
    trained against (and validated with) ``scorer``."""
    return load_config(
        EnhancerJobConfig,
        RECIPES / recipe,
        [
            *_path_overrides(layout, scorer=scorer),
            f"run.storage_path={layout.runs}",
            *(FAST_ENHANCER if layout.fast else ()),
        ],
    )


def nima_config(layout: DemoLayout) -> NimaJobConfig:
    """The demo's scorer hardening (``recipes/demo_nima_hardening.yaml``) under the workdir."""
    return load_config(
        NimaJobConfig,
        RECIPES / "demo_nima_hardening.yaml",
        [
            f"data.root={layout.hardening}",
            f"data.csv={layout.hardening / 'ratings.csv'}",
            f"data.split_file={layout.hardening / 'valid.txt'}",
            f"tracking.tracking_uri={layout.tracking_uri}",
            f"run.storage_path={layout.runs}",
            *(FAST_NIMA if layout.fast else ()),
        ],
    )


def sweep_config(layout: DemoLayout, scorer: str = SCORER) -> TuneJobConfig:
    """The demo's gamma sweep (``recipes/demo_gamma_sweep.yaml``) against ``scorer``; --fast:
    two gammas."""
    import yaml

    data = yaml.safe_load((RECIPES / "demo_gamma_sweep.yaml").read_text(encoding="utf-8"))
    if layout.fast:
        data["space"]["loss.gamma"] = {"grid": FAST_SWEEP_GAMMAS}
    return config_from_dict(
        TuneJobConfig,
        data,
        [
            *_path_overrides(layout, prefix="job.", scorer=scorer),
            f"storage_path={layout.runs / 'tune'}",
            *(FAST_SWEEP if layout.fast else ()),
        ],
    )


def prepare_data(layout: DemoLayout) -> None:
    """The training and validation images: the bundled sample set (--fast), else the photo set
    (scikit-image + Debian's lomiri-wallpapers photographs, ``nie data photos``) and the centre
    crops of its validation photographs."""
    if layout.fast:
        from nie_core.data.sample import build_sample_data

        build_sample_data(layout.data)
        return
    from nie_core.data.photos import build_photo_set, write_centre_crops
    from nie_core.data.photos.unseen import write_unseen_crops

    build_photo_set(layout.photos, log=lambda line: None)
    write_centre_crops(layout.photos / "DIV2K" / "DIV2K_valid_HR", layout.valid_root, VALID_CROP)
    write_unseen_crops(layout.photos, layout.unseen_root, VALID_CROP)
