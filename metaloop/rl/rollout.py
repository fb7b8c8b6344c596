"""Batched trajectories ``[T, tasks, rollouts]`` from a batched environment and per-task params."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from metaloop.rl.policies import Params, task_forward
from metaloop.rl.returns import LinearFeatureBaseline, discounted_returns, gae, normalize


@dataclass
class Trajectories:
    """Time-major batch: ``obs`` ``[T, N, R, d]``, ``actions`` ``[T, N, R, a]``, ``rewards`` and
    ``mask`` ``[T, N, R]`` (N tasks, R rollouts per task; mask is 1 while the episode runs)."""

    obs: Tensor
    actions: Tensor
    rewards: Tensor
    mask: Tensor

    def episode_returns(self) -> Tensor:
        """Undiscounted return of each rollout, ``[N, R]``."""
        return (self.rewards * self.mask).sum(dim=0)

    def task_first(self, x: Tensor) -> Tensor:
        """``[T, N, ...]`` → ``[N, T, ...]`` for vmap over tasks."""
        return x.transpose(0, 1)


@torch.no_grad()
def rollout(env, policy: nn.Module, params: Params, generator: torch.Generator) -> Trajectories:
    """Run the Gaussian policy with per-task ``params`` in ``env`` (batched, see navigation.py)."""
    obs = env.reset()
    observations, actions, rewards, masks = [], [], [], []
    for _ in range(env.horizon):
        mean, log_std = task_forward(policy, params, obs)
        action = mean + log_std.exp() * torch.randn(mean.shape, generator=generator)
        alive = (~env.done).to(obs.dtype)
        next_obs, reward, _ = env.step(action)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        masks.append(alive)
        obs = next_obs
        if env.done.all():
            break
    return Trajectories(
        torch.stack(observations), torch.stack(actions), torch.stack(rewards), torch.stack(masks)
    )


def task_advantages(traj: Trajectories, gamma: float, lam: float) -> Tensor:
    """Per-task GAE against a linear feature baseline fitted on that task's rollouts, normalised
    per task (MAML-RL's inner and outer loss both use this, App. A.2)."""
    returns = discounted_returns(traj.rewards, gamma, traj.mask)
    out = torch.zeros_like(returns)
    for i in range(returns.shape[1]):
        obs, ret, mask = traj.obs[:, i], returns[:, i], traj.mask[:, i]
        values = LinearFeatureBaseline().fit(obs, ret, mask).predict(obs) * mask
        adv = gae(traj.rewards[:, i], values, gamma, lam, mask)
        out[:, i] = normalize(adv, mask)
    return out
