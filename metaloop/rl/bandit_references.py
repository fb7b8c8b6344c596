"""Reference policies for Bernoulli bandits, the baselines of RL²'s Table 1 (Duan et al. 2016):
random, UCB1 (Auer et al. 2002), Thompson sampling with a Beta(1, 1) prior, and a Gittins-index
policy (Gittins 1979), all batched over tasks.

The Gittins index is the Bayes-optimal rule for the *discounted infinite-horizon* problem; for a
trial of ``n`` pulls we use discount ``γ = 1 − 1/n`` (effective horizon n) and truncate the
posterior lattice at ``n`` pulls, a "Gittins-style" reference rather than the exact finite-horizon
Bayes optimum.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from metaloop.rl.bandits import BatchedBernoulliBandit

#: policy(successes [B, k], failures [B, k], t, generator) -> arms [B]
BanditPolicy = Callable[[Tensor, Tensor, int, torch.Generator], Tensor]


def random_policy(s: Tensor, f: Tensor, t: int, generator: torch.Generator) -> Tensor:
    return torch.randint(s.shape[1], (s.shape[0],), generator=generator)


def ucb1_policy(s: Tensor, f: Tensor, t: int, generator: torch.Generator) -> Tensor:
    """UCB1: play each arm once, then argmax ``mean + sqrt(2 ln t / n_i)`` (Auer et al. 2002)."""
    pulls = s + f
    untried = pulls == 0
    bonus = torch.sqrt(2 * np.log(max(t, 1)) / pulls.clamp_min(1))
    score = s / pulls.clamp_min(1) + bonus
    score = torch.where(untried, torch.full_like(score, float("inf")), score)
    return _argmax_random_ties(score, generator)


def thompson_policy(s: Tensor, f: Tensor, t: int, generator: torch.Generator) -> Tensor:
    """Thompson sampling: one draw from each arm's Beta(1 + s, 1 + f) posterior, play the best."""
    # Beta(a, b) = X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b); torch's sampler takes no generator,
    # so draw through numpy seeded from the torch generator for reproducibility.
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=generator)))
    draws = rng.beta(1 + s.numpy(), 1 + f.numpy())
    return torch.from_numpy(draws.argmax(axis=1))


def greedy_policy(s: Tensor, f: Tensor, t: int, generator: torch.Generator) -> Tensor:
    """Play the arm with the highest posterior mean (Beta(1, 1) prior), no exploration bonus."""
    return _argmax_random_ties((1 + s) / (2 + s + f), generator)


@lru_cache(maxsize=8)
def gittins_table(max_pulls: int, discount: float, grid: int = 2000) -> np.ndarray:
    """Gittins indices ``G[a-1, b-1]`` of Beta(a, b) arms with ``a + b ≤ max_pulls + 2``.

    Calibration (Gittins 1979; Whittle's retirement form): the index is the per-step reward λ at
    which retiring forever (λ/(1−γ)) and continuing to pull optimally are equally good. One backward
    dynamic programme over the posterior lattice per λ, vectorised over a grid of λ values; the
    index is read off where "continue" stops being optimal (resolution 1/grid). Beyond the lattice
    the arm's mean is treated as known.
    """
    lam = (np.arange(grid) + 0.5) / grid
    retire = lam / (1 - discount)
    top = max_pulls + 2
    table = np.zeros((top, top))
    a = np.arange(1, top)
    p = a / top
    value = np.maximum(retire[:, None], p[None, :] / (1 - discount))  # diagonal a + b = top
    for d in range(top - 1, 1, -1):
        a = np.arange(1, d)
        p = a / d
        up, down = value[:, a], value[:, a - 1]  # V(a+1, b) and V(a, b+1) on diagonal d + 1
        cont = p * (1 + discount * up) + (1 - p) * discount * down
        table[a - 1, d - a - 1] = (cont > retire[:, None]).sum(axis=0) / grid
        value = np.maximum(retire[:, None], cont)
    return table


def gittins_policy(horizon: int) -> BanditPolicy:
    table = torch.from_numpy(gittins_table(horizon, 1.0 - 1.0 / horizon))

    def policy(s: Tensor, f: Tensor, t: int, generator: torch.Generator) -> Tensor:
        index = table[s.long(), f.long()]
        return _argmax_random_ties(index, generator)

    return policy


def _argmax_random_ties(score: Tensor, generator: torch.Generator) -> Tensor:
    noise = torch.rand(score.shape, generator=generator) * 1e-9
    return (score.double() + noise).argmax(dim=1)


def play(
    policy: BanditPolicy, env: BatchedBernoulliBandit, horizon: int, generator: torch.Generator
) -> Tensor:
    """Run ``policy`` for ``horizon`` pulls on every task; returns the pulled arms ``[tasks, horizon]``
    (pass them to ``env.regret``)."""
    tasks, k = env.means.shape
    s = torch.zeros(tasks, k)
    f = torch.zeros(tasks, k)
    arms = []
    for t in range(horizon):
        a = policy(s, f, t + 1, generator)
        r = env.pull(a, generator)
        s[torch.arange(tasks), a] += r
        f[torch.arange(tasks), a] += 1 - r
        arms.append(a)
    return torch.stack(arms, dim=1)


REFERENCES: dict[str, Callable[[int], BanditPolicy]] = {
    "random": lambda n: random_policy,
    "greedy": lambda n: greedy_policy,
    "ucb1": lambda n: ucb1_policy,
    "thompson": lambda n: thompson_policy,
    "gittins": gittins_policy,
}
