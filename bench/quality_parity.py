"""Quality parity of the training fast path: does training under bf16 autocast + channels_last
give as good a model as training in float32?

The zoo's EDSR-baseline x2 (the demo's start) is fine-tuned for a few steps with the demo's L2
recipe (``ray_jobs/recipes/demo_edsr_l2.yaml``: its data, loss, optimiser and warm-up) twice per
seed, once in float32 NCHW and once on the fast path, through the job's own pieces
(``ray_jobs.quick_finetune.quick_finetune``: one process, batch 8 = the demo's 2 workers x 4;
the same seed gives both runs the same patches in the same order). Every model, and the zoo
start, is then measured in float32 with ``nie_core.evaluation.evaluate_images`` (the ``nie eval``
protocol) on the unseen photographs (``data/photos/unseen_crops_384``: centre, smoothest and most
detailed crops of the held-out photographs, which no training step sees). The target: the fast
path's PSNR-Y within 0.05 dB of float32's (the difference fast minus float32, mean over the
seeds, in absolute value), as the inference benchmark asks of its fast path. A fast path that
loses quality is not a fast path.

NIE's jobs train in float32 unless ``run.fast=on`` asks for bf16 autocast
(``ray_jobs.worker.WorkerEnv``); this row is what that choice rests on. On a CPU without native
bf16 (:func:`bench.machine.bf16_native`) bf16 is emulated and the fast path is off
(``fast_path_supported`` is False), so there is nothing to compare: the row is reported as not
applicable and nothing is trained.

    python -m bench.quality_parity [--quick] [--out DIR]

Needs the photo set (``nie data photos data/photos``); the unseen crops are written from it
when missing (``nie_core.data.photos.unseen.write_unseen_crops``).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from bench.cli import run_and_report
from bench.machine import NO_BF16, NOT_APPLICABLE_NO_BF16, bf16_native
from bench.report import BenchResult, Target
from bench.training import L2_RECIPE, recipe
from nie_core.evaluation import PROTOCOL, evaluate_images, list_images
from nie_core.models import create_model
from ray_jobs.config import EnhancerJobConfig
from ray_jobs.enhancer import model_kwargs
from ray_jobs.quick_finetune import quick_finetune

ROOT = Path(__file__).resolve().parent.parent
PHOTOS = ROOT / "data" / "photos"
UNSEEN = PHOTOS / "unseen_crops_384"
STEPS, QUICK_STEPS = 30, 3
QUICK_IMAGES = 2  # a quick run evaluates only the first crops
SEEDS = (0, 1)
BATCH = 8  # the demo's patches per step: 2 workers x 4
PARITY_TARGET_DB = 0.05
METRICS = ("psnr_y", "niqe", "lr_psnr_y")
TITLE = "Training quality parity: bf16 fast path (run.fast=on) vs float32 fine-tune, unseen photos"
HEADERS = ["model", "PSNR-Y dB", "NIQE (lower better)", "LR-consistency dB", "fine-tune s"]
TARGET_NAME = "bf16 training (run.fast=on): PSNR-Y change from float32 training, unseen photos"


def rooted(cfg: EnhancerJobConfig) -> EnhancerJobConfig:
    """``cfg`` with its relative data paths taken from the repository root (the recipes name
    them from there), so that the benchmark runs from any folder."""

    def absolute(path: str | None) -> str | None:
        return path if path is None or Path(path).is_absolute() else str(ROOT / path)

    data = dataclasses.replace(
        cfg.data,
        root=absolute(cfg.data.root),
        valid_root=absolute(cfg.data.valid_root),
        cache_dir=absolute(cfg.data.cache_dir),
    )
    return dataclasses.replace(cfg, data=data)


def unseen_images(quick: bool) -> list[Path]:
    """The unseen crops (written from the photo set when missing); the first few when quick."""
    if not UNSEEN.is_dir():
        if not (PHOTOS / "manifest.json").is_file():
            raise FileNotFoundError(
                f"{PHOTOS} has no photo set: build it first (nie data photos data/photos)"
            )
        from nie_core.data.photos.unseen import write_unseen_crops

        write_unseen_crops(PHOTOS, UNSEEN)
    images = list_images(UNSEEN)
    return images[:QUICK_IMAGES] if quick else images


def _mean(values: Sequence[float]) -> float:
    return statistics.fmean(values)


def not_applicable() -> BenchResult:
    """The result on a CPU without native bf16: nothing trained, the target not applicable."""
    return BenchResult(
        name="quality_parity",
        title=TITLE,
        headers=HEADERS,
        rows=[[f"fast path (bf16 autocast + channels_last): {NO_BF16}", *["-"] * 4]],
        targets=[
            Target.skipped(TARGET_NAME, PARITY_TARGET_DB, "<=", NOT_APPLICABLE_NO_BF16, " dB")
        ],
        notes=[
            f"Fast path {NO_BF16}: NIE's jobs train in float32 here (fast_path_supported is "
            "False), so the fast path's quality has nothing to be compared with."
        ],
        details={"bf16_native": False},
    )


def run(quick: bool = False) -> BenchResult:
    if not bf16_native("cpu"):
        return not_applicable()
    cfg = rooted(recipe(L2_RECIPE))
    steps = QUICK_STEPS if quick else STEPS
    scale = cfg.model.scales[0]
    images = unseen_images(quick)
    models: dict[str, torch.nn.Module] = {
        "zoo": create_model(cfg.model.name, weights=cfg.model.weights, **model_kwargs(cfg)).eval()
    }
    train_seconds: dict[str, float] = {}
    for seed in SEEDS:
        for path, fast in (("float32", False), ("fast", True)):
            started = time.perf_counter()
            models[f"{path} seed {seed}"] = quick_finetune(
                cfg, steps, batch=BATCH, seed=seed, fast=fast
            )
            train_seconds[f"{path} seed {seed}"] = time.perf_counter() - started
    table = evaluate_images(images, models, scale)  # every model in float32
    means = {
        row: {m: _mean(values[m]) for m in METRICS if values.get(m)}
        for row, values in table.values.items()
    }

    def over_seeds(path: str, metric: str) -> float:
        return _mean([means[f"{path} seed {s}"][metric] for s in SEEDS])

    change = {
        m: {s: means[f"fast seed {s}"][m] - means[f"float32 seed {s}"][m] for s in SEEDS}
        for m in METRICS
    }
    seed_spread = {m: means[f"float32 seed {SEEDS[1]}"][m] - means[f"float32 seed {SEEDS[0]}"][m]
                   for m in METRICS}  # fmt: skip
    psnr_change = _mean(list(change["psnr_y"].values()))

    def seconds(path: str) -> float:
        return _mean([train_seconds[f"{path} seed {s}"] for s in SEEDS])

    rows: list[list[Any]] = [
        ["bicubic", *(f"{means['bicubic'][m]:.3f}" for m in METRICS), "-"],
        ["zoo EDSR-baseline x2 (the start)", *(f"{means['zoo'][m]:.3f}" for m in METRICS), "-"],
        [f"float32 fine-tune (mean of {len(SEEDS)} seeds)",
         *(f"{over_seeds('float32', m):.3f}" for m in METRICS), seconds("float32")],
        [f"fast fine-tune (bf16 autocast + channels_last; mean of {len(SEEDS)} seeds)",
         *(f"{over_seeds('fast', m):.3f}" for m in METRICS), seconds("fast")],
        ["fast minus float32 (mean over seeds)",
         *(f"{_mean(list(change[m].values())):+.4f}" for m in METRICS), "-"],
        [f"for scale: float32 seed {SEEDS[1]} minus seed {SEEDS[0]}",
         *(f"{seed_spread[m]:+.4f}" for m in METRICS), "-"],
    ]  # fmt: skip
    per_seed = ", ".join(f"seed {s} {change['psnr_y'][s]:+.4f} dB" for s in SEEDS)
    notes = [
        f"{steps} steps of {BATCH} patches from the zoo checkpoint ({cfg.model.weights}) with "
        f"{L2_RECIPE.name} (lr {cfg.optim.lr:g}, warm-up {cfg.optim.warmup_steps} steps), "
        f"seeds {list(SEEDS)}: ray_jobs.quick_finetune (the job's dataset, loss and train_step "
        "in this process); the same seed gives both precisions the same patches.",
        f"Evaluated in float32 on {len(images)} unseen crops ({UNSEEN.relative_to(ROOT)}), x"
        f"{scale}, with nie_core.evaluation (the nie eval protocol); means over the images. "
        f"Protocol: {PROTOCOL}.",
        f"PSNR-Y change fast minus float32 per seed: {per_seed}. The last row, two float32 "
        "runs that differ only in their seed, shows how far a change of patches alone moves "
        "the numbers; the fine-tune column is wall-clock seconds per run (a loaded machine "
        "makes it noisy; bench/training.py measures speed).",
        "NIE's jobs train in float32 (channels_last where the fast path is native) unless "
        "run.fast=on asks for bf16 autocast (ray_jobs.worker.WorkerEnv): this row says whether "
        "bf16 training keeps the quality of float32 training.",
    ]
    widest = max(abs(c) for c in change["psnr_y"].values())
    if widest > PARITY_TARGET_DB:
        notes.append(
            f"A single seed's change reaches {widest:.3f} dB, beyond the limit: rounding "
            "differences move a short fine-tune's trajectory about as much as another draw of "
            f"patches does (float32 seed to seed: {seed_spread['psnr_y']:+.3f} dB), so the "
            f"mean over {len(SEEDS)} seeds is a noisy verdict."
        )
    return BenchResult(
        name="quality_parity",
        title=TITLE,
        headers=HEADERS,
        rows=rows,
        targets=[Target(TARGET_NAME, round(abs(psnr_change), 4), PARITY_TARGET_DB, "<=", " dB")],
        notes=notes,
        details={
            "bf16_native": True,
            "recipe": L2_RECIPE.name,
            "steps": steps,
            "batch": BATCH,
            "seeds": list(SEEDS),
            "images": [p.name for p in images],
            "means": means,
            "fast_minus_float32": {m: {str(s): v for s, v in c.items()} for m, c in change.items()},
            "psnr_y_change_mean": psnr_change,
            "float32_seed_spread": seed_spread,
            "train_seconds": train_seconds,
            "per_image": table.values,
        },
    )


def main(argv: Sequence[str] | None = None) -> BenchResult:
    return run_and_report(run, argv, "Quality parity: fast-path vs float32 fine-tune")


if __name__ == "__main__":
    main()
