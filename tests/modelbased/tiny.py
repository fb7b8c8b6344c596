"""Tiny episodes and a tiny embedding so every model-based learner runs in milliseconds."""

import torch
from torch import nn

from metaloop.algorithms import get_algorithm
from metaloop.tasks.episode import Episode, EpisodeBatch

SHAPE = (1, 4, 4)


def tiny_embedding(out: int = 6) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, out), nn.Tanh())


def make(name: str, ways: int = 3, shots: int = 2, dtype=torch.float64) -> nn.Module:
    kwargs = {"ways": ways, "embedding": tiny_embedding(), "input_shape": SHAPE}
    if name == "snail":
        kwargs.update(shots=shots, tc_filters=4, attention=((4, 3), (4, 3), (4, 3)))
    if name == "mann":
        kwargs.update(controller=8, slots=6, memory_dim=3, heads=2)
    if name == "metanet":
        kwargs.update(hidden=5, representation=4)
    torch.manual_seed(1)
    return get_algorithm(name)(**kwargs).to(dtype)


def episode(ways: int = 3, shots: int = 2, queries: int = 2, seed: int = 0, dtype=torch.float64) -> Episode:
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(ways, *SHAPE, generator=g, dtype=dtype)
    sy = torch.arange(ways).repeat_interleave(shots)
    qy = torch.arange(ways).repeat_interleave(queries)
    sx = centres[sy] + 0.3 * torch.randn(len(sy), *SHAPE, generator=g, dtype=dtype)
    qx = centres[qy] + 0.3 * torch.randn(len(qy), *SHAPE, generator=g, dtype=dtype)
    return Episode(sx, sy, qx, qy)


def batch(tasks: int = 3, **kwargs) -> EpisodeBatch:
    return EpisodeBatch.stack([episode(seed=s, **kwargs) for s in range(tasks)])
