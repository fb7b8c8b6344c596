"""Per-episode metrics and the confidence interval every few-shot paper reports.

Few-shot results are "mean ± 95 % CI over test episodes": the half-width is 1.96 · s / √n with s the
sample standard deviation (ddof = 1) of the per-episode values (the normal approximation used by
Snell et al., Finn et al. and most of the literature; with 600+ episodes it equals the t-interval to
three digits).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

Z95 = 1.959963984540054


def mean_ci95(values: Sequence[float] | Tensor) -> tuple[float, float]:
    """``(mean, half-width of the 95 % confidence interval)``; the half-width is 0 for one value."""
    v = torch.as_tensor(values, dtype=torch.float64).flatten()
    if v.numel() == 0:
        raise ValueError("mean_ci95 needs at least one value")
    mean = float(v.mean())
    if v.numel() == 1:
        return mean, 0.0
    return mean, Z95 * float(v.std(unbiased=True)) / math.sqrt(v.numel())


def accuracy(logits: Tensor, targets: Tensor) -> float:
    return float((logits.argmax(dim=-1) == targets).double().mean())


def mse(predictions: Tensor, targets: Tensor) -> float:
    return float(F.mse_loss(predictions.double(), targets.double()))


def nll(logits: Tensor, targets: Tensor) -> float:
    """Mean negative log-likelihood of the true class (cross-entropy in nats)."""
    return float(F.cross_entropy(logits.double(), targets))


def gaussian_nll(mean: Tensor, variance: Tensor, targets: Tensor) -> float:
    """Mean Gaussian negative log-likelihood, including the ½ log 2π constant."""
    return float(F.gaussian_nll_loss(mean.double(), targets.double(), variance.double(), full=True))


def calibration_bins(logits: Tensor, targets: Tensor, bins: int = 15) -> tuple[Tensor, Tensor, Tensor]:
    """Per confidence bin: ``(count, mean confidence, accuracy)`` (equal-width bins on [0, 1])."""
    probs = logits.double().softmax(dim=-1)
    confidence, predicted = probs.max(dim=-1)
    correct = (predicted == targets).double()
    index = torch.clamp((confidence * bins).long(), max=bins - 1)
    count = torch.bincount(index, minlength=bins).double()
    conf_sum = torch.bincount(index, weights=confidence, minlength=bins)
    acc_sum = torch.bincount(index, weights=correct, minlength=bins)
    safe = count.clamp(min=1)
    return count, conf_sum / safe, acc_sum / safe


def expected_calibration_error(logits: Tensor, targets: Tensor, bins: int = 15) -> float:
    """ECE (Guo et al. 2017, Eq. 3): Σ_b |B_b|/n · |acc(B_b) − conf(B_b)| over equal-width bins."""
    count, conf, acc = calibration_bins(logits, targets, bins)
    return float((count / count.sum() * (acc - conf).abs()).sum())


def fit_temperature(logits: Tensor, targets: Tensor, bounds: tuple[float, float] = (1e-2, 1e2)) -> float:
    """Temperature scaling (Guo et al. 2017, Sec. 4.2): the ``T`` minimising the NLL of ``logits / T``.

    One scalar fitted on held-out predictions (meta-val episodes, never the test set) repairs a
    learner that is systematically over- or under-confident without changing any decision: the
    argmax, hence the accuracy, is the same at every ``T``. The NLL is convex in ``1 / T``, so a
    golden-section search on ``log T`` over ``bounds`` finds the minimum; a result at a bound means
    the optimum lies beyond it (e.g. every prediction correct: sharper is always better).
    """
    lo, hi = bounds
    if not 0 < lo < hi:
        raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds}")
    if logits.ndim != 2 or targets.shape != logits.shape[:1]:
        raise ValueError(f"expected logits [n, ways] and targets [n], got {tuple(logits.shape)} and "
                         f"{tuple(targets.shape)}")
    z = logits.detach().double()

    def loss(log_t: float) -> float:
        return float(F.cross_entropy(z / math.exp(log_t), targets))

    a, b = math.log(lo), math.log(hi)
    ratio = (math.sqrt(5) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    while b - a > 1e-6:
        if fc <= fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return math.exp((a + b) / 2)
