"""Regression task families: each task is a function drawn from a parametric family.

The sinusoid family is exactly the one of MAML (Finn et al. 2017, Sec. 5.1): amplitude U[0.1, 5.0],
phase U[0, π], inputs x U[-5, 5], targets without noise, loss MSE. A family is a pair of pure
functions (draw parameters, evaluate them on inputs), so any user callable becomes a family through
:class:`CallableFamily`, and a :class:`RegressionSampler` turns a family into episodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from metaloop.tasks.episode import Episode, EpisodeBatch


def _uniform(n: int, low: float, high: float, generator: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=generator, dtype=torch.float64).mul_(high - low).add_(low)


@dataclass(frozen=True)
class SinusoidFamily:
    """y = A sin(x − φ) (MAML's convention), A ~ U[amplitude], φ ~ U[phase], x ~ U[x_range]."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def sample_params(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.stack(
            [_uniform(n, *self.amplitude, generator), _uniform(n, *self.phase, generator)], dim=1
        )

    def __call__(self, params: Tensor, x: Tensor) -> Tensor:
        amp, phase = params[..., 0:1], params[..., 1:2]
        return amp.unsqueeze(-2) * torch.sin(x - phase.unsqueeze(-2))


@dataclass(frozen=True)
class HarmonicFamily:
    """Sum of a base tone and its first harmonic: a₁ sin(ωx + b₁) + a₂ sin(2ωx + b₂).

    The two-frequency family used to test whether a learner captures more than one amplitude/phase
    pair (as in the "harmonic" benchmarks of Bayesian meta-learning papers).
    """

    frequency: tuple[float, float] = (0.5, 2.0)
    amplitude: tuple[float, float] = (0.1, 2.5)
    phase: tuple[float, float] = (0.0, 2 * math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def sample_params(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.stack(
            [
                _uniform(n, *self.frequency, generator),
                _uniform(n, *self.amplitude, generator),
                _uniform(n, *self.phase, generator),
                _uniform(n, *self.amplitude, generator),
                _uniform(n, *self.phase, generator),
            ],
            dim=1,
        )

    def __call__(self, params: Tensor, x: Tensor) -> Tensor:
        w, a1, b1, a2, b2 = (params[..., i : i + 1].unsqueeze(-2) for i in range(5))
        return a1 * torch.sin(w * x + b1) + a2 * torch.sin(2 * w * x + b2)


@dataclass(frozen=True)
class LinearFamily:
    """y = a x + b with slope and intercept uniform: the simplest family, useful as a sanity check."""

    slope: tuple[float, float] = (-3.0, 3.0)
    intercept: tuple[float, float] = (-3.0, 3.0)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def sample_params(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.stack(
            [_uniform(n, *self.slope, generator), _uniform(n, *self.intercept, generator)], dim=1
        )

    def __call__(self, params: Tensor, x: Tensor) -> Tensor:
        return params[..., 0:1].unsqueeze(-2) * x + params[..., 1:2].unsqueeze(-2)


@dataclass(frozen=True)
class CallableFamily:
    """Any user function family: ``sample_params(n, generator) -> [n, p]``, ``fn(params, x) -> y``.

    ``fn`` receives params ``[..., p]`` and x ``[..., points, in_dim]`` and must broadcast.
    """

    sample_params: Callable[[int, torch.Generator | None], Tensor]
    fn: Callable[[Tensor, Tensor], Tensor]
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __call__(self, params: Tensor, x: Tensor) -> Tensor:
        return self.fn(params, x)


class RegressionSampler:
    """Episodes of ``shots`` support and ``queries`` query points from one task of a family.

    Support and query points are drawn independently from ``x_range`` (MAML draws K points for the
    inner step and evaluates on fresh points of the same function). Inputs and targets are
    ``[n, 1]`` float32 unless ``dtype`` says otherwise; ``noise_std`` adds Gaussian target noise.
    """

    def __init__(self, family, shots: int, queries: int, noise_std: float = 0.0,
                 dtype: torch.dtype = torch.float32) -> None:
        if shots < 1 or queries < 1:
            raise ValueError(f"regression episodes need shots >= 1 and queries >= 1, got {shots}/{queries}")
        low, high = family.x_range
        if not low < high:
            raise ValueError(f"x_range must be (low, high) with low < high, got {family.x_range}")
        self.family, self.shots, self.queries = family, shots, queries
        self.noise_std, self.dtype = noise_std, dtype

    def __repr__(self) -> str:
        return f"RegressionSampler({self.family!r}, shots={self.shots}, queries={self.queries})"

    def sample_with_params(
        self, n: int, generator: torch.Generator | None = None
    ) -> tuple[EpisodeBatch, Tensor]:
        params = self.family.sample_params(n, generator)
        low, high = self.family.x_range
        points = self.shots + self.queries
        x = torch.rand(n, points, 1, generator=generator, dtype=torch.float64) * (high - low) + low
        y = self.family(params, x)
        if self.noise_std > 0:
            y = y + self.noise_std * torch.randn(y.shape, generator=generator, dtype=torch.float64)
        x, y = x.to(self.dtype), y.to(self.dtype)
        k = self.shots
        return EpisodeBatch(x[:, :k], y[:, :k], x[:, k:], y[:, k:]), params

    def sample_batch(self, n: int, generator: torch.Generator | None = None) -> EpisodeBatch:
        return self.sample_with_params(n, generator)[0]

    def sample(self, generator: torch.Generator | None = None) -> Episode:
        return self.sample_batch(1, generator)[0]


def sinusoid_tasks(shots: int = 5, queries: int = 10, **kwargs) -> RegressionSampler:
    """The MAML sinusoid benchmark's task source (K = ``shots``)."""
    return RegressionSampler(SinusoidFamily(), shots, queries, **kwargs)
