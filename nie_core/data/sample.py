"""A small sample data set in the DIV2K and AVA layouts, made from scikit-image's photographs.

DIV2K and AVA cannot be downloaded here, so the demo, the tests and the smoke-test jobs use this
stand-in, written in exactly the distributed layouts so that the same loaders read it::

    out_dir/DIV2K/DIV2K_train_HR/0001.png ...         (crops of real photographs)
    out_dir/DIV2K/DIV2K_train_LR_bicubic/X{2,3,4}/0001x{2,3,4}.png
    out_dir/DIV2K/DIV2K_valid_HR/0801.png ...         (validation ids start at 0801, as in DIV2K)
    out_dir/DIV2K/DIV2K_valid_LR_bicubic/X{2,3,4}/0801x{2,3,4}.png
    out_dir/AVA/AVA.txt, out_dir/AVA/images/<id>.jpg
    out_dir/manifest.json                             (arguments and files of the last build)

HR sizes are multiples of 12, so every scale in (2, 3, 4) divides them; LR images are made with
``bicubic_downsample``.

THE AVA RATINGS ARE SYNTHETIC: nobody voted on these images. Each AVA image is a crop of a
photograph degraded in a controlled way (Gaussian blur, Gaussian noise, JPEG compression or
contrast reduction) at a strength from 0 (untouched) to 4; its ten vote counts are drawn from a
discretised Gaussian over the scores 1..10 whose mean falls as the strength rises (about 6.6 for
untouched images, about 3.2 at strength 4). A NIMA model trained on them learns to prefer sharp,
clean, well-exposed images, which is enough to exercise the pipeline, but its scores say nothing
about human aesthetic judgement. Everything is deterministic given ``seed``.

The build is idempotent: a second call with the same arguments finds the manifest and returns at
once. Run from the command line as ``python -m nie_core.data.sample OUT_DIR``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from nie_core.data.degradations import (
    add_gaussian_noise,
    bicubic_downsample,
    gaussian_blur,
    reduce_contrast,
)
from nie_core.data.images import read_image

__all__ = ["DEGRADATION_KINDS", "build_sample_data", "main", "synthetic_votes"]

MANIFEST_VERSION = 1
# Real photographs shipped with scikit-image (grayscale ones are replicated to RGB).
TRAIN_PHOTOS = (
    "astronaut.png",
    "coffee.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "retina.jpg",
    "ihc.png",
    "brick.png",
    "camera.png",
)
VALID_PHOTOS = ("chelsea.png", "motorcycle_right.png", "grass.png", "gravel.png", "moon.png")
HR_SIDES = tuple(range(192, 253, 12))  # multiples of 12 in 192..252
DEGRADATION_KINDS = ("blur", "noise", "jpeg", "contrast")
MAX_STRENGTH = 4
# Per strength 0..MAX_STRENGTH.
BLUR_SIGMAS = (0.0, 0.8, 1.5, 2.5, 4.0)
NOISE_SIGMAS = (0.0, 8.0, 16.0, 28.0, 45.0)
JPEG_QUALITIES = (90, 35, 15, 8, 4)
CONTRAST_FACTORS = (1.0, 0.7, 0.45, 0.28, 0.15)
CLEAN_MEAN_SCORE = 6.6
SCORE_DROP_PER_STRENGTH = 0.85


def _load_photo(name: str, cache: dict[str, np.ndarray]) -> np.ndarray:
    if name in cache:
        return cache[name]
    try:
        data_dir = resources.files("skimage.data")
    except ModuleNotFoundError as err:
        raise RuntimeError(
            "build_sample_data needs scikit-image (pip install scikit-image)"
        ) from err
    cache[name] = read_image(str(data_dir / name))
    return cache[name]


def _random_crop(
    photo: np.ndarray, height: int, width: int, rng: np.random.Generator
) -> np.ndarray:
    top = int(rng.integers(0, photo.shape[0] - height + 1))
    left = int(rng.integers(0, photo.shape[1] - width + 1))
    return photo[top : top + height, left : left + width]


def _save(path: Path, image: np.ndarray, **save_kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.ascontiguousarray(image)).save(path, **save_kwargs)


def _write_div2k(
    div2k_dir: Path,
    split: str,
    photos: Sequence[str],
    first_id: int,
    count: int,
    scales: Sequence[int],
    rng: np.random.Generator,
    cache: dict[str, np.ndarray],
) -> list[Path]:
    written = []
    for i in range(count):
        name = photos[i % len(photos)]
        photo = _load_photo(name, cache)
        height, width = (int(rng.choice(HR_SIDES)) for _ in range(2))
        hr = _random_crop(
            photo,
            min(height, photo.shape[0] // 12 * 12),
            min(width, photo.shape[1] // 12 * 12),
            rng,
        )
        stem = f"{first_id + i:04d}"
        hr_path = div2k_dir / f"DIV2K_{split}_HR" / f"{stem}.png"
        _save(hr_path, hr)
        written.append(hr_path)
        for scale in scales:
            lr_path = div2k_dir / f"DIV2K_{split}_LR_bicubic" / f"X{scale}" / f"{stem}x{scale}.png"
            _save(lr_path, bicubic_downsample(hr, scale))
            written.append(lr_path)
    return written


def synthetic_votes(
    strength: int, rng: np.random.Generator, base_offset: float = 0.0
) -> np.ndarray:
    """Ten synthetic vote counts (scores 1..10) for an image degraded at ``strength`` 0..4.

    Mean score ``6.6 - 0.85 * strength + base_offset`` plus N(0, 0.25^2) jitter, spread 1.2..1.7;
    80..260 voters drawn from the discretised Gaussian. Returns int64 (10,).
    """
    mean = CLEAN_MEAN_SCORE - SCORE_DROP_PER_STRENGTH * strength + base_offset
    mean = float(np.clip(mean + rng.normal(0.0, 0.25), 1.5, 9.0))
    spread = float(rng.uniform(1.2, 1.7))
    scores = np.arange(1, 11, dtype=np.float64)
    weights = np.exp(-((scores - mean) ** 2) / (2.0 * spread**2))
    voters = int(rng.integers(80, 261))
    return rng.multinomial(voters, weights / weights.sum())


def _degrade(
    image: np.ndarray, kind: str, strength: int, rng: np.random.Generator
) -> tuple[np.ndarray, int]:
    """The degraded image and the JPEG quality to save it with."""
    if strength == 0:
        return image, JPEG_QUALITIES[0]
    if kind == "blur":
        sigma = BLUR_SIGMAS[strength]
        kernel = 2 * int(np.ceil(3 * sigma)) + 1
        return gaussian_blur(image, sigma, kernel), JPEG_QUALITIES[0]
    if kind == "noise":
        return add_gaussian_noise(image, NOISE_SIGMAS[strength], rng), JPEG_QUALITIES[0]
    if kind == "jpeg":
        return image, JPEG_QUALITIES[strength]
    if kind == "contrast":
        return reduce_contrast(image, CONTRAST_FACTORS[strength]), JPEG_QUALITIES[0]
    raise ValueError(f"unknown degradation kind {kind!r}; expected one of {DEGRADATION_KINDS}")


def _write_ava(
    ava_dir: Path, count: int, rng: np.random.Generator, cache: dict[str, np.ndarray]
) -> list[Path]:
    photos = TRAIN_PHOTOS + VALID_PHOTOS
    # A fixed quality offset per photograph, so that content matters a little too.
    photo_offsets = rng.uniform(-0.4, 0.4, size=len(photos))
    lines = []
    written = []
    for i in range(count):
        photo_index = i % len(photos)
        name = photos[photo_index]
        photo = _load_photo(name, cache)
        # Shrink the photograph first so that a crop shows a good part of the scene.
        short_side = int(rng.integers(256, 385))
        factor = short_side / min(photo.shape[:2])
        size = (max(1, round(photo.shape[1] * factor)), max(1, round(photo.shape[0] * factor)))
        shrunk = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
        crop = _random_crop(shrunk, int(rng.integers(160, 257)), int(rng.integers(160, 257)), rng)

        kind = DEGRADATION_KINDS[(i // len(photos)) % len(DEGRADATION_KINDS)]
        strength = int(rng.integers(0, MAX_STRENGTH + 1))
        degraded, quality = _degrade(crop, kind, strength, rng)
        votes = synthetic_votes(strength, rng, float(photo_offsets[photo_index]))

        image_id = 100001 + i
        image_path = ava_dir / "images" / f"{image_id}.jpg"
        _save(image_path, degraded, quality=quality)
        written.append(image_path)
        tags = rng.integers(0, 66, size=2)
        challenge = 1000 + photo_index
        fields = [i + 1, image_id, *votes.tolist(), *tags.tolist(), challenge]
        lines.append(" ".join(str(int(f)) for f in fields))
    list_path = ava_dir / "AVA.txt"
    list_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    written.append(list_path)
    return written


def _paths(out_dir: Path) -> dict[str, str]:
    return {
        "root": str(out_dir),
        "div2k": str(out_dir / "DIV2K"),
        "ava": str(out_dir / "AVA"),
        "ava_txt": str(out_dir / "AVA" / "AVA.txt"),
        "manifest": str(out_dir / "manifest.json"),
    }


def build_sample_data(
    out_dir: str | os.PathLike[str],
    n_train: int = 8,
    n_valid: int = 4,
    n_ava: int = 160,
    seed: int = 0,
    scales: Sequence[int] = (2, 3, 4),
    force: bool = False,
) -> dict[str, str]:
    """Write the sample DIV2K and AVA sets under ``out_dir`` (see module docstring).

    Returns the paths ``root``, ``div2k`` (a DIV2K root), ``ava`` (an AVA root), ``ava_txt`` and
    ``manifest``. If a manifest with the same arguments exists and all its files are present,
    nothing is written (``force=True`` rebuilds). Files of an earlier build with other arguments
    are removed first. Ratings are synthetic.
    """
    for name, value in (("n_train", n_train), ("n_valid", n_valid), ("n_ava", n_ava)):
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    scales = tuple(int(s) for s in scales)
    if not scales or any(s < 2 for s in scales) or any(12 % s for s in scales):
        raise ValueError(f"scales must be divisors of 12 that are >= 2, got {scales}")

    out_dir = Path(out_dir).resolve()
    manifest_path = out_dir / "manifest.json"
    args = {
        "n_train": n_train,
        "n_valid": n_valid,
        "n_ava": n_ava,
        "seed": seed,
        "scales": list(scales),
        "version": MANIFEST_VERSION,
    }
    previous = None
    if manifest_path.is_file():
        try:
            previous = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
    if (
        previous is not None
        and not force
        and previous.get("args") == args
        and all((out_dir / relative).is_file() for relative in previous.get("files", []))
    ):
        return _paths(out_dir)

    # Forget the old build before touching its files, so an interrupted rebuild is redone.
    if manifest_path.exists():
        manifest_path.unlink()
    for relative in (previous or {}).get("files", []):
        (out_dir / relative).unlink(missing_ok=True)

    rng = np.random.default_rng(seed)
    photo_cache: dict[str, np.ndarray] = {}
    div2k_dir = out_dir / "DIV2K"
    written = _write_div2k(div2k_dir, "train", TRAIN_PHOTOS, 1, n_train, scales, rng, photo_cache)
    written += _write_div2k(
        div2k_dir, "valid", VALID_PHOTOS, 801, n_valid, scales, rng, photo_cache
    )
    written += _write_ava(out_dir / "AVA", n_ava, rng, photo_cache)

    manifest = {"args": args, "files": sorted(str(p.relative_to(out_dir)) for p in written)}
    fd, temp_name = tempfile.mkstemp(dir=out_dir, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(temp_name, manifest_path)
    return _paths(out_dir)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point: ``python -m nie_core.data.sample OUT_DIR [options]``."""
    parser = argparse.ArgumentParser(
        prog="python -m nie_core.data.sample",
        description="Write a small DIV2K- and AVA-layout sample set from scikit-image's "
        "photographs. The AVA ratings are SYNTHETIC (derived from controlled degradations).",
    )
    parser.add_argument("out_dir", help="folder to write DIV2K/, AVA/ and manifest.json into")
    parser.add_argument("--n-train", type=int, default=8, help="DIV2K training images")
    parser.add_argument("--n-valid", type=int, default=4, help="DIV2K validation images")
    parser.add_argument("--n-ava", type=int, default=160, help="AVA images")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    paths = build_sample_data(
        args.out_dir,
        n_train=args.n_train,
        n_valid=args.n_valid,
        n_ava=args.n_ava,
        seed=args.seed,
        force=args.force,
    )
    print(json.dumps(paths, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
