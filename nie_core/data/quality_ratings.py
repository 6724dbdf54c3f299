"""Synthetic technical-quality ratings of real photographs, for training a NIMA scorer.

THESE RATINGS ARE SYNTHETIC: nobody voted. Each rated image is a crop of a real photograph
(from a DIV2K-layout set such as ``nie data photos``) either left clean or degraded in one of
the ways that matter for restoration, and its ten "vote counts" are a discretised Gaussian around
a mean score fixed by the degradation (:data:`QUALITY_LEVELS`): clean 7.0; bicubic down-and-up
x2 / x3 / x4 5.4 / 4.4 / 3.4; Gaussian blur, Gaussian noise and JPEG at three strengths; reduced
contrast at two. A NIMA trained on them measures technical quality (sharpness, noise,
compression, contrast), not human aesthetic taste; the AVA path stays for that.

Layout written (read by ``nie_core.data.ava.AVA`` with ``csv=`` and ``split_file=``)::

    out_dir/ratings.csv       header ``path,c1..c10``; one row per image, paths relative
    out_dir/valid.txt         the rows of the validation split (crops of validation photos)
    out_dir/images/<photo>_<crop>_<level>.png
    out_dir/manifest.json     arguments and the file list of the last build

The split follows the photo set's: crops of ``DIV2K_train_HR`` photos train, crops of
``DIV2K_valid_HR`` photos validate, so no photograph is on both sides.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch.nn.functional as F
from PIL import Image

from nie_core.data.degradations import (
    add_gaussian_noise,
    bicubic_downsample,
    gaussian_blur,
    jpeg_compress,
    reduce_contrast,
)
from nie_core.data.images import read_image, save_image, to_tensor, to_uint8

__all__ = [
    "QUALITY_LEVELS",
    "QualityLevel",
    "RatedOutputs",
    "build_quality_ratings",
    "degrade",
    "expected_votes",
]

MANIFEST_VERSION = 1
VOTE_SPREAD = 1.0  # standard deviation of the synthetic vote distribution, in score units
VIRTUAL_VOTERS = 1000  # counts are the expected votes of this many voters (no sampling noise)


@dataclass(frozen=True)
class QualityLevel:
    """One degradation: ``kind`` with parameter ``param``, rated ``mean_score`` on 1..10."""

    name: str
    kind: str  # clean | bicubic | blur | noise | jpeg | contrast
    param: float  # scale, blur sigma (px), noise sigma (8-bit levels), JPEG quality, contrast
    mean_score: float


QUALITY_LEVELS: tuple[QualityLevel, ...] = (
    QualityLevel("clean", "clean", 0.0, 7.0),
    # bicubic2 is what x2 super-resolution starts from
    QualityLevel("bicubic2", "bicubic", 2, 5.4),
    QualityLevel("bicubic3", "bicubic", 3, 4.4),
    QualityLevel("bicubic4", "bicubic", 4, 3.4),
    QualityLevel("blur1", "blur", 0.7, 6.0),
    QualityLevel("blur2", "blur", 1.2, 5.0),
    QualityLevel("blur3", "blur", 2.0, 4.0),
    QualityLevel("noise1", "noise", 5.0, 6.0),
    QualityLevel("noise2", "noise", 12.0, 5.0),
    QualityLevel("noise3", "noise", 25.0, 4.0),
    QualityLevel("jpeg1", "jpeg", 40, 6.0),
    QualityLevel("jpeg2", "jpeg", 20, 5.0),
    QualityLevel("jpeg3", "jpeg", 8, 4.0),
    QualityLevel("contrast1", "contrast", 0.6, 6.0),
    QualityLevel("contrast2", "contrast", 0.35, 5.0),
)


@dataclass(frozen=True)
class RatedOutputs:
    """An enhancer whose outputs join the rating set, rated ``mean_score``: the scorer-hardening
    source. Each crop is downscaled by ``scale`` with the project's bicubic and enhanced by the
    model at ``model`` (a checkpoint file or folder, or a ``zoo:`` URI); e.g. the outputs of a
    model that gamed its scorer, rated as degraded, teach the scorer its blind spot."""

    name: str  # level name in the file names, e.g. "gamed"
    model: str  # checkpoint path or zoo: URI of an enhancer of ``scale``
    mean_score: float  # the synthetic rating of its outputs, on 1..10
    scale: int = 2


def _enhancer_outputs(
    outputs: Sequence[RatedOutputs],
) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """name -> function uint8 crop -> uint8 output of the enhancer on its bicubic downscale."""
    from nie_core.checkpoint import load_model
    from nie_core.inference import enhance
    from nie_core.models.zoo import ZOO_PREFIX, load_zoo_uri

    functions = {}
    for rated in outputs:
        zoo = rated.model.startswith(ZOO_PREFIX)
        model = (load_zoo_uri(rated.model) if zoo else load_model(rated.model)).eval()

        def run(square: np.ndarray, model=model, scale=rated.scale) -> np.ndarray:
            lr = to_tensor(bicubic_downsample(square, scale))[None]
            return to_uint8(enhance(model, lr, scale=scale, fast=False)[0].clamp(0, 1))

        functions[rated.name] = run
    return functions


def expected_votes(mean: float, spread: float = VOTE_SPREAD) -> list[int]:
    """Ten vote counts (scores 1..10) of :data:`VIRTUAL_VOTERS` voters whose scores follow a
    Gaussian of ``mean`` and ``spread`` discretised on 1..10; rounded, never all zero."""
    scores = np.arange(1, 11, dtype=np.float64)
    weights = np.exp(-((scores - mean) ** 2) / (2.0 * spread**2))
    counts = np.rint(VIRTUAL_VOTERS * weights / weights.sum()).astype(int)
    return counts.tolist()


def degrade(image: np.ndarray, level: QualityLevel, rng: np.random.Generator) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (H, W, 3) degraded as ``level`` says. ``bicubic`` is the
    project's bicubic downscale followed by torch's bicubic upscale, the same baseline that
    validation and ``nie eval`` compare against; H and W must be multiples of the scale."""
    if level.kind == "clean":
        return image
    if level.kind == "bicubic":
        scale = int(level.param)
        if image.shape[0] % scale or image.shape[1] % scale:
            raise ValueError(f"image {image.shape[:2]} is not a multiple of scale {scale}")
        small = to_tensor(bicubic_downsample(image, scale))[None]
        up = F.interpolate(small, scale_factor=scale, mode="bicubic", align_corners=False)
        return to_uint8(up[0].clamp(0, 1))
    if level.kind == "blur":
        sigma = float(level.param)
        return gaussian_blur(image, sigma, 2 * int(np.ceil(3 * sigma)) + 1)
    if level.kind == "noise":
        return add_gaussian_noise(image, float(level.param), rng)
    if level.kind == "jpeg":
        return jpeg_compress(image, int(level.param))
    if level.kind == "contrast":
        return reduce_contrast(image, float(level.param))
    raise ValueError(f"unknown degradation kind {level.kind!r}")


def _random_crops(
    photo: np.ndarray, size: int, count: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """``count`` random ``size`` squares, each from the photo shrunk by a random factor in
    [0.5, 1] (Lanczos), so that crops show the scene at several scales."""
    crops = []
    for _ in range(count):
        factor = float(rng.uniform(0.5, 1.0))
        height, width = photo.shape[:2]
        new = (max(size, round(width * factor)), max(size, round(height * factor)))
        shrunk = photo
        if new != (width, height):
            shrunk = np.asarray(Image.fromarray(photo).resize(new, Image.Resampling.LANCZOS))
        top = int(rng.integers(0, shrunk.shape[0] - size + 1))
        left = int(rng.integers(0, shrunk.shape[1] - size + 1))
        crops.append(np.ascontiguousarray(shrunk[top : top + size, left : left + size]))
    return crops


def _photos(div2k_root: Path, split: str) -> list[Path]:
    folder = div2k_root / f"DIV2K_{split}_HR"
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} does not exist: expected a DIV2K-layout photo set")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png")


def build_quality_ratings(
    div2k_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    crop: int = 168,
    crops_per_photo: int = 6,
    seed: int = 0,
    force: bool = False,
    levels: Sequence[str] | None = None,
    outputs: Sequence[RatedOutputs] = (),
) -> dict[str, str]:
    """Write the synthetic rating set (module docstring) for the photos under ``div2k_root``.

    ``crop``: side of the rated squares, a multiple of 12 (so x2/x3/x4 divide it). Returns the
    paths ``csv``, ``split_file`` and ``images``. Idempotent: returns at once when the manifest
    holds the same arguments and every file exists; ``force`` rebuilds. ``levels``: names of
    the :data:`QUALITY_LEVELS` to write (None: all). ``outputs``: enhancers whose outputs are
    rated too (:class:`RatedOutputs`, the scorer-hardening source).
    """
    chosen = [lv for lv in QUALITY_LEVELS if levels is None or lv.name in levels]
    if levels is not None and (unknown := set(levels) - {lv.name for lv in QUALITY_LEVELS}):
        raise ValueError(f"unknown quality levels {sorted(unknown)}")
    names = [lv.name for lv in chosen] + [o.name for o in outputs]
    if len(set(names)) != len(names):
        raise ValueError(f"level and output names must be distinct, got {names}")
    if crop < 48 or crop % 12:
        raise ValueError(f"crop must be a multiple of 12 and >= 48, got {crop}")
    if crops_per_photo < 1:
        raise ValueError(f"crops_per_photo must be >= 1, got {crops_per_photo}")
    div2k_root, out_dir = Path(div2k_root).resolve(), Path(out_dir).resolve()
    train, valid = _photos(div2k_root, "train"), _photos(div2k_root, "valid")
    if not train or not valid:
        raise ValueError(f"{str(div2k_root)!r} needs photos in both DIV2K_train_HR and _valid_HR")
    paths = {
        "csv": str(out_dir / "ratings.csv"),
        "split_file": str(out_dir / "valid.txt"),
        "images": str(out_dir / "images"),
    }
    args = {
        "div2k_root": str(div2k_root),
        "photos": [p.name for p in train + valid],
        "crop": crop,
        "crops_per_photo": crops_per_photo,
        "seed": seed,
        "levels": [level.__dict__ for level in chosen],
        "outputs": [o.__dict__ for o in outputs],
        "version": MANIFEST_VERSION,
    }
    manifest_path = out_dir / "manifest.json"
    if manifest_path.is_file() and not force:
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        if previous.get("args") == args and all(
            (out_dir / f).is_file() for f in previous.get("files", [])
        ):
            return paths
        manifest_path.unlink()
    elif manifest_path.exists():
        manifest_path.unlink()

    rng = np.random.default_rng(seed)
    enhancers = _enhancer_outputs(outputs)
    rows, valid_rows = [], []
    for split, photos in (("train", train), ("valid", valid)):
        for photo_path in photos:
            photo = read_image(photo_path)
            for index, square in enumerate(_random_crops(photo, crop, crops_per_photo, rng)):
                rated = [(lv.name, lv.mean_score, lambda sq, lv=lv: degrade(sq, lv, rng))
                         for lv in chosen]  # fmt: skip
                rated += [(o.name, o.mean_score, enhancers[o.name]) for o in outputs]
                for name, mean_score, make in rated:
                    relative = f"images/{photo_path.stem}_{index}_{name}.png"
                    save_image(out_dir / relative, make(square), compress_level=1)
                    rows.append([relative, *expected_votes(mean_score)])
                    if split == "valid":
                        valid_rows.append(relative)
    lines = ["path," + ",".join(f"c{i}" for i in range(1, 11))]
    lines += [",".join(str(v) for v in row) for row in rows]
    Path(paths["csv"]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    Path(paths["split_file"]).write_text("\n".join(valid_rows) + "\n", encoding="utf-8")
    files = [row[0] for row in rows] + ["ratings.csv", "valid.txt"]
    fd, temp_name = tempfile.mkstemp(dir=out_dir, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump({"args": args, "files": files}, handle, indent=1)
    os.replace(temp_name, manifest_path)
    return paths
