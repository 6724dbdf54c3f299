"""Where the photographs come from: the reviewed allow-list and the files behind it.

Only colour photographs of real scenes and objects, each reviewed by eye:

- scikit-image's bundled photos. Skipped: the greyscale ones (brick, camera, coins, grass,
  gravel, moon), microscopy and medical images (cell, ihc, retina, microaneurysms), synthetic
  ones (color, horse, text, chessboard, ...), the false-colour hubble_deep_field composite and
  motorcycle_right (the other half of motorcycle_left's stereo pair, a near duplicate).
- The Debian packages ``lomiri-wallpapers-16.04`` and ``lomiri-wallpapers-20.04``, fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` into a cache folder (never installed).
  Skipped: umang (rendered gradient), Fossa (rendered), Infinite-Sea (composite with overlays),
  Painting-Colors (vector art). Licences per file from the packages' ``copyright`` files.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = [
    "PHOTOS",
    "SKIMAGE",
    "WALLPAPER_PACKAGES",
    "Log",
    "Photo",
    "default_debs_dir",
    "default_sources",
    "describe_source",
    "say",
]

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
          "portrait of astronaut Eileen Collins, flag, shuttle model", valid=False),
    Photo("chelsea.png", SKIMAGE, "CC0-1.0", "Stefan van der Walt",
          "close-up of a tabby cat's face", valid=True),
    Photo("coffee.png", SKIMAGE, "CC0-1.0", "Rachel Michetti",
          "espresso cup and spoon on a wooden table", valid=False),
    Photo("rocket.jpg", SKIMAGE, "public domain", "SpaceX",
          "Falcon 9 on the launch pad at dusk, towers, lights", valid=False),
    Photo("motorcycle_left.png", SKIMAGE, "not stated", "Middlebury 2014 stereo set",
          "red motorcycle in a cluttered garage", valid=True),
    Photo("Bridge_by_Sander_Klootwijk.jpg", _W16, "CC-BY-SA-4.0", "Sander Klootwijk, 2018",
          "bridge cables against blue sky over tidal flats", valid=False),
    Photo("Dragonfly_by_Bolly.jpg", _W16, "CC-BY-SA-4.0", "Bolly, 2018",
          "dragonfly on a twig among leaves, blue sky", valid=False),
    Photo("Picture_0B_by_freespace.jpg", _W16, "CC-BY-4.0", "Trevor 'Freespace', 2018",
          "halved fig in a red bowl on concrete", valid=False),
    Photo("Picture_1A_by_freespace.jpg", _W16, "CC-BY-4.0", "Trevor 'Freespace', 2018",
          "close-up of colourful paint brushes", valid=True),
    Photo("Wine_by_Jakkub_Mede.jpg", _W16, "CC-BY-4.0", "Jakub Mede, 2018",
          "room with wine bottle on a pallet table, drum, speaker", valid=False),
    Photo("aitzgorri_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "mountain range above an autumn forest and meadow", valid=False),
    Photo("analogpattern_by_Peter_Nerlich.jpg", _W16, "CC-BY-SA-4.0", "Peter Nerlich, 2018",
          "textured wall under green and purple light", valid=False),
    Photo("free_by_Peter_Nerlich.jpg", _W16, "CC-BY-SA-4.0", "Peter Nerlich, 2018",
          "wooden bird hanging below globe lamps", valid=False),
    Photo("friends_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "two spaniels at a wooden door (portrait format)", valid=False),
    Photo("greentock_by_Peter_Nerlich.jpg", _W16, "CC-BY-SA-4.0", "Peter Nerlich, 2018",
          "backlit wall clock, oblique view", valid=False),
    Photo("life_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "forest stream over mossy rocks", valid=False),
    Photo("picosdeeuropa_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "rocky peaks, snow, path through a meadow", valid=True),
    Photo("seeding_by_Clements_Engelhardt.jpg", _W16, "CC0-1.0", "Clemens Engelhardt, 2018",
          "dandelion seed heads in backlight", valid=False),
    Photo("sunset_by_Aitzol_Berasategi.jpg", _W16, "CC-BY-4.0", "Aitzol Berasategi, 2018",
          "sunset over hills, stone marker", valid=False),
    Photo("Kleiber_by_Lukas_Baubkus.jpg", _W20, "CC-BY-SA-3.0", "Lukas Baubkus, 2021",
          "nuthatch on tree bark, blurred background", valid=True),
)
# fmt: on
_BY_NAME = {photo.name: photo for photo in PHOTOS}

Log = Callable[[str], None] | None


def say(log: Log, message: str) -> None:
    """Hand ``message`` to ``log`` unless it is None."""
    if log is not None:
        log(message)


def default_debs_dir() -> Path:
    """Where the wallpaper packages are downloaded and unpacked: ``~/.cache/nie/debs``."""
    return Path.home() / ".cache" / "nie" / "debs"


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
            say(log, f"apt-get download {package}  (in {debs_dir})")
            subprocess.run(["apt-get", "download", package], cwd=debs_dir, check=True)
        deb = sorted(debs_dir.glob(f"{package}_*.deb"))[-1]
        say(log, f"dpkg -x {deb.name} {target}")
        staging = Path(tempfile.mkdtemp(dir=debs_dir, prefix=f".{package}-"))
        subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)  # the tree appears whole or not at all
    except (subprocess.CalledProcessError, IndexError, OSError) as err:
        raise FileNotFoundError(
            f"could not fetch {package} ({err}); run `apt-get update`, then: {command}"
        ) from err
    return target


def default_sources(debs_dir: Path, log: Log) -> list[Path]:
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


def describe_source(path: Path) -> dict[str, str]:
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
