import math

import pytest
import torch

from metaloop.tasks.episode import Episode, EpisodeBatch


def sinusoid_episode(g: torch.Generator, shots: int, queries: int, dtype=torch.float32) -> Episode:
    amp = 0.1 + 4.9 * torch.rand((), generator=g, dtype=torch.float64)
    phase = math.pi * torch.rand((), generator=g, dtype=torch.float64)
    x = -5 + 10 * torch.rand(shots + queries, 1, generator=g, dtype=torch.float64)
    y = amp * torch.sin(x - phase)
    x, y = x.to(dtype), y.to(dtype)
    return Episode(x[:shots], y[:shots], x[shots:], y[shots:])


@pytest.fixture
def sine_batch():
    def make(tasks=3, shots=5, queries=4, seed=0, dtype=torch.float32) -> EpisodeBatch:
        g = torch.Generator().manual_seed(seed)
        return EpisodeBatch.stack([sinusoid_episode(g, shots, queries, dtype) for _ in range(tasks)])

    return make
