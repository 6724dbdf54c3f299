"""The demo's scorer hardening: the zoo NIMA learns the blind spot the gaming probe found.

The gaming probe is an EDSR fine-tuned with the report's plain hybrid loss against the zoo NIMA;
it learns faint patterns that raise that scorer's score. Its x2 outputs of crops of the
training photographs are rated as degraded, the L2 model's outputs of the same crops as good
super-resolution, beside clean and bicubic-x2 crops (``nie data ratings --rate-outputs``), and
the zoo NIMA is fine-tuned on that set with the NIMA job (Ray Train, tracked in MLflow). The
hybrid model and the sweep then train against the hardened scorer.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from nie_cli.demo.layout import (
    GAMED_OUTPUT_SCORE,
    HARDENING_CROPS_PER_PHOTO,
    HARDENING_LEVELS,
    L2_OUTPUT_SCORE,
    DemoLayout,
    nima_config,
)

__all__ = ["harden_scorer", "hardening_ratings"]


def hardening_ratings(layout: DemoLayout, l2_checkpoint: str, probe_checkpoint: str) -> dict:
    """Write the hardening rating set under ``layout.hardening``; returns its paths."""
    from nie_core.data.quality_ratings import RatedOutputs, build_quality_ratings

    return build_quality_ratings(
        layout.train_root,
        layout.hardening,
        crop=96 if layout.fast else 168,
        crops_per_photo=1 if layout.fast else HARDENING_CROPS_PER_PHOTO,
        levels=HARDENING_LEVELS,
        outputs=[
            RatedOutputs("l2", l2_checkpoint, L2_OUTPUT_SCORE),
            RatedOutputs("gamed", probe_checkpoint, GAMED_OUTPUT_SCORE),
        ],
    )


def harden_scorer(layout: DemoLayout, l2_checkpoint: str, probe_checkpoint: str) -> dict[str, Any]:
    """The ratings, then the NIMA job; returns the job's ``TrainResult`` as a dict."""
    from ray_jobs.nima import train_nima

    hardening_ratings(layout, l2_checkpoint, probe_checkpoint)
    return asdict(train_nima(nima_config(layout)))
