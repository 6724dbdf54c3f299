"""The unseen evaluation crops (nie_core.data.photos.unseen) on scikit-image photographs."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from nie_core.data.images import read_image
from nie_core.data.photos import build_photo_set
from nie_core.data.photos.unseen import _pick, write_unseen_crops

SKIMAGE_DIR = Path(str(resources.files("skimage.data")))
SOURCES = [SKIMAGE_DIR / n for n in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg")]


def test_crops_of_the_validation_photos_only(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    build_photo_set(root, sources=SOURCES, valid=["astronaut.png", "chelsea.png"],
                    hr_long_side=240, log=None)  # fmt: skip
    written = write_unseen_crops(root, tmp_path / "unseen", size=192, long_side=504)
    names = [p.name for p in written]
    # astronaut (512 px) gives three windows; chelsea (451 x 300 -> 300 high) too
    assert names == [
        f"{i}_{k}.png" for i in ("0801", "0802") for k in ("centre", "detail", "smooth")
    ]
    for path in written:
        assert read_image(path).shape == (192, 192, 3)
    again = write_unseen_crops(root, tmp_path / "unseen", size=192, long_side=504)
    assert again == written  # kept, not rewritten
    # a crop larger than the small photo: only its centre, as large as fits
    small = write_unseen_crops(root, tmp_path / "small", size=384, long_side=504)
    assert [p.name for p in small] == ["0801_centre.png", "0801_detail.png", "0801_smooth.png",
                                       "0802_centre.png"]  # fmt: skip
    assert read_image(small[-1]).shape == (300, 300, 3)


def test_smooth_window_is_the_flattest_visible_one() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=(96, 96, 3)).astype(np.uint8)  # noise everywhere
    image[48:, 48:] = 128  # one flat grey quarter
    image[:24, :24] = 0  # black: flat but not visible
    picks = _pick(image, 48)
    assert picks["smooth"] == (48, 48)
    assert picks["centre"] == (24, 24)
    assert picks["detail"] != (48, 48)


def test_missing_manifest_names_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nie data photos"):
        write_unseen_crops(tmp_path, tmp_path / "out")
    with pytest.raises(ValueError, match="multiple of 12"):
        write_unseen_crops(tmp_path, tmp_path / "out", size=100)
