"""Binned ("Riemann") predictive distribution for regression, as prior-fitted networks use.

Müller et al. 2022 ("Transformers can do Bayesian inference", the "Riemann distribution") let the
network output logits over fixed bins of y and train them by cross-entropy on the bin of the
target: the posterior predictive may then be skewed or multi-modal, which a Gaussian head cannot
express. The edges are quantiles of y sampled from the task prior (:func:`quantile_bin_edges`), so
every bin holds the same prior mass and resolution goes where the targets are.

The density is a histogram: probability ``p_i`` spread uniformly over bin ``i``, so the NLL of a
target is ``-log(p_i / width_i)``, a proper density comparable with a Gaussian NLL. The two outer
bins instead get half-normal tails, as PFN's full-support bar distribution: the outer edges are
only the extremes of a finite prior sample, and a target beyond them (a rarer amplitude than any
sampled, noise, another task family) would get density 0 and an infinite NLL under a clamped
histogram; clamping the target into the bin instead would make the NLL no longer a density. Each
tail starts at the outer bin's inner edge and has its scale set so that half of its mass lies
within the bin's width (the PFN choice), so the histogram keeps its shape near the data and the
density integrates to 1 over the whole real line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from metaloop.learned.uncertainty import DEFAULT_LEVELS, check_levels

#: ``sqrt(2) * erfinv(0.5)``: the median of a unit half-normal, so ``scale = width / this``.
HALF_NORMAL_MEDIAN = math.sqrt(2.0) * 0.4769362762044699


def check_bin_edges(edges: Tensor) -> Tensor:
    """``edges`` as a 1-D tensor of >= 3 finite, strictly increasing values, or a ValueError."""
    edges = torch.as_tensor(edges)
    if edges.dim() != 1 or edges.numel() < 3:
        raise ValueError(f"bin edges must be a 1-D tensor of bins + 1 >= 3 values (bins >= 2), got "
                         f"shape {tuple(edges.shape)}; build them with quantile_bin_edges(y, bins)")
    if not torch.isfinite(edges).all():
        raise ValueError("bin edges must be finite; drop NaN/inf from the prior y samples")
    if not (edges[1:] > edges[:-1]).all():
        at = int(torch.nonzero(edges[1:] <= edges[:-1])[0])
        raise ValueError(f"bin edges must be strictly increasing, but edge {at + 1} "
                         f"({float(edges[at + 1]):g}) <= edge {at} ({float(edges[at]):g}); sort them, "
                         "or use fewer bins if the prior y samples repeat values")
    return edges


def quantile_bin_edges(y_samples: Tensor, bins: int) -> Tensor:
    """``bins + 1`` edges at evenly spaced quantiles of ``y_samples`` (any shape; flattened).

    Equal prior mass per bin (PFN): a bin is narrow where the prior puts many targets. Pass many
    samples (say 100 per bin); the outer edges are the sample's min and max.
    """
    if bins < 2:
        raise ValueError(f"bins must be >= 2 (the two outer bins carry the tails), got {bins}")
    y_samples = torch.as_tensor(y_samples).detach()
    dtype = y_samples.dtype if y_samples.is_floating_point() else torch.get_default_dtype()
    y = y_samples.flatten().double()
    y = y[torch.isfinite(y)]
    if y.numel() <= bins:
        raise ValueError(f"{y.numel()} finite prior y samples cannot place {bins} bins; sample more "
                         "tasks from the prior or use fewer bins")
    edges = torch.quantile(y, torch.linspace(0, 1, bins + 1, dtype=torch.float64))
    return check_bin_edges(edges.to(dtype))


class BarDistribution:
    """Histogram density with half-normal tails; ``logits [..., bins]`` over shared ``edges``.

    The batch shape is ``logits.shape[:-1]``: values passed to :meth:`log_prob` and results of
    :attr:`mean` etc. have that shape. Methods follow ``torch.distributions`` names.
    """

    def __init__(self, logits: Tensor, edges: Tensor) -> None:
        if logits.shape[-1] != edges.numel() - 1:
            raise ValueError(f"{logits.shape[-1]} logits for {edges.numel() - 1} bins")
        self.logits = logits
        self.edges = edges.to(logits.dtype)
        self.widths = self.edges[1:] - self.edges[:-1]
        self.tail_scales = self.widths[[0, -1]] / HALF_NORMAL_MEDIAN  # left, right

    @property
    def log_probs(self) -> Tensor:
        """Log probability of each bin, ``[..., bins]``."""
        return F.log_softmax(self.logits, dim=-1)

    def _bin(self, value: Tensor) -> Tensor:
        """Index of the bin holding each value; the tails extend the outer bins to ±infinity."""
        inner = self.edges[1:-1].contiguous()
        return torch.searchsorted(inner, value.contiguous().to(inner.dtype))

    def log_prob(self, value: Tensor) -> Tensor:
        """Log density at ``value`` (log bin probability minus log bin width, or the tail's)."""
        idx = self._bin(value)
        log_p = pick(self.log_probs, idx)
        left, right = self.tail_scales
        bars = self.edges.numel() - 1
        inner = log_p - self.widths[idx].log()
        tail_left = log_p + half_normal_log_pdf(self.edges[1] - value, left)
        tail_right = log_p + half_normal_log_pdf(value - self.edges[-2], right)
        return torch.where(idx == 0, tail_left, torch.where(idx == bars - 1, tail_right, inner))

    def nll(self, target: Tensor) -> Tensor:
        """Mean negative log density of ``target`` (the training loss; comparable with a Gaussian NLL)."""
        return -self.log_prob(target).mean()

    def _components(self) -> tuple[Tensor, Tensor]:
        """Mean and variance of each bin's own density: uniform inside, half-normal in the tails."""
        centre = (self.edges[:-1] + self.edges[1:]) / 2
        var = self.widths.pow(2) / 12
        left, right = self.tail_scales
        shift = math.sqrt(2 / math.pi)
        centre = torch.cat([(self.edges[1] - shift * left)[None], centre[1:-1],
                            (self.edges[-2] + shift * right)[None]])
        var = torch.cat([(left.pow(2) * (1 - 2 / math.pi))[None], var[1:-1],
                         (right.pow(2) * (1 - 2 / math.pi))[None]])
        return centre, var

    @property
    def mean(self) -> Tensor:
        centre, _ = self._components()
        return self.log_probs.exp() @ centre

    @property
    def variance(self) -> Tensor:
        """Law of total variance over bins (no cancellation: always >= the smallest bin's)."""
        centre, var = self._components()
        p = self.log_probs.exp()
        mean = p @ centre  # as :attr:`mean`, without recomputing the components and softmax
        return (p * ((centre - mean.unsqueeze(-1)).pow(2) + var)).sum(-1)

    def cdf(self, value: Tensor) -> Tensor:
        """Probability below ``value``: linear inside a bin, the half-normal's CDF in the tails."""
        p = self.log_probs.exp()
        idx = self._bin(value)
        before, p_bin = pick(p.cumsum(-1) - p, idx), pick(p, idx)
        left, right = self.tail_scales
        bars = self.edges.numel() - 1
        inner = before + p_bin * (value - self.edges[idx]) / self.widths[idx]
        tail_left = p_bin * torch.erfc((self.edges[1] - value) / (left * math.sqrt(2)))
        tail_right = before + p_bin * torch.erf((value - self.edges[-2]) / (right * math.sqrt(2)))
        return torch.where(idx == 0, tail_left, torch.where(idx == bars - 1, tail_right, inner))

    def icdf(self, q: float | Tensor) -> Tensor:
        """Quantile ``q`` in (0, 1) of every distribution in the batch (inverse of :meth:`cdf`)."""
        p = self.log_probs.exp()
        q = torch.as_tensor(q, dtype=p.dtype, device=p.device).expand(p.shape[:-1])
        cum = p.cumsum(-1)
        bars = p.shape[-1]
        idx = (cum < q.unsqueeze(-1)).sum(-1).clamp(max=bars - 1)
        before, p_bin = pick(cum - p, idx), pick(p, idx)
        frac = ((q - before) / p_bin).clamp(0, 1)
        left, right = self.tail_scales
        inner = self.edges[idx] + frac * self.widths[idx]
        tail_left = self.edges[1] - left * math.sqrt(2) * torch.erfinv(1 - frac)
        tail_right = self.edges[-2] + right * math.sqrt(2) * torch.erfinv(frac)
        return torch.where(idx == 0, tail_left, torch.where(idx == bars - 1, tail_right, inner))

    def interval(self, level: float) -> tuple[Tensor, Tensor]:
        """Central interval holding probability ``level``: the ``(1 ± level) / 2`` quantiles."""
        return self.icdf((1 - level) / 2), self.icdf((1 + level) / 2)

    def coverage(self, target: Tensor, levels: Sequence[float] = DEFAULT_LEVELS) -> Tensor:
        """Observed fraction of targets inside each central interval, ``[len(levels)]``; the
        binned counterpart of :func:`metaloop.learned.uncertainty.coverage`."""
        check_levels(levels)
        inside = []
        for level in levels:
            low, high = self.interval(level)
            inside.append(((target >= low) & (target <= high)).float().mean())
        return torch.stack(inside)


def pick(table: Tensor, idx: Tensor) -> Tensor:
    """``table[..., idx]`` per element, broadcasting the batch shapes of ``table`` and ``idx``."""
    shape = torch.broadcast_shapes(table.shape[:-1], idx.shape)
    return table.expand(*shape, table.shape[-1]).gather(-1, idx.expand(shape).unsqueeze(-1)).squeeze(-1)


def half_normal_log_pdf(distance: Tensor, scale: Tensor) -> Tensor:
    """``log`` of the half-normal density ``sqrt(2/pi) / scale * exp(-d^2 / 2 scale^2)``."""
    return 0.5 * math.log(2 / math.pi) - scale.log() - distance.pow(2) / (2 * scale.pow(2))
