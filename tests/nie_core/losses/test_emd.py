from __future__ import annotations

import math

import pytest
import torch

from nie_core.losses import emd_loss, emd_per_sample

# Two samples over K = 4 ordered classes, worked by hand.
#
# sample 0: target [0.5, 0.5, 0, 0]        -> CDF [0.5, 1.0, 1.0, 1.0]
#           pred   [0.25, 0.25, 0.25, 0.25] -> CDF [0.25, 0.5, 0.75, 1.0]
#           |gap| = [0.25, 0.5, 0.25, 0]
#           r=2: sqrt((0.0625 + 0.25 + 0.0625 + 0) / 4) = sqrt(0.09375) = 0.30618621784789724
#           r=1: (0.25 + 0.5 + 0.25 + 0) / 4 = 0.25
# sample 1: target [1, 0, 0, 0] -> CDF [1, 1, 1, 1]
#           pred   [0, 0, 0, 1] -> CDF [0, 0, 0, 1]
#           |gap| = [1, 1, 1, 0]
#           r=2: sqrt(3 / 4) = 0.8660254037844386
#           r=1: 3 / 4 = 0.75
# batch loss (r=2) = (0.30618621784789724 + 0.8660254037844386) / 2 = 0.5861058108161679
# (a single sqrt over the whole batch would give sqrt((0.375 + 3) / 8) = 0.6495..., which is wrong)
TARGET = torch.tensor([[0.5, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
PRED = torch.tensor([[0.25, 0.25, 0.25, 0.25], [0.0, 0.0, 0.0, 1.0]], dtype=torch.float64)


def test_per_sample_matches_hand_computation_r2() -> None:
    distances = emd_per_sample(TARGET, PRED)
    assert distances.shape == (2,)
    torch.testing.assert_close(
        distances, torch.tensor([0.30618621784789724, 0.8660254037844386], dtype=torch.float64)
    )


def test_per_sample_matches_hand_computation_r1() -> None:
    distances = emd_per_sample(TARGET, PRED, r=1)
    torch.testing.assert_close(distances, torch.tensor([0.25, 0.75], dtype=torch.float64))


def test_batch_loss_is_mean_of_per_sample_distances() -> None:
    loss = emd_loss(TARGET, PRED)
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(0.5861058108161679, rel=1e-12)
    assert loss.item() != pytest.approx(math.sqrt((0.375 + 3.0) / 8.0), rel=1e-3)


def test_ten_buckets_opposite_extremes() -> None:
    # All mass on score 10 vs all on score 1: the CDF gap is 1 at k = 1..9 and 0 at k = 10,
    # so EMD = sqrt(9 / 10).
    target = torch.zeros(1, 10)
    target[0, 9] = 1.0
    pred = torch.zeros(1, 10)
    pred[0, 0] = 1.0
    assert emd_loss(target, pred).item() == pytest.approx(math.sqrt(0.9), rel=1e-6)


def test_identical_distributions_give_zero_and_finite_gradient() -> None:
    target = torch.softmax(torch.randn(3, 10, generator=torch.Generator().manual_seed(0)), dim=1)
    pred = target.clone().requires_grad_(True)
    loss = emd_loss(target, pred)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(pred.grad).all()


def test_symmetric_and_gradient_reaches_logits() -> None:
    generator = torch.Generator().manual_seed(1)
    target = torch.softmax(torch.randn(4, 10, generator=generator), dim=1)
    logits = torch.randn(4, 10, generator=generator, requires_grad=True)
    pred = torch.softmax(logits, dim=1)
    torch.testing.assert_close(emd_per_sample(target, pred), emd_per_sample(pred, target))
    emd_loss(target, pred).backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("target_shape", "pred_shape"),
    [
        ((10,), (10,)),
        ((2, 10), (2, 9)),
        ((2, 10), (3, 10)),
        ((2, 5, 2), (2, 5, 2)),
        ((0, 10), (0, 10)),
    ],
)
def test_bad_shapes_raise(target_shape: tuple[int, ...], pred_shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="shape"):
        emd_per_sample(torch.zeros(target_shape), torch.zeros(pred_shape))


@pytest.mark.parametrize("r", [0, -1, 1.5, True])
def test_bad_order_raises(r: object) -> None:
    with pytest.raises(ValueError, match="r must be"):
        emd_loss(TARGET, PRED, r=r)  # type: ignore[arg-type]
