"""Classic-control task families with per-task physics, built on gymnasium's own environments
(``pip install metaloop[rl]``): CartPole with per-task pole length and mass, Pendulum with
per-task mass and length. A task is a dict of physical parameters; :func:`make_vector_env` runs
one environment per task in a gymnasium vector environment.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from metaloop.rl.gym_compat import require_gymnasium

gym = require_gymnasium()


class _PhysicsFamily:
    env_id: str
    ranges: dict[str, tuple[float, float]]

    def __init__(self, **ranges: tuple[float, float]) -> None:
        for name, (lo, hi) in ranges.items():
            if name not in self.ranges:
                raise ValueError(
                    f"{type(self).__name__} has no parameter {name!r}; choose from {list(self.ranges)}"
                )
            if not 0 < lo <= hi:
                raise ValueError(f"{name} range must satisfy 0 < low <= high, got ({lo}, {hi})")
        self.ranges = {**self.ranges, **ranges}

    def sample_tasks(self, n: int, generator: torch.Generator) -> list[dict[str, float]]:
        """``n`` parameter dicts, each parameter uniform in its range."""
        u = torch.rand(n, len(self.ranges), generator=generator, dtype=torch.float64)
        return [
            {k: lo + (hi - lo) * float(u[i, j]) for j, (k, (lo, hi)) in enumerate(self.ranges.items())}
            for i in range(n)
        ]

    def make(self, task: dict[str, float], **kwargs):
        env = gym.make(self.env_id, **kwargs)
        self.apply(env.unwrapped, task)
        return env

    def apply(self, env, task: dict[str, float]) -> None:
        raise NotImplementedError


class CartPoleFamily(_PhysicsFamily):
    """CartPole-v1 with per-task ``length`` (half pole length, default 0.5) and ``masspole``
    (default 0.1); the derived quantities CartPoleEnv caches are recomputed."""

    env_id = "CartPole-v1"
    ranges = {"length": (0.25, 1.0), "masspole": (0.05, 0.5)}

    def apply(self, env, task: dict[str, float]) -> None:
        env.length = task["length"]
        env.masspole = task["masspole"]
        env.total_mass = env.masspole + env.masscart
        env.polemass_length = env.masspole * env.length


class PendulumFamily(_PhysicsFamily):
    """Pendulum-v1 with per-task mass ``m`` and length ``l`` (defaults 1.0 and 1.0)."""

    env_id = "Pendulum-v1"
    ranges = {"m": (0.5, 1.5), "l": (0.5, 1.5)}

    def apply(self, env, task: dict[str, float]) -> None:
        env.m = task["m"]
        env.l = task["l"]


def make_vector_env(family: _PhysicsFamily, tasks: Sequence[dict[str, float]], **kwargs):
    """A ``gymnasium.vector.SyncVectorEnv`` with one sub-environment per task (in order)."""
    return gym.vector.SyncVectorEnv([lambda t=t: family.make(t, **kwargs) for t in tasks])
