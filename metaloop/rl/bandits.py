"""Bernoulli multi-armed bandits, the RL² benchmark (Duan et al. 2016, §4.1).

A task is a vector of arm means drawn i.i.d. from U[0, 1]; a trial is ``horizon`` pulls of the same
task, each pull a one-step episode. Batched over tasks in torch; the gymnasium class for users is
:class:`metaloop.rl.envs.BernoulliBanditEnv`.
"""

from __future__ import annotations

import torch
from torch import Tensor


class BernoulliBanditFamily:
    def __init__(self, arms: int) -> None:
        if arms < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got arms={arms}")
        self.arms = arms

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """Arm means ``[n, arms]`` ~ U[0, 1] (Duan et al. 2016, §4.1)."""
        return torch.rand(n, self.arms, generator=generator)

    def make(self, means: Tensor, generator: torch.Generator | None = None) -> BatchedBernoulliBandit:
        return BatchedBernoulliBandit(means, generator)


class BatchedBernoulliBandit:
    #: every pull is a one-step episode (Duan et al. 2016, §4.1)
    episode_length = 1

    def __init__(self, means: Tensor, generator: torch.Generator | None = None) -> None:
        if means.ndim != 2:
            raise ValueError(f"means must be [tasks, arms], got shape {tuple(means.shape)}")
        if ((means < 0) | (means > 1)).any():
            raise ValueError("Bernoulli arm means must lie in [0, 1]")
        self.means = means
        self.generator = generator
        self.obs_dim, self.num_actions = 1, means.shape[1]

    def reset(self) -> Tensor:
        """The bandit has no state: a constant observation ``[tasks, 1]``."""
        return torch.ones(self.means.shape[0], 1, dtype=self.means.dtype)

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(observation, reward, done): each pull ends its episode."""
        reward = self.pull(action, self.generator)
        return self.reset(), reward, torch.ones_like(reward, dtype=torch.bool)

    def pull(self, arms: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Reward 0/1 for the pulled arm of each task, ``arms`` int64 ``[tasks]``."""
        p = self.means.gather(1, arms[:, None]).squeeze(1)
        return (torch.rand(p.shape, generator=generator) < p).to(self.means.dtype)

    def regret(self, arms: Tensor) -> Tensor:
        """Expected regret of a sequence of pulls ``[tasks, T]``: Σ_t (max_i μ_i − μ_{a_t})."""
        best = self.means.max(dim=1).values
        chosen = self.means.gather(1, arms)
        return (best[:, None] - chosen).sum(dim=1)
