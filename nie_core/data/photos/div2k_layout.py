"""Writing a photo set in the DIV2K layout, with a manifest that makes the build repeatable.

Each source photograph becomes a clean HR image (:func:`~nie_core.data.photos.make_hr`) and its
LR images from ``bicubic_downsample`` at X2, X3 and X4. The split is by photograph; output ids
and files are those of DIV2K (train 0001.., valid 0801..), with ``manifest.json`` recording every
source, licence and checksum. A second call with the same arguments returns from the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from nie_core.data.degradations import bicubic_downsample
from nie_core.data.images import save_image
from nie_core.data.photos.hr_images import MULTIPLE, make_hr
from nie_core.data.photos.sources import (
    PHOTOS,
    Log,
    default_debs_dir,
    default_sources,
    describe_source,
    say,
)

__all__ = ["build_photo_set"]

MANIFEST_VERSION = 1
SCALES = (2, 3, 4)
DEFAULT_HR_LONG_SIDE = 1020
DEFAULT_VALID_FRACTION = 0.25


def _spread_valid(names: list[str], fraction: float, seed: int) -> set[str]:
    """About ``fraction`` of ``names``, evenly spaced (every k-th, start shifted by ``seed``)."""
    n = len(names)
    if n < 2 or fraction <= 0:
        return set()
    count = min(n - 1, max(1, round(n * fraction)))
    return {names[(i * n // count + seed) % n] for i in range(count)}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(path: Path, manifest: dict) -> None:
    fd, temp_name = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=1)
    os.replace(temp_name, path)


def _read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _summary(out_dir: Path, manifest: dict, built: bool) -> dict:
    photos = manifest["photos"].values()
    return {
        "root": str(out_dir),
        "div2k": str(out_dir / "DIV2K"),
        "manifest": str(out_dir / "manifest.json"),
        "n_train": sum(p["split"] == "train" for p in photos),
        "n_valid": sum(p["split"] == "valid" for p in photos),
        "hr_pixels": sum(p["hr_size"][0] * p["hr_size"][1] for p in photos),
        "built": built,
    }


def _write_photo(path: Path, div2k: Path, split: str, stem: str, long_side: int) -> dict:
    """Write the HR and LR images of one photo; its manifest entry (with the files written)."""
    hr, original = make_hr(path, long_side)
    hr_path = div2k / f"DIV2K_{split}_HR" / f"{stem}.png"
    save_image(hr_path, hr)
    written = [hr_path]
    for scale in SCALES:
        written.append(div2k / f"DIV2K_{split}_LR_bicubic" / f"X{scale}" / f"{stem}x{scale}.png")
        save_image(written[-1], bicubic_downsample(hr, scale))
    return {
        **describe_source(path),
        "split": split,
        "source_sha256": _sha256(path),
        "hr_sha256": _sha256(hr_path),
        "original_size": list(original),
        "hr_size": [hr.shape[1], hr.shape[0]],
        "files": written,
    }


def build_photo_set(
    out_dir: str | os.PathLike[str],
    *,
    sources: Sequence[str | os.PathLike[str]] | None = None,
    sources_dir: str | os.PathLike[str] | None = None,
    hr_long_side: int = DEFAULT_HR_LONG_SIDE,
    valid: Sequence[str] | None = None,
    valid_fraction: float | None = None,
    seed: int = 0,
    force: bool = False,
    log: Log = print,
) -> dict:
    """Write the photo set in the DIV2K layout under ``out_dir/DIV2K`` (see
    :mod:`nie_core.data.photos`).

    ``sources``: image files to use instead of the allow-list ``PHOTOS`` (whose wallpapers are
    looked for, and fetched when missing, under ``sources_dir``, default ``default_debs_dir()``).
    ``valid``: file names for the validation split; by default the allow-list's choice, or for
    other sources (or with ``valid_fraction``) an evenly spread fraction (0.25) offset by
    ``seed``. Returns the paths ``root``, ``div2k`` and ``manifest``, the counts ``n_train`` and
    ``n_valid``, ``hr_pixels`` and ``built`` (False when the manifest was up to date).
    """
    if hr_long_side < 4 * MULTIPLE or hr_long_side % MULTIPLE:
        raise ValueError(f"hr_long_side must be a multiple of {MULTIPLE} >= 48, got {hr_long_side}")
    if valid_fraction is not None and not 0.0 <= valid_fraction < 1.0:
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction}")
    if sources is None:
        debs_dir = Path(sources_dir).expanduser() if sources_dir else default_debs_dir()
        paths = default_sources(debs_dir.resolve(), log)
        if valid is None and valid_fraction is None:
            valid = [photo.name for photo in PHOTOS if photo.valid]
    else:
        paths = [Path(p).expanduser().resolve() for p in sources]
    if not paths:
        raise ValueError("no source photographs given")
    names = [p.name for p in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"source file names must be distinct, got {names}")
    if missing := [str(p) for p in paths if not p.is_file()]:
        raise FileNotFoundError(f"source photographs not found: {', '.join(missing)}")
    if valid is None:
        fraction = DEFAULT_VALID_FRACTION if valid_fraction is None else valid_fraction
        valid_names = _spread_valid(names, fraction, seed)
    elif unknown := set(valid) - set(names):
        raise ValueError(f"validation photos {sorted(unknown)} are not among the sources")
    else:
        valid_names = set(valid)

    out_dir = Path(out_dir).resolve()
    manifest_path = out_dir / "manifest.json"
    args = {
        "sources": [str(p) for p in paths],
        "hr_long_side": hr_long_side,
        "valid": sorted(valid_names),
        "seed": seed,
        "scales": list(SCALES),
        "version": MANIFEST_VERSION,
    }
    previous = _read_manifest(manifest_path) if manifest_path.is_file() else None
    if (
        previous is not None
        and not force
        and previous.get("args") == args
        and all((out_dir / relative).is_file() for relative in previous.get("files", []))
    ):
        say(log, f"photo set in {out_dir} is up to date (force rebuilds it)")
        return _summary(out_dir, previous, built=False)

    # Forget the old build before touching its files, so that an interrupted rebuild is redone.
    manifest_path.unlink(missing_ok=True)
    for relative in (previous or {}).get("files", []):
        (out_dir / relative).unlink(missing_ok=True)

    photos: dict[str, dict] = {}
    next_id = {"train": 1, "valid": 801}  # DIV2K's numbering
    for path in paths:
        split = "valid" if path.name in valid_names else "train"
        stem = f"{next_id[split]:04d}"
        next_id[split] += 1
        entry = _write_photo(path, out_dir / "DIV2K", split, stem, hr_long_side)
        entry["files"] = [str(p.relative_to(out_dir)) for p in entry["files"]]
        photos[stem] = entry
        (w, h), (hr_w, hr_h) = entry["original_size"], entry["hr_size"]
        say(log, f"{split} {stem}: {entry['package']} {path.name} {w}x{h} -> {hr_w}x{hr_h}")

    manifest = {
        "args": args,
        "note": "HR: source reduced to hr_long_side (Lanczos), cropped to multiples of 12. LR: "
        "nie_core.data.degradations.bicubic_downsample(HR, scale). Sizes are [width, height].",
        "photos": photos,
        "files": sorted(f for entry in photos.values() for f in entry["files"]),
    }
    _write_manifest(manifest_path, manifest)
    return _summary(out_dir, manifest, built=True)
