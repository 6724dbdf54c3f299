"""Pareto dominance, fronts and weighted objectives on hand-made points."""

from __future__ import annotations

import math

import pytest

from ray_jobs.pareto import dominates, finite_number, pareto_front, pareto_mask, weighted_sum


def test_dominance_needs_no_worse_everywhere_and_better_somewhere():
    assert dominates((30.0, 5.0), (29.0, 5.0))
    assert dominates((30.0, 5.5), (29.0, 5.0))
    assert not dominates((30.0, 5.0), (30.0, 5.0))  # equal: neither dominates
    assert not dominates((31.0, 4.0), (30.0, 5.0))  # a trade-off
    assert not dominates((29.0, 5.0), (30.0, 5.0))


def test_dominance_respects_directions():
    # Minimise the first objective (e.g. a loss), maximise the second.
    assert dominates((0.1, 5.0), (0.2, 5.0), maximize=(False, True))
    assert not dominates((0.1, 5.0), (0.2, 5.0), maximize=True)
    assert dominates((1.0, 1.0), (2.0, 2.0), maximize=False)


def test_front_of_a_trade_off_with_dominated_points():
    points = [
        (30.0, 4.0),  # 0: best PSNR
        (29.0, 5.0),  # 1: trade-off
        (28.0, 6.0),  # 2: best NIMA
        (28.5, 4.5),  # 3: dominated by 1
        (27.0, 3.0),  # 4: dominated by everything on the front
        (30.0, 3.9),  # 5: dominated by 0 (same PSNR, lower NIMA)
    ]
    assert pareto_front(points) == [0, 1, 2]
    assert pareto_mask(points) == [True, True, True, False, False, False]


def test_ties_are_all_on_the_front():
    points = [(30.0, 5.0), (30.0, 5.0), (29.0, 4.0)]
    assert pareto_front(points) == [0, 1]


def test_a_tie_in_one_objective_is_broken_by_the_other():
    assert pareto_front([(30.0, 5.0), (30.0, 6.0), (31.0, 4.0)]) == [1, 2]


def test_one_point_and_no_points():
    assert pareto_front([(12.0, 3.0)]) == [0]
    assert pareto_front([]) == []
    assert pareto_mask([]) == []


def test_minimised_front():
    points = [(1.0, 3.0), (2.0, 2.0), (3.0, 1.0), (2.5, 2.5)]
    assert pareto_front(points, maximize=False) == [0, 1, 2]
    assert pareto_front(points, maximize=True) == [0, 2, 3]


def test_missing_and_nan_values_take_no_part():
    points = [(30.0, None), (29.0, 5.0), (float("nan"), 9.0), (28.0, 4.0)]
    # (30, None) would dominate (29, 5) in PSNR but is incomplete: it is ignored entirely.
    assert pareto_front(points) == [1]
    assert not dominates((30.0, None), (29.0, 4.0))


def test_three_objectives():
    points = [(1, 1, 1), (1, 1, 2), (2, 0, 0), (0, 0, 3)]
    assert pareto_front(points) == [1, 2, 3]


def test_malformed_input_is_refused():
    with pytest.raises(ValueError, match="point 1 has 3 objectives"):
        pareto_front([(1.0, 2.0), (1.0, 2.0, 3.0)])
    with pytest.raises(ValueError, match="maximize has 3 entries for 2 objectives"):
        pareto_front([(1.0, 2.0)], maximize=(True, True, False))
    with pytest.raises(ValueError, match="different lengths"):
        dominates((1.0,), (1.0, 2.0))


def test_weighted_sum():
    metrics = {"val_psnr_y": 30.0, "val_nima_mean": 5.0, "note": "x"}
    assert weighted_sum(metrics, {"val_psnr_y": 1.0}) == 30.0
    assert weighted_sum(metrics, {"val_psnr_y": 1.0, "val_nima_mean": 2.0}) == 40.0
    assert weighted_sum(metrics, {"val_psnr_y": 0.5, "val_nima_mean": -1.0}) == 10.0
    # A missing or non-finite metric gives no value, so that trial never wins.
    assert weighted_sum(metrics, {"val_ssim_y": 1.0}) is None
    assert weighted_sum(metrics, {"note": 1.0}) is None
    assert weighted_sum({"a": math.inf}, {"a": 1.0}) is None
    with pytest.raises(ValueError, match="weights is empty"):
        weighted_sum(metrics, {})


def test_finite_number_keeps_only_finite_reals() -> None:
    assert finite_number(3) == 3.0 and isinstance(finite_number(3), float)
    assert finite_number(-0.5) == -0.5
    for value in (None, True, "1.0", float("nan"), float("inf"), [1.0]):
        assert finite_number(value) is None, value
