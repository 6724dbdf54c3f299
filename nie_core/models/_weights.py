"""Reading weight files and loading them strictly, with errors that name the offending keys."""

from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Load a state dict from ``path`` with ``torch.load(weights_only=True)`` onto the CPU.

    Accepts a bare state dict or a checkpoint dict holding it under ``"model"``.
    """
    if not isinstance(path, str | os.PathLike):
        raise ValueError(f"weights must be None or a file path, got {path!r}")
    loaded = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        loaded = loaded["model"]
    if not isinstance(loaded, Mapping) or not all(
        isinstance(value, torch.Tensor) for value in loaded.values()
    ):
        raise ValueError(f"{os.fspath(path)!r} holds no state dict of tensors")
    return dict(loaded)


def load_state_dict_strict(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> None:
    """Copy ``state_dict`` into ``model``; every key must exist on both sides with equal shapes.

    Raises ValueError listing missing keys, unexpected keys, or mismatched shapes.
    """
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    if missing or unexpected:
        raise ValueError(
            f"state dict does not match {type(model).__name__}: "
            f"missing keys {_preview(missing)}, unexpected keys {_preview(unexpected)}"
        )
    mismatched = [
        f"{key}: file {tuple(value.shape)} vs model {tuple(expected[key].shape)}"
        for key, value in state_dict.items()
        if value.shape != expected[key].shape
    ]
    if mismatched:
        raise ValueError(
            f"state dict shapes do not match {type(model).__name__}: {_preview(mismatched)}"
        )
    model.load_state_dict(state_dict, strict=True)


def _preview(items: list[str], limit: int = 8) -> str:
    """``items`` as a list literal, cut to ``limit`` entries plus a count of the rest."""
    shown = repr(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"
