"""``nie train nima|enhancer``: load a recipe, apply overrides, run the job.

From Python: ``train_enhancer(load_config(EnhancerJobConfig, "recipe.yaml", ["loss.gamma=0.4"]))``.
"""

from __future__ import annotations

import argparse
import json
import sys

from nie_core.config import load_config

from .config import EnhancerJobConfig, NimaJobConfig
from .driver import TrainResult
from .enhancer import train_enhancer
from .nima import train_nima

__all__ = ["TrainResult", "run_cli", "train_enhancer", "train_nima"]


def run_cli(args: argparse.Namespace) -> int:
    """Handler of ``nie train``: prints the result as JSON on stdout."""
    if args.job == "nima":
        result = train_nima(load_config(NimaJobConfig, args.config, args.overrides))
    else:
        result = train_enhancer(load_config(EnhancerJobConfig, args.config, args.overrides))
    print(json.dumps(result.__dict__, indent=1, default=str))
    print(
        f"[nie] done: best checkpoint {result.checkpoint_dir}\n"
        f"[nie] look at it: mlflow ui --backend-store-uri {result.tracking_uri}",
        file=sys.stderr,
    )
    return 0
