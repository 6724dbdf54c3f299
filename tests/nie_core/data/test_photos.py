"""The photo-set builder on a few of scikit-image's photos (no apt, no network)."""

from __future__ import annotations

import hashlib
import json
import os
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nie_core.data.degradations import bicubic_downsample
from nie_core.data.div2k import DIV2K
from nie_core.data.images import read_image
from nie_core.data.photos import (
    PHOTOS,
    SKIMAGE,
    WALLPAPER_PACKAGES,
    build_photo_set,
    make_hr,
)

SKIMAGE_DIR = Path(str(resources.files("skimage.data")))
FOUR = [SKIMAGE_DIR / name for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")]
TWO = FOUR[1:3]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict:
    return build_photo_set(
        tmp_path_factory.mktemp("photos"), sources=FOUR, hr_long_side=504, log=None
    )


def test_layout_and_sizes(built):
    div2k = Path(built["div2k"])
    assert (built["n_train"], built["n_valid"], built["built"]) == (3, 1, True)
    assert sorted(p.name for p in (div2k / "DIV2K_train_HR").iterdir()) == [
        "0001.png",
        "0002.png",
        "0003.png",
    ]
    assert [p.name for p in (div2k / "DIV2K_valid_HR").iterdir()] == ["0801.png"]
    for split in ("train", "valid"):
        for hr_path in sorted((div2k / f"DIV2K_{split}_HR").iterdir()):
            hr = read_image(hr_path)
            assert hr.shape[0] % 12 == 0 and hr.shape[1] % 12 == 0
            assert max(hr.shape[:2]) <= 504 and hr.std() > 10
            for scale in (2, 3, 4):
                lr_path = div2k / f"DIV2K_{split}_LR_bicubic" / f"X{scale}"
                lr = read_image(lr_path / f"{hr_path.stem}x{scale}.png")
                assert lr.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
                assert lr.shape[0] * scale == hr.shape[0] and lr.shape[1] * scale == hr.shape[1]
                np.testing.assert_array_equal(lr, bicubic_downsample(hr, scale))
        dataset = DIV2K(div2k, split=split, scale=(2, 3, 4), full_image=True)
        assert dataset.generated_lr_scales == ()


def test_downscaled_and_native_sizes(built):
    photos = json.loads(Path(built["manifest"]).read_text())["photos"]
    by_name = {Path(entry["path"]).name: entry for entry in photos.values()}
    # astronaut (512 x 512) is reduced to the long side; chelsea (451 x 300) stays native.
    assert by_name["astronaut.png"]["hr_size"] == [504, 504]
    assert by_name["chelsea.png"]["original_size"] == [451, 300]
    assert by_name["chelsea.png"]["hr_size"] == [444, 300]
    assert by_name["coffee.png"]["package"] == SKIMAGE
    assert by_name["coffee.png"]["licence"] == "CC0-1.0"
    assert by_name["coffee.png"]["path"] == "skimage/data/coffee.png"


def test_split_is_by_photo_and_manifest_checksums_match(built):
    root = Path(built["root"])
    manifest = json.loads(Path(built["manifest"]).read_text())
    splits: dict[str, set[str]] = {"train": set(), "valid": set()}
    for stem, entry in manifest["photos"].items():
        splits[entry["split"]].add(entry["source_sha256"])
        hr_path = root / "DIV2K" / f"DIV2K_{entry['split']}_HR" / f"{stem}.png"
        assert sha256(hr_path) == entry["hr_sha256"]
        assert sha256(SKIMAGE_DIR / Path(entry["path"]).name) == entry["source_sha256"]
        assert (stem >= "0801") == (entry["split"] == "valid")
    assert splits["train"] and splits["valid"] and not splits["train"] & splits["valid"]
    assert all((root / f).is_file() for f in manifest["files"])
    assert len(manifest["files"]) == 4 * 4  # HR + three LR per photo


def test_second_call_returns_from_manifest_and_force_rebuilds(tmp_path):
    kwargs = {"sources": TWO, "hr_long_side": 240, "log": None}
    first = build_photo_set(tmp_path, **kwargs)
    files = sorted(p for p in tmp_path.rglob("*.png"))
    for path in [*files, tmp_path / "manifest.json"]:
        os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    again = build_photo_set(tmp_path, **kwargs)
    assert again == {**first, "built": False}
    assert all(p.stat().st_mtime_ns == 1_000_000_000 for p in files)
    assert (tmp_path / "manifest.json").stat().st_mtime_ns == 1_000_000_000

    rebuilt = build_photo_set(tmp_path, force=True, **kwargs)
    assert rebuilt["built"] and all(p.stat().st_mtime_ns != 1_000_000_000 for p in files)
    assert not list(tmp_path.glob(".manifest-*"))  # the temporary file was renamed


def test_other_arguments_rebuild_and_drop_stale_files(tmp_path):
    build_photo_set(tmp_path, sources=TWO, hr_long_side=240, log=None)
    assert (tmp_path / "DIV2K" / "DIV2K_valid_HR" / "0801.png").is_file()
    summary = build_photo_set(tmp_path, sources=TWO, hr_long_side=240, valid=[], log=None)
    assert (summary["n_train"], summary["n_valid"], summary["built"]) == (2, 0, True)
    assert not (tmp_path / "DIV2K" / "DIV2K_valid_HR" / "0801.png").exists()


def test_explicit_validation_photos(tmp_path):
    summary = build_photo_set(
        tmp_path, sources=FOUR, hr_long_side=240, valid=["rocket.jpg", "chelsea.png"], log=None
    )
    assert (summary["n_train"], summary["n_valid"]) == (2, 2)
    with pytest.raises(ValueError, match="not among the sources"):
        build_photo_set(tmp_path, sources=TWO, valid=["moon.png"], log=None)


def test_bad_inputs_raise_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="no source photographs"):
        build_photo_set(tmp_path / "a", sources=[], log=None)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match="broken.png"):
        build_photo_set(tmp_path / "b", sources=[broken], log=None)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        build_photo_set(tmp_path / "c", sources=[tmp_path / "missing.jpg"], log=None)
    with pytest.raises(ValueError, match="multiple of 12"):
        build_photo_set(tmp_path / "d", sources=TWO, hr_long_side=1000, log=None)
    with pytest.raises(ValueError, match="distinct"):
        build_photo_set(tmp_path / "e", sources=[TWO[0], TWO[0]], log=None)


def test_missing_packages_without_apt_name_the_command(tmp_path, monkeypatch):
    monkeypatch.setattr("nie_core.data.photos.sources.shutil.which", lambda name: None)
    with pytest.raises(FileNotFoundError, match="apt-get download lomiri-wallpapers"):
        build_photo_set(tmp_path / "out", sources_dir=tmp_path / "debs", log=None)


def test_exif_rotated_photo_is_upright(tmp_path):
    path = tmp_path / "turned.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    pixels = np.random.default_rng(0).integers(0, 256, (60, 120, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, exif=exif, quality=95)
    hr, original = make_hr(path, 48)
    assert original == (60, 120) and hr.shape == (48, 24, 3)


def test_allow_list_is_consistent():
    names = [photo.name for photo in PHOTOS]
    assert len(set(names)) == len(names)
    assert {photo.package for photo in PHOTOS} == {SKIMAGE, *WALLPAPER_PACKAGES}
    assert all(photo.licence and photo.description for photo in PHOTOS)
    assert 0.2 <= sum(photo.valid for photo in PHOTOS) / len(PHOTOS) <= 0.3
    assert all((SKIMAGE_DIR / p.name).is_file() for p in PHOTOS if p.package == SKIMAGE)


def test_cli_parses_photos_action():
    from nie_cli.main import build_parser

    args = build_parser().parse_args(["data", "photos", "out", "--hr-long-side", "96", "--force"])
    assert (args.data_command, args.out_dir, args.hr_long_side, args.force) == (
        "photos",
        "out",
        96,
        True,
    )
    assert args.valid_fraction is None and args.handler.__qualname__ == "nie_cli.data.run_photos"
