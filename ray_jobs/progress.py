"""The epoch line: what a training worker prints on rank 0 after each epoch.

``[nie] epoch 3/10  train_loss 12.5  val_psnr_y 31.2  ...  4.10 steps/s  65.6 samples/s  ETA 1m23s``
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .worker import WorkerEnv

# What the epoch line shows when present (every metric is in MLflow): the loss, the model
# against bicubic, the scorer's view; the NIMA job's validation EMD and correlations.
PROGRESS_METRICS = ("train_loss", "val_psnr_y", "bicubic_psnr_y", "val_nima_mean",
                    "val_emd", "val_lcc", "val_srcc")  # fmt: skip


class Progress:
    """One line per epoch on rank 0: loss, step rate, samples/s and ETA."""

    def __init__(self, env: WorkerEnv, total_epochs: int, start_epoch: int, enabled: bool = True):
        self.env = env
        self.total_epochs = total_epochs
        self.enabled = enabled and env.rank == 0
        self.t0 = time.monotonic()
        self.start_epoch = start_epoch
        self.epoch_t0 = self.t0

    def start_epoch_timer(self) -> None:
        self.epoch_t0 = time.monotonic()

    def epoch_done(
        self, epoch: int, steps: int, samples: int, metrics: Mapping[str, float]
    ) -> dict:
        """Print the epoch's line; returns the throughput numbers (for logging)."""
        now = time.monotonic()
        dt = max(now - self.epoch_t0, 1e-9)
        done = epoch + 1 - self.start_epoch
        eta = (now - self.t0) / max(done, 1) * (self.total_epochs - epoch - 1)
        rates = {"steps_per_s": steps / dt, "samples_per_s": samples * self.env.world_size / dt}
        if self.enabled:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, int | float)}
            headline = {k: numbers[k] for k in PROGRESS_METRICS if k in numbers} or numbers
            shown = "  ".join(f"{k} {v:.4g}" for k, v in headline.items())
            print(
                f"[nie] epoch {epoch + 1}/{self.total_epochs}  {shown}  "
                f"{rates['steps_per_s']:.2f} steps/s  {rates['samples_per_s']:.1f} samples/s  "
                f"ETA {format_seconds(eta)}",
                file=sys.stderr,
                flush=True,
            )
        return rates


def format_seconds(seconds: float) -> str:
    """``83`` -> ``"1m23s"``."""
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
