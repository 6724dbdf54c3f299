"""Aesthetic-score statistics and the agreement measures used to evaluate NIMA.

Talebi & Milanfar, "NIMA: Neural Image Assessment", IEEE TIP 2018: a scorer predicts a
distribution ``p`` over the score buckets ``1..K`` (K = 10 on AVA). Its mean score is
``sum_i i * p_i`` and its standard deviation ``sqrt(sum_i (i - mean)^2 * p_i)``. Predictions are
compared with the ground truth by the linear (Pearson) and rank (Spearman) correlation of the mean
scores, and by two-class accuracy with an image called "high quality" when its mean score is above
5.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["mean_score", "std_score", "lcc", "srcc", "binary_accuracy"]

ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _check_probs(probs: torch.Tensor) -> None:
    if probs.ndim != 2 or probs.shape[1] == 0:
        raise ValueError(f"probs must have shape (N, K) with K >= 1, got {tuple(probs.shape)}")


def _bucket_scores(probs: torch.Tensor) -> torch.Tensor:
    """The scores 1..K as a (K,) tensor matching ``probs``' dtype and device."""
    return torch.arange(1, probs.shape[1] + 1, dtype=probs.dtype, device=probs.device)


def mean_score(probs: torch.Tensor) -> torch.Tensor:
    """Mean score ``sum_i i * p_i`` of each row of ``probs``: (N, K) -> (N,), in [1, K].

    Differentiable; used both as a metric and inside the hybrid enhancement loss. Computed in
    float32 (or float64 for float64 input) even under autocast, where a bf16 matmul would round
    the mean to steps of 1/32.
    """
    _check_probs(probs)
    if probs.dtype in (torch.float16, torch.bfloat16):
        probs = probs.float()
    return (probs * _bucket_scores(probs)).sum(dim=1)


def std_score(probs: torch.Tensor) -> torch.Tensor:
    """Standard deviation ``sqrt(sum_i (i - mean)^2 * p_i)`` of each row: (N, K) -> (N,) >= 0."""
    _check_probs(probs)
    scores = _bucket_scores(probs)
    centred = scores.unsqueeze(0) - mean_score(probs).unsqueeze(1)
    variance = (centred.square() * probs).sum(dim=1)
    return variance.clamp_min(0.0).sqrt()


def _as_paired_vectors(a: ArrayLike, b: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    if isinstance(b, torch.Tensor):
        b = b.detach().cpu().numpy()
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or y.ndim != 1:
        raise ValueError(f"expected two 1-D sequences, got shapes {x.shape} and {y.shape}")
    if x.shape != y.shape:
        raise ValueError(f"sequences differ in length: {x.shape[0]} and {y.shape[0]}")
    return x, y


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    if x.shape[0] < 2:
        raise ValueError(f"correlation needs at least 2 values, got {x.shape[0]}")
    dx = x - x.mean()
    dy = y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    if denominator == 0.0:
        return float("nan")
    return float(np.clip((dx * dy).sum() / denominator, -1.0, 1.0))


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing the mean of the ranks they span."""
    _, group_of, group_size = np.unique(x, return_inverse=True, return_counts=True)
    last_rank = np.cumsum(group_size)
    first_rank = last_rank - group_size + 1
    return ((first_rank + last_rank) / 2.0)[group_of]


def lcc(a: ArrayLike, b: ArrayLike) -> float:
    """Pearson linear correlation coefficient of two 1-D sequences, in [-1, 1].

    NaN when either sequence is constant (the correlation is undefined there).
    """
    x, y = _as_paired_vectors(a, b)
    return _pearson(x, y)


def srcc(a: ArrayLike, b: ArrayLike) -> float:
    """Spearman rank correlation coefficient, in [-1, 1]: Pearson's r of the ranks.

    Tied values get the average of the ranks they span. NaN when either sequence is constant.
    """
    x, y = _as_paired_vectors(a, b)
    return _pearson(_average_ranks(x), _average_ranks(y))


def binary_accuracy(pred_mean: ArrayLike, target_mean: ArrayLike, threshold: float = 5.0) -> float:
    """Two-class accuracy in [0, 1] (NIMA, sec. IV): an image is "high" when its mean score is
    strictly above ``threshold``; returns the fraction whose predicted class equals the target's.
    """
    x, y = _as_paired_vectors(pred_mean, target_mean)
    if x.shape[0] == 0:
        raise ValueError("binary_accuracy needs at least one value, got 0")
    return float(np.mean((x > threshold) == (y > threshold)))
