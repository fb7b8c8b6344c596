"""Policies as plain ``nn.Module``s; adapted weights are dicts of tensors (torch.func style).

:func:`task_forward` runs one module with a *different* parameter dict per task (leading task
dimension) through ``torch.func.vmap`` + ``functional_call``, so every task of a meta-batch is
evaluated in one call and gradients flow back to the shared meta-parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.distributions import Normal
from torch.func import functional_call, vmap

Params = dict[str, Tensor]


class GaussianMLPPolicy(nn.Module):
    """MAML-RL's policy (App. A.2): MLP with 2×100 ReLU units, Gaussian with a learned,
    state-independent log standard deviation, optionally floored at ``min_std`` (as rllab's
    ``GaussianMLPPolicy(min_std=...)``): the policy-gradient step on the mean grows like 1/std, so a
    meta-learned std that collapses makes fixed-size adaptation steps overshoot."""

    def __init__(
        self,
        obs_dim: int,
        action_dim: int,
        hidden: Sequence[int] = (100, 100),
        init_std: float = 1.0,
        min_std: float | None = None,
    ) -> None:
        super().__init__()
        if min_std is not None and not 0 < min_std <= init_std:
            raise ValueError(f"min_std must be in (0, init_std={init_std}], got {min_std}")
        self.min_log_std = None if min_std is None else math.log(min_std)
        dims = [obs_dim, *hidden]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.body = nn.Sequential(*layers)
        self.mean = nn.Linear(dims[-1], action_dim)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(init_std)).log())

    def forward(self, obs: Tensor) -> tuple[Tensor, Tensor]:
        mean = self.mean(self.body(obs))
        log_std = self.log_std if self.min_log_std is None else self.log_std.clamp(min=self.min_log_std)
        return mean, log_std.expand_as(mean)


def params_of(module: nn.Module) -> Params:
    return dict(module.named_parameters())


def expand_params(params: Params, tasks: int) -> Params:
    """Shared parameters viewed with a task dimension; gradients w.r.t. the view are per task."""
    return {k: v.unsqueeze(0).expand(tasks, *v.shape) for k, v in params.items()}


def task_forward(module: nn.Module, params: Params, obs: Tensor) -> tuple[Tensor, Tensor]:
    """``params`` with leading dim ``tasks``, ``obs`` ``[tasks, ..., obs_dim]``."""
    return vmap(lambda p, o: functional_call(module, p, (o,)))(params, obs)


def task_distribution(module: nn.Module, params: Params, obs: Tensor) -> Normal:
    mean, log_std = task_forward(module, params, obs)
    return Normal(mean, log_std.exp())
