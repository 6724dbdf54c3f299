"""A DIV2K-layout set of the real photographs available offline, downscaled to clean HR images.

Sources (each photo reviewed by eye; only colour photographs of real scenes and objects):

- scikit-image's bundled photos. Skipped: the greyscale ones (brick, camera, coins, grass,
  gravel, moon), microscopy and medical images (cell, ihc, retina, microaneurysms), synthetic
  ones (color, horse, text, chessboard, ...), the false-colour hubble_deep_field composite and
  motorcycle_right (the other half of motorcycle_left's stereo pair, a near duplicate).
- The Debian packages ``lomiri-wallpapers-16.04`` and ``lomiri-wallpapers-20.04``, fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` into a cache folder (never installed).
  Skipped: umang (rendered gradient), Fossa (rendered), Infinite-Sea (composite with overlays),
  Painting-Colors (vector art). Licences per file from the packages' ``copyright`` files.

HR images: the longest side is brought down to ``hr_long_side`` (Lanczos, after a JPEG DCT-domain
reduction for speed; the downscaling also hides JPEG artefacts), smaller photos stay at native
size, then both sides are cropped to multiples of 12 so that X2/X3/X4 all divide them. LR
images come from ``bicubic_downsample``. The split is by photograph; output ids and files are
those of DIV2K (train 0001.., valid 0801..), with ``manifest.json`` recording every source,
licence and checksum. A second call with the same arguments returns from the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from PIL import Image

from nie_core.data.degradations import bicubic_downsample, crop_to_multiple
from nie_core.data.images import ImageDecodeError, read_image, save_image

__all__ = [
    "PHOTOS",
    "WALLPAPER_PACKAGES",
    "Photo",
    "build_photo_set",
    "default_debs_dir",
    "make_hr",
]

MANIFEST_VERSION = 1
SCALES = (2, 3, 4)
MULTIPLE = 12  # every scale divides it
DEFAULT_HR_LONG_SIDE = 1020
DEFAULT_VALID_FRACTION = 0.25
SKIMAGE = "scikit-image"
WALLPAPER_PACKAGES = ("lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04")
WALLPAPER_DIR = "usr/share/backgrounds"


@dataclass(frozen=True)
class Photo:
    """One allow-listed source photograph."""

    name: str  # file name in skimage/data or usr/share/backgrounds
    package: str  # "scikit-image" or a Debian package
    licence: str
    credit: str
    description: str
    valid: bool = False  # in the validation split of the default build


_W16, _W20 = WALLPAPER_PACKAGES
# fmt: off
PHOTOS: tuple[Photo, ...] = (
    Photo("astronaut.png", SKIMAGE, "public domain", "NASA",
          "portrait of astronaut Eileen Collins, flag, shuttle model"),
    Photo("chelsea.png", SKIMAGE, "CC0-1.0", "Stefan van der Walt",
          "close-up of a tabby cat's face", valid=True),
    Photo("coffee.png", SKIMAGE, "CC0-1.0", "Rachel Michetti",
          "espresso cup and spoon on a wooden table"),
    Photo("rocket.jpg", SKIMAGE, "public domain", "SpaceX",
          "Falcon 9 on the launch pad at dusk, towers, lights"),
    Photo("motorcycle_left.png", SKIMAGE, "not stated", "Middlebury 2014 stereo set",
          "red motorcycle in a cluttered garage", valid=True),
    Photo("Bridge_by_Sander_Klootwijk.jpg", _W16, "CC-BY-SA-4.0", "Sander Klootwijk, 2018",
          "bridge cables against blue sky over tidal flats"),
    Photo("Dragonfly_by_Bolly.jpg", _W16, "CC-BY-SA-4.0", "Bolly, 2018",
          "dragonfly on a twig among leaves, blue sky"),
    Photo("Picture_0B_by_freespace.jpg", _W16, "CC-BY-4.0", "Trevor 'Freespace', 2018",
          "halved fig in a red bowl on concrete"),
    Photo("Picture_1A_by_freespace.jpg", _W16, "CC-BY-4.0", "Trevor 'Freespace', 2018",
          "close-up of colourful paint brushes", valid=True),
    Photo("Wine_by_Jakkub_Mede.jpg", _W16, "CC-BY-4.0", "Jakub Mede, 2018",
          "room with wine bottle on a pallet table, drum, speaker"),
    Photo("aitzgorri_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "mountain range above an autumn forest and meadow"),
    Photo("analogpattern_by_Peter_Nerlich.jpg", _W16, "CC-BY-SA-4.0", "Peter Nerlich, 2018",
          "textured wall under green and purple light"),
    Photo("free_by_Peter_Nerlich.jpg", _W16, "CC-BY-SA-4.0", "Peter Nerlich, 2018",
          "wooden bird hanging below globe lamps"),
    Photo("friends_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "two spaniels at a wooden door (portrait format)"),
    Photo("greentock_by_Peter_Nerlich.jpg", _W16, "CC-BY-SA-4.0", "Peter Nerlich, 2018",
          "backlit wall clock, oblique view"),
    Photo("life_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "forest stream over mossy rocks"),
    Photo("picosdeeuropa_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "rocky peaks, snow, path through a meadow", valid=True),
    Photo("seeding_by_Clements_Engelhardt.jpg", _W16, "CC0-1.0", "Clemens Engelhardt, 2018",
          "dandelion seed heads in backlight"),
    Photo("sunset_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "sunset over hills, stone marker"),
    Photo("Kleiber_by_Lukas_Baubkus.jpg", _W20, "CC-BY-SA-3.0", "Lukas Baubkus, 2021",
          "nuthatch on tree bark, blurred background", valid=True),
)
# fmt: on
_BY_NAME = {photo.name: photo for photo in PHOTOS}
_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees

Log = Callable[[str], None] | None


def default_debs_dir() -> Path:
    """Where the wallpaper packages are downloaded and unpacked: ``~/.cache/nie/debs``."""
    return Path.home() / ".cache" / "nie" / "debs"


def _say(log: Log, message: str) -> None:
    if log is not None:
        log(message)


def _fetch_package(package: str, debs_dir: Path, log: Log) -> Path:
    """The unpacked tree of ``package`` under ``debs_dir``; downloaded and unpacked if missing."""
    target = debs_dir / package
    if (target / WALLPAPER_DIR).is_dir():
        return target
    command = f"cd {debs_dir} && apt-get download {package} && dpkg -x {package}_*.deb {package}"
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        raise FileNotFoundError(
            f"{target / WALLPAPER_DIR} is missing and apt-get/dpkg are not available; "
            f"on a Debian machine run: {command}"
        )
    debs_dir.mkdir(parents=True, exist_ok=True)
    try:
        if not sorted(debs_dir.glob(f"{package}_*.deb")):
            _say(log, f"apt-get download {package}  (in {debs_dir})")
            subprocess.run(["apt-get", "download", package], cwd=debs_dir, check=True)
        deb = sorted(debs_dir.glob(f"{package}_*.deb"))[-1]
        _say(log, f"dpkg -x {deb.name} {target}")
        staging = Path(tempfile.mkdtemp(dir=debs_dir, prefix=f".{package}-"))
        subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # the tree appears whole or not at all
    except (subprocess.CalledProcessError, IndexError, OSError) as err:
        raise FileNotFoundError(
            f"could not fetch {package} ({err}); run `apt-get update`, then: {command}"
        ) from err
    return target


def _default_sources(debs_dir: Path, log: Log) -> list[Path]:
    """Paths of the allow-listed photos, fetching the wallpaper packages when needed."""
    try:
        roots = {SKIMAGE: Path(str(resources.files("skimage.data")))}
    except ModuleNotFoundError as err:
        raise FileNotFoundError(
            "the photo set needs scikit-image (pip install scikit-image)"
        ) from err
    for package in WALLPAPER_PACKAGES:
        roots[package] = _fetch_package(package, debs_dir, log) / WALLPAPER_DIR
    return [roots[photo.package] / photo.name for photo in PHOTOS]


def _describe(path: Path) -> dict[str, str]:
    """Package, path inside it, licence, credit and description of a source file."""
    photo = _BY_NAME.get(path.name)
    if photo is None:
        return {"package": "local", "path": str(path), "licence": "unknown"}
    inner = "skimage/data" if photo.package == SKIMAGE else WALLPAPER_DIR
    return {
        "package": photo.package,
        "path": f"{inner}/{photo.name}",
        "licence": photo.licence,
        "credit": photo.credit,
        "description": photo.description,
    }


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


def make_hr(path: str | os.PathLike[str], long_side: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The clean HR image (uint8 (H, W, 3)) of a photo and its upright original (width, height).

    Photos longer than ``long_side`` are reduced to it (JPEG DCT draft, then Lanczos); the
    result is cropped to multiples of 12.
    """
    try:
        with Image.open(path) as header:
            width, height = header.size
            turned = header.getexif().get(_EXIF_ORIENTATION, 1) in _SWAPPING_ORIENTATIONS
    except (OSError, SyntaxError, ValueError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ImageDecodeError(f"{path}: cannot read image ({err})") from err
    factor = long_side / max(width, height)
    draft = (round(width * factor), round(height * factor)) if factor < 1 else None
    photo = read_image(path, draft_size=draft)
    if factor < 1:
        shrink = long_side / max(photo.shape[:2])
        size = (round(photo.shape[1] * shrink), round(photo.shape[0] * shrink))
        photo = np.asarray(Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS))
    hr = np.ascontiguousarray(crop_to_multiple(photo, MULTIPLE))
    if hr.size == 0:
        raise ValueError(f"{path}: {width}x{height} is smaller than {MULTIPLE} pixels")
    return hr, ((height, width) if turned else (width, height))


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
        **_describe(path),
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
    """Write the photo set in the DIV2K layout under ``out_dir/DIV2K`` (see module docstring).

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
        paths = _default_sources(debs_dir.resolve(), log)
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
        _say(log, f"photo set in {out_dir} is up to date (force rebuilds it)")
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
        _say(log, f"{split} {stem}: {entry['package']} {path.name} {w}x{h} -> {hr_w}x{hr_h}")

    manifest = {
        "args": args,
        "note": "HR: source reduced to hr_long_side (Lanczos), cropped to multiples of 12. LR: "
        "nie_core.data.degradations.bicubic_downsample(HR, scale). Sizes are [width, height].",
        "photos": photos,
        "files": sorted(f for entry in photos.values() for f in entry["files"]),
    }
    _write_manifest(manifest_path, manifest)
    return _summary(out_dir, manifest, built=True)


def write_centre_crops(
    hr_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], size: int = 384
) -> list[Path]:
    """Write a ``size`` x ``size`` centre crop (smaller images whole, cropped to multiples of
    12) of every PNG in ``hr_dir`` to ``out_dir``, same names; returns the written paths.

    A small, fixed validation view of a photo set (the demo validates and summarises on it, as
    the x2 measurements of issue reports did on 384 px centre crops). Up-to-date crops are kept.
    """
    from nie_core.data.images import read_image, save_image

    if size < 12 or size % 12:
        raise ValueError(f"size must be a positive multiple of 12, got {size}")
    sources = sorted(Path(hr_dir).glob("*.png"))
    if not sources:
        raise ValueError(f"no PNG images in {str(hr_dir)!r}")
    written = []
    for source in sources:
        target = Path(out_dir) / source.name
        if not target.exists() or target.stat().st_mtime < source.stat().st_mtime:
            image = read_image(source)
            height, width = image.shape[:2]
            side_h, side_w = min(size, height - height % 12), min(size, width - width % 12)
            top, left = (height - side_h) // 2, (width - side_w) // 2
            save_image(target, image[top : top + side_h, left : left + side_w])
        written.append(target)
    return written
