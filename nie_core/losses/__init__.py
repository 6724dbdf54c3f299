"""Training losses: NIMA's EMD and the hybrid pixel + aesthetic enhancement loss."""

from __future__ import annotations

from nie_core.losses.emd import emd_loss, emd_per_sample
from nie_core.losses.hybrid import HybridLoss, LossParts

__all__ = ["emd_loss", "emd_per_sample", "HybridLoss", "LossParts"]
