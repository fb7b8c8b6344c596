"""Small synthetic episodes for the optimization-learner tests (float64, a few tasks)."""

from __future__ import annotations

import math

import torch

from metaloop.tasks.episode import Episode, EpisodeBatch


def sinusoid_batch(tasks: int, shots: int, queries: int, seed: int = 0) -> EpisodeBatch:
    """MAML's sinusoid tasks (amplitude U[0.1, 5], phase U[0, pi], x U[-5, 5]), float64."""
    g = torch.Generator().manual_seed(seed)
    episodes = []
    for _ in range(tasks):
        amp = 0.1 + 4.9 * torch.rand(1, generator=g, dtype=torch.float64)
        phase = math.pi * torch.rand(1, generator=g, dtype=torch.float64)
        x = 10 * torch.rand(shots + queries, 1, generator=g, dtype=torch.float64) - 5
        y = amp * torch.sin(x + phase)
        episodes.append(Episode(x[:shots], y[:shots], x[shots:], y[shots:]))
    return EpisodeBatch.stack(episodes)


def image_batch(
    tasks: int, ways: int, shots: int, queries: int, size: int = 8, seed: int = 0
) -> EpisodeBatch:
    """Random ``[n, 1, size, size]`` images with labels 0..ways-1, float64."""
    g = torch.Generator().manual_seed(seed)
    episodes = []
    for _ in range(tasks):
        sy = torch.arange(ways).repeat_interleave(shots)
        qy = torch.arange(ways).repeat_interleave(queries)
        sx = torch.rand(len(sy), 1, size, size, generator=g, dtype=torch.float64)
        qx = torch.rand(len(qy), 1, size, size, generator=g, dtype=torch.float64)
        episodes.append(Episode(sx, sy, qx, qy))
    return EpisodeBatch.stack(episodes)


def tiny_conv(norm: str = "task", ways: int = 3, seed: int = 0, **kwargs):
    from metaloop.nets import Conv4

    torch.manual_seed(seed)
    return Conv4(1, ways, hidden=4, image_size=8, blocks=2, norm=norm, **kwargs).double()


def tiny_mlp(hidden=(8, 8), seed: int = 0):
    from metaloop.nets import MLP

    torch.manual_seed(seed)
    return MLP(1, 1, hidden).double()


class BNMLP(torch.nn.Module):
    """1-8-8-1 regressor with task batch norm in the body and a ``head`` (for ANIL)."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        from metaloop.nets import TaskBatchNorm

        nn = torch.nn
        self.body = nn.Sequential(
            nn.Linear(1, hidden),
            TaskBatchNorm(hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.Tanh(),
        )
        self.head = nn.Linear(hidden, 1)

    def forward(self, x):
        return self.head(self.body(x))


def bn_mlp(seed: int = 0, hidden: int = 8) -> BNMLP:
    torch.manual_seed(seed)
    return BNMLP(hidden).double()
