"""Uncertainty metrics for probabilistic regressors: NLL and coverage of central intervals.

A Gaussian predictive ``N(mean, var)`` is calibrated when its central ``p`` interval,
``mean ± z_{(1+p)/2} * std``, contains the truth a fraction ``p`` of the time (Kuleshov et al.
2018, Sec. 3, "calibrated regression"). :func:`coverage` measures that fraction per level and
:func:`coverage_error` the mean absolute gap to the nominal levels, the regression analogue of the
expected calibration error of classifiers (``metaloop.metrics.ece``). Negative log-likelihood
(:func:`gaussian_nll`) rewards both accuracy and honest variance.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import torch
from torch import Tensor

DEFAULT_LEVELS = (0.5, 0.8, 0.9, 0.95)


def gaussian_nll(mean: Tensor, var: Tensor, target: Tensor) -> Tensor:
    """Mean over points of ``-log N(target; mean, var)``, constant included."""
    if not (mean.shape == var.shape == target.shape):
        raise ValueError(f"shapes differ: mean {tuple(mean.shape)}, var {tuple(var.shape)}, "
                         f"target {tuple(target.shape)}")
    if (var <= 0).any():
        raise ValueError("variances must be positive")
    return 0.5 * (torch.log(2 * math.pi * var) + (target - mean).pow(2) / var).mean()


def normal_quantile(p: float) -> float:
    """``z`` with ``Phi(z) = p`` (inverse of the standard normal CDF)."""
    return NormalDist().inv_cdf(p)


def check_levels(levels: Sequence[float]) -> None:
    """Central-interval levels must be probabilities strictly between 0 and 1."""
    if any(not 0 < p < 1 for p in levels):
        raise ValueError(f"interval levels must be in (0, 1), got {list(levels)}")


def coverage(mean: Tensor, var: Tensor, target: Tensor,
             levels: Sequence[float] = DEFAULT_LEVELS) -> Tensor:
    """Observed fraction of targets inside each central interval, ``[len(levels)]``."""
    check_levels(levels)
    z = (target - mean).abs() / var.sqrt()
    return torch.stack([(z <= normal_quantile((1 + p) / 2)).float().mean() for p in levels])


def coverage_error(mean: Tensor, var: Tensor, target: Tensor,
                   levels: Sequence[float] = DEFAULT_LEVELS) -> Tensor:
    """Mean ``|observed coverage - nominal level|`` over ``levels`` (0 = perfectly calibrated)."""
    observed = coverage(mean, var, target, levels)
    return (observed - torch.tensor(list(levels), dtype=observed.dtype)).abs().mean()
