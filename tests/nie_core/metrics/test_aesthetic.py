from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from nie_core.losses import emd_loss
from nie_core.metrics import binary_accuracy, emd, lcc, mean_score, srcc, std_score


def test_mean_and_std_by_hand() -> None:
    uniform = torch.full((1, 10), 0.1)
    one_hot_7 = torch.zeros(1, 10)
    one_hot_7[0, 6] = 1.0
    split_1_10 = torch.zeros(1, 10)
    split_1_10[0, 0] = split_1_10[0, 9] = 0.5
    probs = torch.cat([uniform, one_hot_7, split_1_10])
    # uniform: mean 5.5, variance sum_i (i - 5.5)^2 / 10 = 82.5 / 10 = 8.25
    # one-hot on 7: mean 7, std 0; half on 1, half on 10: mean 5.5, std 4.5
    torch.testing.assert_close(mean_score(probs), torch.tensor([5.5, 7.0, 5.5]))
    torch.testing.assert_close(std_score(probs), torch.tensor([math.sqrt(8.25), 0.0, 4.5]))


def test_mean_score_is_differentiable() -> None:
    logits = torch.zeros(2, 10, requires_grad=True)
    mean_score(torch.softmax(logits, dim=1)).sum().backward()
    # raising the logit of a high bucket raises the mean score
    assert logits.grad[0, 9] > 0 > logits.grad[0, 0]


@pytest.mark.parametrize("fn", [mean_score, std_score])
def test_scores_reject_non_matrix(fn) -> None:
    with pytest.raises(ValueError, match="probs"):
        fn(torch.full((10,), 0.1))


def test_lcc_matches_scipy() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(5.0, 1.0, 50)
    b = 0.7 * a + rng.normal(0.0, 0.5, 50)
    assert lcc(a, b) == pytest.approx(stats.pearsonr(a, b).statistic, abs=1e-12)
    assert lcc(torch.from_numpy(a), torch.from_numpy(-b)) == pytest.approx(
        -stats.pearsonr(a, b).statistic, abs=1e-12
    )


def test_srcc_with_ties_by_hand() -> None:
    # a = [1, 2, 2, 3] has average ranks [1, 2.5, 2.5, 4]; b = [1, 3, 2, 4] has ranks [1, 3, 2, 4].
    # centred: [-1.5, 0, 0, 1.5] and [-1.5, 0.5, -0.5, 1.5]; products sum to 4.5,
    # squares to 4.5 and 5 -> r = 4.5 / sqrt(22.5) = 0.9486832980505138.
    # (ordinal ranks [1, 2, 3, 4] for a would give 0.8 instead)
    assert srcc([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138, abs=1e-12)


def test_srcc_matches_scipy_with_many_ties() -> None:
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(5.0, 1.0, 80), 1)
    b = np.round(a + rng.normal(0.0, 0.8, 80))
    assert len(np.unique(b)) < 20  # plenty of ties
    assert srcc(a, b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)
    assert srcc(torch.from_numpy(a), b) == pytest.approx(stats.spearmanr(a, b).statistic, abs=1e-12)


def test_correlations_of_constant_input_are_nan() -> None:
    assert math.isnan(lcc([1.0, 1.0, 1.0], [1.0, 2.0, 3.0]))
    assert math.isnan(srcc([1.0, 2.0, 3.0], [4.0, 4.0, 4.0]))


@pytest.mark.parametrize("fn", [lcc, srcc])
def test_correlation_bad_inputs(fn) -> None:
    with pytest.raises(ValueError, match="length"):
        fn([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        fn([1.0], [2.0])
    with pytest.raises(ValueError, match="1-D"):
        fn(np.ones((2, 2)), np.ones((2, 2)))


def test_binary_accuracy_by_hand() -> None:
    # "high" means strictly above 5: predicted classes [low, low, high, high],
    # target classes [low, high, high, low] -> 2 of 4 agree.
    assert binary_accuracy([4.9, 5.0, 5.1, 6.0], [4.0, 6.0, 6.0, 4.0]) == pytest.approx(0.5)
    assert binary_accuracy(torch.tensor([3.0, 7.0]), torch.tensor([4.0, 8.0])) == 1.0
    assert binary_accuracy([5.5, 6.5], [6.0, 6.0], threshold=6.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least one"):
        binary_accuracy([], [])


def test_emd_is_the_loss() -> None:
    assert emd is emd_loss


def test_metrics_package_imports_first_in_a_fresh_interpreter() -> None:
    # nie_core.metrics and nie_core.losses import each other's modules; either may come first.
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [sys.executable, "-c", "import nie_core.metrics, nie_core.losses; print('ok')"],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
