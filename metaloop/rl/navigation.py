"""The 2D navigation point robot of MAML §5.3, batched over tasks and rollouts in torch.

Follows the released MAML code (cbfinn/maml_rl ``point_env_randgoal.py``), whose numbers the paper
reports: the agent starts at the origin, its action is a velocity clipped to [−0.1, 0.1]², the
reward is the negative *Euclidean* distance to the goal (the paper's text says "squared", the code
and the −40 / −3 returns are distance), goals are uniform on [−0.5, 0.5]², an episode lasts 100
steps and ends early once the agent is within 0.01 of the goal in both coordinates.

One Python step moves every (task, rollout) pair at once: ``[tasks, rollouts, 2]`` tensors.
The gymnasium class for users is :class:`metaloop.rl.envs.Navigation2DEnv`.
"""

from __future__ import annotations

import torch
from torch import Tensor


class Navigation2DFamily:
    """Task family: a task is a goal position; :meth:`make` builds the batched environment."""

    obs_dim = 2
    action_dim = 2

    def __init__(self, low: float = -0.5, high: float = 0.5, horizon: int = 100) -> None:
        if not low < high:
            raise ValueError(f"Navigation2DFamily needs low < high, got low={low}, high={high}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.low, self.high, self.horizon = low, high, horizon

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` goals ``[n, 2]``, uniform on the square; same generator state → same goals."""
        u = torch.rand(n, 2, generator=generator)
        return self.low + (self.high - self.low) * u

    def make(self, goals: Tensor, rollouts: int) -> BatchedNavigation2D:
        return BatchedNavigation2D(goals, rollouts, self.horizon)


class BatchedNavigation2D:
    """``rollouts`` copies of each task's environment, stepped together."""

    def __init__(self, goals: Tensor, rollouts: int, horizon: int = 100) -> None:
        if goals.ndim != 2 or goals.shape[1] != 2:
            raise ValueError(f"goals must be [tasks, 2], got shape {tuple(goals.shape)}")
        self.goals = goals[:, None, :].expand(-1, rollouts, -1)
        self.rollouts, self.horizon = rollouts, horizon
        self.state = torch.zeros_like(self.goals)
        self.done = torch.zeros(self.goals.shape[:2], dtype=torch.bool)

    def reset(self) -> Tensor:
        self.state = torch.zeros_like(self.goals)
        self.done = torch.zeros(self.goals.shape[:2], dtype=torch.bool)
        return self.state.clone()

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (observation, reward, done); finished pairs stay put and earn 0."""
        alive = ~self.done
        move = action.clamp(-0.1, 0.1) * alive[..., None]
        self.state = self.state + move
        delta = self.state - self.goals
        reward = -delta.norm(dim=-1) * alive
        self.done = self.done | (delta.abs() < 0.01).all(dim=-1)
        return self.state.clone(), reward, self.done.clone()
