"""One batch through one model, as :func:`~nie_core.inference.enhance` and
:func:`~nie_core.inference.score` both do it: the batch checked, the model's device found, the
model in eval mode for the call only, and a forward pass in float32 or on the fast path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import torch
from torch import nn

__all__ = ["check_image_batch", "eval_mode", "model_device", "run_forward"]


def check_image_batch(x: torch.Tensor, name: str) -> None:
    """Raise ValueError unless ``x`` is a float (N, 3, H, W) tensor with H, W >= 1."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] < 1 or x.shape[3] < 1:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor in [0, 1], got dtype {x.dtype}")


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Put every submodule in eval mode, then restore each one's own previous mode."""
    previous_modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for module, training in previous_modes:
            module.training = training


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (or buffer); CPU for a model with neither."""
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


def run_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    *,
    device: torch.device,
    fast: bool,
) -> torch.Tensor:
    """Move ``images`` to ``device``, run ``forward``, return float32 (bf16 autocast if fast)."""
    images = images.to(device=device, dtype=torch.float32, non_blocking=True)
    if not fast:
        return forward(images).float()
    images = images.contiguous(memory_format=torch.channels_last)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16):
        return forward(images).float()
