"""The "best" rule (nie_core.judging): an output is best only when no judge rates it worse than
another beyond the judge's tolerance; otherwise the verdict names the judge that disagrees."""

from __future__ import annotations

import math

import pytest

from nie_core.evaluation import METRICS
from nie_core.judging import JUDGES, judge_outputs, rated_worse, winner

# The means of the demo run recorded in docs/results/demo_summary.md (x2, 5 images).
L2 = {"nima": 5.531, "psnr_y": 33.39, "ssim_y": 0.9272, "niqe": 5.21, "lr_psnr_y": 53.49}
HYBRID = {"nima": 5.610, "psnr_y": 33.31, "ssim_y": 0.9250, "niqe": 5.27, "lr_psnr_y": 51.12}


def test_the_table_covers_every_evaluated_metric_with_a_direction_and_tolerance() -> None:
    assert set(METRICS) <= set(JUDGES)
    assert all(judge.tolerance >= 0 for judge in JUDGES.values())
    lower_better = {name for name, judge in JUDGES.items() if not judge.higher_is_better}
    assert lower_better == {"niqe", "gmsd", "artifacts"}
    assert JUDGES["lr_psnr_y"].tolerance == 0.5
    assert JUDGES["psnr_y"].tolerance == 0.3
    assert JUDGES["artifacts"].tolerance == 0.1


def test_rated_worse_follows_direction_and_tolerance() -> None:
    assert rated_worse("nima", 5.0, 5.2) and not rated_worse("nima", 5.2, 5.0)
    assert rated_worse("niqe", 5.2, 5.0) and not rated_worse("niqe", 5.0, 5.2)
    assert not rated_worse("lr_psnr_y", 40.0, 40.4)  # within 0.5 dB: a tie
    assert rated_worse("lr_psnr_y", 40.0, 40.6)
    assert not rated_worse("artifacts", 0.59, 0.5) and rated_worse("artifacts", 0.61, 0.5)


def test_nima_gaming_withholds_the_badge_from_both_and_names_the_judges() -> None:
    verdicts = judge_outputs({"L2": L2, "hybrid": HYBRID})
    assert not verdicts["hybrid"].best and not verdicts["L2"].best
    assert winner(verdicts) is None
    assert verdicts["hybrid"].reason == (
        "NIMA prefers hybrid over L2 (5.61 vs 5.53), but SSIM-Y, NIQE and LR-consistency rate "
        "it worse (SSIM-Y 0.9250 vs 0.9272; NIQE 5.27 vs 5.21; LR-consistency 51.12 dB vs "
        "53.49 dB)"
    )
    assert verdicts["L2"].reason.startswith("SSIM-Y, NIQE and LR-consistency prefer L2 over")
    assert verdicts["L2"].reason.endswith("but NIMA rates it worse (5.53 vs 5.61)")


def test_one_judge_against_nima_reads_as_one_plain_sentence() -> None:
    verdicts = judge_outputs(
        {"baseline": {"nima": 5.53, "niqe": 5.21}, "hybrid": {"nima": 5.61, "niqe": 5.27}}
    )
    assert verdicts["hybrid"].reason == (
        "NIMA prefers hybrid over baseline (5.61 vs 5.53), but NIQE rates it worse (5.27 vs 5.21)"
    )
    assert verdicts["baseline"].reason == (
        "NIQE prefers baseline over hybrid (5.21 vs 5.27), but NIMA rates it worse (5.53 vs 5.61)"
    )


def test_when_all_judges_agree_the_badge_is_given() -> None:
    good = {"nima": 5.6, "niqe": 4.0, "lr_psnr_y": 45.0, "artifacts": 0.2}
    bad = {"nima": 5.3, "niqe": 4.5, "lr_psnr_y": 41.0, "artifacts": 3.0}
    verdicts = judge_outputs({"good": good, "bad": bad})
    assert verdicts["good"].best
    assert "No judge rates good worse than bad" in verdicts["good"].reason
    assert not verdicts["bad"].best
    assert verdicts["bad"].reason.startswith(
        "NIMA, the artifact measure, NIQE and LR-consistency rate bad worse than good (NIMA 5.30"
    )
    assert winner(verdicts) == "good"


def test_differences_within_tolerance_are_ties() -> None:
    a = {"nima": 5.60, "niqe": 4.00, "lr_psnr_y": 45.0, "artifacts": 0.20}
    b = {"nima": 5.64, "niqe": 4.04, "lr_psnr_y": 45.4, "artifacts": 0.29}  # all within
    verdicts = judge_outputs({"a": a, "b": b})
    assert verdicts["a"].best and verdicts["b"].best
    assert winner(verdicts) is None  # a tie crowns nobody in particular
    # A tie on NIMA but a clear loss elsewhere: the other output is best.
    verdicts = judge_outputs({"a": a, "b": {**b, "artifacts": 4.0}})
    assert verdicts["a"].best and not verdicts["b"].best
    assert verdicts["b"].reason == "The artifact measure rates b worse than a (4.00 dB vs 0.20 dB)"


def test_best_of_three_must_beat_or_tie_every_alternative() -> None:
    values = {
        "x": {"nima": 5.0, "niqe": 4.0},
        "y": {"nima": 5.5, "niqe": 4.0},  # best: no judge rates it worse than x or z
        "z": {"nima": 5.5, "niqe": 4.5},
    }
    verdicts = judge_outputs(values)
    assert [name for name, v in verdicts.items() if v.best] == ["y"]
    assert verdicts["x"].reason == "NIMA rates x worse than y (5.00 vs 5.50)"
    assert verdicts["z"].reason == (
        "NIMA prefers z over x (5.50 vs 5.00), but NIQE rates it worse (4.50 vs 4.00)"
    )


def test_missing_values_leave_a_judge_out() -> None:
    values = {
        "a": {"nima": 5.0, "niqe": None, "artifacts": math.nan},
        "b": {"nima": 5.0, "niqe": 9.0, "artifacts": 9.0},
    }
    verdicts = judge_outputs(values)
    assert verdicts["a"].best and verdicts["b"].best  # only NIMA compared them: a tie
    verdicts = judge_outputs({"a": {"niqe": None}, "b": {"niqe": 4.0}})
    assert not verdicts["a"].best
    assert verdicts["a"].reason == "No judge could compare a with b"


def test_bad_input_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="at least two outputs"):
        judge_outputs({"only": {"nima": 5.0}})
    with pytest.raises(ValueError, match="unknown judge.*'beauty'"):
        judge_outputs({"a": {"beauty": 1.0}, "b": {"nima": 5.0}})
