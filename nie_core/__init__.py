"""NIE core: the framework-free half of Neural Image Enhancement.

This package holds everything that is plain PyTorch, NumPy and Pillow: the super-resolution
models (EDSR and MDSR, Lim et al. 2017) and the NIMA aesthetic scorer (Talebi & Milanfar 2018),
the EMD and hybrid pixel + aesthetic losses, image-quality metrics, dataset readers, tiled
inference, checkpoints and typed configuration. Ray, MLflow and the web service build on it and
are never imported from here. ``create_model`` and ``list_models`` are re-exported lazily from
``nie_core.models`` so that ``import nie_core`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "list_models"]

_LAZY_EXPORTS = {"create_model": "nie_core.models", "list_models": "nie_core.models"}


def __getattr__(name: str) -> Any:
    """Import ``nie_core.models`` on first access to one of its re-exported names."""
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'nie_core' has no attribute {name!r}")
    return getattr(importlib.import_module(module_name), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY_EXPORTS])
