"""MuJoCo HalfCheetah task families of MAML §5.3: a goal velocity or a direction per task.

Built on gymnasium's own ``HalfCheetah-v5`` (``pip install metaloop[mujoco]``); only the reward
changes per task, as in the paper (App. A.2, rllab's ``half_cheetah_env_rand``):

* velocity: ``-|v_x - v_goal| - 0.05 |a|²`` with ``v_goal`` uniform on [0, 2];
* direction: ``d · v_x - 0.05 |a|²`` with ``d`` = +1 (forward) or -1 (backward), equally likely.

Episodes last ``horizon`` = 200 steps (the cheetah never terminates). :class:`BatchedHalfCheetah`
steps one MuJoCo environment per (task, rollout) pair and returns ``[tasks, rollouts, ...]``
tensors, so :class:`metaloop.rl.MAMLRL` drives it exactly like the batched 2D navigation. The
environments are created once per family and reused (building a MuJoCo model costs far more than
a rollout step); each is seeded from the family's ``seed`` when created, so a family built with the
same seed and driven by the same calls reproduces its rollouts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from metaloop.rl.gym_compat import require_gymnasium

CTRL_COST = 0.05  # rllab's 0.5 * 1e-1, which MAML's cheetah tasks use


def _require_mujoco():
    gym = require_gymnasium()
    try:
        import mujoco  # noqa: F401
    except ImportError as err:
        raise ImportError(
            "the HalfCheetah task families need MuJoCo; install it with "
            "`pip install metaloop[mujoco]` (or `pip install 'gymnasium[mujoco]'`)"
        ) from err
    return gym


class _CheetahFamily:
    obs_dim = 17
    action_dim = 6

    def __init__(self, horizon: int = 200, seed: int = 0, ctrl_cost: float = CTRL_COST) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon, self.seed, self.ctrl_cost = horizon, seed, ctrl_cost
        self._pool: list = []

    def envs(self, n: int) -> list:
        """``n`` unwrapped HalfCheetah environments from the family's pool (created on demand)."""
        if len(self._pool) < n:
            gym = _require_mujoco()
            for i in range(len(self._pool), n):
                env = gym.make("HalfCheetah-v5").unwrapped  # no time limit: ours is ``horizon``
                env.reset(seed=self.seed * 100_003 + i)
                self._pool.append(env)
        return self._pool[:n]

    def make(self, goals: Tensor, rollouts: int) -> BatchedHalfCheetah:
        return BatchedHalfCheetah(self, goals, rollouts)

    def task_reward(self, goals: Tensor, x_velocity: Tensor) -> Tensor:
        raise NotImplementedError


class HalfCheetahVelFamily(_CheetahFamily):
    """A task is a goal forward velocity, uniform on ``[low, high]`` (paper: [0, 2])."""

    def __init__(self, low: float = 0.0, high: float = 2.0, **kwargs) -> None:
        if not low < high:
            raise ValueError(f"HalfCheetahVelFamily needs low < high, got low={low}, high={high}")
        super().__init__(**kwargs)
        self.low, self.high = low, high

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """``[n, 1]`` goal velocities; same generator state → same goals."""
        return self.low + (self.high - self.low) * torch.rand(n, 1, generator=generator)

    def task_reward(self, goals: Tensor, x_velocity: Tensor) -> Tensor:
        return -(x_velocity - goals[..., 0]).abs()


class HalfCheetahDirFamily(_CheetahFamily):
    """A task is a direction: +1 rewards running forward, -1 backward."""

    def sample_tasks(self, n: int, generator: torch.Generator) -> Tensor:
        """``[n, 1]`` directions in {-1, +1}."""
        return torch.randint(0, 2, (n, 1), generator=generator).float() * 2 - 1

    def task_reward(self, goals: Tensor, x_velocity: Tensor) -> Tensor:
        return goals[..., 0] * x_velocity


class BatchedHalfCheetah:
    """``rollouts`` HalfCheetahs per task, stepped together; ``reset`` / ``step`` as in
    :class:`metaloop.rl.navigation.BatchedNavigation2D`."""

    def __init__(self, family: _CheetahFamily, goals: Tensor, rollouts: int) -> None:
        if goals.ndim != 2 or goals.shape[1] != 1:
            raise ValueError(f"goals must be [tasks, 1], got shape {tuple(goals.shape)}")
        if rollouts < 1:
            raise ValueError(f"rollouts must be >= 1, got {rollouts}")
        self.family, self.rollouts, self.horizon = family, rollouts, family.horizon
        self.goals = goals[:, None, :].expand(-1, rollouts, -1)
        self.shape = tuple(self.goals.shape[:2])
        self.envs = family.envs(self.shape[0] * rollouts)
        self.t = 0
        self.done = torch.zeros(self.shape, dtype=torch.bool)

    def _obs(self, rows: list[np.ndarray]) -> Tensor:
        return torch.as_tensor(np.stack(rows), dtype=torch.float32).view(*self.shape, -1)

    def reset(self) -> Tensor:
        self.t = 0
        self.done = torch.zeros(self.shape, dtype=torch.bool)
        return self._obs([env.reset()[0] for env in self.envs])

    def step(self, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Returns (observation, reward, done); every rollout ends after ``horizon`` steps."""
        if tuple(action.shape) != (*self.shape, self.family.action_dim):
            raise ValueError(f"action must be {(*self.shape, self.family.action_dim)}, "
                             f"got {tuple(action.shape)}")
        act = action.detach().clamp(-1.0, 1.0)
        flat = act.reshape(-1, self.family.action_dim).double().numpy()
        rows, vel = [], []
        for env, a in zip(self.envs, flat, strict=True):
            obs, _, _, _, info = env.step(a)
            rows.append(obs)
            vel.append(info["x_velocity"])
        x_velocity = torch.tensor(vel, dtype=torch.float32).view(self.shape)
        reward = self.family.task_reward(self.goals, x_velocity) - self.family.ctrl_cost * act.pow(2).sum(-1)
        self.t += 1
        self.done = torch.full(self.shape, self.t >= self.horizon)
        return self._obs(rows), reward, self.done.clone()
