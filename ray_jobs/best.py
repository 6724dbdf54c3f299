"""A run's best checkpoint: which one it is, and its copy at ``runs/NAME/best``."""

from __future__ import annotations

import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


def best_checkpoint(
    checkpoints: Sequence[tuple[Any, Mapping[str, Any]]], metric: str, mode: str
) -> tuple[Any, Mapping[str, Any]]:
    """The (checkpoint, metrics) pair with the best finite ``metric`` (``mode`` "max" or
    "min"); pairs without it, or with NaN, rank last (the latest of them when none has it).
    Sorting with NaN as a key, as this once did, gives an undefined order."""

    def value(pair: tuple[Any, Mapping[str, Any]]) -> float | None:
        number = pair[1].get(metric)
        if isinstance(number, int | float) and math.isfinite(number):
            return float(number)
        return None

    scored = [pair for pair in checkpoints if value(pair) is not None]
    if not scored:
        return checkpoints[-1]
    pick = max if mode == "max" else min
    return pick(scored, key=lambda pair: value(pair))


def export_best(checkpoint_dir: str, dest: Path) -> Path:
    """Copy the best checkpoint to a stable place (``runs/NAME/best``) that recipes can name.

    Copied into a temporary sibling first and swapped in, so a reader never sees half a copy.
    """
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(checkpoint_dir, tmp)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)
    return dest
