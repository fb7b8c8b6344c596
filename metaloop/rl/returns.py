"""Returns, advantages and the linear feature baseline used by MAML-RL and RL².

Trajectories are time-major tensors ``[T, B]``; ``mask[t, b]`` is 1 while trajectory ``b`` is
still running at step ``t`` and 0 after it ended (padding), so finished rollouts of different
lengths can live in one tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor


def discounted_returns(rewards: Tensor, gamma: float, mask: Tensor | None = None) -> Tensor:
    """Reward-to-go ``G_t = r_t + γ G_{t+1}`` (Sutton & Barto eq. 3.9), zero after the end."""
    if mask is not None:
        rewards = rewards * mask
    out = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        running = rewards[t] + gamma * running
        if mask is not None:
            running = running * mask[t]
        out[t] = running
    return out


def gae(
    rewards: Tensor,
    values: Tensor,
    gamma: float,
    lam: float,
    mask: Tensor | None = None,
    last_value: Tensor | None = None,
) -> Tensor:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16).

    ``δ_t = r_t + γ V(s_{t+1}) − V(s_t)`` and ``Â_t = Σ_l (γλ)^l δ_{t+l}``; the value after the
    last valid step is 0 (terminal) or ``last_value`` (truncated rollouts, bootstrapped).
    """
    if mask is None:
        mask = torch.ones_like(rewards)
    next_value = torch.zeros_like(values[0]) if last_value is None else last_value
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])
    for t in range(rewards.shape[0] - 1, -1, -1):
        # mask[t+1] == 0 means s_{t+1} is past the end: its value does not count.
        nv = next_value if t == rewards.shape[0] - 1 else values[t + 1] * mask[t + 1]
        delta = rewards[t] + gamma * nv - values[t]
        running = (delta + gamma * lam * running) * mask[t]
        advantages[t] = running
    return advantages


def normalize(x: Tensor, mask: Tensor | None = None, eps: float = 1e-8) -> Tensor:
    """Zero-mean, unit-variance over the valid entries (the usual advantage normalisation)."""
    if mask is None:
        return (x - x.mean()) / (x.std() + eps)
    n = mask.sum()
    mean = (x * mask).sum() / n
    var = (((x - mean) * mask) ** 2).sum() / n
    return (x - mean) / (var.sqrt() + eps) * mask


class LinearFeatureBaseline:
    """rllab's linear value baseline used by MAML-RL (MAML App. A.2): a ridge regression of the
    returns on ``[s, s², t/100, (t/100)², (t/100)³, 1]``, refitted on every batch of one task.

    The ridge coefficient grows ×10 until the normal equations are well conditioned, as in rllab.
    """

    def __init__(self, reg_coeff: float = 1e-5) -> None:
        self.reg_coeff = reg_coeff
        self.weights: Tensor | None = None

    @staticmethod
    def features(obs: Tensor) -> Tensor:
        """``obs`` ``[T, B, d]`` → features ``[T, B, 2d + 4]``."""
        T, B = obs.shape[:2]
        t = torch.arange(T, dtype=obs.dtype, device=obs.device).view(T, 1, 1).expand(T, B, 1) / 100.0
        return torch.cat([obs, obs**2, t, t**2, t**3, torch.ones_like(t)], dim=-1)

    def fit(self, obs: Tensor, returns: Tensor, mask: Tensor) -> LinearFeatureBaseline:
        feats = self.features(obs)[mask.bool()].double()
        target = returns[mask.bool()].double()
        gram = feats.T @ feats
        rhs = feats.T @ target
        reg = self.reg_coeff
        eye = torch.eye(gram.shape[0], dtype=gram.dtype)
        for _ in range(5):
            weights = torch.linalg.solve(gram + reg * eye, rhs)
            if torch.isfinite(weights).all():
                break
            reg *= 10
        self.weights = weights.to(obs.dtype)
        return self

    def predict(self, obs: Tensor) -> Tensor:
        if self.weights is None:
            raise ValueError("LinearFeatureBaseline.predict called before fit(obs, returns, mask)")
        return self.features(obs) @ self.weights
