"""ray_jobs.best: picking a run's best checkpoint (no Ray cluster needed)."""

from __future__ import annotations

import math

import pytest

from ray_jobs.best import best_checkpoint


@pytest.mark.parametrize("mode", ["max", "min"])
def test_best_checkpoint_ignores_nan_and_missing_metrics(mode: str) -> None:
    pairs = [
        ("a", {"val_psnr_y": 30.0}),
        ("b", {"val_psnr_y": math.nan}),
        ("c", {"val_psnr_y": 32.0}),
        ("d", {}),
        ("e", {"val_psnr_y": 31.0}),
    ]
    # A NaN key made sorted() return an order that depended on where the NaN sat.
    for order in (pairs, pairs[::-1], pairs[1:] + pairs[:1]):
        checkpoint, metrics = best_checkpoint(order, "val_psnr_y", mode)
        assert checkpoint == ("c" if mode == "max" else "a")
        assert math.isfinite(metrics["val_psnr_y"])


def test_best_checkpoint_without_the_metric_takes_the_latest() -> None:
    pairs = [("a", {"loss": 1.0}), ("b", {"val_psnr_y": math.nan})]
    assert best_checkpoint(pairs, "val_psnr_y", "max")[0] == "b"
