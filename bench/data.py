"""Data benchmark: training patches per second from the binary image cache against decoding PNGs.

A DIV2K-layout folder is written to a temporary directory: HR images of DIV2K's typical size,
2040 x 1356, made from scikit-image photographs (resized, with a little seeded noise so that the
PNGs compress like photographs rather than like smooth upscales), and their bicubic x2 LR images
in ``DIV2K_train_LR_bicubic/X2``. ``nie_core.data.div2k.DIV2K`` then serves random 48 x 48 LR /
96 x 96 HR patches with flips and rotations, once decoding both PNGs per patch
(``cache_dir=None``) and once from ``BinaryImageCache`` (memory-mapped ``.npy``; built once
before timing, its cost reported separately). The two run in interleaved rounds.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.cli import run_and_report
from bench.photos import photo
from bench.report import BenchResult, Target
from bench.timing import time_interleaved, unsettled_note

HR_SIZE = (2040, 1356)  # width, height: DIV2K's most common size
PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg")
SPEEDUP_TARGET = 5.0


def write_div2k_like(root: Path, count: int, seed: int = 0) -> list[Path]:
    """``count`` HR PNGs of 2040 x 1356 and their x2 LR PNGs in DIV2K's layout under ``root``."""
    from PIL import Image

    from nie_core.data.degradations import bicubic_downsample

    rng = np.random.default_rng(seed)
    hr_dir = root / "DIV2K_train_HR"
    lr_dir = root / "DIV2K_train_LR_bicubic" / "X2"
    hr_dir.mkdir(parents=True)
    lr_dir.mkdir(parents=True)
    written = []
    for i in range(count):
        source = Image.fromarray(photo(PHOTOS[i % len(PHOTOS)]))
        hr = np.asarray(source.resize(HR_SIZE, Image.Resampling.BICUBIC), dtype=np.float32)
        hr = np.clip(hr + rng.normal(0.0, 2.0, hr.shape), 0, 255).astype(np.uint8)
        stem = f"{i + 1:04d}"
        Image.fromarray(hr).save(hr_dir / f"{stem}.png")
        Image.fromarray(bicubic_downsample(hr, 2)).save(lr_dir / f"{stem}x2.png")
        written += [hr_dir / f"{stem}.png", lr_dir / f"{stem}x2.png"]
    return written


def run(quick: bool = False) -> BenchResult:
    from nie_core.data.div2k import DIV2K

    images = 2 if quick else 4
    png_patches, cached_patches = (4, 100) if quick else (8, 400)
    with tempfile.TemporaryDirectory(prefix="nie-bench-data-") as tmp:
        root = Path(tmp) / "DIV2K"
        files = write_div2k_like(root, images)
        png_mb = sum(f.stat().st_size for f in files if "HR" in f.parent.name) / images / 1e6
        common = dict(split="train", scale=2, patch_size=48, augment=True, repeat=1000)
        from_png = DIV2K(root, cache_dir=None, **common)
        cached = DIV2K(root, cache_dir=Path(tmp) / "cache", **common)
        start = time.perf_counter()
        for i in range(images):  # decode once into the cache
            cached[i]
        cache_build_s = time.perf_counter() - start

        def take(dataset: DIV2K, count: int):
            counter = iter(range(10**9))

            def go() -> None:
                for _ in range(count):
                    lr, hr = dataset[next(counter) % len(dataset)]
                    assert lr.shape == (3, 48, 48) and hr.shape == (3, 96, 96)

            return go

        timings = time_interleaved(
            {"png": take(from_png, png_patches), "cache": take(cached, cached_patches)},
            repeats=2 if quick else 3,
            max_seconds=10 if quick else 30,
        )
    rate = {
        "png": png_patches / timings["png"].best,
        "cache": cached_patches / timings["cache"].best,
    }
    speedup = rate["cache"] / rate["png"]
    rows = [
        ["decode HR + LR PNG per patch (cache_dir=None)", rate["png"], 1000 / rate["png"], "1.00x"],
        ["BinaryImageCache (memory-mapped .npy)", rate["cache"], 1000 / rate["cache"],
         f"{speedup:.0f}x"],
    ]  # fmt: skip
    return BenchResult(
        name="data",
        title="Data: DIV2K patches/s, binary cache vs PNG decoding (x2, 48x48 LR patches)",
        headers=["loader", "patches/s", "ms/patch", "speed-up"],
        rows=rows,
        targets=[Target("cached loader / PNG decoding", round(speedup, 1), SPEEDUP_TARGET, ">=")],
        notes=[
            f"{images} HR images of {HR_SIZE[0]}x{HR_SIZE[1]} (PNG {png_mb:.1f} MB each on "
            "average) with their LR x2 PNGs; one process, no DataLoader workers; random crop + "
            "flips/rotation + to_tensor included in both.",
            f"Building the cache (decoding each image once and writing .npy) took "
            f"{cache_build_s:.1f} s for {images} images.",
            *unsettled_note(timings),
        ],
        details={"patches_per_s": rate, "speedup": speedup, "cache_build_seconds": cache_build_s,
                 "png_megabytes_per_hr_image": png_mb},
    )  # fmt: skip


def main(argv: Sequence[str] | None = None) -> BenchResult:
    return run_and_report(run, argv, "Patches/s from the binary cache vs PNG decoding")


if __name__ == "__main__":
    main()
