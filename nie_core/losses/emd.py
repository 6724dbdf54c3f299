"""Earth mover's distance between discrete score distributions (NIMA's training loss).

Talebi & Milanfar, "NIMA: Neural Image Assessment", IEEE TIP 2018, eq. (1): for ordered classes
``k = 1..K`` and cumulative distributions ``CDF_p(k) = sum_{i<=k} p_i``,

    EMD(p, p_hat) = ( (1/K) * sum_k |CDF_p(k) - CDF_p_hat(k)|^r )^(1/r),

with ``r = 2`` in the paper. The normalisation is per sample; a batch loss is the mean of the
per-sample distances.
"""

from __future__ import annotations

import torch

__all__ = ["emd_per_sample", "emd_loss"]


def _check_pair(target: torch.Tensor, pred: torch.Tensor, r: int) -> None:
    if target.ndim != 2:
        raise ValueError(f"target must have shape (N, K), got {tuple(target.shape)}")
    if pred.shape != target.shape:
        raise ValueError(
            f"pred shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}"
        )
    if target.shape[0] == 0 or target.shape[1] == 0:
        raise ValueError(f"need at least one sample and one class, got shape {tuple(target.shape)}")
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"r must be an integer >= 1, got {r!r}")


def emd_per_sample(target: torch.Tensor, pred: torch.Tensor, r: int = 2) -> torch.Tensor:
    """Normalised EMD of each row (NIMA eq. 1).

    Args:
        target: (N, K) ground-truth distributions over ordered classes (rows sum to 1).
        pred: (N, K) predicted distributions, same shape.
        r: norm order; NIMA uses 2.

    Returns:
        (N,) non-negative distances; 0 for identical rows, at most 1 for distributions.

    The gradient is finite (zero) where ``pred == target``, unlike a literal ``sqrt(mean(.))``.
    """
    _check_pair(target, pred, r)
    cdf_gap = torch.cumsum(target, dim=1) - torch.cumsum(pred, dim=1)
    num_classes = target.shape[1]
    # (1/K * sum |d|^r)^(1/r) == ||d||_r / K^(1/r); vector_norm has a safe subgradient at 0.
    return torch.linalg.vector_norm(cdf_gap, ord=r, dim=1) / num_classes ** (1.0 / r)


def emd_loss(target: torch.Tensor, pred: torch.Tensor, r: int = 2) -> torch.Tensor:
    """Batch mean of :func:`emd_per_sample`: a scalar tensor (NIMA's training loss)."""
    return emd_per_sample(target, pred, r=r).mean()
