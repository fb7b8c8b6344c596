"""gymnasium versions of the torch-batched task families, for users who step environments one
at a time (``pip install metaloop[rl]``). Same dynamics as navigation.py / bandits.py.

A task is fixed until ``set_task`` or ``reset(options={"new_task": True})``; a plain ``reset``
starts a new episode of the same task (what RL² and MAML's inner loop need). Seeding
``reset(seed=s)`` makes both the task draw and the episode reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from metaloop.rl.gym_compat import require_gymnasium
from metaloop.rl.navigation import check_action_scale

gym = require_gymnasium()
spaces = gym.spaces


class Navigation2DEnv(gym.Env):
    """MAML's 2D point robot (§5.3): velocity ``action_scale · a`` clipped to [−0.1, 0.1]², reward
    −‖x − goal‖, terminated within 0.01 of the goal, truncated after ``horizon`` steps, goal ~
    U[−0.5, 0.5]². ``action_scale=0.1`` is the released code's normalized action (a ∈ [−1, 1])."""

    metadata = {"render_modes": []}

    def __init__(self, goal: Any = None, horizon: int = 100, low: float = -0.5, high: float = 0.5,
                 action_scale: float = 0.1) -> None:
        check_action_scale(action_scale)
        self.action_scale = action_scale
        bound = 0.1 / action_scale
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-bound, bound, (2,), np.float32)
        self.horizon, self.low, self.high = horizon, low, high
        self.goal = None if goal is None else np.asarray(goal, dtype=np.float64)
        self.state = np.zeros(2)
        self.t = 0

    def sample_task(self) -> np.ndarray:
        return self.np_random.uniform(self.low, self.high, size=2)

    def set_task(self, goal: Any) -> None:
        self.goal = np.asarray(goal, dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.goal is None or (options or {}).get("new_task", False):
            self.goal = self.sample_task()
        self.state = np.zeros(2)
        self.t = 0
        return self.state.astype(np.float32), {"goal": self.goal.copy()}

    def step(self, action):
        velocity = self.action_scale * np.asarray(action, dtype=np.float64)
        self.state = self.state + np.clip(velocity, -0.1, 0.1)
        self.t += 1
        delta = self.state - self.goal
        reward = -float(np.linalg.norm(delta))
        terminated = bool((np.abs(delta) < 0.01).all())
        truncated = self.t >= self.horizon
        return (
            self.state.astype(np.float32),
            reward,
            terminated,
            truncated,
            {"goal": self.goal.copy()},
        )


class BernoulliBanditEnv(gym.Env):
    """RL²'s bandit (Duan et al. §4.1): each step pulls one arm and ends the episode; the arm
    means (~U[0, 1] unless given) persist until a new task is requested."""

    metadata = {"render_modes": []}

    def __init__(self, arms: int = 5, means: Any = None) -> None:
        if means is not None:
            means = np.asarray(means, dtype=np.float64)
            arms = means.shape[0]
        if arms < 2:
            raise ValueError(f"a bandit needs at least 2 arms, got {arms}")
        self.arms, self.means = arms, means
        self.observation_space = spaces.Box(0.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Discrete(arms)

    def set_task(self, means: Any) -> None:
        self.means = np.asarray(means, dtype=np.float64)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        if self.means is None or (options or {}).get("new_task", False):
            self.means = self.np_random.uniform(0.0, 1.0, size=self.arms)
        return np.ones(1, np.float32), {"means": self.means.copy()}

    def step(self, action):
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an arm index in [0, {self.arms}), got {action!r}")
        reward = float(self.np_random.random() < self.means[int(action)])
        return np.ones(1, np.float32), reward, True, False, {"means": self.means.copy()}
