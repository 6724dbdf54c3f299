"""Clean HR images from photographs: reduced, upright, and cropped so that X2, X3 and X4 divide
them.

The longest side is brought down to a given length (Lanczos, after a JPEG DCT-domain reduction
for speed; the downscaling also hides JPEG artefacts), smaller photos stay at native size, then
both sides are cropped to multiples of 12. :func:`write_centre_crops` cuts a fixed validation
view out of such images.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from nie_core.data.degradations import crop_to_multiple
from nie_core.data.images import ImageDecodeError, read_image, save_image

__all__ = ["MULTIPLE", "make_hr", "write_centre_crops"]

MULTIPLE = 12  # every scale divides it
_EXIF_ORIENTATION = 0x0112
_SWAPPING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that turn the image by 90 degrees


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


def write_centre_crops(
    hr_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str], size: int = 384
) -> list[Path]:
    """Write a ``size`` x ``size`` centre crop (smaller images whole, cropped to multiples of
    12) of every PNG in ``hr_dir`` to ``out_dir``, same names; returns the written paths.

    A small, fixed validation view of a photo set (the demo validates and summarises on it, as
    the x2 measurements of issue reports did on 384 px centre crops). Up-to-date crops are kept.
    """
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
