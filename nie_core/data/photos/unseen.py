"""An unseen evaluation set with smooth, out-of-focus content: crops of the held-out photographs
at a higher resolution than the training images.

Training sees only the ``train`` photographs of the photo set, reduced to 1020 px. Scorer gaming
shows on smooth areas (sky, bokeh, petals, a plain background), which centre crops often miss.
So, for every ``valid`` photograph of the manifest, the source is reduced (Lanczos, as
:func:`make_hr`) to ``long_side`` px and three ``size`` x ``size`` crops are written:

- ``<id>_centre.png``: the centre;
- ``<id>_smooth.png``: the window with the least luma gradient energy whose mean luma is within
  [0.08, 0.92] (not a blown-out or black area, where nothing can be seen or gamed);
- ``<id>_detail.png``: the window with the most gradient energy.

A photograph whose shorter side is under ``size`` gives only its centre crop, as large as fits.

Windows are searched on a grid of ``size // 4`` steps. The result is deterministic.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from nie_core.data.images import save_image
from nie_core.data.photos.hr_images import make_hr

__all__ = ["UNSEEN_KINDS", "write_unseen_crops"]

UNSEEN_KINDS = ("centre", "smooth", "detail")
_LUMA = np.array([0.299, 0.587, 0.114])  # BT.601 weights, only to rank windows


def _windows(height: int, width: int, size: int) -> list[tuple[int, int]]:
    step = max(12, size // 4)
    tops = range(0, height - size + 1, step)
    lefts = range(0, width - size + 1, step)
    return [(top, left) for top in tops for left in lefts]


def _pick(image: np.ndarray, size: int) -> dict[str, tuple[int, int]]:
    """Top-left corners of the centre, smoothest and most detailed ``size`` windows."""
    height, width = image.shape[:2]
    luma = image.astype(np.float64) @ _LUMA / 255.0
    gy, gx = np.gradient(luma)
    energy = gx**2 + gy**2
    scored = []
    for top, left in _windows(height, width, size):
        window = (slice(top, top + size), slice(left, left + size))
        scored.append((float(energy[window].mean()), float(luma[window].mean()), top, left))
    visible = [s for s in scored if 0.08 <= s[1] <= 0.92] or scored
    smooth = min(visible)
    detail = max(scored)
    centre = ((height - size) // 2 // 12 * 12, (width - size) // 2 // 12 * 12)
    return {"centre": centre, "smooth": smooth[2:], "detail": detail[2:]}


def write_unseen_crops(
    photo_root: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    size: int = 384,
    long_side: int = 2040,
) -> list[Path]:
    """Write the unseen crops of every validation photograph of the photo set at
    ``photo_root`` (its ``manifest.json`` names the sources, which must still be on disk: the
    cache of ``nie data photos``); returns the written paths, sorted. Up-to-date files are kept.

    ``size``: crop side (a multiple of 12, so that x2/x3/x4 divide it); ``long_side``: the
    length the source's longest side is reduced to (2040 by default: about twice the training
    images' resolution, so the crops hold finer, smoother detail than anything trained on).
    """
    if size < 12 or size % 12:
        raise ValueError(f"size must be a positive multiple of 12, got {size}")
    manifest = Path(photo_root) / "manifest.json"
    if not manifest.is_file():
        raise FileNotFoundError(
            f"{manifest} not found: build the photo set first (nie data photos)"
        )
    data = json.loads(manifest.read_text(encoding="utf-8"))
    sources = {Path(p).name: Path(p) for p in data["args"]["sources"]}
    out = Path(out_dir)
    written: list[Path] = []
    for photo_id, photo in sorted(data["photos"].items()):
        if photo["split"] != "valid":
            continue
        done = sorted(out.glob(f"{photo_id}_*.png"))
        if done:
            written.extend(done)
            continue
        source = sources.get(Path(photo["path"]).name)
        if source is None or not source.is_file():
            raise FileNotFoundError(f"source of photo {photo_id} not found: {photo['path']}")
        image, _ = make_hr(source, long_side)
        side = min(size, min(image.shape[:2]) // 12 * 12)
        picks = _pick(image, side)
        if side < size:  # a small photo: its windows would overlap, so only its centre
            picks = {"centre": picks["centre"]}
        for kind, (top, left) in picks.items():
            target = out / f"{photo_id}_{kind}.png"
            save_image(target, image[top : top + side, left : left + side])
            written.append(target)
    return sorted(written)
