"""nie_core.training: the one training step of both jobs and of bench/training.py."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nie_core.losses import HybridLoss, LossParts, emd_loss
from nie_core.training import fast_autocast, loss_terms, train_step


class Upscaler(nn.Module):
    """A conv then nearest upsampling by ``scale`` (MDSR's forward takes its scale too)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x: torch.Tensor, scale: int = 2) -> torch.Tensor:
        return F.interpolate(self.conv(x), scale_factor=scale, mode="nearest")


class TinyScorer(nn.Module):
    """Stand-in for NIMA: conv -> global average pool -> linear -> softmax over 10 scores."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.head(self.conv(x).mean(dim=(2, 3))), dim=1)


def test_one_step_is_the_manual_sgd_step() -> None:
    torch.manual_seed(0)
    model = nn.Linear(4, 3)
    x, y = torch.randn(5, 4), torch.randn(5, 3)
    weight, bias = model.weight.detach().clone(), model.bias.detach().clone()
    # d/dout mean((out - y)^2) = 2 (out - y) / numel; W' = W - lr dout^T x, b' = b - lr sum dout.
    out = x @ weight.T + bias
    dout = 2 * (out - y) / out.numel()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

    terms = train_step(model, (x, y), F.mse_loss, optimizer)

    assert set(terms) == {"loss"}
    torch.testing.assert_close(terms["loss"], F.mse_loss(out, y))
    torch.testing.assert_close(model.weight.detach(), weight - 0.1 * dout.T @ x)
    torch.testing.assert_close(model.bias.detach(), bias - 0.1 * dout.sum(dim=0))


def test_steps_match_the_hand_written_adam_steps_exactly() -> None:
    """The step is forward, float32 loss, zero_grad, backward, Adam step, in that order; the
    model gets its extra arguments (a scale) and the returned terms are detached."""
    torch.manual_seed(0)
    ours = Upscaler()
    theirs = copy.deepcopy(ours)
    opt_ours = torch.optim.Adam(ours.parameters(), lr=1e-2)
    opt_theirs = torch.optim.Adam(theirs.parameters(), lr=1e-2)
    for _ in range(3):
        lr_img, hr_img = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 24, 24)
        terms = train_step(ours, (lr_img, hr_img), F.l1_loss, opt_ours, model_args=(3,))
        loss = F.l1_loss(theirs(lr_img, 3).float(), hr_img.float())
        opt_theirs.zero_grad(set_to_none=True)
        loss.backward()
        opt_theirs.step()
        assert torch.equal(terms["loss"], loss.detach()) and not terms["loss"].requires_grad
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert torch.equal(a, b)


def test_loss_terms_are_float32_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    model = Upscaler()
    dtypes = []
    model.conv.register_forward_hook(lambda module, args, out: dtypes.append(out.dtype))
    loss_fn = HybridLoss(TinyScorer(), gamma=0.4, min_scorer_size=0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    batch = (torch.rand(2, 3, 8, 8), torch.rand(2, 3, 16, 16))

    terms = train_step(model, batch, loss_fn, optimizer, fast_autocast("cpu", fast=True))

    assert dtypes == [torch.bfloat16]  # the forward pass did run in bf16
    assert set(terms) == {"loss", "pixel", "aesthetic"}
    assert all(t.dtype == torch.float32 and t.ndim == 0 for t in terms.values())
    assert not any(t.requires_grad for t in terms.values())
    torch.testing.assert_close(terms["loss"], terms["pixel"] + 0.4 * terms["aesthetic"])
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


@pytest.mark.parametrize("fast", [False, True])
def test_fast_autocast_is_bf16_on_the_fast_path_only(fast: bool) -> None:
    with fast_autocast(torch.device("cpu"), fast):
        assert torch.is_autocast_enabled("cpu") is fast
        if fast:
            assert torch.get_autocast_dtype("cpu") == torch.bfloat16
    assert not torch.is_autocast_enabled("cpu")


def test_loss_terms_of_a_scalar_and_of_hybrid_parts() -> None:
    scalar = torch.tensor(0.5)
    assert loss_terms(scalar) == {"loss": scalar}
    total, pixel, aesthetic, nima = (torch.tensor(v) for v in (3.0, 1.0, 5.0, 5.0))
    parts = LossParts(total, pixel, aesthetic, nima)
    assert loss_terms(parts) == {"loss": total, "pixel": pixel, "aesthetic": aesthetic}


def test_emd_is_the_same_inside_the_steps_autocast() -> None:
    """The nima job's EMD now runs inside the step's autocast: on float32 inputs it gives the
    same value and gradient, bit for bit, as outside it."""
    torch.manual_seed(0)
    target = torch.softmax(torch.randn(4, 10), dim=1)
    logits = torch.randn(4, 10, requires_grad=True)
    results = []
    for fast in (False, True):
        probs = torch.softmax(logits, dim=1)
        with fast_autocast("cpu", fast):
            loss = emd_loss(target.float(), probs.float())
        (grad,) = torch.autograd.grad(loss, logits)
        results.append((loss.detach(), grad))
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
