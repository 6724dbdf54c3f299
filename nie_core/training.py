"""One training step, the same everywhere: both Ray Train jobs and ``bench/training.py`` run it.

A step, in order::

    with autocast:                          # bf16 on the fast path (fast_autocast), else none
        output = model(inputs, *model_args)
        terms = loss_terms(loss_fn(output.float(), target.float()))  # float32 losses
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    optimizer.step()

It returns the loss terms detached and still on the device: a caller that sums them over an
epoch waits for the device once per epoch, not once per step (``.item()`` would sync).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import nn

from nie_core.losses import LossParts

__all__ = ["fast_autocast", "loss_terms", "train_step"]


def fast_autocast(device: torch.device | str, fast: bool) -> AbstractContextManager:
    """The context a step's forward pass runs in: bfloat16 autocast on ``device`` when ``fast``
    (the fast path, with channels_last models and batches), else nothing (float32)."""
    if not fast:
        return nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def loss_terms(loss: LossParts | torch.Tensor) -> dict[str, torch.Tensor]:
    """The named 0-dim terms of a loss; ``"loss"`` is always the one to backpropagate.

    :class:`~nie_core.losses.LossParts` (the hybrid loss) -> ``loss`` (= ``total``), ``pixel``
    and ``aesthetic``; a plain scalar tensor (e.g. the EMD) -> ``loss`` alone.
    """
    if isinstance(loss, torch.Tensor):
        return {"loss": loss}
    return {"loss": loss.total, "pixel": loss.pixel, "aesthetic": loss.aesthetic}


def train_step(
    model: nn.Module,
    batch: tuple[torch.Tensor, torch.Tensor],
    loss_fn: Callable[[torch.Tensor, torch.Tensor], LossParts | torch.Tensor],
    optimizer: torch.optim.Optimizer,
    autocast: AbstractContextManager | None = None,
    model_args: tuple[Any, ...] = (),
) -> dict[str, torch.Tensor]:
    """One optimisation step of ``model`` on ``batch``; returns the detached loss terms.

    Args:
        model: the trained network (possibly DDP-wrapped or compiled), in training mode.
        batch: ``(inputs, target)`` already on the model's device (and in its memory format),
            e.g. LR patches (N, 3, h, w) and HR patches (N, 3, h*s, w*s) in [0, 1] for an
            enhancer, or images (N, 3, H, W) in [0, 1] and vote distributions (N, 10) for NIMA.
        loss_fn: ``loss_fn(output, target)`` on float32 tensors -> a scalar tensor or
            :class:`~nie_core.losses.LossParts`. It runs inside ``autocast`` too, so a scorer
            inside it (the hybrid loss's NIMA) computes on the fast path as well.
        optimizer: stepped once; gradients are zeroed (set to None) before the backward pass.
        autocast: a fresh context for this step's forward pass and loss (see :func:`fast_autocast`);
            None: no autocast.
        model_args: extra positional arguments of the forward pass (MDSR's scale).

    Returns:
        :func:`loss_terms` of the loss: float32 0-dim tensors on the model's device, detached.
    """
    inputs, target = batch
    with autocast if autocast is not None else nullcontext():
        output = model(inputs, *model_args)
        terms = loss_terms(loss_fn(output.float(), target.float()))
    optimizer.zero_grad(set_to_none=True)
    terms["loss"].backward()
    optimizer.step()
    return {name: value.detach() for name, value in terms.items()}
