"""Models: NIMA (aesthetic scorer), EDSR and MDSR (super-resolution / restoration).

Build them by name with :func:`create_model`; :func:`list_models` gives the registered names.
"""

from __future__ import annotations

from nie_core.models._registry import create_model, get_model_builder, list_models, register_model
from nie_core.models.edsr import EDSR, edsr, edsr_baseline
from nie_core.models.mdsr import MDSR, mdsr, mdsr_baseline
from nie_core.models.nima import BACKBONES, NIMA, freeze_scorer, mean_score, nima, std_score
from nie_core.models.official import convert_official_state_dict

__all__ = [
    "BACKBONES",
    "EDSR",
    "MDSR",
    "NIMA",
    "convert_official_state_dict",
    "create_model",
    "edsr",
    "edsr_baseline",
    "freeze_scorer",
    "get_model_builder",
    "list_models",
    "mdsr",
    "mdsr_baseline",
    "mean_score",
    "nima",
    "register_model",
    "std_score",
]
