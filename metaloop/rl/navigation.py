"""The 2D navigation point robot of MAML §5.3, batched over tasks and rollouts in torch.

Follows the released MAML code (cbfinn/maml_rl ``point_env_randgoal.py``), whose numbers the paper
reports: the agent starts at the origin, its action is a velocity clipped to [−0.1, 0.1]², the
reward is the negative *Euclidean* distance to the goal (the paper's text says "squared", the code
and the −40 / −3 returns are distance), goals are uniform on [−0.5, 0.5]², an episode lasts 100
steps and ends early once the agent is within 0.01 of the goal in both coordinates.

The released code wraps the environment in rllab's ``normalize``: the policy acts in [−1, 1]
units that are multiplied by 0.1 (and then clipped) before they reach the robot, so a Gaussian
policy with std 1 moves the robot by ~0.1 per step, not by ~1 (clipped to a random corner).
``action_scale`` is that factor: 0.1 reproduces the released code, 1.0 takes raw velocities.

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

    def __init__(self, low: float = -0.5, high: float = 0.5, horizon: int = 100,
                 action_scale: float = 0.1) -> None:
        if not low < high:
            raise ValueError(f"Navigation2DFamily needs low < high, got low={low}, high={high}")
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        check_action_scale(action_scale)
        self.low, self.high, self.horizon, self.action_scale = low, high, horizon, action_scale

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` goals ``[n, 2]``, uniform on the square; same generator state → same goals."""
        u = torch.rand(n, 2, generator=generator)
        return self.low + (self.high - self.low) * u

    def make(self, goals: Tensor, rollouts: int) -> BatchedNavigation2D:
        return BatchedNavigation2D(goals, rollouts, self.horizon, self.action_scale)


def check_action_scale(action_scale: float) -> None:
    if not action_scale > 0:
        raise ValueError(f"action_scale must be > 0 (0.1 = MAML's released code, 1.0 = raw "
                         f"velocities), got {action_scale}")


class BatchedNavigation2D:
    """``rollouts`` copies of each task's environment, stepped together."""

    def __init__(self, goals: Tensor, rollouts: int, horizon: int = 100,
                 action_scale: float = 0.1) -> None:
        if goals.ndim != 2 or goals.shape[1] != 2:
            raise ValueError(f"goals must be [tasks, 2], got shape {tuple(goals.shape)}")
        check_action_scale(action_scale)
        self.action_scale = action_scale
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
        move = (self.action_scale * action).clamp(-0.1, 0.1) * alive[..., None]
        self.state = self.state + move
        delta = self.state - self.goals
        reward = -delta.norm(dim=-1) * alive
        self.done = self.done | (delta.abs() < 0.01).all(dim=-1)
        return self.state.clone(), reward, self.done.clone()
