"""Import of the checkpoints published with the authors' EDSR-PyTorch code (Lim et al. 2017).

Those state dicts use the same module names as :mod:`nie_core.models.edsr` / ``mdsr`` (``head.*``,
``body.N.body.M.*``, ``tail.*``, ``pre_process.*``, ``upsample.*``) but were trained on pixel
values in [0, 255] (``rgb_range=255``), and their mean shifts ``sub_mean``/``add_mean`` are 1x1
convs rather than buffers.

Conversion to our [0, 1] models is exact: the official network computes
``g(255 * (x - mean)) + 255 * mean`` where ``g`` is convs, ReLUs, residual sums, constant scalings
and PixelShuffle. Every one of these maps ``255 * z`` to ``255 * (same layer with bias / 255)(z)``
(ReLU is positively homogeneous), so ``g(255 * z) = 255 * g'(z)`` with every bias divided by 255.
The converted model therefore returns the official output divided by 255, up to float rounding.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from typing import TypeVar

import torch
from torch import nn

from nie_core.models._weights import load_state_dict_strict, read_state_dict
from nie_core.models.common import DIV2K_RGB_MEAN

# Pixel range the official checkpoints were trained with (their ``--rgb_range`` default).
OFFICIAL_RGB_RANGE: float = 255.0
# Order of the per-scale branches in the published MDSR checkpoints (``--scale 2+3+4``).
OFFICIAL_MDSR_SCALES: tuple[int, ...] = (2, 3, 4)
# Key present in every state dict saved from this project's EDSR/MDSR, absent from official ones.
NATIVE_MARKER_KEY = "sub_mean.rgb_mean"

_BRANCH_KEY = re.compile(r"^(pre_process|upsample)\.(\d+)\.(.+)$")

Model = TypeVar("Model", bound=nn.Module)


def is_official_state_dict(state_dict: Mapping[str, torch.Tensor]) -> bool:
    """True for an EDSR-PyTorch state dict, False for one saved from this project's models."""
    return NATIVE_MARKER_KEY not in state_dict


def convert_official_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    rgb_range: float = OFFICIAL_RGB_RANGE,
    source_scales: Sequence[int] | None = None,
    target_scales: Sequence[int] | None = None,
) -> dict[str, torch.Tensor]:
    """Turn an official EDSR/MDSR state dict into one for :class:`EDSR` / :class:`MDSR`.

    Biases are divided by ``rgb_range`` (exact, see the module docstring); the 1x1-conv mean
    shifts become ``sub_mean.rgb_mean`` / ``add_mean.rgb_mean`` buffers in [0, 1] (the DIV2K mean
    when the file has none). For MDSR, give ``source_scales`` (the file's branch order) and
    ``target_scales`` (the model's): branches are re-indexed and those of other scales dropped.
    """
    if rgb_range <= 0:
        raise ValueError(f"rgb_range must be positive, got {rgb_range}")
    if (source_scales is None) != (target_scales is None):
        raise ValueError("give both source_scales and target_scales, or neither")
    converted: dict[str, torch.Tensor] = {}
    for name, sign in (("sub_mean", -1), ("add_mean", 1)):
        converted[f"{name}.rgb_mean"] = _official_mean(state_dict, name, sign, rgb_range)
    for key, value in state_dict.items():
        if key.startswith(("sub_mean.", "add_mean.")):
            continue
        if source_scales is not None and target_scales is not None:
            key = _reindex_branch(key, tuple(source_scales), tuple(target_scales))
            if key is None:
                continue
        converted[key] = value / rgb_range if key.endswith(".bias") else value.clone()
    return converted


def load_sr_weights(model: nn.Module, weights: str | os.PathLike[str]) -> None:
    """Load ``weights`` (a file path) into an EDSR or MDSR ``model`` in place.

    The file may be a state dict saved from this project (or a checkpoint dict with it under
    ``"model"``) or an official EDSR-PyTorch checkpoint, recognised by the absence of
    ``sub_mean.rgb_mean``. Official MDSR files are taken to hold branches for x2, x3, x4.
    Raises ValueError naming missing/unexpected keys or mismatched shapes.
    """
    state_dict = read_state_dict(weights)
    if is_official_state_dict(state_dict):
        target_scales = getattr(model, "scales", None)
        source_scales = OFFICIAL_MDSR_SCALES if target_scales is not None else None
        state_dict = convert_official_state_dict(
            state_dict, source_scales=source_scales, target_scales=target_scales
        )
    load_state_dict_strict(model, state_dict)


def build_sr_model(
    model_class: type[Model],
    options: Sequence[str],
    weights: str | os.PathLike[str] | None,
    overrides: Mapping[str, object],
    **kwargs: object,
) -> Model:
    """``model_class(**kwargs)`` with ``overrides`` replacing those keyword arguments, then
    :func:`load_sr_weights` of ``weights`` unless None: what the EDSR and MDSR builders do.
    An override not named in ``options`` raises ValueError listing the allowed ones."""
    unknown = sorted(set(overrides) - set(options))
    if unknown:
        name = model_class.__name__
        raise ValueError(f"unknown {name} option(s) {unknown}; allowed: {list(options)}")
    model = model_class(**{**kwargs, **overrides})
    if weights is not None:
        load_sr_weights(model, weights)
    return model


def _official_mean(
    state_dict: Mapping[str, torch.Tensor], name: str, sign: int, rgb_range: float
) -> torch.Tensor:
    """The [0, 1] RGB mean encoded by official MeanShift ``name`` (weight I/std, bias
    sign * rgb_range * mean / std), as a (1, 3, 1, 1) buffer."""
    weight = state_dict.get(f"{name}.weight")
    bias = state_dict.get(f"{name}.bias")
    if weight is None or bias is None:
        return torch.tensor(DIV2K_RGB_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    if weight.shape != (3, 3, 1, 1) or not torch.equal(
        weight.reshape(3, 3), torch.eye(3, dtype=weight.dtype, device=weight.device)
    ):
        raise ValueError(
            f"{name}.weight is not the identity (rgb_std != 1 is not supported): {weight.flatten()}"
        )
    return (sign * bias.float() / rgb_range).view(1, 3, 1, 1)


def _reindex_branch(
    key: str, source_scales: tuple[int, ...], target_scales: tuple[int, ...]
) -> str | None:
    """Map ``pre_process.i.*`` / ``upsample.i.*`` from the file's branch order to the model's;
    None for a branch the model does not have. Other keys pass through unchanged."""
    match = _BRANCH_KEY.match(key)
    if match is None:
        return key
    group, index, rest = match.group(1), int(match.group(2)), match.group(3)
    if index >= len(source_scales):
        raise ValueError(
            f"checkpoint key {key!r} is for branch {index}, but the file's scales are "
            f"{source_scales}; pass source_scales to convert_official_state_dict"
        )
    scale = source_scales[index]
    if scale not in target_scales:
        return None
    return f"{group}.{target_scales.index(scale)}.{rest}"
